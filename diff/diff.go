// Package diff turns consecutive snapshots of a group into member events
// and keeps the per-group state that makes this possible across restarts.
//
// Diff is the pure part: given the stored State and a new Snapshot it
// returns the events and the next State, deterministically. The Detector
// drives it for the poller: load state, diff, publish, and save the new
// state only once every sink has acknowledged (at-least-once delivery with
// stable event ids). Stores persist State; MemoryStore is for tests and
// diff/filestore is the durable one.
package diff

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/rollcall-dev/rollcall/schema"
)

// StateVersion is the State layout this package writes. Stores refuse
// other versions rather than misread them.
const StateVersion = 1

// BaselineMode says what to emit for the first snapshot of a group that
// has no stored state.
type BaselineMode string

// Baseline modes.
const (
	// BaselineEmit emits a joined event (reason baseline) per member.
	BaselineEmit BaselineMode = "emit"
	// BaselineSilent emits nothing; the state is saved all the same.
	BaselineSilent BaselineMode = "silent"
)

// Options configure Diff.
type Options struct {
	// SDKAppID goes into events and state when the snapshot carries none.
	SDKAppID uint64
	// Baseline is BaselineEmit when empty.
	Baseline BaselineMode
}

// State is one group's durable state. It is JSON-serialisable; Version
// allows future migrations.
type State struct {
	Version  int    `json:"version"`
	SDKAppID uint64 `json:"sdkappid"`
	GroupID  string `json:"group_id"`
	// ObservedAt is the time of the last committed snapshot.
	ObservedAt time.Time `json:"observed_at"`
	// Truncated reports that the last snapshot hit the member cap, and
	// Boundary is its lowest JoinTime: members at or below it may be
	// online without being listed.
	Truncated bool  `json:"truncated"`
	Boundary  int64 `json:"boundary,omitzero"`
	// Dismissed marks a group the API reported gone; it has no members.
	Dismissed   bool      `json:"dismissed"`
	DismissedAt time.Time `json:"dismissed_at,omitzero"`
	// Members is sorted by Account.
	Members []Tracked `json:"members"`
	// Pending is the group's outbox, filled by Store.Load: a batch handed
	// to the sinks but not yet acknowledged by all of them. The fields above
	// stay the acknowledged state until it is. Stores keep it apart from
	// the state (Store.SaveOutbox), so it is never encoded with it.
	Pending *Pending `json:"-"`
}

// Pending is a batch of events and the state that commits with them. It is
// written before the events are published, so that after a crash or a
// failed commit exactly these events, with the same ids, are published
// again before anything newer: a consumer that saw part of the batch is
// never left with a join whose leave is never sent.
type Pending struct {
	Events []schema.Event `json:"events"`
	Next   *State         `json:"next"`
}

// Tracked is a member in State.
type Tracked struct {
	schema.Member
	// LastSeen is the time of the last snapshot that listed the member.
	LastSeen time.Time `json:"last_seen"`
	// OutOfView marks a member that slid below the boundary of a
	// truncated snapshot: not listed, but not known to have left.
	OutOfView bool `json:"out_of_view,omitzero"`
}

// Clone returns a deep copy of s (nil for nil).
func (s *State) Clone() *State {
	if s == nil {
		return nil
	}
	c := *s
	c.Members = append([]Tracked(nil), s.Members...)
	c.Pending = s.Pending.Clone()
	return &c
}

// Clone returns a deep copy of p (nil for nil).
func (p *Pending) Clone() *Pending {
	if p == nil {
		return nil
	}
	return &Pending{Events: append([]schema.Event(nil), p.Events...), Next: p.Next.Clone()}
}

// OutboxOnly is what Store.Load returns for a group with an outbox but no
// committed state yet (an interrupted baseline).
func OutboxOnly(groupID string, p *Pending) *State {
	return &State{Version: StateVersion, SDKAppID: p.Next.SDKAppID, GroupID: groupID, Pending: p}
}

// Check reports whether p is an outbox a Store may save for groupID.
func (p *Pending) Check(groupID string) error {
	switch {
	case groupID == "":
		return errors.New("save outbox: no group id")
	case p == nil || len(p.Events) == 0 || p.Next == nil:
		return fmt.Errorf("save outbox of %s: no events or no next state", groupID)
	case p.Next.GroupID != groupID:
		return fmt.Errorf("save outbox of %s: next state is of group %q", groupID, p.Next.GroupID)
	}
	return nil
}

// Diff compares snap with the group's previous state (nil when there is
// none) and returns the events to publish and the state to store once they
// are published. It is pure and deterministic: the same inputs give the
// same events, in the same order, with the same ids, and the same state.
// Neither prev nor snap is modified.
//
// Events come in this order: left events by account, then joined events
// by account, then the group.dismissed event. See the package tests for
// the rules on truncated snapshots, rejoins, dismissal and baselines.
func Diff(prev *State, snap schema.Snapshot, o Options) (events []schema.Event, next *State) {
	return DiffConfirmed(prev, snap, o, nil)
}

