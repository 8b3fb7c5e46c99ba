// This file stays whole: it is the pure diff, the State it reads and
// writes and the one algorithm (advance) that keeps State's invariants;
// split apart, the invariants and the code that keeps them would sit in
// different files.

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
	LastSeen Instant `json:"last_seen"`
	// OutOfView marks a member that slid below the boundary of a
	// truncated snapshot: not listed, but not known to have left.
	OutOfView bool `json:"out_of_view,omitzero"`
}

// Instant is a time as unix nanoseconds, UTC: a kept member's last-seen
// time in 8 bytes instead of a time.Time's 24 (state is kept in memory for
// every tracked member). Zero is the zero time. Its JSON is time.Time's.
type Instant int64

// InstantOf returns t as an Instant.
func InstantOf(t time.Time) Instant {
	if t.IsZero() {
		return 0
	}
	return Instant(t.UnixNano())
}

// Time returns i as a UTC time.Time.
func (i Instant) Time() time.Time {
	if i == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(i)).UTC()
}

// Equal reports whether i is the instant t.
func (i Instant) Equal(t time.Time) bool { return i == InstantOf(t) }

// MarshalJSON encodes i as time.Time does (RFC 3339).
func (i Instant) MarshalJSON() ([]byte, error) { return i.Time().MarshalJSON() }

// UnmarshalJSON decodes what MarshalJSON (or time.Time) wrote.
func (i *Instant) UnmarshalJSON(b []byte) error {
	var t time.Time
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	*i = InstantOf(t)
	return nil
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
	if prev != nil {
		prev = prev.Clone()
		prev.Pending = nil
	}
	events, next, _ = Advance(prev, snap, o, departed)
	return events, next
}

// Advance is DiffConfirmed for a caller that keeps the group's state
// between polls (the Detector): it brings prev forward in place and
// returns it as next (a new State only for a first snapshot or a
// dismissal), so a poll costs a merge of the two sorted lists and, when
// nothing changed, no allocation. prev must have no Pending batch; the
// caller owns it afterwards as next and keeps no other copy.
//
// urgent reports a change that must be written before anything else
// happens to the group: events, or a change of the tracked accounts or of
// the truncation window that the next diff depends on. Otherwise only
// last-seen times, nick names, avatars, view flags and the observation
// time moved, which a caller may write later (a checkpoint).
func Advance(prev *State, snap schema.Snapshot, o Options, departed map[string]bool) (events []schema.Event, next *State, urgent bool) {
	events, next, urgent, _ = advance(prev, snap, o, departed, false)
	return events, next, urgent
}

// advance is Advance; keptSorted says prev.Members is known sorted by
// account without duplicates (the detector's kept state, which advance
// leaves so), sparing a pass over it.
// It also returns next's member counts (the gauges' share of the group),
// counted on the way.
func advance(prev *State, snap schema.Snapshot, o Options, departed map[string]bool, keptSorted bool) (events []schema.Event, next *State, urgent bool, cnt counts) {
	app := snap.SDKAppID
	if app == 0 {
		app = o.SDKAppID
	}
	gid := snap.GroupID
	// UTC strips the monotonic reading, so a state equals its JSON round
	// trip and the same snapshot always yields an identical state.
	at := snap.TakenAt.UTC()
	seen := InstantOf(at)

	switch {
	case prev != nil && prev.Dismissed:
		prev.Pending = nil
		return nil, prev, true, countOf(prev)
	case snap.Dismissed:
		var prevAt *time.Time
		var old []Tracked
		if prev != nil {
			t := prev.ObservedAt
			prevAt = &t
			old = sortedTracked(prev.Members)
		}
		b := schema.NewBatch(app, gid, at, prevAt, len(old), len(old)+1)
		for _, m := range old {
			b.Left(m.Member, schema.ReasonGroupDismissed, m.LastSeen.Time())
		}
		b.Dismissed(len(old))
		return b.Events(), &State{Version: StateVersion, SDKAppID: app, GroupID: gid,
			ObservedAt: at, Dismissed: true, DismissedAt: at}, true, counts{}
	}

	cur := sortedMembers(snap.Members)
	truncated, boundary := truncation(cur, snap)
	stored := int64(0) // the boundary as State keeps it
	if truncated && len(cur) > 0 {
		stored = boundary
	}
	if prev == nil {
		next = &State{Version: StateVersion, SDKAppID: app, GroupID: gid, ObservedAt: at,
			Truncated: truncated, Boundary: stored}
		if len(cur) > 0 {
			next.Members = make([]Tracked, len(cur))
			for i, m := range cur {
				next.Members[i] = Tracked{Member: m, LastSeen: seen}
			}
		}
		if o.Baseline == BaselineSilent {
			return nil, next, true, counts{tracked: len(cur)}
		}
		b := schema.NewBatch(app, gid, at, nil, 0, len(cur))
		for _, m := range cur {
			b.Joined(m, schema.ReasonBaseline)
		}
		return b.Events(), next, true, counts{tracked: len(cur)}
	}

	old := prev.Members
	if !keptSorted {
		old = sortedTracked(old)
	}
	// One merge of the two sorted lists. Members listed with the same
	// JoinTime are brought forward in place (no event needs their old
	// values); the few others are noted, in account order, and applied
	// after their events are built from the old values.
	var buf [32]change // most polls change little: no allocation
	changes := buf[:0]
	var nLeft, nJoined, nDropped, nAdded int
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		var c int
		switch {
		case j == len(cur):
			c = -1
		case i == len(old):
			c = 1
		case old[i].Account == cur[j].Account:
			c = 0
		case old[i].Account < cur[j].Account:
			c = -1
		default:
			c = 1
		}
		switch c {
		case -1: // tracked, not listed
			t := &old[i]
			if truncated && t.JoinTime <= boundary && !departed[t.Account] {
				t.OutOfView = true // possibly just below the window: kept, LastSeen as is
				cnt.outOfView++
			} else {
				changes = append(changes, change{kind: changeLeft, i: i})
				nLeft++
				nDropped++
			}
			i++
		case 1: // listed, not tracked
			joins := !prev.Truncated || cur[j].JoinTime > prev.Boundary // else it slid into view
			if joins {
				nJoined++
			}
			// Inserted before old[i], which sits at i-nDropped once the
			// leavers are dropped.
			changes = append(changes, change{kind: changeAdded, i: i - nDropped, j: j, joins: joins})
			nAdded++
			j++
		default:
			t := &old[i]
			if t.JoinTime != cur[j].JoinTime {
				changes = append(changes, change{kind: changeRejoined, i: i, j: j})
				nLeft++
				nJoined++
			} else {
				// Keep the strings held already when equal: the page they
				// came from can then be freed, and nothing is written.
				if m := &cur[j]; t.NickName != m.NickName {
					t.NickName = m.NickName
				}
				if m := &cur[j]; t.Avatar != m.Avatar {
					t.Avatar = m.Avatar
				}
				t.LastSeen, t.OutOfView = seen, false
			}
			i++
			j++
		}
	}
	urgent = len(changes) > 0 || truncated != prev.Truncated || stored != prev.Boundary
	if nLeft+nJoined > 0 {
		t := prev.ObservedAt
		b := schema.NewBatch(app, gid, at, &t, nLeft, nLeft+nJoined)
		for _, c := range changes { // left events first, by account
			switch c.kind {
			case changeLeft:
				b.Left(old[c.i].Member, schema.ReasonLeft, old[c.i].LastSeen.Time())
			case changeRejoined:
				b.Left(old[c.i].Member, schema.ReasonRejoined, old[c.i].LastSeen.Time())
			}
		}
		for _, c := range changes { // then joined events, by account
			switch {
			case c.kind == changeRejoined:
				b.Joined(cur[c.j], schema.ReasonRejoined)
			case c.kind == changeAdded && c.joins:
				b.Joined(cur[c.j], schema.ReasonJoined)
			}
		}
		events = b.Events()
	}
	kept := old
	if len(changes) > 0 {
		kept = applyChanges(old, cur, changes, nDropped, nAdded, seen)
	}
	if len(kept) == 0 {
		kept = nil // as JSON decodes it
	}
	prev.Version, prev.SDKAppID, prev.GroupID, prev.ObservedAt = StateVersion, app, gid, at
	prev.Truncated, prev.Boundary, prev.Members, prev.Pending = truncated, stored, kept, nil
	cnt.tracked = len(kept)
	return events, prev, urgent, cnt
}

