package nats_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/schematest"
	"github.com/rollcall-dev/rollcall/sink"
	natssink "github.com/rollcall-dev/rollcall/sink/nats"
	"github.com/rollcall-dev/rollcall/sink/nats/natstest"
)

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// checkMessage asserts a received message is evs[i]'s: subject, headers and
// a valid structured CloudEvent body equal to the event.
func checkMessage(t *testing.T, prefix string, subj string, h natsgo.Header, data []byte, want schema.Event) {
	t.Helper()
	if ws := natssink.Subject(prefix, want); subj != ws {
		t.Errorf("subject %q, want %q", subj, ws)
	}
	for k, v := range map[string]string{
		"Content-Type": "application/cloudevents+json",
		"Nats-Msg-Id":  want.ID,
		"ce-id":        want.ID,
		"ce-type":      want.Type,
		"ce-source":    want.Source,
	} {
		if got := h.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if err := schematest.ValidateJSON(data); err != nil {
		t.Errorf("body is not a valid event: %v", err)
	}
	var got schema.Event
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("decode body: %v", err)
	}
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(got)
	if string(wb) != string(gb) {
		t.Errorf("body %s, want %s", gb, wb)
	}
}

func TestCorePublishDeliversInOrderWithHeaders(t *testing.T) {
	ts := natstest.Start(t, nil)
	s := newSink(t, ts, natssink.Options{SubjectPrefix: "acme.rc"})
	if s.Name() != "nats" {
		t.Errorf("Name = %q", s.Name())
	}
	sc := ts.Client(t)
	sub, err := sc.SubscribeSync("acme.rc.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Flush(); err != nil {
		t.Fatal(err)
	}
	evs := events(50, 3, 0)
	evs = append(evs, schema.GroupDismissed(1400000000, "@TGS#room1", t0, nil, 17))
	if err := s.Publish(ctxT(t, 10*time.Second), sink.NewBatch(evs)); err != nil {
		t.Fatal(err)
	}
	for i, want := range evs {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		checkMessage(t, "acme.rc", m.Subject, m.Header, m.Data, want)
	}
	wantHealthy(t, s)
}

func TestPublishEmptyAndInvalid(t *testing.T) {
	ts := natstest.Start(t, nil)
	s := newSink(t, ts, natssink.Options{})
	if err := s.Publish(ctxT(t, 5*time.Second), sink.NewBatch(nil)); err != nil {
		t.Errorf("empty batch: %v", err)
	}
	bad := events(1, 1, 0)
	bad[0].Data.GroupID = ""
	if err := s.Publish(ctxT(t, 5*time.Second), sink.NewBatch(bad)); err == nil {
		t.Error("event without group id published")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Publish(ctx, sink.NewBatch(events(1, 1, 0))); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: err = %v, want context.Canceled", err)
	}
}

func TestCorePublishPermissionViolationFails(t *testing.T) {
	ts := natstest.Start(t, func(o *server.Options) {
		o.Users = []*server.User{{Username: "rc", Password: "pw", Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Deny: []string{"rollcall.>"}},
		}}}
	})
	s := newSink(t, ts, natssink.Options{User: "rc", Password: "pw"})
	err := s.Publish(ctxT(t, 10*time.Second), sink.NewBatch(events(2, 1, 0)))
	if !errors.Is(err, natsgo.ErrPermissionViolation) {
		t.Fatalf("Publish = %v, want a permissions violation", err)
	}
	// A later refused publish fails too, even though the client's last
	// error already was a violation.
	err = s.Publish(ctxT(t, 10*time.Second), sink.NewBatch(events(1, 1, 5)))
	if !errors.Is(err, natsgo.ErrPermissionViolation) {
		t.Fatalf("second Publish = %v, want a permissions violation", err)
	}
}

