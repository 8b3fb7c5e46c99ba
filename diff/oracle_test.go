package diff

// The diff as it was before Advance: the oracle the fuzz target compares
// the incremental diff with.

import (
	"math"
	"time"

	"github.com/rollcall-dev/rollcall/schema"
)

func oracleDiff(prev *State, snap schema.Snapshot, o Options, departed map[string]bool) (events []schema.Event, next *State) {
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
			events = append(events, schema.MemberLeft(app, gid, m.Member, schema.ReasonGroupDismissed, at, prevAt, m.LastSeen.Time()))
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
			next.Members = append(next.Members, Tracked{Member: m, LastSeen: InstantOf(at)})
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
			left = append(left, schema.MemberLeft(app, gid, t.Member, schema.ReasonLeft, at, prevAt, t.LastSeen.Time()))
		case i == len(old) || cur[j].Account < old[i].Account:
			// Listed but not tracked.
			m := cur[j]
			j++
			next.Members = append(next.Members, Tracked{Member: m, LastSeen: InstantOf(at)})
			if prev.Truncated && m.JoinTime <= prev.Boundary {
				// It was online below the previous window and slid into view.
				continue
			}
			joined = append(joined, schema.MemberJoined(app, gid, m, schema.ReasonJoined, at, prevAt))
		default:
			t, m := old[i], cur[j]
			i++
			j++
			next.Members = append(next.Members, Tracked{Member: m, LastSeen: InstantOf(at)})
			if t.JoinTime != m.JoinTime {
				left = append(left, schema.MemberLeft(app, gid, t.Member, schema.ReasonRejoined, at, prevAt, t.LastSeen.Time()))
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
