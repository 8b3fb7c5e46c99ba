package poller

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rollcall-dev/rollcall/poller/tencent"
	"github.com/rollcall-dev/rollcall/schema"
)

// countingLister lists n members and reports online as the uncapped count.
type countingLister struct {
	n      int
	online int
	err    error
	counts int
}

func (l *countingLister) ListMembers(_ context.Context, _ string) ([]schema.Member, error) {
	ms := make([]schema.Member, l.n)
	for i := range ms {
		ms[i] = schema.Member{Account: fmt.Sprintf("u%02d", i), JoinTime: int64(1000 + i)}
	}
	return ms, nil
}

func (l *countingLister) OnlineMemberNum(context.Context, string) (int, error) {
	l.counts++
	return l.online, l.err
}

func TestCappedAt30IsRecognised(t *testing.T) {
	cases := []struct {
		name       string
		lister     countingLister
		memberCap  int
		wantCapped bool
		wantCounts int
		wantWarns  int // the feature warning, once per group
	}{
		{"30 listed, 45 online", countingLister{n: 30, online: 45}, 1000, true, 2, 1},
		{"30 listed, 30 online", countingLister{n: 30, online: 30}, 1000, false, 2, 0},
		// In doubt the list counts as capped: unlisted members wait out of
		// view rather than all being reported gone.
		{"count unavailable", countingLister{n: 30, err: errors.New("10003")}, 1000, true, 2, 0},
		{"29 listed: no count needed", countingLister{n: 29, online: 45}, 1000, false, 0, 0},
		{"member_cap 30 already: no count needed", countingLister{n: 30, online: 45}, 30, false, 0, 0},
		// Joins while the list was paged pushed members out of the window:
		// fewer than the cap came back, but the group is over it.
		{"995 listed, 1100 online: shifted under the cap", countingLister{n: 995, online: 1100}, 1000, true, 2, 0},
		{"995 listed, 995 online: complete", countingLister{n: 995, online: 995}, 1000, false, 2, 0},
		{"995 listed, count unavailable", countingLister{n: 995, err: errors.New("10002")}, 1000, true, 2, 0},
		{"800 listed: far from the cap", countingLister{n: 800, online: 1100}, 1000, false, 0, 0},
		{"1000 listed: truncated by length", countingLister{n: 1000, online: 1100}, 1000, false, 0, 0},
		// A server that does not serve the count: no check, as without one.
		// A server that does not serve the count: exactly 30 stays the silent
		// cap's signature (capped in doubt); just under 1,000 is taken as is.
		{"30 listed, count not served (404)", countingLister{n: 30, err: &tencent.APIError{Command: "get_online_member_num", HTTPStatus: 404, Kind: tencent.KindBadRequest}}, 1000, true, 2, 1},
		{"995 listed, count an unknown command (10003)", countingLister{n: 995, err: &tencent.APIError{Command: "get_online_member_num", HTTPStatus: 200, Code: 10003, Kind: tencent.KindFatalConfig}}, 1000, false, 2, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			var snaps []schema.Snapshot
			l := tc.lister
			s, err := New(&l, HandlerFunc(func(_ context.Context, snap schema.Snapshot) error {
				snaps = append(snaps, snap)
				return nil
			}), Options{SDKAppID: appID, Groups: []string{"g"}, MemberCap: tc.memberCap, Logger: zap.New(core)})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if err := s.RunOnce(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if len(snaps) != 2 || snaps[0].Capped != tc.wantCapped || snaps[1].Capped != tc.wantCapped {
				t.Fatalf("snapshots %d, capped %v, want %v", len(snaps), snaps[0].Capped, tc.wantCapped)
			}
			if l.counts != tc.wantCounts {
				t.Errorf("get_online_member_num calls = %d, want %d", l.counts, tc.wantCounts)
			}
			warns := logs.FilterMessageSnippet("set poll.member_cap: 30").Len()
			if warns != tc.wantWarns {
				t.Errorf("capped warnings = %d, want %d (once per group)", warns, tc.wantWarns)
			}
		})
	}
}
