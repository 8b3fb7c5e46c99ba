package poller

import (
	"sync"
	"sync/atomic"
	"time"
)

// workerIdle is how long a goroutine that finished a poll waits for the
// next one before it ends.
const workerIdle = 10 * time.Second

// workers runs polls on goroutines that outlive one poll: a poll decodes
// pages and publishes events, which grows a fresh goroutine's stack to
// tens of KB, and at hundreds of polls a second growing (copying) stacks
// anew for each costs measurable CPU. An idle goroutine takes the next
// poll; one that waits workerIdle without work ends, so a quiet scheduler
// keeps none.
type workers struct {
	jobs chan func()   // unbuffered: a send succeeds only to an idle worker
	stop chan struct{} // closed by close: idle workers end
	wg   sync.WaitGroup
	// started counts the goroutines started, for tests.
	started atomic.Int64
}

func newWorkers() *workers {
	return &workers{jobs: make(chan func()), stop: make(chan struct{})}
}

// do runs f on an idle worker, or on a new one.
func (w *workers) do(f func()) {
	select {
	case w.jobs <- f:
		return
	default:
	}
	w.wg.Add(1)
	w.started.Add(1)
	go w.loop(f)
}

func (w *workers) loop(f func()) {
	defer w.wg.Done()
	f()
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		select {
		case f := <-w.jobs:
			f()
			t.Reset(workerIdle)
		case <-t.C:
			return
		case <-w.stop:
			return
		}
	}
}

// close ends the idle workers and waits for every worker; the jobs given
// to do must have ended (or end by themselves).
func (w *workers) close() {
	close(w.stop)
	w.wg.Wait()
}
