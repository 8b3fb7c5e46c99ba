package nats_test

import (
	"context"
	"testing"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/sink"
	natssink "github.com/rollcall-dev/rollcall/sink/nats"
	"github.com/rollcall-dev/rollcall/sink/nats/natstest"
)

// The benchmarks come in pairs, the sink against the bare client doing the
// same work (same subjects, headers, bodies, acks or flush), so the sink's
// overhead reads as a ratio. Every iteration publishes a batch of 100 new
// events: re-publishing one batch would only measure JetStream's dedup.
// The sink gets its batches encoded before the timer starts, as a Fanout
// hands them over (it encodes once per batch for all sinks); the raw
// client gets its messages built before the timer starts.

const benchBatch = 100

func benchBatches(n int) [][]schema.Event {
	out := make([][]schema.Event, n)
	for i := range out {
		out[i] = events(benchBatch, 10, i*benchBatch)
	}
	return out
}

// encodedBatches encodes batches outside the timed loop, as a Fanout
// does once for all its sinks.
func encodedBatches(batches [][]schema.Event) []*sink.Batch {
	out := make([]*sink.Batch, len(batches))
	for i, b := range batches {
		out[i] = sink.NewBatch(b)
	}
	return out
}

// rawMessages marshals batches as the sink would, outside the timed loop.
func rawMessages(b *testing.B, batches [][]schema.Event, js bool) [][]*natsgo.Msg {
	out := make([][]*natsgo.Msg, len(batches))
	for i, batch := range batches {
		for _, e := range batch {
			data, err := e.MarshalJSON()
			if err != nil {
				b.Fatal(err)
			}
			m := natsgo.NewMsg(natssink.Subject(natssink.DefaultSubjectPrefix, e))
			m.Data = data
			m.Header.Set(natssink.HeaderContentType, schema.ContentType)
			m.Header.Set(natssink.HeaderMsgID, e.ID)
			m.Header.Set(natssink.HeaderCEID, e.ID)
			m.Header.Set(natssink.HeaderCEType, e.Type)
			m.Header.Set(natssink.HeaderCESource, e.Source)
			if js {
				// What the sink's publishes carry (jetstream.WithExpectStream).
				m.Header.Set(jetstream.ExpectedStreamHeader, natssink.DefaultStreamName)
			}
			out[i] = append(out[i], m)
		}
	}
	return out
}

func jsOptions() natssink.Options {
	return natssink.Options{JetStream: true, Stream: natssink.StreamOptions{Create: true}}
}

func BenchmarkNATSSinkPublish(b *testing.B) { benchSinkPublish(b, jsOptions()) }

// benchSinkPublish publishes b.N pre-encoded batches through a sink made
// with o.
func benchSinkPublish(b *testing.B, o natssink.Options) {
	ts := natstest.Start(b, nil)
	s := newSink(b, ts, o)
	batches := encodedBatches(benchBatches(b.N))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Publish(ctx, batches[i]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNATSRawPublish(b *testing.B) {
	ts := natstest.Start(b, nil)
	newSink(b, ts, jsOptions()) // creates the stream exactly as the sink does
	js := ts.JetStream(b)
	msgs := rawMessages(b, benchBatches(b.N), true)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, m := range msgs[i] {
			if _, err := js.PublishMsg(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkNATSCoreSinkPublish(b *testing.B) { benchSinkPublish(b, natssink.Options{}) }

func BenchmarkNATSCoreRawPublish(b *testing.B) {
	ts := natstest.Start(b, nil)
	nc := ts.Client(b)
	msgs := rawMessages(b, benchBatches(b.N), false)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, m := range msgs[i] {
			if err := nc.PublishMsg(m); err != nil {
				b.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}
