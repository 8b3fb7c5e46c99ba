package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/diff/filestore"
	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/schema"
)

// These tests pin the diff semantics as users see them: the real binary,
// `run --once`, the fake API and the file sink. Helpers here are prefixed
// "sem" so they cannot collide with other test files of the package.

// semEdit replaces old with new in the env's config file; old must occur.
func semEdit(e *e2eEnv, old, new string) {
	e.t.Helper()
	b, err := os.ReadFile(e.config)
	if err != nil {
		e.t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		e.t.Fatalf("config has no %q:\n%s", old, b)
	}
	if err := os.WriteFile(e.config, bytes.Replace(b, []byte(old), []byte(new), 1), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// semFast shortens poll.interval to 2s: a listing is bounded by the
// interval, so a page that fails forever gives up after ~2s, not 10s.
func semFast(e *e2eEnv) {
	e.t.Helper()
	semEdit(e, "  interval: 10s\n", "  interval: 2s\n")
	semEdit(e, "  request_timeout: 2s\n", "  request_timeout: 1s\n")
}

// semStateBytes returns the raw state file of group, nil if there is none.
func semStateBytes(e *e2eEnv, group string) []byte {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.stateDir, filestore.FileName(group)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// semState decodes the state file of group.
func semState(e *e2eEnv, group string) *diff.State {
	e.t.Helper()
	b := semStateBytes(e, group)
	if b == nil {
		e.t.Fatalf("no state file for %s", group)
	}
	var st diff.State
	if err := json.Unmarshal(b, &st); err != nil {
		e.t.Fatalf("state of %s: %v", group, err)
	}
	return &st
}

// semByGroup splits events by group, keeping their order.
func semByGroup(evs []schema.Event) map[string][]schema.Event {
	out := map[string][]schema.Event{}
	for _, ev := range evs {
		out[ev.Data.GroupID] = append(out[ev.Data.GroupID], ev)
	}
	return out
}

// semNew returns the events written since the first n.
func semNew(e *e2eEnv, n int) []schema.Event {
	e.t.Helper()
	evs := e.events()
	if len(evs) < n {
		e.t.Fatalf("event files shrank: %d < %d", len(evs), n)
	}
	return evs[n:]
}

// semExpect compares summaries of the events of each group with want;
// groups absent from want must have no events.
func semExpect(t *testing.T, evs []schema.Event, want map[string][]string) {
	t.Helper()
	got := semByGroup(evs)
	for g, evs := range got {
		if _, ok := want[g]; !ok {
			t.Errorf("group %s: unexpected events %v", g, summary(evs))
		}
	}
	for g, w := range want {
		if s := summary(got[g]); !slices.Equal(s, w) && !(len(s) == 0 && len(w) == 0) {
			t.Errorf("group %s: events = %v, want %v", g, s, w)
		}
	}
}

// semRequestsFor counts get_members requests about group.
func semRequestsFor(api *tencenttest.Server, group string) int {
	n := 0
	for _, r := range api.Requests() {
		if r.Command == "get_members" && r.GroupID == group {
			n++
		}
	}
	return n
}

func TestSemanticsCompleteSnapshotIsSetDifference(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{})
	base := time.Now().Unix() - 3600
	api.AddGroup("@TGS#g1", member("a", base+1), member("b", base+2), member("keep1", base+3))
	api.AddGroup("@TGS#g2", member("x", base+4), member("keep2", base+5))
	api.AddGroup("@TGS#g3", member("still", base+6))
	e := newEnv(t, api, []string{"@TGS#g1", "@TGS#g2", "@TGS#g3"}, "")

	before := time.Now().Unix()
	e.mustOnce()
	after := time.Now().Unix() + 1 // TakenAt is truncated to seconds
	semExpect(t, e.events(), map[string][]string{
		"@TGS#g1": {"member.joined/baseline/a", "member.joined/baseline/b", "member.joined/baseline/keep1"},
		"@TGS#g2": {"member.joined/baseline/keep2", "member.joined/baseline/x"},
		"@TGS#g3": {"member.joined/baseline/still"},
	})
	n := len(e.events())
	baselineAt := map[string]time.Time{}
	for _, ev := range e.events() {
		baselineAt[ev.Data.GroupID] = ev.Time
		if ev.Data.PreviousObservedAt != nil {
			t.Errorf("baseline event %s has previous_observed_at", ev.Subject)
		}
	}

	// Several joins and leaves at once, in two groups; g3 is unchanged.
	api.Leave("@TGS#g1", "a")
	api.Leave("@TGS#g1", "b")
	api.Join("@TGS#g1", member("d", base+10))
	api.Join("@TGS#g1", member("c", base+11))
	api.Leave("@TGS#g2", "x")
	api.Join("@TGS#g2", member("z", base+12))
	api.Join("@TGS#g2", member("y", base+13))
	e.mustOnce()
	evs := semNew(e, n)
	semExpect(t, evs, map[string][]string{
		"@TGS#g1": {"member.left/left/a", "member.left/left/b", "member.joined/joined/c", "member.joined/joined/d"},
		"@TGS#g2": {"member.left/left/x", "member.joined/joined/y", "member.joined/joined/z"},
	})
	joinTimes := map[string]int64{"a": base + 1, "b": base + 2, "x": base + 4, "c": base + 11, "d": base + 10, "y": base + 13, "z": base + 12}
	for _, ev := range evs {
		if ev.Data.JoinTime != joinTimes[ev.Subject] {
			t.Errorf("%s: join_time %d, want %d", ev.Subject, ev.Data.JoinTime, joinTimes[ev.Subject])
		}
		if p := ev.Data.PreviousObservedAt; p == nil || !p.Equal(baselineAt[ev.Data.GroupID]) {
			t.Errorf("%s: previous_observed_at %v, want the baseline's %v", ev.Subject, p, baselineAt[ev.Data.GroupID])
		}
		want := schema.EventID(api.SDKAppID(), ev.Data.GroupID, ev.Subject, ev.Data.JoinTime, ev.Type)
		if ev.ID != want {
			t.Errorf("%s: id %s, want %s", ev.Subject, ev.ID, want)
		}
		if ev.Type != schema.TypeMemberLeft {
			if ev.Data.OnlineSeconds != nil {
				t.Errorf("joined event %s carries online_seconds", ev.Subject)
			}
			continue
		}
		// The last snapshot that showed the member is the baseline run's.
		jt := joinTimes[ev.Subject]
		if ev.Data.OnlineSeconds == nil {
			t.Fatalf("left event %s has no online_seconds", ev.Subject)
		}
		if got := *ev.Data.OnlineSeconds; got < before-jt || got > after-jt {
			t.Errorf("%s: online_seconds %d, want within [%d, %d]", ev.Subject, got, before-jt, after-jt)
		}
		if got, want := *ev.Data.OnlineSeconds, baselineAt[ev.Data.GroupID].Unix()-jt; got != want {
			t.Errorf("%s: online_seconds %d, want baseline time - join_time = %d", ev.Subject, got, want)
		}
	}
}

func TestSemanticsRejoinBetweenPolls(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{})
	old := time.Now().Unix() - 600
	api.AddGroup("room", member("alice", old), member("bob", old+1))
	e := newEnv(t, api, []string{"room"}, "")
	e.mustOnce()
	n := len(e.events())

	// alice left and came back between two polls: same account, new JoinTime.
	neu := old + 300
	api.Leave("room", "alice")
	api.Join("room", member("alice", neu))
	e.mustOnce()
	evs := semNew(e, n)
	if got, want := summary(evs), []string{"member.left/rejoined/alice", "member.joined/rejoined/alice"}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	left, joined := evs[0], evs[1]
	if left.Data.JoinTime != old || joined.Data.JoinTime != neu {
		t.Errorf("join_time left %d joined %d, want %d and %d", left.Data.JoinTime, joined.Data.JoinTime, old, neu)
	}
	if left.ID == joined.ID {
		t.Errorf("left and joined share id %s", left.ID)
	}
	if want := schema.EventID(api.SDKAppID(), "room", "alice", old, schema.TypeMemberLeft); left.ID != want {
		t.Errorf("left id %s, want %s", left.ID, want)
	}
	if want := schema.EventID(api.SDKAppID(), "room", "alice", neu, schema.TypeMemberJoined); joined.ID != want {
		t.Errorf("joined id %s, want %s", joined.ID, want)
	}
	if st := semState(e, "room"); len(st.Members) != 2 || st.Members[0].Account != "alice" || st.Members[0].JoinTime != neu {
		t.Errorf("state members = %+v, want alice with the new join time", st.Members)
	}
}

func TestSemanticsFailingPageLosesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault tencenttest.Fault
	}{
		{"http502", tencenttest.Fault{Group: "big", Page: 2, Kind: tencenttest.FaultHTTP502}},
		{"code10002", tencenttest.Fault{Group: "big", Page: 2, Kind: tencenttest.FaultErrorCode, Code: 10002}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			api := newAPI(t, tencenttest.Options{PageSize: 10})
			base := time.Now().Unix() - 3600
			api.AddGroup("big", members(35, "m%02d", base)...)
			api.AddGroup("small", member("s1", base))
			e := newEnv(t, api, []string{"big", "small"}, "")
			semFast(e)
			e.mustOnce()
			n := len(e.events())
			if n != 36 {
				t.Fatalf("baseline wrote %d events, want 36", n)
			}

			api.Leave("big", "m00")
			api.Join("big", member("new-big", base+100))
			api.Join("small", member("s2", base+100))
			stateBefore := semStateBytes(e, "big")
			api.InjectFault(tc.fault)
			r := e.once()
			if r.code == 0 {
				t.Fatalf("run --once with a page failing for ever exited 0\nstderr:\n%s", r.stderr)
			}
			semExpect(t, semNew(e, n), map[string][]string{"small": {"member.joined/joined/s2"}})
			if got := semStateBytes(e, "big"); !bytes.Equal(got, stateBefore) {
				t.Errorf("state of big changed after a failed listing:\nbefore %s\nafter  %s", stateBefore, got)
			}
			if !strings.Contains(r.stderr, "big") {
				t.Errorf("stderr does not name the failing group:\n%s", r.stderr)
			}
			n = len(e.events())

			api.ClearFaults()
			e.mustOnce()
			semExpect(t, semNew(e, n), map[string][]string{"big": {"member.left/left/m00", "member.joined/joined/new-big"}})
		})
	}
}

