package sink

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollcall-dev/rollcall/schema/promdef"
)

// Metrics are the Fanout's per-sink metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	publishDuration *prometheus.HistogramVec
	publishErrors   *prometheus.CounterVec
	backlog         *prometheus.GaugeVec
	published       *prometheus.CounterVec
}

// NewMetrics creates the sink metrics and registers them with reg (when reg
// is nil they are created but not registered). Series for each sink are
// initialised when a Fanout is built with these metrics, since sink names
// are known only then.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		publishDuration: promdef.HistogramVec("rollcall_sink_publish_duration_seconds",
			"Duration of successful Publish calls to a sink, one per acknowledged batch.",
			prometheus.ExponentialBuckets(0.001, 4, 9), // 1ms .. ~65s
			"sink"),
		publishErrors: promdef.CounterVec("rollcall_sink_publish_errors_total",
			"Failed Publish attempts to a sink, including ones retried later.", "sink"),
		backlog: promdef.GaugeVec("rollcall_sink_backlog_events",
			"Events handed to the fan-out that the sink has not acknowledged yet.", "sink"),
		published: promdef.CounterVec("rollcall_sink_events_published_total",
			"Events acknowledged by a sink.", "sink"),
	}
	promdef.Register(reg, m.publishDuration, m.publishErrors, m.backlog, m.published)
	return m
}

// sinkMetrics holds one sink's series, resolved once.
type sinkMetrics struct {
	duration  prometheus.Observer
	errors    prometheus.Counter
	backlog   prometheus.Gauge
	published prometheus.Counter
}

// forSink creates (and so initialises to zero) the series of one sink. A
// nil receiver yields nil, which records nothing.
func (m *Metrics) forSink(name string) *sinkMetrics {
	if m == nil {
		return nil
	}
	return &sinkMetrics{
		duration:  m.publishDuration.WithLabelValues(name),
		errors:    m.publishErrors.WithLabelValues(name),
		backlog:   m.backlog.WithLabelValues(name),
		published: m.published.WithLabelValues(name),
	}
}
