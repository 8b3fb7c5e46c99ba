package sink

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/rollcall-dev/rollcall/schema"
)

// Stdout writes each event as one structured-mode CloudEvent JSON object per
// line. It suits piping rollcall into another program and local debugging.
//
// It does not fsync: standard output is often a pipe. Publish returns once
// the batch was handed to the writer in a single Write call, and returns
// the writer's error.
type Stdout struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	closed bool
}

var _ Sink = (*Stdout)(nil)

// NewStdout returns a sink writing to w; nil means os.Stdout.
func NewStdout(w io.Writer) *Stdout {
	if w == nil {
		w = os.Stdout
	}
	return &Stdout{w: w}
}

// Name implements Sink; it is always "stdout".
func (s *Stdout) Name() string { return "stdout" }

// maxKeptBuffer bounds the encode buffer kept between calls, so one huge
// batch does not pin its memory for the life of the process.
const maxKeptBuffer = 1 << 20

// Publish implements Sink.
func (s *Stdout) Publish(ctx context.Context, events []schema.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish to stdout: %w", err)
	}
	if len(events) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("publish to stdout: %w", ErrClosed)
	}
	buf, err := appendLines(s.buf[:0], events)
	if cap(buf) <= maxKeptBuffer {
		s.buf = buf
	}
	if err != nil {
		return err
	}
	// One Write per batch so lines of concurrent writers to the same
	// stream are less likely to interleave.
	if _, err := s.w.Write(buf); err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	return nil
}

// Close implements Sink. It flushes w when w has a Flush() error method
// (a *bufio.Writer) and never closes w.
func (s *Stdout) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if fl, ok := s.w.(interface{ Flush() error }); ok {
		if err := fl.Flush(); err != nil {
			return fmt.Errorf("flush stdout: %w", err)
		}
	}
	return nil
}

// appendLines appends each event's structured-mode JSON and a newline.
func appendLines(buf []byte, events []schema.Event) ([]byte, error) {
	for _, ev := range events {
		b, err := ev.MarshalJSON()
		if err != nil {
			return buf, fmt.Errorf("encode event %s: %w", ev.ID, err)
		}
		buf = append(buf, b...)
		buf = append(buf, '\n')
	}
	return buf, nil
}
