package nats

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the NATS-specific sink metrics; publish counts and latency
// are recorded by whatever drives the sink. A nil *Metrics records
// nothing.
type Metrics struct {
	// Connected is 1 while the client is connected to a server.
	Connected prometheus.Gauge
	// Disconnects counts lost connections.
	Disconnects prometheus.Counter
	// Reconnects counts successful reconnects.
	Reconnects prometheus.Counter
	// DuplicateAcks counts JetStream acks reporting that the stream
	// already held the message (a re-published batch).
	DuplicateAcks prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rollcall_nats_connected",
			Help: "1 while the NATS sink is connected to a server.",
		}),
		Disconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rollcall_nats_disconnects_total",
			Help: "Connections to NATS the sink lost.",
		}),
		Reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rollcall_nats_reconnects_total",
			Help: "Successful reconnects of the NATS sink.",
		}),
		DuplicateAcks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rollcall_nats_duplicate_acks_total",
			Help: "JetStream acks reporting a message the stream already held (dropped by deduplication).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Connected, m.Disconnects, m.Reconnects, m.DuplicateAcks)
	}
	return m
}

func (m *Metrics) setConnected(up bool) {
	if m == nil {
		return
	}
	if up {
		m.Connected.Set(1)
	} else {
		m.Connected.Set(0)
	}
}

func (m *Metrics) disconnected() {
	if m != nil {
		m.Disconnects.Inc()
	}
	m.setConnected(false)
}

func (m *Metrics) reconnected() {
	if m != nil {
		m.Reconnects.Inc()
	}
	m.setConnected(true)
}

func (m *Metrics) duplicate() {
	if m != nil {
		m.DuplicateAcks.Inc()
	}
}
