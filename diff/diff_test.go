package diff

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/schema"
)

const (
	app = 1400000001
	gid = "@TGS#aTESTGROUP"
)

var (
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 = t0.Add(30 * time.Second)
	t2 = t0.Add(60 * time.Second)
	// j0 is a JoinTime well before t0.
	j0 = t0.Unix() - 3600
)

func mem(acc string, join int64) schema.Member {
	return schema.Member{Account: acc, NickName: "nick-" + acc, Avatar: "https://a/" + acc, JoinTime: join}
}

func tr(acc string, join int64, lastSeen time.Time, outOfView bool) Tracked {
	return Tracked{Member: mem(acc, join), LastSeen: InstantOf(lastSeen), OutOfView: outOfView}
}

func snapAt(at time.Time, ms ...schema.Member) schema.Snapshot {
	return schema.Snapshot{SDKAppID: app, GroupID: gid, TakenAt: at, Members: ms}
}

func state(at time.Time, ms ...Tracked) *State {
	return &State{Version: StateVersion, SDKAppID: app, GroupID: gid, ObservedAt: at, Members: ms}
}

func truncState(at time.Time, boundary int64, ms ...Tracked) *State {
	s := state(at, ms...)
	s.Truncated, s.Boundary = true, boundary
	return s
}

// ev is the part of an event the rules decide.
type ev struct {
	Type, Reason, Account string
	JoinTime              int64
	Online                int64  // -1: no online_seconds
	Prev                  string // "": previous_observed_at is null
	MembersLeft           int    // -1: not set
}

func (e ev) String() string {
	return fmt.Sprintf("{%s %s %q join=%d online=%d prev=%q left=%d}", strings.TrimPrefix(e.Type, "rollcall."),
		e.Reason, e.Account, e.JoinTime, e.Online, e.Prev, e.MembersLeft)
}

func joined(reason, acc string, join int64, prev time.Time) ev {
	return ev{schema.TypeMemberJoined, reason, acc, join, -1, fmtPrev(prev), -1}
}

func left(reason, acc string, join int64, lastSeen, prev time.Time) ev {
	return ev{schema.TypeMemberLeft, reason, acc, join, lastSeen.Unix() - join, fmtPrev(prev), -1}
}

func dismissed(n int, prev time.Time) ev {
	return ev{schema.TypeGroupDismissed, schema.ReasonGroupDismissed, "", 0, -1, fmtPrev(prev), n}
}

func fmtPrev(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func summarize(t *testing.T, snap schema.Snapshot, events []schema.Event) []ev {
	t.Helper()
	out := make([]ev, 0, len(events))
	for _, e := range events {
		if !e.Time.Equal(snap.TakenAt) || !e.Data.ObservedAt.Equal(snap.TakenAt) {
			t.Errorf("event %s: time %v, observed_at %v, want the snapshot's %v", e.ID, e.Time, e.Data.ObservedAt, snap.TakenAt)
		}
		if e.Data.GroupID != gid || e.PartitionKey != gid || e.Data.SDKAppID != app {
			t.Errorf("event %s: group %q, partition key %q, sdkappid %d", e.ID, e.Data.GroupID, e.PartitionKey, e.Data.SDKAppID)
		}
		s := ev{Type: e.Type, Reason: e.Data.Reason, Account: e.Data.MemberAccount, JoinTime: e.Data.JoinTime, Online: -1, MembersLeft: -1}
		if e.Data.OnlineSeconds != nil {
			s.Online = *e.Data.OnlineSeconds
		}
		if e.Data.PreviousObservedAt != nil {
			s.Prev = fmtPrev(*e.Data.PreviousObservedAt)
		}
		if e.Data.MembersLeft != nil {
			s.MembersLeft = *e.Data.MembersLeft
		}
		out = append(out, s)
	}
	return out
}

type diffCase struct {
	name string
	opts Options
	// memberCap > 0 marks the snapshot Truncated when it lists at least
	// that many members, as the lister does at the member cap.
	memberCap  int
	prev       *State
	snap       schema.Snapshot
	wantEvents []ev
	wantNext   *State
}

func runDiffCases(t *testing.T, cases []diffCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.snap.Truncated = tc.snap.Truncated || (tc.memberCap > 0 && len(tc.snap.Members) >= tc.memberCap)
			prevCopy := tc.prev.Clone()
			snapCopy := tc.snap
			snapCopy.Members = append([]schema.Member(nil), tc.snap.Members...)
			events, next := Diff(tc.prev, tc.snap, tc.opts)
			got := summarize(t, tc.snap, events)
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tc.wantEvents) {
				t.Errorf("events:\n got %v\nwant %v", got, tc.wantEvents)
			}
			if !reflect.DeepEqual(next, tc.wantNext) {
				t.Errorf("next state:\n got %+v\nwant %+v", next, tc.wantNext)
			}
			if !reflect.DeepEqual(tc.prev, prevCopy) || !reflect.DeepEqual(tc.snap, snapCopy) {
				t.Error("Diff modified its inputs")
			}
			// Determinism: a second run gives the same ids in the same order.
			again, next2 := Diff(tc.prev, tc.snap, tc.opts)
			if !reflect.DeepEqual(events, again) || !reflect.DeepEqual(next, next2) {
				t.Error("second Diff over the same inputs differs")
			}
		})
	}
}

