package sink

import (
	"context"
	"fmt"
	"io"
	"os"
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
	// left behind, or Close. It guards closed.
	sem    chan struct{}
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
func (s *Stdout) Publish(ctx context.Context, batch *Batch) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish to stdout: %w", err)
	}
	if batch.Len() == 0 {
		return nil
	}
	if err := s.acquire(ctx, "publish to stdout"); err != nil {
		return err
	}
	if s.closed {
		<-s.sem
		return fmt.Errorf("publish to stdout: %w", ErrClosed)
	}
	// The batch's lines are read-only and outlive a Write left behind
	// after ctx ended, so they are written as they are, without a copy.
	buf := batch.Lines()
	done := make(chan error, 1)
	go func() {
		// One Write per batch so lines of concurrent writers to the same
		// stream are less likely to interleave.
		_, err := s.w.Write(buf)
		<-s.sem
		done <- err
	}()
	var err error
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
