// This file stays whole: it is the Sink type's methods, from New through
// Publish to Close, around one writer and its transport; its options,
// config and metrics live in their own files.

package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/sink"
)

// CloudEvents Kafka protocol binding header names.
const (
	HeaderContentType  = "content-type"
	HeaderSpecVersion  = "ce_specversion"
	HeaderID           = "ce_id"
	HeaderSource       = "ce_source"
	HeaderType         = "ce_type"
	HeaderSubject      = "ce_subject"
	HeaderTime         = "ce_time"
	HeaderPartitionKey = "ce_partitionkey"
)

// ErrTopicNotFound is returned by Healthy and Check when the brokers do not
// know the topic.
var ErrTopicNotFound = errors.New("topic not found")

var (
	_ sink.Sink          = (*Sink)(nil)
	_ sink.HealthChecker = (*Sink)(nil)
)

// Sink publishes events to one Kafka topic. Publish must not be called
// concurrently; Healthy and Check may be called at any time.
type Sink struct {
	o       Options
	name    string
	log     *zap.Logger
	addr    net.Addr
	tls     *tls.Config
	mech    sasl.Mechanism
	tr      *kafka.Transport
	w       *kafka.Writer
	metrics *topicMetrics
	now     func() time.Time
	// msgs is reused by every Publish (never concurrent): kafka-go copies
	// the Message values it keeps.
	msgs []kafka.Message

	// needTopic is set while create_topic could not reach a broker: the
	// next Publish tries again first.
	needTopic atomic.Bool

	closing   atomic.Bool
	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error
}

// New validates o, loads the TLS files, creates the topic when
// o.CreateTopic is set, and returns a Sink. Without CreateTopic it does no
// network I/O: connections are opened by the first Publish. When no broker
// answers the topic creation, New still succeeds and the first Publish
// creates the topic; a broker refusing it is an error.
func New(ctx context.Context, o Options) (*Sink, error) {
	if err := Validate(o); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	s := &Sink{
		o:      o,
		name:   "kafka:" + o.Topic,
		addr:   kafka.TCP(o.Brokers...),
		now:    time.Now,
		closed: make(chan struct{}),
	}
	s.log = o.Logger.Named("kafka").With(zap.String("sink_target", s.name))
	if o.TLS != nil {
		c, err := o.TLS.Config()
		if err != nil {
			return nil, err
		}
		s.tls = c
	}
	if o.SASL != nil {
		m, err := mechanism(o.SASL)
		if err != nil {
			return nil, err
		}
		s.mech = m
	}
	if o.CreateTopic != nil {
		if err := s.createTopic(ctx); err != nil {
			var ke kafka.Error
			if errors.As(err, &ke) && !ke.Temporary() && ke != kafka.BrokerNotAvailable {
				return nil, err // a broker refused it: a configuration error
			}
			// No broker answered: start anyway, like without create_topic.
			s.log.Warn("cannot create the topic now; trying again before the first publish", zap.Error(err))
			s.needTopic.Store(true)
		}
	}
	s.tr = s.transport()
	s.w = &kafka.Writer{
		Addr:  s.addr,
		Topic: o.Topic,
		// Murmur2 like the Java client; see the package doc.
		Balancer:        kafka.Murmur2Balancer{Consistent: true},
		MaxAttempts:     maxAttempts,
		WriteBackoffMin: 100 * time.Millisecond,
		WriteBackoffMax: time.Second,
		BatchSize:       o.BatchSize,
		BatchBytes:      batchBytes,
		BatchTimeout:    o.BatchTimeout,
		ReadTimeout:     o.WriteTimeout,
		WriteTimeout:    o.WriteTimeout,
		// The zero value is RequireNone: fire and forget.
		RequiredAcks: kafka.RequireAll,
		Async:        false,
		Compression:  compression(o.Compression),
		// Per-attempt errors at debug: the final error is returned by
		// Publish and handled (logged) once by the caller.
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			s.log.Debug("kafka-go", zap.String("msg", fmt.Sprintf(msg, args...)))
		}),
		Transport:              s.tr,
		AllowAutoTopicCreation: o.CreateTopic != nil,
	}
	s.metrics = o.Metrics.forTopic(o.Topic)
	return s, nil
}

