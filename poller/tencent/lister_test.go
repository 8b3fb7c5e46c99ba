package tencent_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rollcall-dev/rollcall/poller"
	"github.com/rollcall-dev/rollcall/poller/tencent"
	"github.com/rollcall-dev/rollcall/schema"
)

// fakeAPI answers the Lister's three calls from its fields.
type fakeAPI struct {
	mu        sync.Mutex
	n         int                 // members listed
	listErr   func(string) error  // per group; nil: none
	online    int                 // get_online_member_num's answer
	onlineErr error               // or its error
	counts    int                 // get_online_member_num calls
	exists    bool                // get_group_info's answer
	existsErr error               // or its error
	asked     int                 // get_group_info calls
	listed    map[string]struct{} // groups listed
}

func (f *fakeAPI) ListMembers(_ context.Context, id string) ([]schema.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listed == nil {
		f.listed = map[string]struct{}{}
	}
	f.listed[id] = struct{}{}
	if f.listErr != nil {
		if err := f.listErr(id); err != nil {
			return nil, err
		}
	}
	ms := make([]schema.Member, f.n)
	for i := range ms {
		ms[i] = schema.Member{Account: fmt.Sprintf("u%04d", i), JoinTime: int64(1000 + i)}
	}
	return ms, nil
}

func (f *fakeAPI) OnlineMemberNum(context.Context, string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts++
	return f.online, f.onlineErr
}

func (f *fakeAPI) GroupExists(context.Context, string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	return f.exists, f.existsErr
}

// apiErr is the error the client returns for an ErrorCode.
func apiErr(code int, kind tencent.Kind) error {
	return fmt.Errorf("list members: %w", &tencent.APIError{Command: "get_members", HTTPStatus: 200, Code: code, Info: "test", Kind: kind})
}

func newLister(t *testing.T, api tencent.API, o tencent.ListerOptions) (*tencent.Lister, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	o.Logger = zap.New(core)
	l, err := tencent.NewLister(api, o)
	if err != nil {
		t.Fatal(err)
	}
	return l, logs
}