// Rule 1: a complete snapshot is a set difference by account.
func TestDiffRule1CompleteSnapshot(t *testing.T) {
	runDiffCases(t, []diffCase{{
		name: "join and leave",
		prev: state(t1, tr("alice", j0, t1, false), tr("bob", j0+10, t0, false)),
		snap: snapAt(t2, mem("alice", j0), mem("carol", t1.Unix()+5)),
		wantEvents: []ev{
			left(schema.ReasonLeft, "bob", j0+10, t0, t1),
			joined(schema.ReasonJoined, "carol", t1.Unix()+5, t1),
		},
		wantNext: state(t2, tr("alice", j0, t2, false), tr("carol", t1.Unix()+5, t2, false)),
	}, {
		name:       "everyone left",
		prev:       state(t1, tr("alice", j0, t1, false)),
		snap:       snapAt(t2),
		wantEvents: []ev{left(schema.ReasonLeft, "alice", j0, t1, t1)},
		wantNext:   state(t2),
	}, {
		name: "profile change alone is no event but is kept",
		prev: state(t1, tr("alice", j0, t1, false)),
		snap: snapAt(t2, schema.Member{Account: "alice", NickName: "Alice II", Avatar: "https://b/", JoinTime: j0}),
		wantNext: state(t2, Tracked{Member: schema.Member{Account: "alice", NickName: "Alice II",
			Avatar: "https://b/", JoinTime: j0}, LastSeen: InstantOf(t2)}),
	}, {
		name: "unsorted snapshot with a duplicate is normalised",
		prev: state(t1, tr("bob", j0, t1, false)),
		snap: snapAt(t2, mem("zed", j0+2), mem("bob", j0), mem("amy", j0+1), mem("zed", j0+3)),
		wantEvents: []ev{
			joined(schema.ReasonJoined, "amy", j0+1, t1),
			joined(schema.ReasonJoined, "zed", j0+3, t1),
		},
		wantNext: state(t2, tr("amy", j0+1, t2, false), tr("bob", j0, t2, false), tr("zed", j0+3, t2, false)),
	}})
}

// Rule 2: the same account with a new JoinTime left and came back.
func TestDiffRule2Rejoined(t *testing.T) {
	runDiffCases(t, []diffCase{{
		name: "rejoined pair",
		prev: state(t1, tr("alice", j0, t1, false), tr("bob", j0, t1, false)),
		snap: snapAt(t2, mem("alice", t1.Unix()+10), mem("bob", j0)),
		wantEvents: []ev{
			left(schema.ReasonRejoined, "alice", j0, t1, t1),
			joined(schema.ReasonRejoined, "alice", t1.Unix()+10, t1),
		},
		wantNext: state(t2, tr("alice", t1.Unix()+10, t2, false), tr("bob", j0, t2, false)),
	}})
	// The left event carries the old record, the joined event the new one.
	prev := state(t1, Tracked{Member: schema.Member{Account: "alice", NickName: "old", JoinTime: j0}, LastSeen: InstantOf(t1)})
	events, _ := Diff(prev, snapAt(t2, schema.Member{Account: "alice", NickName: "new", JoinTime: j0 + 100}), Options{})
	if len(events) != 2 || events[0].Data.NickName != "old" || events[1].Data.NickName != "new" {
		t.Fatalf("rejoined pair records: %+v", events)
	}
	if events[0].ID == events[1].ID {
		t.Error("rejoined left and joined share an id")
	}
}

