package sink_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/sink"
	"github.com/rollcall-dev/rollcall/sink/sinktest"
)

// switchWriter is a buffer that can be made to fail, standing in for a
// pipe whose reader went away.
type switchWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	down bool
}

var errPipeDown = errors.New("broken pipe")

func (w *switchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.down {
		return 0, errPipeDown
	}
	return w.buf.Write(p)
}

func (w *switchWriter) setDown(down bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.down = down
}

func (w *switchWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}

// parseLines decodes JSON Lines, failing t on any malformed line.
func parseLines(t *testing.T, data []byte) []sinktest.Received {
	t.Helper()
	var out []sinktest.Received
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		raw := bytes.Clone(sc.Bytes())
		var ev schema.Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("line %d: %v: %s", len(out)+1, err, raw)
		}
		out = append(out, sinktest.Received{Event: ev, Raw: raw})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("output does not end with a newline")
	}
	return out
}

func TestStdoutConformance(t *testing.T) {
	var w *switchWriter
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) sink.Sink {
			w = &switchWriter{}
			return sink.NewStdout(w)
		},
		Read: func(t *testing.T) []sinktest.Received { return parseLines(t, w.bytes()) },
		Outage: &sinktest.Outage{
			Stop:  func(*testing.T) { w.setDown(true) },
			Start: func(*testing.T) { w.setDown(false) },
		},
		CheckMessage: func(t *testing.T, ev schema.Event, r sinktest.Received) {
			if bytes.Contains(r.Raw, []byte("\n")) || !strings.HasPrefix(string(r.Raw), `{"specversion":"1.0"`) {
				t.Errorf("line is not one compact structured CloudEvent: %s", r.Raw)
			}
		},
	})
}

func TestStdoutReturnsWriteError(t *testing.T) {
	w := &switchWriter{down: true}
	s := sink.NewStdout(w)
	err := s.Publish(context.Background(), sink.NewBatch(sinktest.Batch(0, 1)))
	if !errors.Is(err, errPipeDown) {
		t.Fatalf("Publish = %v, want the write error", err)
	}
}

func TestStdoutOneWritePerBatch(t *testing.T) {
	var cw countingWriter
	s := sink.NewStdout(&cw)
	if err := s.Publish(context.Background(), sink.NewBatch(sinktest.Batch(0, 10))); err != nil {
		t.Fatal(err)
	}
	if cw.writes != 1 || cw.lines != 30 {
		t.Fatalf("writes=%d lines=%d, want 1 write of 30 lines", cw.writes, cw.lines)
	}
}

type countingWriter struct{ writes, lines int }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	c.lines += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

func TestStdoutCloseFlushesBufferedWriter(t *testing.T) {
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, 1<<20)
	s := sink.NewStdout(bw)
	if err := s.Publish(context.Background(), sink.NewBatch(sinktest.Batch(0, 2))); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Fatal("test setup: the bufio.Writer should still hold the batch")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(parseLines(t, out.Bytes())); got != 6 {
		t.Fatalf("after Close: %d lines, want 6", got)
	}
	if err := s.Publish(context.Background(), sink.NewBatch(sinktest.Batch(0, 1))); !errors.Is(err, sink.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
}

func BenchmarkStdoutPublish(b *testing.B) {
	benchPublish(b, sink.NewStdout(discard{}), sinktest.Batch(0, 34)) // 102 events
}

// benchPublish publishes batch to s, encoding it each time as a Fanout
// would, and reports events/s.
func benchPublish(b *testing.B, s sink.Sink, batch []schema.Event) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Publish(ctx, sink.NewBatch(batch)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
}

// discard is io.Discard without its ReadFrom fast path, like a real pipe.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestStdoutBlockedReaderDoesNotHoldUpShutdown: a reader that stops
// reading blocks the Write, but Publish and Close return when their ctx
// ends; once the reader reads again, the batch arrives and the sink works.
func TestStdoutBlockedReaderDoesNotHoldUpShutdown(t *testing.T) {
	r, w := io.Pipe()
	defer r.Close()
	s := sink.NewStdout(w)
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	if err := s.Publish(short(), sink.NewBatch(sinktest.Batch(0, 1))); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish into a stuck pipe = %v, want the deadline", err)
	}
	if err := s.Publish(short(), sink.NewBatch(sinktest.Batch(1, 1))); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Publish = %v, want the deadline", err)
	}
	if err := s.Close(short()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want the deadline", err)
	}

	// The reader comes back: the abandoned batch arrives, whole.
	lines := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		lines <- b
	}()
	if err := s.Publish(context.Background(), sink.NewBatch(sinktest.Batch(1, 1))); err != nil {
		t.Fatalf("Publish after the reader came back: %v", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := len(parseLines(t, <-lines)); got != 6 {
		t.Fatalf("reader got %d lines, want 6 (the abandoned batch and the next)", got)
	}
}
