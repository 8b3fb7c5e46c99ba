package sink_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/sink"
	"github.com/rollcall-dev/rollcall/sink/sinktest"
)

func TestBatchEncodesEachEvent(t *testing.T) {
	t0 := sinktest.Batch(0, 1)[0].Time
	events := append(sinktest.Batch(0, 4),
		schema.GroupDismissed(1400000000, "<a&b>\u2028\xff", t0, nil, 3))
	b := sink.NewBatch(events)
	if b.Len() != len(events) {
		t.Fatalf("Len = %d, want %d", b.Len(), len(events))
	}
	var lines []byte
	for i, e := range events {
		want, _ := e.MarshalJSON()
		if got := b.JSON(i); !bytes.Equal(got, want) {
			t.Errorf("JSON(%d) = %s, want %s", i, got, want)
		}
		if got := b.JSON(i); cap(got) != len(got) {
			t.Errorf("JSON(%d) has room to append over the next event: len %d cap %d", i, len(got), cap(got))
		}
		wantData, _ := e.MarshalData()
		if got := b.Data(i); !bytes.Equal(got, wantData) {
			t.Errorf("Data(%d) = %s, want %s", i, got, wantData)
		}
		lines = append(append(lines, want...), '\n')
	}
	if got := b.Lines(); !bytes.Equal(got, lines) {
		t.Errorf("Lines = %s, want %s", got, lines)
	}
	if got := b.Events(); &got[0] != &events[0] {
		t.Error("Events is not the batch's events")
	}
	var empty *sink.Batch
	if empty.Len() != 0 || empty.Lines() != nil || empty.Events() != nil {
		t.Error("a nil Batch is not empty")
	}
}

// batchSink remembers the batches it was given.
type batchSink struct {
	name string
	mu   sync.Mutex
	got  []*sink.Batch
}

func (s *batchSink) Name() string                { return s.name }
func (s *batchSink) Close(context.Context) error { return nil }
func (s *batchSink) Publish(_ context.Context, b *sink.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, b)
	return nil
}

func TestFanoutEncodesOncePerPublish(t *testing.T) {
	a, b := &batchSink{name: "a"}, &batchSink{name: "b"}
	f := sink.NewFanout([]sink.Sink{a, b}, sink.FanoutOptions{})
	events := sinktest.Batch(0, 2)
	if err := f.Publish(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if len(a.got) != 1 || len(b.got) != 1 || a.got[0] != b.got[0] {
		t.Fatalf("sinks got batches %p and %p, want one shared batch", a.got, b.got)
	}
	if a.got[0].Len() != len(events) {
		t.Fatalf("batch of %d events, want %d", a.got[0].Len(), len(events))
	}
}

func BenchmarkNewBatch(b *testing.B) {
	events := sinktest.Batch(0, 34) // 102 events over three groups
	b.ReportAllocs()
	for b.Loop() {
		sink.NewBatch(events)
	}
}