// DiffConfirmed is Diff with departures confirmed out of band: a tracked
// member missing from a truncated snapshot whose account is in departed
// has left (reason left), instead of being kept out of view. The detector
// fills departed from check_members (see Candidates), which is not bound
// by the list cap.
func DiffConfirmed(prev *State, snap schema.Snapshot, o Options, departed map[string]bool) (events []schema.Event, next *State) {
	app := snap.SDKAppID
	if app == 0 {
		app = o.SDKAppID
	}
	gid := snap.GroupID
	// UTC strips the monotonic reading, so a state equals its JSON round
	// trip and the same snapshot always yields an identical state.
	at := snap.TakenAt.UTC()

	if prev != nil && prev.Dismissed {
		next = prev.Clone()
		next.Pending = nil
		return nil, next
	}

	var prevAt *time.Time
	var old []Tracked
	if prev != nil {
		t := prev.ObservedAt
		prevAt = &t
		old = sortedTracked(prev.Members)
	}

	if snap.Dismissed {
		for _, m := range old {
			events = append(events, schema.MemberLeft(app, gid, m.Member, schema.ReasonGroupDismissed, at, prevAt, m.LastSeen))
		}
		events = append(events, schema.GroupDismissed(app, gid, at, prevAt, len(old)))
		return events, &State{Version: StateVersion, SDKAppID: app, GroupID: gid,
			ObservedAt: at, Dismissed: true, DismissedAt: at}
	}

	cur := sortedMembers(snap.Members)
	next = &State{Version: StateVersion, SDKAppID: app, GroupID: gid, ObservedAt: at,
		Members: make([]Tracked, 0, max(len(cur), len(old)))}
	truncated := snap.Truncated
	var boundary int64
	if truncated {
		next.Truncated = true
		if len(cur) == 0 {
			// A capped list with no one listed says nothing: everyone
			// tracked stays, out of view; no boundary is stored, so the
			// next snapshot's newcomers are joins.
			boundary = math.MaxInt64
		} else {
			boundary = cur[0].JoinTime
			for _, m := range cur[1:] {
				boundary = min(boundary, m.JoinTime)
			}
			next.Boundary = boundary
		}
	}

	if prev == nil {
		for _, m := range cur {
			next.Members = append(next.Members, Tracked{Member: m, LastSeen: at})
		}
		if len(next.Members) == 0 {
			next.Members = nil
		}
		if o.Baseline == BaselineSilent {
			return nil, next
		}
		for _, m := range cur {
			events = append(events, schema.MemberJoined(app, gid, m, schema.ReasonBaseline, at, nil))
		}
		return events, next
	}

	var left, joined []schema.Event
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		switch {
		case j == len(cur) || (i < len(old) && old[i].Account < cur[j].Account):
			// Tracked but not listed.
			t := old[i]
			i++
			if truncated && t.JoinTime <= boundary && !departed[t.Account] {
				// Possibly just below the window: keep it, LastSeen as is.
				t.OutOfView = true
				next.Members = append(next.Members, t)
				continue
			}
			left = append(left, schema.MemberLeft(app, gid, t.Member, schema.ReasonLeft, at, prevAt, t.LastSeen))
		case i == len(old) || cur[j].Account < old[i].Account:
			// Listed but not tracked.
			m := cur[j]
			j++
			next.Members = append(next.Members, Tracked{Member: m, LastSeen: at})
			if prev.Truncated && m.JoinTime <= prev.Boundary {
				// It was online below the previous window and slid into view.
				continue
			}
			joined = append(joined, schema.MemberJoined(app, gid, m, schema.ReasonJoined, at, prevAt))
		default:
			t, m := old[i], cur[j]
			i++
			j++
			next.Members = append(next.Members, Tracked{Member: m, LastSeen: at})
			if t.JoinTime != m.JoinTime {
				left = append(left, schema.MemberLeft(app, gid, t.Member, schema.ReasonRejoined, at, prevAt, t.LastSeen))
				joined = append(joined, schema.MemberJoined(app, gid, m, schema.ReasonRejoined, at, prevAt))
			}
		}
	}
	if len(next.Members) == 0 {
		next.Members = nil // as JSON decodes it
	}
	if len(left)+len(joined) > 0 {
		events = append(left, joined...)
	}
	return events, next
}

// Candidates lists the accounts Diff would keep out of view: tracked
// members missing from a truncated snapshot with a JoinTime at or below its
// boundary. They may have left, or only slid below the listed window;
// check_members tells which (DiffConfirmed).
func Candidates(prev *State, snap schema.Snapshot) []string {
	if prev == nil || prev.Dismissed || snap.Dismissed || len(snap.Members) == 0 || !snap.Truncated {
		return nil
	}
	listed := make(map[string]bool, len(snap.Members))
	boundary := snap.Members[0].JoinTime
	for _, m := range snap.Members {
		listed[m.Account] = true
		boundary = min(boundary, m.JoinTime)
	}
	var out []string
	for _, t := range prev.Members {
		if !listed[t.Account] && t.JoinTime <= boundary {
			out = append(out, t.Account)
		}
	}
	return out
}

// sortedMembers returns ms itself when it is sorted by Account without
// duplicates (as the poller delivers it), else a normalised copy.
func sortedMembers(ms []schema.Member) []schema.Member {
	for k := 1; k < len(ms); k++ {
		if ms[k-1].Account >= ms[k].Account {
			return schema.NormalizeMembers(append([]schema.Member(nil), ms...))
		}
	}
	return ms
}

// sortedTracked returns ts itself when sorted by Account without
// duplicates, else a sorted, de-duplicated copy: a hand-edited state file
// must not break the merge.
func sortedTracked(ts []Tracked) []Tracked {
	for k := 1; k < len(ts); k++ {
		if ts[k-1].Account >= ts[k].Account {
			c := append([]Tracked(nil), ts...)
			sort.SliceStable(c, func(a, b int) bool { return c[a].Account < c[b].Account })
			out := c[:0]
			for _, t := range c {
				if n := len(out); n > 0 && out[n-1].Account == t.Account {
					continue
				}
				out = append(out, t)
			}
			return out
		}
	}
	return ts
}
