// Package sinktest helps test code that publishes events and code that
// implements sinks.
//
// Recorder is an in-memory sink.Sink that records what it is given and can
// be told to fail, for tests of the detector, the Fanout and the daemon's
// wiring. Run is a conformance suite every sink.Sink implementation passes:
// each sink package calls it from its own tests with a Harness that owns a
// real (or embedded) destination, in the manner of Benthos' integration
// suite.
package sinktest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/sink"
)

// ErrInjected is the error a Recorder fails with when it was given a nil
// error to fail with.
var ErrInjected = errors.New("sinktest: injected failure")

// Recorder is an in-memory sink. It records each acknowledged batch and
// fails on demand. Its methods are safe for concurrent use.
type Recorder struct {
	name string

	mu        sync.Mutex
	batches   [][]schema.Event
	calls     int
	failNext  int
	failNextE error
	failAll   error
	closed    bool
}

var (
	_ sink.Sink          = (*Recorder)(nil)
	_ sink.HealthChecker = (*Recorder)(nil)
)

// NewRecorder returns a healthy, empty Recorder called name.
func NewRecorder(name string) *Recorder { return &Recorder{name: name} }

// Name implements sink.Sink.
func (r *Recorder) Name() string { return r.name }

// Publish implements sink.Sink: it fails when told to, otherwise records a
// copy of the batch's events. It fails with an error wrapping ctx.Err()
// when ctx is done, and with sink.ErrClosed after Close.
func (r *Recorder) Publish(ctx context.Context, batch *sink.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("recorder %s: %w", r.name, ctx.Err())
	case r.closed:
		return fmt.Errorf("recorder %s: %w", r.name, sink.ErrClosed)
	case r.failAll != nil:
		return fmt.Errorf("recorder %s: %w", r.name, r.failAll)
	case r.failNext > 0:
		r.failNext--
		return fmt.Errorf("recorder %s: %w", r.name, r.failNextE)
	}
	r.batches = append(r.batches, slices.Clone(batch.Events()))
	return nil
}

// Close implements sink.Sink.
func (r *Recorder) Close(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

// Healthy implements sink.HealthChecker: it fails while the Recorder is
// told to fail until healed, or after Close.
func (r *Recorder) Healthy(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return sink.ErrClosed
	case r.failAll != nil:
		return r.failAll
	}
	return nil
}

// FailNext makes the next n Publish calls fail with err (ErrInjected when
// err is nil).
func (r *Recorder) FailNext(n int, err error) {
	if err == nil {
		err = ErrInjected
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failNext, r.failNextE = n, err
}

// FailUntilHealed makes every Publish call fail with err (ErrInjected when
// err is nil) until Heal.
func (r *Recorder) FailUntilHealed(err error) {
	if err == nil {
		err = ErrInjected
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failAll = err
}

// Heal cancels FailNext and FailUntilHealed.
func (r *Recorder) Heal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failAll, r.failNext = nil, 0
}

// Events returns every recorded event, in the order acknowledged.
func (r *Recorder) Events() []schema.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []schema.Event
	for _, b := range r.batches {
		out = append(out, b...)
	}
	return out
}

// Batches returns the acknowledged batches, in order.
func (r *Recorder) Batches() [][]schema.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]schema.Event, len(r.batches))
	for i, b := range r.batches {
		out[i] = slices.Clone(b)
	}
	return out
}

// Calls counts Publish calls, failed ones included.
func (r *Recorder) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// Closed reports whether Close was called.
func (r *Recorder) Closed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}