func TestSemanticsTruncatedSnapshot(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{MemberCap: 5})
	base := time.Now().Unix() - 3600
	jt := func(i int) int64 { return base + int64(i)*100 }
	var ms []schema.Member
	for i := 1; i <= 7; i++ {
		ms = append(ms, member(fmt.Sprintf("m%d", i), jt(i)))
	}
	api.AddGroup("capped", ms...)
	e := newEnv(t, api, []string{"capped"}, "  member_cap: 5\n")

	// The API lists the 5 latest joiners, m3..m7.
	e.mustOnce()
	semExpect(t, e.events(), map[string][]string{"capped": {
		"member.joined/baseline/m3", "member.joined/baseline/m4", "member.joined/baseline/m5",
		"member.joined/baseline/m6", "member.joined/baseline/m7"}})
	n := len(e.events())

	// m8 and m9 join, m6 leaves: the view becomes m4,m5,m7,m8,m9. m3 slid
	// below the window (JoinTime <= new boundary): no event. m6 is above
	// the boundary and missing: it left.
	api.Join("capped", member("m8", jt(8)))
	api.Join("capped", member("m9", jt(9)))
	api.Leave("capped", "m6")
	e.mustOnce()
	semExpect(t, semNew(e, n), map[string][]string{"capped": {
		"member.left/left/m6", "member.joined/joined/m8", "member.joined/joined/m9"}})
	n = len(e.events())
	if st := semState(e, "capped"); !st.Truncated || st.Boundary != jt(4) {
		t.Errorf("state truncated=%v boundary=%d, want true and %d", st.Truncated, st.Boundary, jt(4))
	}

	// m7, m8, m9 leave: the view slides back down to m1..m5. m1 and m2
	// were online below the old window all along: no joined event; m3 was
	// out of view and reappears: nothing.
	for _, a := range []string{"m7", "m8", "m9"} {
		api.Leave("capped", a)
	}
	e.mustOnce()
	semExpect(t, semNew(e, n), map[string][]string{"capped": {
		"member.left/left/m7", "member.left/left/m8", "member.left/left/m9"}})
	n = len(e.events())

	// A real newcomer is still reported while the group stays truncated.
	api.Join("capped", member("m10", jt(10)))
	e.mustOnce()
	semExpect(t, semNew(e, n), map[string][]string{"capped": {"member.joined/joined/m10"}})
}

