// This file stays whole: it is the Sink type's methods, from connecting
// through publishing (JetStream and core) to Close, around one connection;
// the options, config, subjects and metrics live in their own files.

// Package nats is the NATS sink: it publishes each event as a structured
// CloudEvent on <prefix>.<sdkappid>.<group token>.<joined|left|dismissed>,
// either through JetStream (each message acknowledged by the stream and
// de-duplicated on its event id) or over core NATS (confirmed by a flush
// round-trip, which proves the server read the messages but not that any
// subscriber got them).
//
// Every message carries the headers Content-Type
// (application/cloudevents+json), Nats-Msg-Id (the event id), ce-id,
// ce-type and ce-source, so consumers can filter without decoding.
//
// The client reconnects forever, but publishes made while disconnected
// fail instead of waiting in the client's reconnect buffer: a buffered
// message is not delivered, and the caller retries failed batches anyway.
package nats

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/sink"
)

// ErrNotConnected is returned by Publish and Healthy while the client is
// not connected to a server; it is transient (the client keeps
// reconnecting) and the batch should be retried.
var ErrNotConnected = errors.New("nats: not connected")

// Header names set on every message.
const (
	HeaderContentType = "Content-Type"
	HeaderMsgID       = natsgo.MsgIdHdr // "Nats-Msg-Id"
	HeaderCEID        = "ce-id"
	HeaderCEType      = "ce-type"
	HeaderCESource    = "ce-source"
)

// Sink publishes events to NATS. It implements sink.Sink and
// sink.HealthChecker.
type Sink struct {
	name    string
	prefix  string
	stream  string // empty in core NATS mode
	timeout time.Duration
	nc      *natsgo.Conn
	js      jetstream.JetStream // nil in core NATS mode
	log     *zap.Logger
	metrics *Metrics

	// The stream is checked (or created) once the server is reachable:
	// at New, or before the first publish after a start without a server.
	createStream bool
	streamMu     sync.Mutex
	streamReady  atomic.Bool

	// subjects caches the subject of each group and event type; used by
	// Publish only (never concurrent).
	subjects map[subjectKey]string

	closing   atomic.Bool
	closed    chan struct{}
	closeOnce sync.Once
}

type subjectKey struct {
	sdkappid   uint64
	group, typ string
}

var (
	_ sink.Sink          = (*Sink)(nil)
	_ sink.HealthChecker = (*Sink)(nil)
)

// New validates o, connects and, in JetStream mode, checks that the
// stream exists (creating it when o.Stream.Create is set). ctx bounds the
// connection attempt and the stream check.
//
// When no server can be reached, New still succeeds: the client keeps
// connecting in the background, Publish fails with ErrNotConnected until
// it does (the caller retries), and the stream is checked then. A daemon
// thus starts, and reports itself not ready, while NATS is down. Other
// failures — authentication, TLS, a missing stream — are returned.
func New(ctx context.Context, o Options) (*Sink, error) {
	if err := Validate(o); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	s := &Sink{
		name:         "nats",
		prefix:       o.SubjectPrefix,
		timeout:      o.PublishTimeout,
		metrics:      o.Metrics.series(),
		closed:       make(chan struct{}),
		createStream: o.Stream.Create,
	}
	if o.JetStream {
		s.stream = o.Stream.Name
		s.name = "nats:jetstream:" + o.Stream.Name
	}
	s.log = o.Logger.Named("nats").With(zap.String("sink_target", s.name))

	opts, err := s.connectOptions(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	url := strings.Join(o.URLs, ",")
	nc, err := natsgo.Connect(url, opts...)
	if unreachable(err) {
		// Nobody answered (refused, unknown host, timed out): keep trying
		// in the background. Auth and TLS refusals are configuration errors.
		s.log.Warn("nats unreachable; connecting in the background, publishes fail (and are retried) until then", zap.Error(err))
		nc, err = natsgo.Connect(url, append(opts, natsgo.RetryOnFailedConnect(true),
			natsgo.ConnectHandler(func(nc *natsgo.Conn) {
				s.metrics.setConnected(true)
				s.log.Info("connected to nats", zap.String("server", nc.ConnectedUrlRedacted()))
			}))...)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	s.nc = nc
	if o.JetStream {
		if s.js, err = jetstream.New(nc); err != nil {
			s.nc.Close()
			<-s.closed
			return nil, fmt.Errorf("jetstream: %w", err)
		}
	}
	if !nc.IsConnected() {
		s.metrics.setConnected(false)
		return s, nil
	}
	s.metrics.setConnected(true)
	s.log.Info("connected to nats", zap.String("server", nc.ConnectedUrlRedacted()))
	if err := s.ensureStream(ctx); err != nil {
		s.nc.Close()
		<-s.closed
		return nil, err
	}
	return s, nil
}

// Unreachable reports whether a first connection failed for want of a
// server; see unreachable. The state driver uses it to tell an outage
// from a configuration error.
func Unreachable(err error) bool { return unreachable(err) }

// unreachable reports whether a first connection failed for want of a
// server (refused, unknown host, timeout) rather than because one refused
// the client (authentication, TLS verification).
//
// Only the absence of a server counts: authentication and TLS errors are
// neither of the kinds below, and a connection made and then dropped (EOF,
// reset: a server refusing a client certificate may do just that) is the
// server answering.
func unreachable(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, natsgo.ErrNoServers), errors.Is(err, natsgo.ErrTimeout):
		return true
	case strings.Contains(err.Error(), "tls: "):
		return false // a TLS handshake that timed out or failed: the server is there
	}
	// No connection could be made: unknown host, dial failure or timeout.
	var (
		dns *net.DNSError
		oe  *net.OpError
		ne  net.Error
	)
	return errors.As(err, &dns) || errors.As(err, &oe) && oe.Op == "dial" ||
		errors.As(err, &ne) && ne.Timeout()
}

