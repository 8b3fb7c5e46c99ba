package diff

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/promdef"
)

// Metrics are the Detector's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	events          *prometheus.CounterVec
	truncated       prometheus.Counter
	snapshotMembers prometheus.Histogram
	tracked         prometheus.Gauge
	outOfView       prometheus.Gauge
	commits         prometheus.Counter
	commitFailures  prometheus.Counter
	conflicts       prometheus.Counter
	staleListings   prometheus.Counter
}

// eventTypeLabel maps event types to the short "type" label value.
var eventTypeLabel = map[string]string{
	schema.TypeMemberJoined:   "joined",
	schema.TypeMemberLeft:     "left",
	schema.TypeGroupDismissed: "dismissed",
}

// NewMetrics creates the Detector's metrics and registers them with reg
// (nil: not registered). It panics if they are already registered, like
// prometheus.MustRegister.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: promdef.CounterVec("rollcall_events_total",
			"Events published (every sink acknowledged), by type and reason. Re-published events after a failed commit count again.",
			"type", "reason"),
		truncated: promdef.Counter("rollcall_snapshots_truncated_total",
			"Snapshots that reached the member cap, so members below the window are not listed."),
		snapshotMembers: promdef.Histogram("rollcall_snapshot_members",
			"Members listed per snapshot.",
			[]float64{0, 10, 30, 100, 250, 500, 1000, 5000, 10000}),
		tracked: promdef.Gauge("rollcall_members_tracked",
			"Members in stored state (including members out of view), summed over the configured groups."),
		outOfView: promdef.Gauge("rollcall_members_out_of_view",
			"Members in stored state that slid below a capped list's window and were not seen since, summed over the configured groups. Growing without bound in a group that stays at the cap: consider poll.confirm_departures."),
		commits: promdef.Counter("rollcall_state_commits_total",
			"Snapshots committed: events published and state saved."),
		commitFailures: promdef.Counter("rollcall_state_commit_failures_total",
			"Snapshots not committed because loading state, publishing or saving failed; the group's state is unchanged."),
		conflicts: promdef.Counter("rollcall_state_conflicts_total",
			"State writes the store refused because another writer (a replica) changed the group since it was read; nothing was published from the refused state, which is read again at the group's next poll."),
		staleListings: promdef.Counter("rollcall_stale_listings_total",
			"Listings not applied because they were taken before the stored state was observed (a newer listing, by another replica, is already committed)."),
	}
	for _, p := range [][2]string{
		{"joined", schema.ReasonJoined}, {"joined", schema.ReasonBaseline}, {"joined", schema.ReasonRejoined},
		{"left", schema.ReasonLeft}, {"left", schema.ReasonRejoined}, {"left", schema.ReasonGroupDismissed},
		{"dismissed", schema.ReasonGroupDismissed},
	} {
		m.events.WithLabelValues(p[0], p[1])
	}
	promdef.Register(reg, m.events, m.truncated, m.snapshotMembers, m.tracked, m.outOfView, m.commits, m.commitFailures, m.conflicts, m.staleListings)
	return m
}

func (m *Metrics) observeSnapshot(s schema.Snapshot, truncated bool) {
	if m == nil || s.Dismissed {
		return
	}
	m.snapshotMembers.Observe(float64(len(s.Members)))
	if truncated {
		m.truncated.Inc()
	}
}

func (m *Metrics) published(events []schema.Event) {
	if m == nil {
		return
	}
	for _, e := range events {
		m.events.WithLabelValues(eventTypeLabel[e.Type], e.Data.Reason).Inc()
	}
}

func (m *Metrics) committed() {
	if m != nil {
		m.commits.Inc()
	}
}

func (m *Metrics) track(delta counts) {
	if m == nil {
		return
	}
	m.tracked.Add(float64(delta.tracked))
	m.outOfView.Add(float64(delta.outOfView))
}

// counts are a group's stored members, for the gauges.
type counts struct{ tracked, outOfView int }

func countOf(s *State) counts {
	if s == nil {
		return counts{}
	}
	c := counts{tracked: len(s.Members)}
	for _, m := range s.Members {
		if m.OutOfView {
			c.outOfView++
		}
	}
	return c
}

func (c counts) minus(o counts) counts {
	return counts{c.tracked - o.tracked, c.outOfView - o.outOfView}
}

// commitFailed counts a snapshot not committed; a store's conflict is
// counted as such too, and also on its own.
func (m *Metrics) commitFailed(err error) {
	if m == nil {
		return
	}
	m.commitFailures.Inc()
	var conflict *ConflictError
	if errors.As(err, &conflict) {
		m.conflicts.Inc()
	}
}

func (m *Metrics) staleListing() {
	if m != nil {
		m.staleListings.Inc()
	}
}