// transport builds a connection pool. The writer owns one for its life;
// Healthy, Check and topic creation use a fresh one per call, because a
// pool serves metadata from a cache that survives broker outages.
func (s *Sink) transport() *kafka.Transport {
	return &kafka.Transport{
		Dial:           (&net.Dialer{}).DialContext,
		DialTimeout:    s.o.WriteTimeout,
		IdleTimeout:    30 * time.Second,
		MetadataTTL:    6 * time.Second,
		MetadataTopics: []string{s.o.Topic},
		ClientID:       "rollcall",
		TLS:            s.tls,
		SASL:           s.mech,
		Context:        context.Background(),
	}
}

func compression(c string) kafka.Compression {
	switch c {
	case "gzip":
		return kafka.Gzip
	case "snappy":
		return kafka.Snappy
	case "lz4":
		return kafka.Lz4
	case "zstd":
		return kafka.Zstd
	}
	return 0
}

func mechanism(o *SASLOptions) (sasl.Mechanism, error) {
	var algo scram.Algorithm
	switch o.Mechanism {
	case MechanismPlain:
		return plain.Mechanism{Username: o.Username, Password: o.Password}, nil
	case MechanismSCRAMSHA256:
		algo = scram.SHA256
	default:
		algo = scram.SHA512
	}
	m, err := scram.Mechanism(algo, o.Username, o.Password)
	if err != nil {
		// The underlying error quotes the password: drop it.
		return nil, errors.New("sasl: username or password is not valid for SCRAM (SASLprep rejected it)")
	}
	return m, nil
}

// Name returns "kafka:<topic>".
func (s *Sink) Name() string { return s.name }

// Publish writes events to the topic, keyed by group id, and returns once
// all in-sync replicas acknowledged every one of them. On error a prefix of
// each partition's events may have been written; retrying the same events
// is safe (at-least-once, see the package doc). ctx cancellation returns
// promptly with an error wrapping ctx.Err(). Errors no retry can fix (a
// message over the size limit, Publish after Close, which wraps
// sink.ErrClosed) are wrapped with backoff.Permanent. The records carry
// the batch's encoding as it is.
func (s *Sink) Publish(ctx context.Context, batch *sink.Batch) error {
	if batch.Len() == 0 {
		return nil
	}
	if s.closing.Load() {
		return fmt.Errorf("publish to %s: %w", s.name, backoff.Permanent(sink.ErrClosed))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish to %s: %w", s.name, err)
	}
	if s.needTopic.Load() {
		if err := s.createTopic(ctx); err != nil {
			return fmt.Errorf("publish to %s: %w", s.name, err)
		}
		s.needTopic.Store(false)
	}
	msgs := s.messages(batch)
	// Do not pin the batch's bytes until the next Publish.
	defer clear(msgs)
	for start := 0; start < len(msgs); {
		end := s.chunkEnd(msgs, start)
		if err := s.write(ctx, msgs[start:end]); err != nil {
			if tooLarge(err) {
				err = backoff.Permanent(err)
			}
			if start > 0 {
				return fmt.Errorf("publish to %s: events %d-%d of %d: %w", s.name, start, end-1, len(msgs), err)
			}
			return fmt.Errorf("publish to %s: %w", s.name, err)
		}
		start = end
	}
	return nil
}

// chunkEnd returns the end of the chunk starting at start: at most
// BatchSize messages and batchBytes bytes, so kafka-go builds at most one
// batch per partition from it and a failed batch cannot be followed by a
// later batch of the same partition that succeeds.
func (s *Sink) chunkEnd(msgs []kafka.Message, start int) int {
	size := 0
	end := start
	for end < len(msgs) && end-start < s.o.BatchSize {
		n := messageSize(&msgs[end])
		if end > start && size+n > batchBytes {
			break
		}
		size += n
		end++
	}
	return end
}

// messageSize over-estimates kafka-go's accounting of a message's size in
// a batch (varints counted at their widest).
func messageSize(m *kafka.Message) int {
	n := 4 + 1 + 1 + 8 + 4 + len(m.Key) + 4 + len(m.Value) + 5
	for _, h := range m.Headers {
		n += 5 + len(h.Key) + 5 + len(h.Value)
	}
	return n
}