func (s *Sink) connectOptions(ctx context.Context, o Options) ([]natsgo.Option, error) {
	opts := []natsgo.Option{
		natsgo.Name(o.Name),
		natsgo.MaxReconnects(-1),
		// Publishes while disconnected must fail rather than count as
		// sent: the reconnect buffer may be discarded.
		natsgo.ReconnectBufSize(-1),
		// A daemon keeps retrying through rotated or briefly revoked
		// credentials; the default gives up after two auth errors.
		natsgo.IgnoreAuthErrorAbort(),
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
			if s.closing.Load() {
				return
			}
			s.metrics.disconnected()
			s.log.Warn("disconnected from nats", zap.Error(err))
		}),
		natsgo.ReconnectHandler(func(nc *natsgo.Conn) {
			s.metrics.reconnected()
			s.log.Info("reconnected to nats", zap.String("server", nc.ConnectedUrlRedacted()))
		}),
		natsgo.ClosedHandler(func(*natsgo.Conn) {
			s.metrics.setConnected(false)
			s.closeOnce.Do(func() { close(s.closed) })
		}),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
			s.log.Warn("nats async error", zap.Error(err))
		}),
	}
	if dl, ok := ctx.Deadline(); ok {
		// Dial timeout per server; the client's default is 2s.
		if d := time.Until(dl); d > 0 && d < 2*time.Second {
			opts = append(opts, natsgo.Timeout(d))
		}
	}
	auth, err := AuthOptions(o)
	if err != nil {
		return nil, err
	}
	return append(opts, auth...), nil
}

// AuthOptions turns o's authentication keys and TLS block into client
// options, the part of connecting the state driver shares with the sink.
// Errors name the key, never a secret or a file's content.
func AuthOptions(o Options) ([]natsgo.Option, error) {
	var opts []natsgo.Option
	switch {
	case o.CredsFile != "":
		opts = append(opts, natsgo.UserCredentials(o.CredsFile))
	case o.NKeyFile != "":
		opt, err := natsgo.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			// The error may quote the file's content; name the key only.
			return nil, errors.New("nkey_file: cannot read an nkey seed from the file")
		}
		opts = append(opts, opt)
	case o.User != "":
		opts = append(opts, natsgo.UserInfo(o.User, o.Password))
	case o.Token != "":
		opts = append(opts, natsgo.Token(o.Token))
	}
	if o.TLS != nil {
		cfg, err := o.TLS.Config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, natsgo.Secure(cfg))
	}
	return opts, nil
}

// ensureStream checks, once, that the JetStream stream exists, creating
// it when configured to.
func (s *Sink) ensureStream(ctx context.Context) error {
	if s.js == nil || s.streamReady.Load() {
		return nil
	}
	s.streamMu.Lock()
	defer s.streamMu.Unlock()
	if s.streamReady.Load() {
		return nil
	}
	_, err := s.js.Stream(ctx, s.stream)
	switch {
	case err == nil:
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("stream %s: %w", s.stream, err)
	case !s.createStream:
		return fmt.Errorf("stream %s (create it, or set stream.create for development): %w", s.stream, err)
	default:
		_, err = s.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        s.stream,
			Description: "rollcall member events",
			Subjects:    []string{s.prefix + ".>"},
			Storage:     jetstream.FileStorage,
			Duplicates:  DefaultDuplicateWindow,
		})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("create stream %s: %w", s.stream, err)
		}
		s.log.Info("created jetstream stream", zap.String("stream", s.stream),
			zap.String("subjects", s.prefix+".>"))
	}
	s.streamReady.Store(true)
	return nil
}