func TestJetStreamCreatesStreamAndPublishes(t *testing.T) {
	ts := natstest.Start(t, nil)
	reg := prometheus.NewRegistry()
	metrics := natssink.NewMetrics(reg).For("nats")
	s := newSink(t, ts, natssink.Options{JetStream: true, Stream: natssink.StreamOptions{Name: "RC", Create: true}, Metrics: metrics})
	if s.Name() != "nats:jetstream:RC" {
		t.Errorf("Name = %q", s.Name())
	}
	js := ts.JetStream(t)
	st, err := js.Stream(ctxT(t, 5*time.Second), "RC")
	if err != nil {
		t.Fatalf("stream not created: %v", err)
	}
	if subj := st.CachedInfo().Config.Subjects; len(subj) != 1 || subj[0] != "rollcall.>" {
		t.Errorf("stream subjects %v, want [rollcall.>]", subj)
	}

	evs := events(40, 4, 0)
	if err := s.Publish(ctxT(t, 10*time.Second), sink.NewBatch(evs)); err != nil {
		t.Fatal(err)
	}
	msgs := readStream(t, js, "RC")
	if len(msgs) != len(evs) {
		t.Fatalf("stream holds %d messages, want %d", len(msgs), len(evs))
	}
	for i, m := range msgs {
		checkMessage(t, "rollcall", m.Subject(), m.Headers(), m.Data(), evs[i])
	}

	// The same batch again (a retry after a lost ack) is dropped by the
	// server's dedup window and still reported as success.
	if err := s.Publish(ctxT(t, 10*time.Second), sink.NewBatch(evs)); err != nil {
		t.Fatalf("re-publish: %v", err)
	}
	if n := natstest.StreamMsgs(t, js, "RC"); n != uint64(len(evs)) {
		t.Errorf("after re-publish the stream holds %d messages, want %d", n, len(evs))
	}
	if got := testutil.ToFloat64(metrics.DuplicateAcks); got != float64(len(evs)) {
		t.Errorf("duplicate acks metric = %v, want %d", got, len(evs))
	}
	if got := testutil.ToFloat64(metrics.Connected); got != 1 {
		t.Errorf("connected metric = %v", got)
	}
	wantHealthy(t, s)
}

func TestJetStreamMissingStream(t *testing.T) {
	ts := natstest.Start(t, nil)
	_, err := natssink.New(ctxT(t, 10*time.Second), natssink.Options{
		URLs: []string{ts.URL()}, JetStream: true, Stream: natssink.StreamOptions{Name: "NOPE"},
	})
	if !errors.Is(err, jetstream.ErrStreamNotFound) || !strings.Contains(err.Error(), "NOPE") {
		t.Fatalf("New = %v, want a stream-not-found error naming NOPE", err)
	}
}

func TestJetStreamExistingStreamElsewhereFails(t *testing.T) {
	ts := natstest.Start(t, nil)
	js := ts.JetStream(t)
	// OTHER captures the sink's subjects; the sink is told to use RC.
	for name, subj := range map[string]string{"OTHER": "rollcall.>", "RC": "elsewhere.>"} {
		if _, err := js.CreateStream(ctxT(t, 5*time.Second), jetstream.StreamConfig{Name: name, Subjects: []string{subj}}); err != nil {
			t.Fatal(err)
		}
	}
	s := newSink(t, ts, natssink.Options{JetStream: true, Stream: natssink.StreamOptions{Name: "RC"}})
	if err := s.Publish(ctxT(t, 10*time.Second), sink.NewBatch(events(1, 1, 0))); err == nil {
		t.Fatal("Publish into a stream other than the configured one succeeded")
	}
	if n := natstest.StreamMsgs(t, js, "OTHER"); n != 0 {
		t.Errorf("OTHER holds %d messages", n)
	}
	if err := s.Check(ctxT(t, 5*time.Second)); err == nil || !strings.Contains(err.Error(), "do not take every subject") {
		t.Errorf("Check = %v, want the stream's subjects named as the problem", err)
	}
}