func (s *Sink) write(ctx context.Context, msgs []kafka.Message) error {
	start := s.now()
	err := s.w.WriteMessages(ctx, msgs...)
	acked, ackedBytes := 0, 0
	failed := len(msgs)
	var we kafka.WriteErrors
	switch {
	case err == nil:
		acked, failed = len(msgs), 0
	case errors.As(err, &we) && len(we) == len(msgs):
		failed = 0
		for i, e := range we {
			if e != nil {
				failed++
				continue
			}
			acked++
			ackedBytes += len(msgs[i].Key) + len(msgs[i].Value)
		}
		err = &writeErrors{errs: we, failed: failed}
	}
	if err == nil {
		for i := range msgs {
			ackedBytes += len(msgs[i].Key) + len(msgs[i].Value)
		}
	}
	s.metrics.observe(acked, failed, ackedBytes, s.now().Sub(start).Seconds())
	return err
}

// tooLarge reports whether err says a message exceeds what the writer or
// the broker accepts: no retry will succeed.
func tooLarge(err error) bool {
	var mtl kafka.MessageTooLargeError
	return errors.As(err, &mtl) || errors.Is(err, kafka.MessageSizeTooLarge)
}

// writeErrors summarises kafka.WriteErrors, whose own message repeats the
// same error once per message.
type writeErrors struct {
	errs   kafka.WriteErrors
	failed int
}