// Rule 4: truncated snapshots (at least the member cap listed).
func TestDiffRule4Truncated(t *testing.T) {
	runDiffCases(t, []diffCase{{
		name:      "members below the boundary slide out of view without events",
		memberCap: 3,
		prev:      state(t1, tr("a", j0+10, t1, false), tr("b", j0+20, t1, false), tr("c", j0+30, t1, false)),
		// B = j0+30: a and b may only have slid out of the window.
		snap: snapAt(t2, mem("c", j0+30), mem("d", j0+40), mem("e", j0+50)),
		wantEvents: []ev{
			joined(schema.ReasonJoined, "d", j0+40, t1),
			joined(schema.ReasonJoined, "e", j0+50, t1),
		},
		wantNext: truncState(t2, j0+30, tr("a", j0+10, t1, true), tr("b", j0+20, t1, true),
			tr("c", j0+30, t2, false), tr("d", j0+40, t2, false), tr("e", j0+50, t2, false)),
	}})
	runDiffCases(t, []diffCase{{
		name:      "member above the boundary missing has left",
		memberCap: 3,
		prev:      truncState(t1, j0+10, tr("a", j0+10, t1, false), tr("b", j0+20, t1, false), tr("z", j0+90, t0, false)),
		snap:      snapAt(t2, mem("a", j0+10), mem("b", j0+20), mem("y", j0+95)),
		wantEvents: []ev{
			left(schema.ReasonLeft, "z", j0+90, t0, t1),
			joined(schema.ReasonJoined, "y", j0+95, t1),
		},
		wantNext: truncState(t2, j0+10, tr("a", j0+10, t2, false), tr("b", j0+20, t2, false), tr("y", j0+95, t2, false)),
	}, {
		name:      "member missing with JoinTime equal to the boundary may have slid out",
		memberCap: 3,
		prev:      state(t1, tr("c", j0+30, t1, false), tr("d", j0+40, t1, false)),
		// Equal JoinTimes straddle the window edge: c could be the one cut off.
		snap:       snapAt(t2, mem("cc", j0+30), mem("d", j0+40), mem("e", j0+50)),
		wantEvents: []ev{joined(schema.ReasonJoined, "cc", j0+30, t1), joined(schema.ReasonJoined, "e", j0+50, t1)},
		wantNext: truncState(t2, j0+30, tr("c", j0+30, t1, true), tr("cc", j0+30, t2, false),
			tr("d", j0+40, t2, false), tr("e", j0+50, t2, false)),
	}, {
		name:      "new member at or below the previous boundary slid into view",
		memberCap: 3,
		prev:      truncState(t1, j0+30, tr("c", j0+30, t1, false), tr("d", j0+40, t1, false), tr("e", j0+50, t1, false)),
		// e left (above the new boundary), b and bb slid into view (<= previous boundary).
		snap:       snapAt(t2, mem("b", j0+20), mem("bb", j0+30), mem("c", j0+30), mem("d", j0+40)),
		wantEvents: []ev{left(schema.ReasonLeft, "e", j0+50, t1, t1)},
		wantNext: truncState(t2, j0+20, tr("b", j0+20, t2, false), tr("bb", j0+30, t2, false),
			tr("c", j0+30, t2, false), tr("d", j0+40, t2, false)),
	}, {
		name:      "slid into view also when the new snapshot is complete",
		memberCap: 3,
		prev:      truncState(t1, j0+30, tr("c", j0+30, t1, false), tr("d", j0+40, t1, false), tr("e", j0+50, t1, false)),
		snap:      snapAt(t2, mem("b", j0+20), mem("c", j0+30)),
		wantEvents: []ev{
			left(schema.ReasonLeft, "d", j0+40, t1, t1),
			left(schema.ReasonLeft, "e", j0+50, t1, t1),
		},
		wantNext: state(t2, tr("b", j0+20, t2, false), tr("c", j0+30, t2, false)),
	}, {
		name:      "new member above the previous boundary joined",
		memberCap: 3,
		prev:      truncState(t1, j0+30, tr("c", j0+30, t1, false), tr("d", j0+40, t1, false), tr("e", j0+50, t1, false)),
		snap:      snapAt(t2, mem("d", j0+40), mem("e", j0+50), mem("f", j0+31)),
		// c slid out of view (<= new boundary j0+31), f joined.
		wantEvents: []ev{joined(schema.ReasonJoined, "f", j0+31, t1)},
		wantNext: truncState(t2, j0+31, tr("c", j0+30, t1, true), tr("d", j0+40, t2, false),
			tr("e", j0+50, t2, false), tr("f", j0+31, t2, false)),
	}, {
		name:      "out-of-view member seen again is back in view without an event",
		memberCap: 3,
		prev:      truncState(t1, j0+30, tr("a", j0+10, t0, true), tr("c", j0+30, t1, false), tr("d", j0+40, t1, false), tr("e", j0+50, t1, false)),
		snap:      snapAt(t2, mem("a", j0+10), mem("c", j0+30), mem("d", j0+40), mem("e", j0+50)),
		wantNext: truncState(t2, j0+10, tr("a", j0+10, t2, false), tr("c", j0+30, t2, false),
			tr("d", j0+40, t2, false), tr("e", j0+50, t2, false)),
	}, {
		name:      "out-of-view member seen again with a new JoinTime rejoined",
		memberCap: 3,
		prev:      truncState(t1, j0+30, tr("a", j0+10, t0, true), tr("c", j0+30, t1, false), tr("d", j0+40, t1, false)),
		snap:      snapAt(t2, mem("a", j0+60), mem("c", j0+30), mem("d", j0+40)),
		wantEvents: []ev{
			left(schema.ReasonRejoined, "a", j0+10, t0, t1),
			joined(schema.ReasonRejoined, "a", j0+60, t1),
		},
		wantNext: truncState(t2, j0+30, tr("a", j0+60, t2, false), tr("c", j0+30, t2, false), tr("d", j0+40, t2, false)),
	}, {
		name:      "out-of-view member missing from a complete snapshot left",
		memberCap: 3,
		prev:      truncState(t1, j0+30, tr("a", j0+10, t0, true), tr("c", j0+30, t1, false), tr("d", j0+40, t1, false), tr("e", j0+50, t1, false)),
		snap:      snapAt(t2, mem("c", j0+30), mem("d", j0+40)),
		wantEvents: []ev{
			left(schema.ReasonLeft, "a", j0+10, t0, t1),
			left(schema.ReasonLeft, "e", j0+50, t1, t1),
		},
		wantNext: state(t2, tr("c", j0+30, t2, false), tr("d", j0+40, t2, false)),
	}})
}

