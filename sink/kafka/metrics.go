package kafka

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rollcall-dev/rollcall/schema/promdef"
)

// Metrics are the Kafka sink's Prometheus metrics. One value may serve
// several sinks: series are labelled by topic.
type Metrics struct {
	messages *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	writes   *prometheus.HistogramVec
}

// Result label values of rollcall_kafka_messages_total.
const (
	resultAcked  = "acked"
	resultFailed = "failed"
)

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: promdef.CounterVec("rollcall_kafka_messages_total",
			"Messages the Kafka sink wrote, by topic and result: acked by all in-sync replicas, or failed.",
			"topic", "result"),
		bytes: promdef.CounterVec("rollcall_kafka_message_bytes_total",
			"Key and value bytes of acknowledged messages, before compression, by topic.", "topic"),
		writes: promdef.HistogramVec("rollcall_kafka_write_duration_seconds",
			"Duration of one write of up to batch_size messages until all acks, by topic.",
			prometheus.ExponentialBuckets(0.001, 2, 15), "topic"),
	}
	promdef.Register(reg, m.messages, m.bytes, m.writes)
	return m
}

// topicMetrics are one topic's series, resolved once so that a write
// does no label lookups.
type topicMetrics struct {
	acked, failed, bytes prometheus.Counter
	writes               prometheus.Observer
}

// forTopic creates a topic's series at zero, so they exist before the
// first write, and returns them; nil when m is nil.
func (m *Metrics) forTopic(topic string) *topicMetrics {
	if m == nil {
		return nil
	}
	return &topicMetrics{
		acked:  m.messages.WithLabelValues(topic, resultAcked),
		failed: m.messages.WithLabelValues(topic, resultFailed),
		bytes:  m.bytes.WithLabelValues(topic),
		writes: m.writes.WithLabelValues(topic),
	}
}

// observe records one write: acked messages (and their bytes) and failed
// ones.
func (m *topicMetrics) observe(acked, failed, ackedBytes int, seconds float64) {
	if m == nil {
		return
	}
	m.writes.Observe(seconds)
	m.acked.Add(float64(acked))
	m.failed.Add(float64(failed))
	m.bytes.Add(float64(ackedBytes))
}