// Name returns "nats", or "nats:jetstream:<stream>" in JetStream mode.
func (s *Sink) Name() string { return s.name }

// Publish sends events in order and returns once the server confirmed all
// of them: in JetStream mode every event's PubAck (a duplicate ack counts:
// the stream already holds the event), in core NATS mode a flush
// round-trip after the last one. Each ack or flush waits at most
// PublishTimeout. It fails fast with ErrNotConnected while disconnected.
// On error a prefix of events may have been published.
func (s *Sink) Publish(ctx context.Context, batch *sink.Batch) error {
	events := batch.Events()
	if len(events) == 0 {
		return nil
	}
	for i := range events {
		if events[i].Data.GroupID == "" {
			return fmt.Errorf("event %s: no group id", events[i].ID)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish to nats: %w", err)
	}
	if !s.nc.IsConnected() {
		return fmt.Errorf("publish to nats (%s): %w", s.nc.Status(), ErrNotConnected)
	}
	if s.js != nil {
		if err := s.ensureStream(ctx); err != nil {
			return fmt.Errorf("publish to nats: %w", err)
		}
		return s.publishJetStream(ctx, batch)
	}
	return s.publishCore(ctx, batch)
}

// message is the one Msg a Publish sends every event of its batch with:
// both clients have serialized it by the time their publish returns, so
// it is refilled in place, header slices included, instead of building a
// Msg, a header map and five header slices per event.
type message struct {
	*natsgo.Msg
	id, ceID, ceType, ceSource []string
}

func (s *Sink) newMessage() message {
	m := message{Msg: &natsgo.Msg{Header: make(natsgo.Header, 7)},
		id: []string{""}, ceID: []string{""}, ceType: []string{""}, ceSource: []string{""}}
	m.Header[HeaderContentType] = []string{schema.ContentType}
	m.Header[HeaderMsgID] = m.id
	m.Header[HeaderCEID] = m.ceID
	m.Header[HeaderCEType] = m.ceType
	m.Header[HeaderCESource] = m.ceSource
	if s.js != nil {
		// What jetstream.WithExpectStream would set on every publish.
		m.Header[jetstream.ExpectedStreamHeader] = []string{s.stream}
	}
	return m
}

// fill makes m event i of batch.
func (s *Sink) fill(m message, batch *sink.Batch, i int) {
	e := &batch.Events()[i]
	m.Subject = s.subject(e)
	m.Data = batch.JSON(i)
	// In JetStream mode Nats-Msg-Id is also what the stream de-duplicates
	// on (what jetstream.WithMsgID would set).
	m.id[0] = e.ID
	m.ceID[0] = e.ID
	m.ceType[0] = e.Type
	m.ceSource[0] = e.Source
}

// subject returns Subject(s.prefix, *e), remembered per group and type:
// a daemon watches a fixed set of groups, so building each subject once
// saves two allocations per event.
func (s *Sink) subject(e *schema.Event) string {
	k := subjectKey{e.Data.SDKAppID, e.Data.GroupID, e.Type}
	if sub, ok := s.subjects[k]; ok {
		return sub
	}
	if len(s.subjects) >= maxSubjects || s.subjects == nil {
		s.subjects = make(map[subjectKey]string)
	}
	sub := Subject(s.prefix, *e)
	s.subjects[k] = sub
	return sub
}

// maxSubjects bounds the subject cache: when a deployment cycles through
// more groups, it starts over.
const maxSubjects = 4096

func (s *Sink) publishJetStream(ctx context.Context, batch *sink.Batch) error {
	m := s.newMessage()
	// Sequential acks keep per-group order even when a publish fails
	// halfway: nothing after the failed event reaches the stream.
	for i := range batch.Len() {
		s.fill(m, batch, i)
		actx, cancel := context.WithTimeout(ctx, s.timeout)
		ack, err := s.js.PublishMsg(actx, m.Msg)
		cancel()
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				err = cerr
			}
			return fmt.Errorf("publish event %s to %s: %w", batch.Events()[i].ID, m.Subject, err)
		}
		if ack.Duplicate {
			s.metrics.duplicate()
		}
	}
	return nil
}