func TestSemanticsThirtyMemberCap(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{MemberCap: 30})
	base := time.Now().Unix() - 7200
	api.AddGroup("thirty", members(40, "u%02d", base)...)
	e := newEnv(t, api, []string{"thirty"}, "  member_cap: 30\n")
	r := e.once()
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	evs := e.events()
	if len(evs) != 30 || evs[0].Subject != "u10" || evs[29].Subject != "u39" {
		t.Fatalf("baseline = %v, want u10..u39", summary(evs))
	}
	// Two joiners push u10 and u11 out of the 30-window: only the joins.
	api.Join("thirty", member("v1", base+100))
	api.Join("thirty", member("v2", base+101))
	e.mustOnce()
	semExpect(t, semNew(e, 30), map[string][]string{"thirty": {"member.joined/joined/v1", "member.joined/joined/v2"}})
	// v2 leaves (above the boundary): left; u11 slides back into view: nothing.
	api.Leave("thirty", "v2")
	e.mustOnce()
	semExpect(t, semNew(e, 32), map[string][]string{"thirty": {"member.left/left/v2"}})
}

func TestSemanticsDismissedGroups(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{})
	base := time.Now().Unix() - 3600
	api.AddGroup("dis", member("d1", base), member("d2", base+1))
	api.AddGroup("gone", member("g1", base+2))
	api.AddGroup("ok", member("o1", base+3))
	e := newEnv(t, api, []string{"dis", "gone", "ok"}, "")
	e.mustOnce()
	n := len(e.events())

	api.Dismiss("dis") // answers 10010
	api.InjectFault(tencenttest.Fault{Group: "gone", Kind: tencenttest.FaultErrorCode, Code: 10015})
	api.Join("ok", member("o2", base+10))
	r := e.once()
	if r.code != 0 {
		t.Fatalf("dismissing run exited %d, want 0\nstderr:\n%s", r.code, r.stderr)
	}
	evs := semNew(e, n)
	semExpect(t, evs, map[string][]string{
		"dis":  {"member.left/group_dismissed/d1", "member.left/group_dismissed/d2", "group.dismissed/group_dismissed/dis"},
		"gone": {"member.left/group_dismissed/g1", "group.dismissed/group_dismissed/gone"},
		"ok":   {"member.joined/joined/o2"},
	})
	for _, ev := range evs {
		if ev.Type != schema.TypeGroupDismissed {
			continue
		}
		want := map[string]int{"dis": 2, "gone": 1}[ev.Subject]
		if ev.Data.MembersLeft == nil || *ev.Data.MembersLeft != want {
			t.Errorf("%s: members_left %v, want %d", ev.Subject, ev.Data.MembersLeft, want)
		}
	}
	n = len(e.events())

	// Later runs do not call the API for gone groups and tell the operator.
	disCalls, goneCalls, okCalls := semRequestsFor(api, "dis"), semRequestsFor(api, "gone"), semRequestsFor(api, "ok")
	for range 2 {
		r = e.once()
		if r.code != 0 {
			t.Fatalf("run after dismissal exited %d\nstderr:\n%s", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "remove it from groups.ids") {
			t.Errorf("stderr does not ask to remove the dismissed groups:\n%s", r.stderr)
		}
	}
	if d, g := semRequestsFor(api, "dis")-disCalls, semRequestsFor(api, "gone")-goneCalls; d != 0 || g != 0 {
		t.Errorf("dismissed groups were polled again: dis %d, gone %d requests", d, g)
	}
	if o := semRequestsFor(api, "ok") - okCalls; o != 2 {
		t.Errorf("ok polled %d times in 2 runs", o)
	}
	if evs := semNew(e, n); len(evs) != 0 {
		t.Errorf("runs after dismissal emitted %v", summary(evs))
	}
}

