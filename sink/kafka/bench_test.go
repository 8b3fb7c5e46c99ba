package kafka

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/sink"
)

// The two benchmarks publish the same events with the same writer
// settings; BenchmarkKafkaRawWriter writes pre-marshalled messages through
// a bare kafka.Writer, so the ratio of the two is the sink's overhead
// (encoding the batch, as the Fanout does once for every sink; building
// the records, chunking, metrics). The broker discards records
// (BlackholeProduce) to keep its storage out of the measurement.
//
// Sizes: 100 events of one group fill one partition's batch, which is
// sent at once; 5 events wait for BatchTimeout (10ms) before being sent,
// in both benchmarks: kafka-go has no explicit flush.

var benchSizes = []int{100, 5}

func benchCluster(b *testing.B) *kfake.Cluster {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.BlackholeProduce(), kfake.SeedTopics(3, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}

// BenchmarkKafkaSinkPublish publishes a batch encoded before the timer
// starts, as a Fanout hands it to every sink (it encodes once per batch,
// whatever the number of sinks): the sink's own cost against the raw
// writer's. BenchmarkKafkaSinkEncodeAndPublish adds that encoding.
func BenchmarkKafkaSinkPublish(b *testing.B) { benchSink(b, false) }

func BenchmarkKafkaSinkEncodeAndPublish(b *testing.B) { benchSink(b, true) }

// newBenchSink returns a sink writing to topic "bench" of a fresh
// benchCluster, closed when b ends.
func newBenchSink(b *testing.B) *Sink {
	c := benchCluster(b)
	s, err := New(context.Background(), Options{Brokers: c.ListenAddrs(), Topic: "bench", Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func benchSink(b *testing.B, encode bool) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			s := newBenchSink(b)
			evs := groupEvents("@TGS#bench", n)
			batch := sink.NewBatch(evs)
			ctx := context.Background()
			if err := s.Publish(ctx, batch); err != nil { // warm up metadata and connections
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if encode {
					batch = sink.NewBatch(evs)
				}
				if err := s.Publish(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkKafkaRawWriter(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			// Reuse the sink's writer settings and encoding, then bypass the sink.
			s := newBenchSink(b)
			msgs := s.messages(sink.NewBatch(groupEvents("@TGS#bench", n)))
			w := s.w
			ctx := context.Background()
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := w.WriteMessages(ctx, msgs...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