// change is one member that a poll changes beyond its last-seen time and
// profile: i is its index in the kept members (for changeAdded, where it
// goes once the leavers are dropped), j its index in the listing.
type change struct {
	kind  uint8
	joins bool // changeAdded: a join, not a member sliding into view
	i, j  int
}

const (
	changeLeft uint8 = iota
	changeRejoined
	changeAdded
)

// applyChanges applies changes (in account order) to the kept members:
// rejoined members get their new stay, leavers are dropped and newcomers
// inserted, by moving the runs in between (in place when the array has
// room, else into one that grows as append does).
func applyChanges(old []Tracked, cur []schema.Member, changes []change, nDropped, nAdded int, seen Instant) []Tracked {
	kept := old
	if nDropped > 0 {
		w, from := 0, 0
		for _, c := range changes {
			if c.kind != changeLeft {
				continue
			}
			w += copy(kept[w:], kept[from:c.i])
			from = c.i + 1
		}
		w += copy(kept[w:], kept[from:])
		clear(kept[w:]) // no stale copies (and their strings) past the end
		kept = kept[:w]
	}
	for _, c := range changes {
		if c.kind == changeRejoined {
			// c.i counted leavers before it: find it again by account.
			k := c.i
			if k >= len(kept) || kept[k].Account != cur[c.j].Account {
				k = sort.Search(len(kept), func(x int) bool { return kept[x].Account >= cur[c.j].Account })
			}
			kept[k] = Tracked{Member: cur[c.j], LastSeen: seen}
		}
	}
	if nAdded == 0 {
		return kept
	}
	n := len(kept)
	total := n + nAdded
	if total <= cap(kept) {
		kept = kept[:total]
	} else {
		kept = append(kept, make([]Tracked, nAdded)...)
	}
	src, dst := n, total
	for k := len(changes) - 1; k >= 0; k-- {
		c := changes[k]
		if c.kind != changeAdded {
			continue
		}
		run := src - c.i
		copy(kept[dst-run:dst], kept[c.i:src])
		dst -= run + 1
		src = c.i
		kept[dst] = Tracked{Member: cur[c.j], LastSeen: seen}
	}
	return kept
}

// truncation returns whether snap (sorted members cur) is truncated, as
// its lister decided, and if so its boundary: its lowest JoinTime
// (math.MaxInt64 for a capped list with no one listed, which says nothing
// about anyone tracked).
func truncation(cur []schema.Member, snap schema.Snapshot) (truncated bool, boundary int64) {
	if !snap.Truncated {
		return false, 0
	}
	if len(cur) == 0 {
		return true, math.MaxInt64
	}
	boundary = cur[0].JoinTime
	for _, m := range cur[1:] {
		boundary = min(boundary, m.JoinTime)
	}
	return true, boundary
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