// TestCheckStreamSubjects: check passes only when the stream takes every
// subject under the prefix.
func TestCheckStreamSubjects(t *testing.T) {
	ts := natstest.Start(t, nil)
	js := ts.JetStream(t)
	for _, tc := range []struct {
		subjects []string
		ok       bool
	}{
		{[]string{"rollcall.>"}, true},
		{[]string{"other.>", "rollcall.*.>"}, true},
		{[]string{"rollcall.*.*.*"}, true}, // the sink's subjects have exactly four tokens
		{[]string{"rollcall.*.*"}, false},
		{[]string{"rollcall.*.*.joined"}, false}, // joins only
		{[]string{"rollcall.1400000000.>"}, false},
		{[]string{"rollcall"}, false},
	} {
		name := "S" + strconv.Itoa(len(tc.subjects)) + strings.NewReplacer(".", "_", "*", "s", ">", "g").Replace(strings.Join(tc.subjects, "_"))
		if _, err := js.CreateStream(ctxT(t, 5*time.Second), jetstream.StreamConfig{Name: name, Subjects: tc.subjects, Duplicates: time.Minute, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
		s := newSink(t, ts, natssink.Options{JetStream: true, Stream: natssink.StreamOptions{Name: name}})
		if err := s.Check(ctxT(t, 5*time.Second)); (err == nil) != tc.ok {
			t.Errorf("stream subjects %v: Check = %v, want ok=%v", tc.subjects, err, tc.ok)
		}
		if err := js.DeleteStream(ctxT(t, 5*time.Second), name); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAuth(t *testing.T) {
	const password, token = "pa55-w0rd-XYZ", "t0ken-ABC-123"
	userServer := natstest.Start(t, func(o *server.Options) { o.Username, o.Password = "rc", password })
	tokenServer := natstest.Start(t, func(o *server.Options) { o.Authorization = token })

	t.Run("user password", func(t *testing.T) {
		s := newSink(t, userServer, natssink.Options{User: "rc", Password: password})
		if err := s.Publish(ctxT(t, 10*time.Second), sink.NewBatch(events(1, 1, 0))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("token", func(t *testing.T) {
		s := newSink(t, tokenServer, natssink.Options{Token: token})
		if err := s.Publish(ctxT(t, 10*time.Second), sink.NewBatch(events(1, 1, 0))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("password in url is not logged", func(t *testing.T) {
		core, logs := observer.New(zap.DebugLevel)
		u := "nats://rc:" + password + "@" + strings.TrimPrefix(userServer.URL(), "nats://")
		s := newSink(t, userServer, natssink.Options{URLs: []string{u}, Logger: zap.New(core)})
		if err := s.Publish(ctxT(t, 10*time.Second), sink.NewBatch(events(1, 1, 0))); err != nil {
			t.Fatal(err)
		}
		if logs.Len() == 0 {
			t.Fatal("nothing logged on connect")
		}
		for _, e := range logs.All() {
			b, _ := json.Marshal(e.ContextMap())
			if strings.Contains(e.Message+string(b), password) {
				t.Errorf("log %q %s contains the password", e.Message, b)
			}
		}
	})
	fails := []struct {
		name   string
		o      natssink.Options
		secret string
	}{
		{"wrong password", natssink.Options{URLs: []string{userServer.URL()}, User: "rc", Password: "wr0ng-" + password}, "wr0ng-"},
		{"no credentials", natssink.Options{URLs: []string{userServer.URL()}}, password},
		{"wrong token", natssink.Options{URLs: []string{tokenServer.URL()}, Token: "bad-" + token}, "bad-"},
		{"password in url", natssink.Options{URLs: []string{"nats://rc:url-" + password + "@" + strings.TrimPrefix(userServer.URL(), "nats://")}}, "url-"},
	}
	for _, tt := range fails {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zap.DebugLevel)
			tt.o.Logger = zap.New(core)
			s, err := natssink.New(ctxT(t, 10*time.Second), tt.o)
			if err == nil {
				_ = s.Close(ctxT(t, 5*time.Second))
				t.Fatal("connected with bad credentials")
			}
			if strings.Contains(err.Error(), tt.secret) || strings.Contains(err.Error(), password) {
				t.Errorf("error %q contains a secret", err)
			}
			for _, e := range logs.All() {
				b, _ := json.Marshal(e.ContextMap())
				if strings.Contains(e.Message+string(b), tt.secret) {
					t.Errorf("log %q %s contains a secret", e.Message, b)
				}
			}
		})
	}
}

// TestOutage: the server goes away, publishes fail promptly, a new server
// on the same port and store comes up, the sink reconnects by itself and
// the retried batch lands exactly once.
func TestOutage(t *testing.T) {
	ts := natstest.Start(t, nil)
	reg := prometheus.NewRegistry()
	metrics := natssink.NewMetrics(reg).For("nats")
	s := newSink(t, ts, natssink.Options{JetStream: true, Stream: natssink.StreamOptions{Create: true}, Metrics: metrics})
	first, second := events(20, 2, 0), events(20, 2, 100)
	if err := s.Publish(ctxT(t, 10*time.Second), sink.NewBatch(first)); err != nil {
		t.Fatal(err)
	}

	ts.Stop()
	waitFor(t, func() bool { return s.Healthy(ctxT(t, time.Second)) != nil })
	err := s.Publish(ctxT(t, 2*time.Second), sink.NewBatch(second))
	if err == nil {
		t.Fatal("Publish succeeded with the server down")
	}
	if !errors.Is(err, natssink.ErrNotConnected) {
		t.Logf("publish while down: %v", err) // a timeout is acceptable too
	}
	if got := testutil.ToFloat64(metrics.Connected); got != 0 {
		t.Errorf("connected metric = %v while down", got)
	}

	ts.Start()
	waitFor(t, func() bool { return s.Healthy(ctxT(t, time.Second)) == nil })
	// The caller retries the failed batch, and for good measure the first.
	if err := s.Publish(ctxT(t, 10*time.Second), sink.NewBatch(append(append([]schema.Event{}, first...), second...))); err != nil {
		t.Fatalf("Publish after reconnect: %v", err)
	}
	msgs := readStream(t, ts.JetStream(t), natssink.DefaultStreamName)
	want := append(append([]schema.Event{}, first...), second...)
	if len(msgs) != len(want) {
		t.Fatalf("stream holds %d messages, want %d", len(msgs), len(want))
	}
	for i, m := range msgs {
		if id := m.Headers().Get("ce-id"); id != want[i].ID {
			t.Errorf("message %d is %s, want %s", i, id, want[i].ID)
		}
	}
	if got := testutil.ToFloat64(metrics.Reconnects); got < 1 {
		t.Errorf("reconnects metric = %v", got)
	}
}

func TestCoreOutageFailsFast(t *testing.T) {
	ts := natstest.Start(t, nil)
	s := newSink(t, ts, natssink.Options{})
	ts.Stop()
	waitFor(t, func() bool { return s.Healthy(ctxT(t, time.Second)) != nil })
	err := s.Publish(ctxT(t, 10*time.Second), sink.NewBatch(events(3, 1, 0)))
	if !errors.Is(err, natssink.ErrNotConnected) {
		t.Fatalf("Publish = %v, want ErrNotConnected", err)
	}
	if err := s.Check(ctxT(t, time.Second)); !errors.Is(err, natssink.ErrNotConnected) {
		t.Errorf("Check = %v, want ErrNotConnected", err)
	}
}

func TestCloseDrainsAndStops(t *testing.T) {
	ts := natstest.Start(t, nil)
	s, err := natssink.New(ctxT(t, 10*time.Second), natssink.Options{URLs: []string{ts.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Publish(ctxT(t, time.Second), sink.NewBatch(events(1, 1, 0))); err == nil {
		t.Error("Publish after Close succeeded")
	}
	if err := s.Healthy(ctxT(t, time.Second)); err == nil {
		t.Error("Healthy after Close")
	}
	if err := s.Close(ctxT(t, time.Second)); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestNewUnreachable: a sink started while NATS is down is created, fails
// publishes with ErrNotConnected, and once the server comes up connects by
// itself, creates the stream and publishes.
func TestNewUnreachable(t *testing.T) {
	ts := natstest.New(t, nil)
	reg := prometheus.NewRegistry()
	metrics := natssink.NewMetrics(reg).For("nats")
	s, err := natssink.New(ctxT(t, 5*time.Second), natssink.Options{URLs: []string{ts.URL()}, JetStream: true,
		Stream: natssink.StreamOptions{Create: true}, Metrics: metrics, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("New with the server down: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(ctxT(t, 5*time.Second)) })
	if err := s.Publish(ctxT(t, 5*time.Second), sink.NewBatch(events(2, 1, 0))); !errors.Is(err, natssink.ErrNotConnected) {
		t.Fatalf("Publish while down = %v, want ErrNotConnected", err)
	}
	if err := s.Healthy(ctxT(t, time.Second)); err == nil {
		t.Fatal("healthy with no server")
	}
	if got := testutil.ToFloat64(metrics.Connected); got != 0 {
		t.Errorf("connected metric = %v while down", got)
	}

	ts.Start()
	waitFor(t, func() bool { return testutil.ToFloat64(metrics.Connected) == 1 })
	// Ready without a publish: Healthy creates the stream.
	if err := s.Healthy(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("Healthy once the server is up, before any publish: %v", err)
	}
	evs := events(2, 1, 0)
	if err := s.Publish(ctxT(t, 10*time.Second), sink.NewBatch(evs)); err != nil {
		t.Fatalf("Publish once the server is up: %v", err)
	}
	if msgs := readStream(t, ts.JetStream(t), natssink.DefaultStreamName); len(msgs) != len(evs) {
		t.Fatalf("stream holds %d messages, want %d", len(msgs), len(evs))
	}
	if err := s.Healthy(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("Healthy: %v", err)
	}
}

// TestNewUnknownHost: a server name that does not resolve (a stopped
// compose service) is "not there yet", like a refused connection.
func TestNewUnknownHost(t *testing.T) {
	s, err := natssink.New(ctxT(t, 5*time.Second), natssink.Options{URLs: []string{"nats://nats.invalid:4222"}, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("New with an unknown host: %v", err)
	}
	defer s.Close(ctxT(t, 5*time.Second))
	if err := s.Publish(ctxT(t, 5*time.Second), sink.NewBatch(events(1, 1, 0))); !errors.Is(err, natssink.ErrNotConnected) {
		t.Fatalf("Publish = %v, want ErrNotConnected", err)
	}
}

// TestNewAuthFailureIsReturned: a reachable server that refuses the
// credentials is a configuration error at New, not a background retry.
func TestNewAuthFailureIsReturned(t *testing.T) {
	ts := natstest.Start(t, func(o *server.Options) { o.Username, o.Password = "u", "right" })
	_, err := natssink.New(ctxT(t, 5*time.Second), natssink.Options{URLs: []string{ts.URL()}, User: "u", Password: "wrong"})
	if err == nil {
		t.Fatal("New connected with a wrong password")
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("the password is in the error: %v", err)
	}
}

func TestNewInvalidOptions(t *testing.T) {
	_, err := natssink.New(ctxT(t, time.Second), natssink.Options{URLs: []string{"nats://h:1"}, SubjectPrefix: "a.>"})
	if err == nil || !strings.HasPrefix(err.Error(), "subject_prefix: ") {
		t.Fatalf("New = %v, want a subject_prefix error", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBareMetricsFamily: a metric family passed without For records under
// sink="nats", rather than leaving the sink without series.
func TestBareMetricsFamily(t *testing.T) {
	ts := natstest.Start(t, nil)
	reg := prometheus.NewRegistry()
	newSink(t, ts, natssink.Options{Metrics: natssink.NewMetrics(reg)})
	want := `
# HELP rollcall_nats_connected 1 while the NATS sink is connected to a server.
# TYPE rollcall_nats_connected gauge
rollcall_nats_connected{sink="nats"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rollcall_nats_connected"); err != nil {
		t.Fatal(err)
	}
}