// newScheduler runs the Lister under a scheduler, as rollcall does, with
// handled recording the snapshots; both log to logs.
func newScheduler(t *testing.T, api tencent.API, groups []string, o tencent.ListerOptions) (*poller.Scheduler, *observer.ObservedLogs, func() []schema.Snapshot) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	o.Logger = zap.New(core)
	l, err := tencent.NewLister(api, o)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var snaps []schema.Snapshot
	s, err := poller.New(l, poller.HandlerFunc(func(_ context.Context, snap schema.Snapshot) error {
		mu.Lock()
		defer mu.Unlock()
		snaps = append(snaps, snap)
		return nil
	}), poller.Options{SDKAppID: testAppID, Groups: groups, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	return s, logs, func() []schema.Snapshot {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(snaps)
	}
}

const testAppID = 1400000000

func TestNewListerValidates(t *testing.T) {
	if _, err := tencent.NewLister(nil, tencent.ListerOptions{}); err == nil {
		t.Error("NewLister accepted no api")
	}
	if _, err := tencent.NewLister(&fakeAPI{}, tencent.ListerOptions{MemberCap: -1}); err == nil {
		t.Error("NewLister accepted a negative member cap")
	}
}

// TestListerTruncated: a list at the member cap is truncated by its length;
// below it, the online count recognises the silent 30 cap and a list that
// shifted under the 1,000 cap while paged.
func TestListerTruncated(t *testing.T) {
	cases := []struct {
		name          string
		api           *fakeAPI
		memberCap     int
		wantTruncated bool
		wantCounts    int
		wantWarns     int // the feature warning, once per group
		want30        int // "exactly 30" (not known capped), once per group
	}{
		{"30 listed, 45 online", &fakeAPI{n: 30, online: 45}, 1000, true, 2, 1, 0},
		{"30 listed, 30 online", &fakeAPI{n: 30, online: 30}, 1000, false, 2, 0, 1},
		// In doubt the list counts as capped: unlisted members wait out of
		// view rather than all being reported gone.
		{"count unavailable", &fakeAPI{n: 30, onlineErr: errors.New("10003")}, 1000, true, 2, 0, 0},
		{"29 listed: no count needed", &fakeAPI{n: 29, online: 45}, 1000, false, 0, 0, 0},
		{"member_cap 30 already: truncated by length, no count needed", &fakeAPI{n: 30, online: 45}, 30, true, 0, 0, 0},
		// Joins while the list was paged pushed members out of the window:
		// fewer than the cap came back, but the group is over it.
		{"995 listed, 1100 online: shifted under the cap", &fakeAPI{n: 995, online: 1100}, 1000, true, 2, 0, 0},
		{"995 listed, 995 online: complete", &fakeAPI{n: 995, online: 995}, 1000, false, 2, 0, 0},
		{"995 listed, count unavailable", &fakeAPI{n: 995, onlineErr: errors.New("10002")}, 1000, true, 2, 0, 0},
		{"800 listed: far from the cap", &fakeAPI{n: 800, online: 1100}, 1000, false, 0, 0, 0},
		// capSlack: a list may shift a tenth of the cap (100 of 1,000) below it.
		{"900 listed, 1100 online: at the slack's edge", &fakeAPI{n: 900, online: 1100}, 1000, true, 2, 0, 0},
		{"899 listed: past the slack, no count needed", &fakeAPI{n: 899, online: 1100}, 1000, false, 0, 0, 0},
		{"1000 listed: truncated by length", &fakeAPI{n: 1000, online: 1100}, 1000, true, 0, 0, 0},
		{"member_cap 0 is the default 1000", &fakeAPI{n: 1000, online: 1100}, 0, true, 0, 0, 0},
		// A server that does not serve the count: exactly 30 stays the silent
		// cap's signature (capped in doubt); just under 1,000 is taken as is.
		{"30 listed, count not served (404)", &fakeAPI{n: 30, onlineErr: &tencent.APIError{Command: "get_online_member_num", HTTPStatus: 404, Kind: tencent.KindBadRequest}}, 1000, true, 2, 1, 0},
		{"995 listed, count an unknown command (10003)", &fakeAPI{n: 995, onlineErr: &tencent.APIError{Command: "get_online_member_num", HTTPStatus: 200, Code: 10003, Kind: tencent.KindFatalConfig}}, 1000, false, 2, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api := tc.api
			l, logs := newLister(t, api, tencent.ListerOptions{MemberCap: tc.memberCap})
			for range 2 {
				snap, err := l.List(context.Background(), "g")
				if err != nil {
					t.Fatal(err)
				}
				if snap.GroupID != "g" || len(snap.Members) != api.n || snap.Truncated != tc.wantTruncated {
					t.Fatalf("snapshot of %s: %d members, truncated %v; want %d, %v", snap.GroupID, len(snap.Members), snap.Truncated, api.n, tc.wantTruncated)
				}
			}
			if api.counts != tc.wantCounts {
				t.Errorf("get_online_member_num calls = %d, want %d", api.counts, tc.wantCounts)
			}
			warns, thirty := 0, 0
			for _, e := range logs.FilterLevelExact(zapcore.WarnLevel).All() {
				switch {
				case strings.HasPrefix(e.Message, "snapshot lists exactly 30 members"):
					thirty++
				case strings.Contains(e.Message, "set poll.member_cap: 30"):
					warns++
				}
			}
			if warns != tc.wantWarns {
				t.Errorf("capped warnings = %d, want %d (once per group)", warns, tc.wantWarns)
			}
			if thirty != tc.want30 {
				t.Errorf("exactly-30 warnings = %d, want %d (once per group)", thirty, tc.want30)
			}
		})
	}
}

