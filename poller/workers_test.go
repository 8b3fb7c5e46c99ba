package poller

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestWorkersReuseGoroutines: polls one after another run on the goroutine
// that ran the previous one, not on a fresh one each; close ends the idle
// ones (goleak checks none is left).
func TestWorkersReuseGoroutines(t *testing.T) {
	w := newWorkers()
	var ran atomic.Int64
	for range 50 {
		done := make(chan struct{})
		w.do(func() {
			ran.Add(1)
			close(done)
		})
		<-done
		time.Sleep(2 * time.Millisecond) // let the worker wait for the next job
	}
	w.close()
	if ran.Load() != 50 {
		t.Fatalf("%d jobs ran, want 50", ran.Load())
	}
	if n := w.started.Load(); n > 10 {
		t.Fatalf("%d goroutines for 50 sequential jobs: they are not reused", n)
	}
}
