// Package kafka is rollcall's Kafka sink: it publishes events as CloudEvents
// (Kafka protocol binding, structured or binary content mode) through
// github.com/segmentio/kafka-go.
//
// # Delivery guarantee
//
// Publish returns nil only after the partition leader reported every
// message written to all in-sync replicas (RequiredAcks is RequireAll).
// kafka-go has no idempotent producer, so a produce request that timed out
// after the broker wrote it, or a Publish the caller retries after a
// partial failure, writes duplicates: the guarantee is at-least-once.
// Consumers drop duplicates by CloudEvent id: the ce_id header in binary
// mode, the "id" field of the JSON value in structured mode. Ids are
// deterministic (schema.EventID), so a re-publish after a crash carries the
// same ids too.
//
// # Partitioning and order
//
// The message key is the event's partition key, the group id, and the
// partitioner is kafka.Murmur2Balancer: the same murmur2 hash the Java
// client's default partitioner applies to keyed records. kafka-go's
// kafka.Hash uses FNV-1a (Sarama's default) and would put a group on a
// different partition than a Java, Kafka Streams or kcat (librdkafka with
// the murmur2 partitioner) producer keyed by the same group id; murmur2
// keeps every producer of a group's records on one partition.
//
// Events of one group therefore land on one partition, in the order given
// to Publish. kafka-go sends the batches of a partition one at a time from
// a single goroutine, so batches do not overtake each other; a failed batch
// followed by a successful one would still leave a gap, so Publish hands
// the writer at most BatchSize messages (and at most one request's worth of
// bytes) at a time and stops at the first failure. Within a chunk each
// partition gets a single batch. A failed Publish has then delivered, per
// partition, a prefix of that partition's events, which the caller's retry
// re-sends in order.
//
// Residual case: when Publish returns early because ctx was cancelled,
// kafka-go keeps the messages it already accepted and may still write them
// later; they are duplicates of what the retry sends.
//
// # Latency
//
// kafka-go has no explicit flush: a partition's batch is sent when it holds
// BatchSize messages or when BatchTimeout (default 10ms) expires. Publish
// waits for the acks, so a Publish that leaves any partition's batch short
// of BatchSize takes at least BatchTimeout; a typical Publish (one group's
// handful of changes) is therefore bounded below by BatchTimeout, which
// caps one sink at roughly 1/BatchTimeout Publish calls per second. Keep
// BatchTimeout small.
//
// # Errors, health, metrics
//
// Publish errors name the sink ("publish to kafka:<topic>: ..."); errors no
// retry can fix (a message over the 1 MiB request limit, Publish after
// Close) are wrapped with backoff.Permanent so
// sink.Fanout stops retrying them. The SASL password never reaches an
// error, a log line or a metric; SASLOptions redacts itself when printed,
// logged or marshalled.
//
// Healthy and Check send a metadata request on a fresh connection each
// time: kafka-go's connection pool keeps serving cached metadata through a
// broker outage. Metrics (optional, see NewMetrics) count acknowledged and
// failed messages per topic.
//
// # Record layout
//
// Structured mode (the default): the value is the whole CloudEvent JSON and
// the only header is content-type: application/cloudevents+json. Binary
// mode: the value is the event data JSON; the attributes travel as ce_
// headers (ce_specversion, ce_id, ce_source, ce_type, ce_subject, ce_time,
// ce_partitionkey) and content-type is application/json. The record
// timestamp is the produce time; the event time is in time / ce_time.
package kafka