func (s *Sink) publishCore(ctx context.Context, batch *sink.Batch) error {
	before := s.nc.LastError()
	m := s.newMessage()
	for i := range batch.Len() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("publish to nats: %w", err)
		}
		s.fill(m, batch, i)
		if err := s.nc.PublishMsg(m.Msg); err != nil {
			return fmt.Errorf("publish to %s: %w", m.Subject, err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.nc.FlushWithContext(fctx); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = cerr
		}
		return fmt.Errorf("flush nats: %w", err)
	}
	// A publish the server refused (permissions) is reported only as an
	// asynchronous -ERR, which the client has recorded by the time the
	// flush's PONG arrives.
	if err := newPublishViolation(before, s.nc.LastError()); err != nil {
		return fmt.Errorf("publish to nats: %w", err)
	}
	return nil
}

// newPublishViolation returns last when it is a publish permission
// violation that happened after before was recorded.
func newPublishViolation(before, last error) error {
	if last == nil || !errors.Is(last, natsgo.ErrPermissionViolation) ||
		!strings.Contains(strings.ToLower(last.Error()), "for publish") {
		return nil
	}
	// Both are then *fmt.wrapError values, so == compares identity.
	if before != nil && errors.Is(before, natsgo.ErrPermissionViolation) && before == last {
		return nil
	}
	return last
}

// Healthy returns nil when the client is connected and, in JetStream
// mode, the stream's info can be read.
func (s *Sink) Healthy(ctx context.Context) error {
	if !s.nc.IsConnected() {
		return fmt.Errorf("nats (%s): %w", s.nc.Status(), ErrNotConnected)
	}
	if s.js == nil {
		return nil
	}
	// After a start without a server, the stream is checked (or created)
	// here too, so a quiet deployment becomes ready without a publish.
	if err := s.ensureStream(ctx); err != nil {
		return err
	}
	if _, err := s.js.Stream(ctx, s.stream); err != nil {
		return fmt.Errorf("stream %s: %w", s.stream, err)
	}
	return nil
}

// Check verifies the sink end to end without publishing, for `rollcall
// check`: a server round-trip and, in JetStream mode, the stream's info.
func (s *Sink) Check(ctx context.Context) error {
	if !s.nc.IsConnected() {
		return fmt.Errorf("nats (%s): %w", s.nc.Status(), ErrNotConnected)
	}
	fctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.nc.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("nats round-trip: %w", err)
	}
	if s.js == nil {
		return nil
	}
	st, err := s.js.Stream(ctx, s.stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.stream, err)
	}
	info := st.CachedInfo()
	if info.Config.Duplicates <= 0 {
		return fmt.Errorf("stream %s: no duplicate window, re-published events would be stored twice", s.stream)
	}
	if !slices.ContainsFunc(info.Config.Subjects, func(f string) bool { return covers(f, s.prefix) }) {
		return fmt.Errorf("stream %s: its subjects %v do not take every subject under %s.>, some events would be refused",
			s.stream, info.Config.Subjects, s.prefix)
	}
	return nil
}

// covers reports whether the subject filter f matches every subject the
// sink publishes: prefix, then exactly three tokens (sdkappid, group
// token, event type).
func covers(f, prefix string) bool {
	ft, pt := strings.Split(f, "."), strings.Split(prefix, ".")
	for i, tok := range ft {
		switch {
		case tok == ">":
			return true
		case i < len(pt) && (tok == "*" || tok == pt[i]):
		case i >= len(pt) && i < len(pt)+3 && tok == "*":
		default:
			return false
		}
	}
	return len(ft) == len(pt)+3
}

// Close drains the connection: messages still in the client's buffers are
// sent before it closes. ctx bounds the wait; when it ends first, the
// connection is closed at once and the error wraps ctx.Err().
func (s *Sink) Close(ctx context.Context) error {
	s.closing.Store(true)
	err := s.nc.Drain()
	switch {
	case err == nil, errors.Is(err, natsgo.ErrConnectionClosed):
	case errors.Is(err, natsgo.ErrConnectionReconnecting):
		// Nothing can be drained while disconnected; Drain closed it.
	default:
		s.nc.Close()
		<-s.closed
		return fmt.Errorf("drain nats: %w", err)
	}
	select {
	case <-s.closed:
		return nil
	case <-ctx.Done():
		s.nc.Close()
		<-s.closed
		return fmt.Errorf("drain nats: %w", ctx.Err())
	}
}
