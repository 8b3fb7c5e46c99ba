package nats

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollcall-dev/rollcall/schema/promdef"
)

// Metrics are the NATS-specific sink metrics, labelled by sink name;
// publish counts and latency are recorded by whatever drives the sink. A
// nil *Metrics records nothing.
//
// NewMetrics returns the family; For returns the series of one sink, which
// is what Options.Metrics takes (a family passed as it is records under
// sink="nats").
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

	connected                           *prometheus.GaugeVec
	disconnects, reconnects, duplicates *prometheus.CounterVec
}

// NewMetrics creates the metric family and registers it with reg (nil:
// not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	connected := promdef.GaugeVec("rollcall_nats_connected",
		"1 while the NATS sink is connected to a server.", "sink")
	disconnects := promdef.CounterVec("rollcall_nats_disconnects_total",
		"Connections to NATS the sink lost.", "sink")
	reconnects := promdef.CounterVec("rollcall_nats_reconnects_total",
		"Successful reconnects of the NATS sink.", "sink")
	duplicates := promdef.CounterVec("rollcall_nats_duplicate_acks_total",
		"JetStream acks reporting a message the stream already held (dropped by deduplication).", "sink")
	promdef.Register(reg, connected, disconnects, reconnects, duplicates)
	return &Metrics{connected: connected, disconnects: disconnects, reconnects: reconnects, duplicates: duplicates}
}

// For returns the series of the sink named name (sinks[].name, or "nats").
func (m *Metrics) For(name string) *Metrics {
	if m == nil {
		return nil
	}
	c := *m
	c.Connected = m.connected.WithLabelValues(name)
	c.Disconnects = m.disconnects.WithLabelValues(name)
	c.Reconnects = m.reconnects.WithLabelValues(name)
	c.DuplicateAcks = m.duplicates.WithLabelValues(name)
	return &c
}

// series returns m ready to record: m itself when it is one sink's, the
// sink="nats" series when it is the bare family.
func (m *Metrics) series() *Metrics {
	if m != nil && m.Connected == nil {
		return m.For("nats")
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
