package sink

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/rollcall-dev/rollcall/schema"
)

// Stdout writes each event as one structured-mode CloudEvent JSON object per
// line. It suits piping rollcall into another program and local debugging.
//
// It does not fsync: standard output is often a pipe. Publish returns once
// the batch was handed to the writer in a single Write call, and returns
// the writer's error. A reader that stops reading blocks the Write; Publish
// and Close still return when their ctx ends (the Write is left to finish
// in the background, and the next Publish waits for it), so a stuck pipe
// cannot hold up shutdown.
type Stdout struct {
	w io.Writer
	// sem is held by whoever may write: a Publish, the background Write it
	// left behind, or Close. It guards buf and closed.
	sem    chan struct{}
	buf    []byte
	closed bool
}

var _ Sink = (*Stdout)(nil)

// NewStdout returns a sink writing to w; nil means os.Stdout.
func NewStdout(w io.Writer) *Stdout {
	if w == nil {
		w = os.Stdout
	}
	return &Stdout{w: w, sem: make(chan struct{}, 1)}
}

// Name implements Sink; it is always "stdout".
func (s *Stdout) Name() string { return "stdout" }

// maxKeptBuffer bounds the encode buffer kept between calls, so one huge
// batch does not pin its memory for the life of the process.
const maxKeptBuffer = 1 << 20

// acquire takes sem, or fails when ctx ends first (a Write still blocked).
func (s *Stdout) acquire(ctx context.Context, op string) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: stdout is blocked (is its reader still reading?): %w", op, ctx.Err())
	}
}

// Publish implements Sink.
func (s *Stdout) Publish(ctx context.Context, events []schema.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish to stdout: %w", err)
	}
	if len(events) == 0 {
		return nil
	}
	if err := s.acquire(ctx, "publish to stdout"); err != nil {
		return err
	}
	if s.closed {
		<-s.sem
		return fmt.Errorf("publish to stdout: %w", ErrClosed)
	}
	buf, err := appendLines(s.buf[:0], events)
	if err != nil {
		s.keep(buf)
		<-s.sem
		return err
	}
	done := make(chan error, 1)
	go func() {
		// One Write per batch so lines of concurrent writers to the same
		// stream are less likely to interleave.
		_, err := s.w.Write(buf)
		s.keep(buf)
		<-s.sem
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		select {
		case err = <-done: // finished just in time
		default:
			err = ctx.Err()
		}
	}
	if err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	return nil
}

// keep keeps buf for the next batch unless it grew too large; the caller
// holds sem.
func (s *Stdout) keep(buf []byte) {
	if cap(buf) <= maxKeptBuffer {
		s.buf = buf
	}
}

// Close implements Sink. It waits (within ctx) for a Write in progress,
// flushes w when w has a Flush() error method (a *bufio.Writer) and never
// closes w.
func (s *Stdout) Close(ctx context.Context) error {
	if err := s.acquire(ctx, "close stdout"); err != nil {
		return err
	}
	defer func() { <-s.sem }()
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
