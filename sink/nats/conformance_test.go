package nats_test

import (
	"encoding/json"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/sink"
	natssink "github.com/rollcall-dev/rollcall/sink/nats"
	"github.com/rollcall-dev/rollcall/sink/nats/natstest"
	"github.com/rollcall-dev/rollcall/sink/sinktest"
)

func checkReceived(t *testing.T, ev schema.Event, r sinktest.Received) {
	t.Helper()
	if want := natssink.Subject(natssink.DefaultSubjectPrefix, ev); r.Subject != want {
		t.Errorf("subject %q, want %q", r.Subject, want)
	}
	for k, v := range map[string]string{
		"Content-Type": schema.ContentType, "Nats-Msg-Id": ev.ID,
		"ce-id": ev.ID, "ce-type": ev.Type, "ce-source": ev.Source,
	} {
		if r.Headers[k] != v {
			t.Errorf("event %s: header %s = %q, want %q", ev.ID, k, r.Headers[k], v)
		}
	}
}

func received(t *testing.T, subject string, h natsgo.Header, data []byte) sinktest.Received {
	t.Helper()
	var ev schema.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatalf("decode message on %s: %v", subject, err)
	}
	hs := make(map[string]string, len(h))
	for k := range h {
		hs[k] = h.Get(k)
	}
	return sinktest.Received{Event: ev, Raw: data, Subject: subject, Headers: hs}
}

// TestCoreConformance: the destination is what a subscriber to
// "rollcall.>" sees.
func TestCoreConformance(t *testing.T) {
	var (
		ts   *natstest.Server
		sc   *natsgo.Conn
		sub  *natsgo.Subscription
		seen []sinktest.Received
	)
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) sink.Sink {
			ts = natstest.Start(t, nil)
			// The subscriber reconnects much faster than the sink (2s), so
			// after an outage it is listening again before the sink
			// publishes: core NATS keeps nothing for absent subscribers.
			sc = ts.Client(t, natsgo.MaxReconnects(-1), natsgo.ReconnectWait(10*time.Millisecond))
			var err error
			if sub, err = sc.SubscribeSync(natssink.DefaultSubjectPrefix + ".>"); err != nil {
				t.Fatal(err)
			}
			if err := sub.SetPendingLimits(-1, -1); err != nil {
				t.Fatal(err)
			}
			if err := sc.Flush(); err != nil {
				t.Fatal(err)
			}
			seen = nil
			return openSink(t, ts, natssink.Options{})
		},
		Read: func(t *testing.T) []sinktest.Received {
			// The server queued every flushed message for the subscriber
			// before answering the sink's PING; the subscriber's own
			// round-trip puts them all in its pending queue.
			if err := sc.Flush(); err != nil {
				t.Fatal(err)
			}
			for {
				n, _, err := sub.Pending()
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					return seen
				}
				m, err := sub.NextMsg(time.Second)
				if err != nil {
					t.Fatal(err)
				}
				seen = append(seen, received(t, m.Subject, m.Header, m.Data))
			}
		},
		Outage: &sinktest.Outage{
			Stop: func(t *testing.T) { ts.Stop() },
			Start: func(t *testing.T) {
				ts.Start()
				waitFor(t, func() bool { return sc.IsConnected() && sc.Flush() == nil })
			},
		},
		CheckMessage: checkReceived,
	})
}

// TestJetStreamConformance: the destination is the stream, read with an
// ordered consumer.
func TestJetStreamConformance(t *testing.T) {
	var ts *natstest.Server
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) sink.Sink {
			ts = natstest.Start(t, nil)
			return openSink(t, ts, natssink.Options{JetStream: true, Stream: natssink.StreamOptions{Create: true}})
		},
		Read: func(t *testing.T) []sinktest.Received {
			var out []sinktest.Received
			for _, m := range readStream(t, ts.JetStream(t), natssink.DefaultStreamName) {
				out = append(out, received(t, m.Subject(), m.Headers(), m.Data()))
			}
			return out
		},
		Outage: &sinktest.Outage{
			Stop:  func(t *testing.T) { ts.Stop() },
			Start: func(t *testing.T) { ts.Start() },
		},
		Dedup:        true,
		CheckMessage: checkReceived,
	})
}
