package poller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollcall-dev/rollcall/schema/promdef"
)

// Poll results, the values of the result label of rollcall_polls_total.
const (
	resultOK        = "ok"
	resultFailed    = "failed"
	resultDismissed = "dismissed"
	resultSkipped   = "skipped"
)

// Metrics are the scheduler's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	polls         *prometheus.CounterVec
	cycleDuration prometheus.Histogram
	lag           prometheus.Gauge
	groupsPolled  prometheus.Gauge
	groupsStale   prometheus.Gauge
	lastCycle     prometheus.Gauge
	interval      prometheus.Gauge
	cycle         prometheus.Gauge
}

// NewMetrics creates the scheduler's metrics and registers them with reg
// (nil: not registered, still usable).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		polls: promdef.CounterVec("rollcall_polls_total",
			"Group polls by result: ok (snapshot handled), failed (listing or handling failed), dismissed (group gone, handled), skipped (previous poll of the group still in flight).",
			"result"),
		cycleDuration: promdef.Histogram("rollcall_poll_cycle_duration_seconds",
			"Time from the start of a poll cycle until every poll started in it was listed and handled.",
			[]float64{0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60, 120, 300, 600}),
		lag: promdef.Gauge("rollcall_poll_lag_seconds",
			"How late polls of the current cycle started compared to their slot (max over the cycle's groups)."),
		groupsPolled: promdef.Gauge("rollcall_groups_polled",
			"Groups currently scheduled for polling."),
		groupsStale: promdef.Gauge("rollcall_groups_stale",
			"Scheduled groups with no successful poll in the last 3 poll cycles."),
		lastCycle: promdef.Gauge("rollcall_last_cycle_timestamp_seconds",
			"Unix time at which the last poll cycle completed."),
		interval: promdef.Gauge("rollcall_poll_interval_seconds",
			"The configured poll interval (poll.interval): how often each group should be polled."),
		cycle: promdef.Gauge("rollcall_poll_cycle_seconds",
			"The effective poll cycle: poll.interval, or longer when the API rate budget cannot fit every group's pages into one interval."),
	}
	for _, r := range []string{resultOK, resultFailed, resultDismissed, resultSkipped} {
		m.polls.WithLabelValues(r)
	}
	promdef.Register(reg, m.polls, m.cycleDuration, m.lag, m.groupsPolled, m.groupsStale, m.lastCycle, m.interval, m.cycle)
	return m
}

func (m *Metrics) poll(result string) {
	if m != nil && result != "" {
		m.polls.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) setLag(seconds float64) {
	if m != nil {
		m.lag.Set(seconds)
	}
}

func (m *Metrics) setGroups(polled, stale int) {
	if m != nil {
		m.groupsPolled.Set(float64(polled))
		m.groupsStale.Set(float64(stale))
	}
}

func (m *Metrics) cycleDone(seconds float64, endUnix float64) {
	if m != nil {
		m.cycleDuration.Observe(seconds)
		m.lastCycle.Set(endUnix)
	}
}

func (m *Metrics) setCycle(interval, cycle time.Duration) {
	if m != nil {
		m.interval.Set(interval.Seconds())
		m.cycle.Set(cycle.Seconds())
	}
}