// TestListerExactly30Warning: a list of exactly 30 that the online count
// does not show capped is warned about once per group, saying what to set;
// not with member_cap 30, where the operator has acknowledged the cap.
func TestListerExactly30Warning(t *testing.T) {
	api := &fakeAPI{n: 30, online: 30}
	l, logs := newLister(t, api, tencent.ListerOptions{})
	for _, id := range []string{"g30", "g30", "g30", "other"} {
		if _, err := l.List(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	w := logs.FilterMessageSnippet("capped at 30").All()
	if len(w) != 2 || w[0].ContextMap()["group_id"] != "g30" || w[1].ContextMap()["group_id"] != "other" {
		t.Fatalf("30-member warnings: %v", w)
	}
	if !strings.Contains(w[0].Message, "poll.member_cap: 30") || w[0].LoggerName != "poller" {
		t.Errorf("warning %q (logger %q) does not say what to set", w[0].Message, w[0].LoggerName)
	}

	l, logs = newLister(t, api, tencent.ListerOptions{MemberCap: 30})
	if _, err := l.List(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	if n := logs.FilterMessageSnippet("capped at 30").Len(); n != 0 {
		t.Errorf("warned with member_cap 30")
	}
}

// TestListerMarked: a Mark-filtered list is never compared with the online
// count, which is the whole group's; the cap by length still applies.
func TestListerMarked(t *testing.T) {
	api := &fakeAPI{n: 30, online: 45}
	l, _ := newLister(t, api, tencent.ListerOptions{Marked: true})
	snap, err := l.List(context.Background(), "g")
	if err != nil || snap.Truncated || api.counts != 0 {
		t.Fatalf("List = %v truncated %v after %d counts; want complete, no count", err, snap.Truncated, api.counts)
	}
	l, _ = newLister(t, &fakeAPI{n: 30}, tencent.ListerOptions{Marked: true, MemberCap: 30})
	if snap, _ := l.List(context.Background(), "g"); !snap.Truncated {
		t.Error("a marked list at the member cap is not truncated")
	}
}

// TestListerSetMemberCap: a reload's member cap applies to the next list.
func TestListerSetMemberCap(t *testing.T) {
	l, _ := newLister(t, &fakeAPI{n: 2}, tencent.ListerOptions{})
	if snap, _ := l.List(context.Background(), "g"); snap.Truncated {
		t.Fatal("2 of the default 1000 truncated")
	}
	l.SetMemberCap(2)
	if snap, _ := l.List(context.Background(), "g"); !snap.Truncated {
		t.Fatal("member cap 2 from SetMemberCap not applied: 2-member snapshot not truncated")
	}
}

// TestListerFailureKinds: the client's kinds become the scheduler's, with
// the API's kind and code for the "poll failed" log; the message is the
// client's.
func TestListerFailureKinds(t *testing.T) {
	for _, tc := range []struct {
		err      error
		want     poller.Kind
		kindName string
		code     string
	}{
		{apiErr(10002, tencent.KindTransient), poller.KindTransient, "transient", "10002"},
		{apiErr(10006, tencent.KindRateLimited), poller.KindTransient, "rate_limited", "10006"},
		{apiErr(70001, tencent.KindAuth), poller.KindAuth, "auth", "70001"},
		{apiErr(10004, tencent.KindBadRequest), poller.KindGroupFailed, "bad_request", "10004"},
		{apiErr(10007, tencent.KindBadRequest), poller.KindGroupFailed, "bad_request", "10007"},
		{errors.New("dial tcp: refused"), poller.KindTransient, "transient", "transport"},
		{apiErr(60010, tencent.KindFatalConfig), poller.KindFatal, "", ""},
		{apiErr(10010, tencent.KindGroupGone), poller.KindGone, "", ""},
	} {
		l, _ := newLister(t, &fakeAPI{listErr: func(string) error { return tc.err }}, tencent.ListerOptions{})
		l.Scheduled([]string{"g", "other"})
		_, err := l.List(context.Background(), "g")
		var pe *poller.Error
		if !errors.As(err, &pe) || pe.Kind != tc.want || pe.GroupID != "g" || !errors.Is(err, tc.err) || err.Error() != tc.err.Error() {
			t.Errorf("%v: List = %v (%+v), want kind %s with the client's error", tc.err, err, pe, tc.want)
			continue
		}
		if tc.kindName == "" {
			continue
		}
		fields := map[string]string{}
		for _, f := range pe.Fields {
			fields[f.Key] = f.String
		}
		if pe.Msg != "" || fields["kind"] != tc.kindName || fields["code"] != tc.code {
			t.Errorf("%v: log %q %v, want kind %s code %s", tc.err, pe.Msg, fields, tc.kindName, tc.code)
		}
	}
}

// TestClassifyOption: a custom classifier decides the kinds.
func TestClassifyOption(t *testing.T) {
	errGone := errors.New("custom: no such group")
	api := &fakeAPI{listErr: func(string) error { return errGone }}
	s, _, handled := newScheduler(t, api, []string{"a"}, tencent.ListerOptions{Classify: func(err error) tencent.Kind {
		if errors.Is(err, errGone) {
			return tencent.KindGroupGone
		}
		return tencent.KindOf(err)
	}})
	if err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if snaps := handled(); len(snaps) != 1 || !snaps[0].Dismissed {
		t.Fatalf("snapshots = %+v, want one dismissed", snaps)
	}
}

// TestNoPermissionOnEveryGroupIsFatal: 10007 on one group is that group's
// type (the others go on; it fails each cycle, logged with the likely
// cause); on every group it is the identifier, a configuration error.
func TestNoPermissionOnEveryGroupIsFatal(t *testing.T) {
	denied := apiErr(10007, tencent.KindBadRequest)
	some, logs, _ := newScheduler(t, &fakeAPI{listErr: func(id string) error {
		if id == "room" {
			return denied
		}
		return nil
	}}, []string{"a", "room"}, tencent.ListerOptions{})
	for range 2 {
		err := some.RunOnce(context.Background())
		var fe *poller.FatalError
		if err == nil || errors.As(err, &fe) || !errors.Is(err, denied) {
			t.Fatalf("RunOnce = %v, want room's 10007, not fatal", err)
		}
	}
	if st := some.Status(); st.AuthOrConfigError != nil {
		t.Errorf("one group's 10007 made a config error: %v", st.AuthOrConfigError)
	}
	w := logs.FilterMessage("poll failed").All()
	if len(w) != 2 || w[0].ContextMap()["group_id"] != "room" || w[0].ContextMap()["code"] != "10007" ||
		!strings.Contains(fmt.Sprint(w[0].ContextMap()["error"]), "not an app admin, or the group is not an AVChatRoom") {
		t.Errorf("poll failed logs = %v, want room's 10007 with its likely cause, each cycle", w)
	}

	all, _, _ := newScheduler(t, &fakeAPI{listErr: func(string) error { return denied }}, []string{"a", "b"}, tencent.ListerOptions{})
	err := all.RunOnce(context.Background())
	var fe *poller.FatalError
	if !errors.As(err, &fe) || !errors.Is(err, denied) || !strings.Contains(err.Error(), "every group") {
		t.Fatalf("RunOnce = %v, want a *FatalError for 10007 on every group", err)
	}
	if st := all.Status(); !errors.Is(st.AuthOrConfigError, denied) {
		t.Errorf("status = %+v, want the config error", st)
	}

	// A group that is no longer scheduled does not count; one that lists
	// again is no longer denied.
	l, _ := newLister(t, &fakeAPI{listErr: func(string) error { return denied }}, tencent.ListerOptions{})
	l.Scheduled([]string{"a", "b"})
	if _, err := l.List(context.Background(), "a"); poller.KindOf(err) != poller.KindGroupFailed {
		t.Fatalf("first 10007: %v, want a group failure", err)
	}
	l.Scheduled([]string{"b", "c"})
	if _, err := l.List(context.Background(), "b"); poller.KindOf(err) != poller.KindGroupFailed {
		t.Fatalf("b's 10007 after a was unscheduled: %v, want a group failure (c not denied)", err)
	}
	if _, err := l.List(context.Background(), "c"); poller.KindOf(err) != poller.KindFatal {
		t.Fatalf("c's 10007: %v, want fatal (b and c denied)", err)
	}
	// A one-off listing, with no schedule, is never "every group".
	l, _ = newLister(t, &fakeAPI{listErr: func(string) error { return denied }}, tencent.ListerOptions{})
	if _, err := l.List(context.Background(), "a"); poller.KindOf(err) != poller.KindGroupFailed {
		t.Fatalf("unscheduled 10007: %v, want a group failure", err)
	}
}

// TestGroupGoneConfirmed: a listing's 10010/10015 writes the group off only
// when get_group_info agrees or cannot tell; a group it still finds is a
// failed poll, tried again next cycle.
func TestGroupGoneConfirmed(t *testing.T) {
	for _, tc := range []struct {
		name          string
		exists        bool
		err           error
		wantDismissed bool
	}{
		{"get_group_info agrees", false, nil, true},
		{"get_group_info finds the group", true, nil, false},
		{"get_group_info fails: get_members stands", false, errors.New("10002"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeAPI{exists: tc.exists, existsErr: tc.err,
				listErr: func(string) error { return apiErr(10010, tencent.KindGroupGone) }}
			s, logs, handled := newScheduler(t, api, []string{"g"}, tencent.ListerOptions{})
			err := s.RunOnce(context.Background())
			snaps := handled()
			dismissed := len(snaps) == 1 && snaps[0].Dismissed
			if dismissed != tc.wantDismissed || api.asked != 1 {
				t.Fatalf("dismissed %v (snapshots %+v, asked %d), want %v", dismissed, snaps, api.asked, tc.wantDismissed)
			}
			if !tc.wantDismissed && (err == nil || len(snaps) != 0 || !slices.Equal(s.Groups(), []string{"g"})) {
				t.Fatalf("RunOnce = %v, snapshots %d, groups %v: want a failed poll and the group kept", err, len(snaps), s.Groups())
			}
			if n := logs.FilterMessageSnippet("get_group_info finds it").Len(); n != map[bool]int{true: 0, false: 1}[tc.wantDismissed] {
				t.Errorf("%d warnings that get_group_info finds the group", n)
			}
			if n := logs.FilterMessage("poll failed").Len(); n != 0 {
				t.Errorf("%d poll failed logs besides the get_group_info warning", n)
			}
		})
	}
}
