package nats_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/rollcall-dev/rollcall/schema"
	natssink "github.com/rollcall-dev/rollcall/sink/nats"
	"github.com/rollcall-dev/rollcall/sink/nats/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newSink builds a sink against ts and closes it in cleanup.
func newSink(t testing.TB, ts *natstest.Server, o natssink.Options) *natssink.Sink {
	t.Helper()
	s := openSink(t, ts, o)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// openSink builds a sink against ts (unless o names URLs) logging to t
// (unless o has a logger, or t is a benchmark); closing it is the caller's.
func openSink(t testing.TB, ts *natstest.Server, o natssink.Options) *natssink.Sink {
	t.Helper()
	if len(o.URLs) == 0 {
		o.URLs = []string{ts.URL()}
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
	return s
}

// wantHealthy requires s's Healthy and Check to pass.
func wantHealthy(t *testing.T, s *natssink.Sink) {
	t.Helper()
	if err := s.Healthy(ctxT(t, 5*time.Second)); err != nil {
		t.Errorf("Healthy: %v", err)
	}
	if err := s.Check(ctxT(t, 5*time.Second)); err != nil {
		t.Errorf("Check: %v", err)
	}
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

// readStream reads every message of stream with an ordered consumer.
func readStream(t testing.TB, js jetstream.JetStream, stream string) []jetstream.Msg {
	t.Helper()
	n := natstest.StreamMsgs(t, js, stream)
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