func TestSemanticsBaselineModes(t *testing.T) {
	t.Parallel()
	base := time.Now().Unix() - 3600
	t.Run("emit", func(t *testing.T) {
		t.Parallel()
		api := newAPI(t, tencenttest.Options{})
		api.AddGroup("g", member("a", base), member("b", base+1))
		e := newEnv(t, api, []string{"g"}, "  baseline: emit\n")
		e.mustOnce()
		semExpect(t, e.events(), map[string][]string{"g": {"member.joined/baseline/a", "member.joined/baseline/b"}})
	})
	t.Run("silent", func(t *testing.T) {
		t.Parallel()
		api := newAPI(t, tencenttest.Options{})
		api.AddGroup("g", member("a", base), member("b", base+1))
		e := newEnv(t, api, []string{"g"}, "  baseline: silent\n")
		e.mustOnce()
		if evs := e.events(); len(evs) != 0 {
			t.Fatalf("silent baseline emitted %v", summary(evs))
		}
		if st := semState(e, "g"); len(st.Members) != 2 {
			t.Fatalf("silent baseline stored %d members, want 2", len(st.Members))
		}
		api.Leave("g", "a")
		api.Join("g", member("c", base+5))
		e.mustOnce()
		semExpect(t, e.events(), map[string][]string{"g": {"member.left/left/a", "member.joined/joined/c"}})
	})
}