func dismissedMarker(at time.Time) *State {
	return &State{Version: StateVersion, SDKAppID: app, GroupID: gid, ObservedAt: at, Dismissed: true, DismissedAt: at}
}

// Rule 5: a dismissed group.
func TestDiffRule5Dismissed(t *testing.T) {
	gone := schema.Snapshot{SDKAppID: app, GroupID: gid, TakenAt: t2, Dismissed: true}
	runDiffCases(t, []diffCase{{
		name: "every tracked member leaves, in view or not, then the group event",
		prev: truncState(t1, j0+30, tr("bob", j0+30, t1, false), tr("alice", j0+10, t0, true)),
		snap: gone,
		wantEvents: []ev{
			left(schema.ReasonGroupDismissed, "alice", j0+10, t0, t1),
			left(schema.ReasonGroupDismissed, "bob", j0+30, t1, t1),
			dismissed(2, t1),
		},
		wantNext: dismissedMarker(t2),
	}, {
		name:       "no prior state: only the group event",
		snap:       gone,
		wantEvents: []ev{dismissed(0, time.Time{})},
		wantNext:   dismissedMarker(t2),
	}, {
		name:     "already dismissed: nothing, marker kept",
		prev:     dismissedMarker(t1),
		snap:     gone,
		wantNext: dismissedMarker(t1),
	}, {
		name:     "already dismissed, members listed again: nothing, marker kept",
		prev:     dismissedMarker(t1),
		snap:     snapAt(t2, mem("alice", j0)),
		wantNext: dismissedMarker(t1),
	}})
}

// Rule 6: the first snapshot of a group.
func TestDiffRule6Baseline(t *testing.T) {
	first := snapAt(t1, mem("bob", j0+5), mem("alice", j0))
	baselineState := state(t1, tr("alice", j0, t1, false), tr("bob", j0+5, t1, false))
	runDiffCases(t, []diffCase{{
		name: "emit by default",
		snap: first,
		wantEvents: []ev{
			joined(schema.ReasonBaseline, "alice", j0, time.Time{}),
			joined(schema.ReasonBaseline, "bob", j0+5, time.Time{}),
		},
		wantNext: baselineState,
	}, {
		name:     "silent saves the state without events",
		opts:     Options{Baseline: BaselineSilent},
		snap:     first,
		wantNext: baselineState,
	}, {
		name:      "truncated first snapshot records the boundary",
		memberCap: 2,
		snap:      first,
		wantEvents: []ev{
			joined(schema.ReasonBaseline, "alice", j0, time.Time{}),
			joined(schema.ReasonBaseline, "bob", j0+5, time.Time{}),
		},
		wantNext: truncState(t1, j0, tr("alice", j0, t1, false), tr("bob", j0+5, t1, false)),
	}, {
		name:     "empty group",
		snap:     snapAt(t1),
		wantNext: state(t1),
	}})
}

