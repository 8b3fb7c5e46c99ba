package nats_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/rollcall-dev/rollcall/schema"
	natssink "github.com/rollcall-dev/rollcall/sink/nats"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer is an embedded nats-server with JetStream on a fixed port and
// store dir, so it can be shut down and started again "in the same place".
type testServer struct {
	t     testing.TB
	port  int
	store string
	conf  func(*server.Options)
	srv   *server.Server
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer starts a server; conf, if not nil, adjusts its options
// (auth, permissions). It is shut down in t's cleanup.
func startServer(t testing.TB, conf func(*server.Options)) *testServer {
	t.Helper()
	ts := &testServer{t: t, port: freePort(t), store: t.TempDir(), conf: conf}
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) start() {
	ts.t.Helper()
	o := &server.Options{
		Host:      "127.0.0.1",
		Port:      ts.port,
		JetStream: true,
		StoreDir:  ts.store,
		NoLog:     true,
		NoSigs:    true,
	}
	if ts.conf != nil {
		ts.conf(o)
	}
	srv, err := server.NewServer(o)
	if err != nil {
		ts.t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		ts.t.Fatal("nats-server not ready")
	}
	ts.srv = srv
}

func (ts *testServer) stop() {
	if ts.srv == nil {
		return
	}
	ts.srv.Shutdown()
	ts.srv.WaitForShutdown()
	ts.srv = nil
}

func (ts *testServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", ts.port) }

// client is a plain connection for the test's own subscribing and
// inspecting, closed in cleanup.
func (ts *testServer) client(t testing.TB, opts ...natsgo.Option) *natsgo.Conn {
	t.Helper()
	nc, err := natsgo.Connect(ts.url(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func (ts *testServer) jetStream(t testing.TB, opts ...natsgo.Option) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(ts.client(t, opts...))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// newSink builds a sink against ts and closes it in cleanup.
func newSink(t testing.TB, ts *testServer, o natssink.Options) *natssink.Sink {
	t.Helper()
	if len(o.URLs) == 0 {
		o.URLs = []string{ts.url()}
	}
	if o.Logger == nil {
		if tt, ok := t.(*testing.T); ok {
			o.Logger = zaptest.NewLogger(tt)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := natssink.New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

var t0 = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

// events returns n joined events spread over groups groups, in a fixed
// order; start offsets the member numbers so batches differ.
func events(n, groups, start int) []schema.Event {
	out := make([]schema.Event, n)
	for i := range out {
		m := schema.Member{Account: fmt.Sprintf("user%05d", start+i), NickName: "n", JoinTime: 1795600000 + int64(start+i)}
		gid := fmt.Sprintf("@TGS#room%d", i%groups)
		out[i] = schema.MemberJoined(1400000000, gid, m, schema.ReasonJoined, t0, nil)
	}
	return out
}

func streamMsgs(t testing.TB, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// readStream reads every message of stream with an ordered consumer.
func readStream(t testing.TB, js jetstream.JetStream, stream string) []jetstream.Msg {
	t.Helper()
	n := streamMsgs(t, js, stream)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for uint64(len(out)) < n {
		batch, err := cons.Fetch(int(n)-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			out = append(out, m)
			got++
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
		if got == 0 {
			t.Fatalf("read %d of %d messages", len(out), n)
		}
	}
	return out
}