func TestSemanticsRestartUnchangedEmitsNothing(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{PageSize: 10})
	base := time.Now().Unix() - 3600
	api.AddGroup("g", members(25, "m%02d", base)...)
	e := newEnv(t, api, []string{"g"}, "")
	e.mustOnce()
	if n := len(e.events()); n != 25 {
		t.Fatalf("baseline wrote %d events", n)
	}
	for i := range 3 {
		e.mustOnce()
		if evs := semNew(e, 25); len(evs) != 0 {
			t.Fatalf("restart %d over an unchanged group emitted %v", i+1, summary(evs))
		}
	}
}

// TestSemanticsDuplicateAcrossPagesIsDeduped makes the fake list a member
// twice in one listing: m19 (the newest, on page 1) re-joins with an older
// JoinTime while page 2 is slow, so the time-based cursor meets it again on
// page 3. The snapshot must hold it once, with the latest JoinTime.
func TestSemanticsDuplicateAcrossPagesIsDeduped(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{PageSize: 10})
	base := time.Now().Unix() - 3600
	api.AddGroup("g", members(20, "m%02d", base)...)
	e := newEnv(t, api, []string{"g"}, "")
	e.mustOnce()
	pagesBefore := semRequestsFor(api, "g")

	api.InjectFault(tencenttest.Fault{Group: "g", Page: 2, Kind: tencenttest.FaultSlow, Delay: 500 * time.Millisecond, Times: 1})
	cmd := exec.Command(binPath, "run", "--config", e.config, "--once")
	cmd.Env = append(os.Environ(), "ROLLCALL_TEST_KEY="+api.Key())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for semRequestsFor(api, "g") == pagesBefore {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("page 1 was never requested")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Page 1 (m19..m10) is answered; page 2 waits 500ms before it is
	// computed. m19 moves to the very end of the newest-first order.
	api.Join("g", member("m19", base-1000))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run --once: %v\nstderr:\n%s", err, stderr.String())
	}
	var pages []int
	for _, r := range api.Requests() {
		if r.GroupID == "g" && r.Command == "get_members" {
			pages = append(pages, r.Page)
		}
	}
	if got := pages[pagesBefore:]; !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("pages of the second listing = %v, want [1 2 3]: 20 members fill two pages, the duplicate spills onto a third", got)
	}
	if evs := semNew(e, 20); len(evs) != 0 {
		t.Fatalf("a member listed twice produced events %v", summary(evs))
	}
	st := semState(e, "g")
	if len(st.Members) != 20 {
		t.Fatalf("state holds %d members, want 20", len(st.Members))
	}
	for _, m := range st.Members {
		if m.Account == "m19" && m.JoinTime != base+19 {
			t.Errorf("m19 kept join_time %d, want the latest %d", m.JoinTime, base+19)
		}
	}
}