func (e *writeErrors) first() error {
	for _, err := range e.errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (e *writeErrors) Error() string {
	return fmt.Sprintf("%d of %d messages not acknowledged: %v", e.failed, len(e.errs), e.first())
}

// Unwrap exposes the first per-message error and the kafka.WriteErrors.
func (e *writeErrors) Unwrap() []error { return []error{e.first(), e.errs} }

// Header values every message of a mode shares. kafka-go only reads
// them.
var (
	structuredHeaders = []kafka.Header{{Key: HeaderContentType, Value: []byte(schema.ContentType)}}
	specVersionValue  = []byte(schema.SpecVersion)
	dataContentType   = []byte(schema.DataContentType)
)

// messages turns the batch into records per the CloudEvents Kafka protocol
// binding. Values are the batch's own encoding (the whole event in
// structured mode, its data object in binary mode); keys and binary-mode
// header values are cut from one buffer per batch, so the number of
// allocations does not grow with the batch.
func (s *Sink) messages(batch *sink.Batch) []kafka.Message {
	events := batch.Events()
	if cap(s.msgs) < len(events) {
		s.msgs = make([]kafka.Message, len(events))
	}
	msgs := s.msgs[:len(events)]
	size := 0
	for i := range events {
		e := &events[i]
		size += len(e.PartitionKey)
		if s.o.Mode != ModeStructured {
			// ce_time takes at most 35 bytes (nanoseconds, a 4-digit year).
			size += len(e.ID) + len(e.Source) + len(e.Type) + len(e.Subject) + 35 + len(e.PartitionKey)
		}
	}
	arena := make([]byte, 0, size)
	// add appends v to the arena and returns it as a slice of its own.
	add := func(v string) []byte {
		n := len(arena)
		arena = append(arena, v...)
		return arena[n:len(arena):len(arena)]
	}
	var headers []kafka.Header
	if s.o.Mode != ModeStructured {
		headers = make([]kafka.Header, 0, 8*len(events))
	}
	var key []byte
	for i := range events {
		e := &events[i]
		// A batch is usually one group's: its events share one key.
		if i == 0 || e.PartitionKey != events[i-1].PartitionKey {
			key = add(e.PartitionKey)
		}
		m := &msgs[i]
		m.Key = key
		if s.o.Mode == ModeStructured {
			m.Value = batch.JSON(i)
			m.Headers = structuredHeaders[:1:1]
			continue
		}
		m.Value = batch.Data(i)
		h := len(headers)
		headers = append(headers,
			kafka.Header{Key: HeaderSpecVersion, Value: specVersionValue},
			kafka.Header{Key: HeaderID, Value: add(e.ID)},
			kafka.Header{Key: HeaderSource, Value: add(e.Source)},
			kafka.Header{Key: HeaderType, Value: add(e.Type)})
		if e.Subject != "" {
			headers = append(headers, kafka.Header{Key: HeaderSubject, Value: add(e.Subject)})
		}
		n := len(arena)
		arena = e.Time.UTC().AppendFormat(arena, time.RFC3339Nano)
		headers = append(headers,
			kafka.Header{Key: HeaderTime, Value: arena[n:len(arena):len(arena)]},
			kafka.Header{Key: HeaderPartitionKey, Value: add(e.PartitionKey)},
			kafka.Header{Key: HeaderContentType, Value: dataContentType})
		m.Headers = headers[h:len(headers):len(headers)]
	}
	return msgs
}

// Close flushes messages kafka-go still holds (only a Publish cut short by
// its ctx leaves any) and closes connections. If ctx ends first, Close
// returns its error; the flush then finishes in the background within the
// writer's retry budget (3 attempts of WriteTimeout each).
func (s *Sink) Close(ctx context.Context) error {
	s.closing.Store(true)
	s.closeOnce.Do(func() {
		go func() {
			defer close(s.closed)
			s.closeErr = s.w.Close()
			s.tr.CloseIdleConnections()
		}()
	})
	select {
	case <-s.closed:
		if s.closeErr != nil {
			return fmt.Errorf("close %s: %w", s.name, s.closeErr)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close %s: %w", s.name, ctx.Err())
	}
}

// Healthy reports whether a broker answers a metadata request for the
// topic and knows it. Each call asks the brokers afresh on a new
// connection (within WriteTimeout), since the writer's metadata cache
// outlives outages; it does not publish. After Close it returns
// sink.ErrClosed.
func (s *Sink) Healthy(ctx context.Context) error {
	if s.closing.Load() {
		return fmt.Errorf("%s: %w", s.name, sink.ErrClosed)
	}
	if _, err := s.topicMetadata(ctx); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	return nil
}

// Check is the deeper probe of `rollcall check`: the brokers are reachable
// with the configured TLS and SASL settings, the topic exists, and every
// partition has a leader.
func (s *Sink) Check(ctx context.Context) error {
	t, err := s.topicMetadata(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	if len(t.Partitions) == 0 {
		return fmt.Errorf("%s: topic %s has no partitions", s.name, s.o.Topic)
	}
	for _, p := range t.Partitions {
		if p.Error != nil {
			return fmt.Errorf("%s: partition %d: %w", s.name, p.ID, p.Error)
		}
		if p.Leader.Host == "" {
			return fmt.Errorf("%s: partition %d has no leader", s.name, p.ID)
		}
	}
	s.log.Debug("check passed", zap.Int("partitions", len(t.Partitions)))
	return nil
}

func (s *Sink) topicMetadata(ctx context.Context) (kafka.Topic, error) {
	ctx, cancel := context.WithTimeout(ctx, s.o.WriteTimeout)
	defer cancel()
	tr := s.transport()
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: s.addr, Transport: tr, Timeout: s.o.WriteTimeout}
	resp, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{s.o.Topic}})
	if err != nil {
		// Drop kafka-go's "kafka.(*Client).Metadata: " prefix.
		if u := errors.Unwrap(err); u != nil {
			err = u
		}
		return kafka.Topic{}, fmt.Errorf("metadata of topic %s: %w", s.o.Topic, err)
	}
	for _, t := range resp.Topics {
		if t.Name != s.o.Topic {
			continue
		}
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			return t, fmt.Errorf("topic %s: %w", s.o.Topic, ErrTopicNotFound)
		}
		if t.Error != nil {
			return t, fmt.Errorf("topic %s: %w", s.o.Topic, t.Error)
		}
		return t, nil
	}
	return kafka.Topic{}, fmt.Errorf("topic %s: %w", s.o.Topic, ErrTopicNotFound)
}

// createTopic creates the topic unless it exists.
func (s *Sink) createTopic(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.WriteTimeout)
	defer cancel()
	tr := s.transport()
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: s.addr, Transport: tr, Timeout: s.o.WriteTimeout}
	// -1 asks the broker for its defaults.
	parts, rf := s.o.CreateTopic.Partitions, s.o.CreateTopic.ReplicationFactor
	if parts == 0 {
		parts = -1
	}
	if rf == 0 {
		rf = -1
	}
	resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: s.o.Topic, NumPartitions: parts, ReplicationFactor: rf,
	}}})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", s.o.Topic, err)
	}
	switch err := resp.Errors[s.o.Topic]; {
	case err == nil:
		s.log.Info("created topic", zap.Int("partitions", parts), zap.Int("replication_factor", rf))
	case errors.Is(err, kafka.TopicAlreadyExists):
		s.log.Debug("topic exists")
	default:
		return fmt.Errorf("create topic %s: %w", s.o.Topic, err)
	}
	return nil
}
