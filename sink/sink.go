// Package sink publishes rollcall events to the outside world and defines
// the contract every destination keeps.
//
// Implementations live in sub-packages named after the destination
// (sink/kafka, sink/nats) or in this package for the built-in ones (stdout,
// file). The Fanout type drives a set of sinks for the detector: it retries
// each failing sink with exponential backoff and reports success only when
// every sink acknowledged every event.
package sink

import (
	"context"
)

// Sink is a destination for events.
//
// Publish delivers the batch's events in order and blocks until every one of
// them is durable at the destination (fsynced to disk, acknowledged by all
// in-sync Kafka replicas, acknowledged by the NATS server or the JetStream
// stream), or returns an error. On error, any prefix of events may have
// been delivered: the caller retries the whole batch, so a sink must accept
// duplicates (events carry deterministic ids for consumers to drop them).
// ctx bounds the call: when it is done, Publish returns promptly with an
// error wrapping ctx.Err(). Publish is not called concurrently on one Sink.
// The batch carries the events' encoding, shared with the other sinks: a
// sink sends those bytes and must not modify them.
//
// Close flushes what is buffered and releases connections; Publish is not
// called after Close. ctx bounds how long Close may wait.
type Sink interface {
	// Name identifies the sink in logs and metrics, e.g. "kafka" or
	// "file:events"; it is stable for a given configuration.
	Name() string
	Publish(ctx context.Context, batch *Batch) error
	Close(ctx context.Context) error
}

// HealthChecker is implemented by sinks that can tell, without publishing,
// whether they are connected. Readiness probes use it.
type HealthChecker interface {
	// Healthy returns nil when the sink can currently accept events.
	Healthy(ctx context.Context) error
}