func TestSemanticsCursorsAbove32Bits(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{PageSize: 10})
	base := time.Now().Unix() - 3600
	api.AddGroup("g", members(35, "m%02d", base)...)
	e := newEnv(t, api, []string{"g"}, "")
	e.mustOnce()
	evs := e.events()
	if len(evs) != 35 {
		t.Fatalf("baseline wrote %d events, want 35", len(evs))
	}
	var cursors []uint64
	for _, r := range api.Requests() {
		if r.Command == "get_members" && r.Timestamp != 0 {
			cursors = append(cursors, r.Timestamp)
		}
	}
	if len(cursors) != 3 {
		t.Fatalf("follow-up pages = %d, want 3", len(cursors))
	}
	for _, c := range cursors {
		if c <= 1<<32 {
			t.Errorf("cursor %d fits in 32 bits; the fake should issue larger ones", c)
		}
	}
}

func TestSemanticsMarkFilter(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{})
	base := time.Now().Unix() - 3600
	api.AddGroup("g", member("marked", base), member("plain", base+1), member("later", base+2))
	api.SetMarks("g", "marked", 1000)
	e := newEnv(t, api, []string{"g"}, "")
	semEdit(e, "groups:\n  ids:", "groups:\n  mark: 1000\n  ids:")
	e.mustOnce()
	semExpect(t, e.events(), map[string][]string{"g": {"member.joined/baseline/marked"}})

	api.SetMarks("g", "later", 1000)
	api.SetMarks("g", "marked") // unmarked: no longer in the filtered list
	e.mustOnce()
	semExpect(t, semNew(e, 1), map[string][]string{"g": {"member.left/left/marked", "member.joined/joined/later"}})
	for _, r := range api.Requests() {
		if r.Command == "get_members" && !bytes.Contains(r.Body, []byte(`"Mark":1000`)) {
			t.Errorf("request without the Mark filter: %s", r.Body)
		}
	}
}

// TestSemanticsMarkFilterOfThirty: exactly 30 marked members among 40
// online is a complete filtered list, not the silent 30-member cap: a
// marked member who leaves is reported at once.
func TestSemanticsMarkFilterOfThirty(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{})
	base := time.Now().Unix() - 7200
	api.AddGroup("g", members(40, "u%02d", base)...)
	for i := range 31 {
		api.SetMarks("g", fmt.Sprintf("u%02d", i), 1000)
	}
	api.SetMarks("g", "u00") // 30 marked: u01..u30
	e := newEnv(t, api, []string{"g"}, "")
	semEdit(e, "groups:\n  ids:", "groups:\n  mark: 1000\n  ids:")
	e.mustOnce()
	if evs := e.events(); len(evs) != 30 {
		t.Fatalf("baseline of %d events, want the 30 marked members", len(evs))
	}
	// u01, the earliest marked member, leaves; u00 gets the mark: still 30.
	api.Leave("g", "u01")
	api.SetMarks("g", "u00", 1000)
	e.mustOnce()
	semExpect(t, semNew(e, 30), map[string][]string{"g": {"member.left/left/u01", "member.joined/joined/u00"}})
}

func TestSemanticsEventIDsDeterministicAcrossInstallations(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{})
	base := time.Now().Unix() - 3600
	api.AddGroup("g", member("a", base), member("b", base+1))
	e1 := newEnv(t, api, []string{"g"}, "")
	e2 := newEnv(t, api, []string{"g"}, "")
	e1.mustOnce()
	e2.mustOnce()
	api.Leave("g", "a")
	api.Join("g", member("c", base+9))
	api.Join("g", member("b", base+10)) // rejoined
	e1.mustOnce()
	e2.mustOnce()
	ev1, ev2 := e1.events(), e2.events()
	if len(ev1) != len(ev2) || len(ev1) != 6 {
		t.Fatalf("installations saw %v and %v", summary(ev1), summary(ev2))
	}
	for i := range ev1 {
		if ev1[i].ID != ev2[i].ID || ev1[i].Type != ev2[i].Type || ev1[i].Subject != ev2[i].Subject {
			t.Errorf("event %d: %s %s vs %s %s", i, summary(ev1[i:i+1]), ev1[i].ID, summary(ev2[i:i+1]), ev2[i].ID)
		}
	}
	ids := map[string]bool{}
	for _, ev := range ev1 {
		if ids[ev.ID] {
			t.Errorf("id %s used twice in one installation", ev.ID)
		}
		ids[ev.ID] = true
	}
}