// Rule 7: nothing changed, nothing emitted, also across a restart.
func TestDiffRule7Unchanged(t *testing.T) {
	s1 := snapAt(t1, mem("alice", j0), mem("bob", j0+1))
	_, st := Diff(nil, s1, Options{})
	s2 := snapAt(t2, mem("alice", j0), mem("bob", j0+1))
	events, next := Diff(st, s2, Options{})
	if len(events) != 0 {
		t.Fatalf("unchanged snapshot: %v", summarize(t, s2, events))
	}
	if want := state(t2, tr("alice", j0, t2, false), tr("bob", j0+1, t2, false)); !reflect.DeepEqual(next, want) {
		t.Errorf("next state %+v, want %+v", next, want)
	}
	// A restart reads the state back from JSON and sees the same group.
	b, err := json.Marshal(next)
	if err != nil {
		t.Fatal(err)
	}
	var restored State
	if err := json.Unmarshal(b, &restored); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&restored, next) {
		t.Fatalf("state does not survive JSON:\n got %+v\nwant %+v", restored, next)
	}
	if events, _ := Diff(&restored, s2, Options{}); len(events) != 0 {
		t.Errorf("restart over the same state: %v", summarize(t, s2, events))
	}
	// The same holds for a snapshot taken in another time zone with a monotonic reading.
	local := s2
	local.TakenAt = time.Now().In(time.FixedZone("CST", 8*3600))
	_, n1 := Diff(&restored, local, Options{})
	b, _ = json.Marshal(n1)
	var n2 State
	if err := json.Unmarshal(b, &n2); err != nil || !reflect.DeepEqual(&n2, n1) {
		t.Errorf("state with a local monotonic time does not survive JSON: %v", err)
	}
}

func TestDiffOrdering(t *testing.T) {
	prev := state(t1, tr("b", j0, t1, false), tr("d", j0, t1, false), tr("e", j0, t1, false), tr("x", j0, t1, false))
	snap := snapAt(t2, mem("a", j0+1), mem("c", j0+1), mem("e", j0), mem("x", j0+7))
	events, _ := Diff(prev, snap, Options{})
	want := []ev{
		left(schema.ReasonLeft, "b", j0, t1, t1),
		left(schema.ReasonLeft, "d", j0, t1, t1),
		left(schema.ReasonRejoined, "x", j0, t1, t1),
		joined(schema.ReasonJoined, "a", j0+1, t1),
		joined(schema.ReasonJoined, "c", j0+1, t1),
		joined(schema.ReasonRejoined, "x", j0+7, t1),
	}
	if got := summarize(t, snap, events); !reflect.DeepEqual(got, want) {
		t.Errorf("order:\n got %v\nwant %v", got, want)
	}
}

// The events are exactly what the schema constructors build, ids included.
func TestDiffEventsMatchSchemaConstructors(t *testing.T) {
	prev := state(t1, tr("bob", j0, t0, false))
	snap := snapAt(t2, mem("alice", j0+9))
	events, _ := Diff(prev, snap, Options{})
	p := t1
	want := []schema.Event{
		schema.MemberLeft(app, gid, mem("bob", j0), schema.ReasonLeft, t2, &p, t0),
		schema.MemberJoined(app, gid, mem("alice", j0+9), schema.ReasonJoined, t2, &p),
	}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("events:\n got %+v\nwant %+v", events, want)
	}
	if *events[0].Data.OnlineSeconds != t0.Unix()-j0 {
		t.Errorf("online_seconds %d, want %d", *events[0].Data.OnlineSeconds, t0.Unix()-j0)
	}
}

