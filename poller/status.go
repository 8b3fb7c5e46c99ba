package poller

import (
	"slices"
	"time"
)

// Status is the scheduler's state, for /readyz and logs.
type Status struct {
	// Running reports whether Run is running.
	Running bool
	// LastCycleStart is when the latest cycle started.
	LastCycleStart time.Time
	// LastCycleEnd is when a cycle last completed: every poll started in it
	// was listed and handled (or failed). Zero before the first.
	LastCycleEnd time.Time
	// LastCycleDuration is the duration of the cycle that ended last.
	LastCycleDuration time.Duration
	// Cycle is the effective cycle length: Interval, or longer when the
	// rate budget stretched it.
	Cycle time.Duration
	// Lag is how late polls of the current cycle started compared to their
	// slot (the max over the cycle's groups).
	Lag time.Duration
	// Stalled reports that Run is running, groups are scheduled, and no
	// poll has completed for 3 cycles: handlers are blocked (sinks down)
	// or the scheduler is stuck.
	Stalled bool
	// AuthOrConfigError is the last authentication error or the fatal
	// configuration error, nil once a listing succeeds again.
	AuthOrConfigError error
	// GroupsPolled is the number of groups currently scheduled.
	GroupsPolled int
	// GroupsFailing is the number of scheduled groups whose last poll
	// failed.
	GroupsFailing int
	// GroupsStale is the number of scheduled groups with no successful
	// poll in the last 3 cycles.
	GroupsStale int
	// GroupsInFlight is the number of groups whose poll (listing or
	// handler) is running now.
	GroupsInFlight int
	// Dismissed lists the groups found gone and no longer polled.
	Dismissed []string
}

// Status returns the scheduler's current state.
func (s *Scheduler) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	st := Status{
		Running:           s.st.running,
		LastCycleStart:    s.st.lastCycleStart,
		LastCycleEnd:      s.st.lastCycleEnd,
		LastCycleDuration: s.st.lastCycleDur,
		Cycle:             s.st.cycle,
		Lag:               s.st.lag,
		AuthOrConfigError: s.st.authErr,
		GroupsPolled:      len(s.order),
		GroupsStale:       s.staleLocked(now),
	}
	for _, id := range s.order {
		g := s.groups[id]
		if g.failing {
			st.GroupsFailing++
		}
		if g.inFlight {
			st.GroupsInFlight++
		}
	}
	for id := range s.dismissed {
		st.Dismissed = append(st.Dismissed, id)
	}
	slices.Sort(st.Dismissed)
	st.Stalled = s.st.running && len(s.order) > 0 &&
		now.Sub(s.st.lastProgress) > staleCycles*s.st.cycle
	return st
}