func TestDiffSDKAppIDFallsBackToOptions(t *testing.T) {
	snap := snapAt(t1, mem("alice", j0))
	snap.SDKAppID = 0
	events, next := Diff(nil, snap, Options{SDKAppID: 42})
	if events[0].Data.SDKAppID != 42 || next.SDKAppID != 42 {
		t.Errorf("sdkappid: event %d, state %d, want 42", events[0].Data.SDKAppID, next.SDKAppID)
	}
}

// A snapshot the lister marked Truncated below the member cap (the silent
// 30 cap, recognised from the online count) is truncated: a member who
// slid below its boundary is not reported as left.
func TestCappedSnapshotIsTruncated(t *testing.T) {
	prev := state(t0, tr("a", j0, t0, false), tr("b", j0+10, t0, false), tr("c", j0+20, t0, false))
	s := snapAt(t1, mem("b", j0+10), mem("c", j0+20))
	s.Truncated = true
	events, next := Diff(prev, s, Options{})
	if len(events) != 0 {
		t.Fatalf("capped snapshot emitted %v; a slid out of view and has not left", events)
	}
	if !next.Truncated || next.Boundary != j0+10 {
		t.Fatalf("next truncated=%v boundary=%d, want true %d", next.Truncated, next.Boundary, j0+10)
	}
	if m := next.Members[0]; m.Account != "a" || !m.OutOfView {
		t.Fatalf("a = %+v, want kept out of view", m)
	}
	// Without the mark the same snapshot is complete and a has left.
	s.Truncated = false
	if events, _ := Diff(prev, s, Options{}); len(events) != 1 || events[0].Type != schema.TypeMemberLeft {
		t.Fatalf("uncapped: %v, want one left event", events)
	}
}

// A capped snapshot that lists no one says nothing about who left: all
// stay out of view (no panic on the missing boundary), and the next
// snapshot's newcomers are ordinary joins.
func TestCappedEmptySnapshot(t *testing.T) {
	prev := state(t0, tr("a", j0, t0, false), tr("b", j0+10, t0, false))
	empty := snapAt(t1)
	empty.Truncated = true
	events, next := Diff(prev, empty, Options{})
	if len(events) != 0 || len(next.Members) != 2 || !next.Members[0].OutOfView || !next.Members[1].OutOfView {
		t.Fatalf("events %v, members %+v: want none, both out of view", events, next.Members)
	}
	if !next.Truncated || next.Boundary != 0 {
		t.Fatalf("truncated=%v boundary=%d, want true and no boundary", next.Truncated, next.Boundary)
	}
	events, _ = Diff(next, snapAt(t2, mem("a", j0), mem("b", j0+10), mem("c", j0+30)), Options{})
	if len(events) != 1 || events[0].Type != schema.TypeMemberJoined || events[0].Subject != "c" {
		t.Fatalf("after the empty capped snapshot: %v, want c joined", events)
	}
}

// With confirmed departures a member missing below the boundary of a
// truncated snapshot has left; unconfirmed ones stay out of view.
func TestDiffConfirmedDepartures(t *testing.T) {
	prev := truncState(t0, j0, tr("old-gone", j0, t0, false), tr("old-here", j0+1, t0, false),
		tr("b", j0+10, t0, false), tr("c", j0+20, t0, false))
	s := snapAt(t1, mem("b", j0+10), mem("c", j0+20))
	s.Truncated = true // 2 listed at a member cap of 2
	o := Options{}
	if got := Candidates(prev, s); !slices.Equal(got, []string{"old-gone", "old-here"}) {
		t.Fatalf("Candidates = %v", got)
	}
	events, next := DiffConfirmed(prev, s, o, map[string]bool{"old-gone": true})
	if len(events) != 1 || events[0].Type != schema.TypeMemberLeft || events[0].Subject != "old-gone" ||
		events[0].Data.Reason != schema.ReasonLeft || *events[0].Data.OnlineSeconds != t0.Unix()-j0 {
		t.Fatalf("events = %+v, want old-gone left", events)
	}
	var accounts []string
	for _, m := range next.Members {
		accounts = append(accounts, m.Account)
		if m.Account == "old-here" && !m.OutOfView {
			t.Error("old-here should stay out of view")
		}
	}
	if !slices.Equal(accounts, []string{"b", "c", "old-here"}) {
		t.Fatalf("next members = %v", accounts)
	}
	// A complete snapshot has no candidates: set difference decides.
	if got := Candidates(prev, snapAt(t1, mem("b", j0+10))); got != nil {
		t.Fatalf("Candidates of a complete snapshot = %v", got)
	}
}
