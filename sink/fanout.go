package sink

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/schema"
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("sink closed")

// FanoutOptions configures a Fanout.
type FanoutOptions struct {
	// Retry applies to every sink without an entry in SinkRetry.
	Retry RetryOptions
	// SinkRetry overrides Retry for the sink of that Name.
	SinkRetry map[string]RetryOptions
	// Logger receives a warning per retry; nil means zap.NewNop().
	Logger *zap.Logger
	// Metrics may be nil.
	Metrics *Metrics
}

// SinkStatus is a sink's state as the Fanout sees it, for logs and
// readiness reports.
type SinkStatus struct {
	Name string
	// Failing is true from a failed attempt until the next success.
	Failing bool
	// LastError is the error of the current failing streak, empty when
	// not failing.
	LastError string
	// ConsecutiveFailures counts failed attempts since the last success.
	ConsecutiveFailures int
	// Backlog counts events of Publish calls in progress that this sink
	// has not acknowledged yet.
	Backlog int
}

// Fanout publishes every batch to a fixed set of sinks, retrying each
// failing sink on its own. It is safe for concurrent use; calls to one
// sink are serialized as the Sink contract requires.
type Fanout struct {
	sinks []*member
	log   *zap.Logger

	mu      sync.Mutex
	closed  bool
	active  int           // Publish calls in progress
	drained chan struct{} // closed once closed && active == 0
	// abort cancels Publish calls in progress when Close runs out of time.
	abort     context.Context
	abortFunc context.CancelFunc
}

// member is one sink of a Fanout and its state.
type member struct {
	s     Sink
	name  string
	retry RetryOptions
	sem   chan struct{} // holds a token while a Publish to s is in progress
	m     *sinkMetrics

	mu          sync.Mutex
	failing     bool
	since       time.Time // first failure of the current streak
	lastErr     string
	consecutive int
	backlog     int
}

// NewFanout returns a Fanout over sinks. Sink names must be unique and
// non-empty, since metrics, logs and SinkRetry use them: NewFanout panics
// otherwise, as that is a wiring bug.
func NewFanout(sinks []Sink, o FanoutOptions) *Fanout {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	abort, abortFunc := context.WithCancel(context.Background())
	f := &Fanout{
		log:       log.Named("sink"),
		drained:   make(chan struct{}),
		abort:     abort,
		abortFunc: abortFunc,
	}
	seen := make(map[string]bool, len(sinks))
	for _, s := range sinks {
		if s == nil {
			panic("sink: NewFanout with a nil sink")
		}
		name := s.Name()
		if name == "" || seen[name] {
			panic(fmt.Sprintf("sink: NewFanout with an empty or duplicate sink name %q", name))
		}
		seen[name] = true
		retry, ok := o.SinkRetry[name]
		if !ok {
			retry = o.Retry
		}
		f.sinks = append(f.sinks, &member{
			s: s, name: name, retry: retry.withDefaults(),
			sem: make(chan struct{}, 1), m: o.Metrics.forSink(name),
		})
	}
	return f
}

// Publish delivers events to every sink and returns nil only when every
// sink acknowledged every event.
//
// The events are encoded once, into a Batch every sink reads. Sinks are
// published to concurrently. A failing sink is retried with the
// whole batch, with exponential backoff and jitter, until it succeeds, ctx
// ends or its MaxElapsedTime passes; a sink that already acknowledged the
// batch is not published to again in this call, so the others' retries
// cause it no duplicates. An error wrapped by backoff.Permanent stops the
// retries of that sink at once. The error joins one error per sink that
// did not acknowledge, each naming its sink.
func (f *Fanout) Publish(ctx context.Context, events []schema.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := f.enter(); err != nil {
		return err
	}
	defer f.leave()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(f.abort, func() { cancel(ErrClosed) })()

	batch := NewBatch(events)
	if len(f.sinks) == 1 {
		return f.publishTo(ctx, f.sinks[0], batch)
	}
	errs := make([]error, len(f.sinks))
	var wg sync.WaitGroup
	for i, m := range f.sinks {
		wg.Go(func() { errs[i] = f.publishTo(ctx, m, batch) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (f *Fanout) enter() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	f.active++
	return nil
}

func (f *Fanout) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active--
	if f.closed && f.active == 0 {
		close(f.drained)
	}
}

func (f *Fanout) publishTo(ctx context.Context, m *member, batch *Batch) error {
	n := batch.Len()
	m.addBacklog(n)
	defer m.addBacklog(-n)

	attempt := 0
	var lastErr error
	op := func() error {
		// The Sink contract forbids concurrent Publish calls on one sink;
		// the sink is held for one attempt, not across the waits, so a
		// batch the sink keeps refusing (a subject it may not publish to)
		// does not hold up other groups' batches.
		if end := m.budgetEnd(); !end.IsZero() && !time.Now().Before(end) {
			// The sink has failed for its whole budget: one more attempt
			// if it is free, no queueing behind other batches' attempts
			// (each may take a full write timeout).
			select {
			case m.sem <- struct{}{}:
			default:
				return backoff.Permanent(fmt.Errorf("failing for over %s: %s", m.retry.MaxElapsedTime, m.lastError()))
			}
		} else {
			select {
			case m.sem <- struct{}{}:
			case <-ctx.Done():
				return backoff.Permanent(ctx.Err())
			}
		}
		attempt++
		start := time.Now()
		err := m.s.Publish(ctx, batch)
		<-m.sem
		if err == nil {
			m.succeeded(time.Since(start), n)
			return nil
		}
		// An attempt cut short by our own context says nothing about the
		// sink's health.
		if ctx.Err() == nil {
			m.failed(err)
			lastErr = err
		}
		return err
	}
	notify := func(err error, wait time.Duration) {
		f.log.Warn("publish failed, will retry",
			zap.String("sink", m.name), zap.Int("attempt", attempt),
			zap.Error(err), zap.Duration("wait", wait))
	}
	b := &budgetBackOff{BackOff: m.retry.newBackOff(), deadline: m.budgetEnd}
	err := backoff.RetryNotify(op, backoff.WithContext(b, ctx), notify)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && lastErr != nil:
		return fmt.Errorf("publish to %s: %w (last error: %w)", m.name, ctx.Err(), lastErr)
	case ctx.Err() != nil:
		return fmt.Errorf("publish to %s: %w", m.name, ctx.Err())
	default:
		return fmt.Errorf("publish to %s: %w", m.name, err)
	}
}

// budgetEnd is when the sink's current failing streak exhausts
// MaxElapsedTime; zero when the sink is not failing or has no bound.
func (m *member) budgetEnd() time.Time {
	if m.retry.MaxElapsedTime <= 0 {
		return time.Time{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.failing {
		return time.Time{}
	}
	return m.since.Add(m.retry.MaxElapsedTime)
}

func (m *member) lastError() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr
}

func (m *member) addBacklog(n int) {
	m.mu.Lock()
	m.backlog += n
	m.mu.Unlock()
	if m.m != nil {
		m.m.backlog.Add(float64(n))
	}
}

func (m *member) failed(err error) {
	m.mu.Lock()
	if !m.failing {
		m.since = time.Now()
	}
	m.failing = true
	m.lastErr = err.Error()
	m.consecutive++
	m.mu.Unlock()
	if m.m != nil {
		m.m.errors.Inc()
	}
}

func (m *member) succeeded(d time.Duration, n int) {
	m.mu.Lock()
	m.failing = false
	m.lastErr = ""
	m.consecutive = 0
	m.mu.Unlock()
	if m.m != nil {
		m.m.duration.Observe(d.Seconds())
		m.m.published.Add(float64(n))
	}
}

func (m *member) status() SinkStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return SinkStatus{Name: m.name, Failing: m.failing, LastError: m.lastErr,
		ConsecutiveFailures: m.consecutive, Backlog: m.backlog}
}

// Status reports each sink's state, in the order the sinks were given.
func (f *Fanout) Status() []SinkStatus {
	out := make([]SinkStatus, len(f.sinks))
	for i, m := range f.sinks {
		out[i] = m.status()
	}
	return out
}

// Healthy returns nil when no sink is failing and every sink that
// implements HealthChecker reports healthy. The error names each unhealthy
// sink.
func (f *Fanout) Healthy(ctx context.Context) error {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return ErrClosed
	}
	var errs []error
	for _, m := range f.sinks {
		if st := m.status(); st.Failing {
			errs = append(errs, fmt.Errorf("sink %s: failing (%d attempts): %s",
				m.name, st.ConsecutiveFailures, st.LastError))
			continue
		}
		if hc, ok := m.s.(HealthChecker); ok {
			if err := hc.Healthy(ctx); err != nil {
				errs = append(errs, fmt.Errorf("sink %s: %w", m.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Close closes every sink and joins their errors. It first stops new
// Publish calls and waits for those in progress; when ctx ends before they
// return, it cancels them (they then fail with ErrClosed as the cause).
// The sinks are closed concurrently with ctx, so one slow sink does not
// use up the others' time. Calling Close again returns nil.
func (f *Fanout) Close(ctx context.Context) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	if f.active == 0 {
		close(f.drained)
	}
	f.mu.Unlock()

	select {
	case <-f.drained:
	case <-ctx.Done():
		f.abortFunc()
		// Sinks return promptly once their context ends (Sink contract).
		<-f.drained
	}
	f.abortFunc()

	errs := make([]error, len(f.sinks))
	var wg sync.WaitGroup
	for i, m := range f.sinks {
		wg.Go(func() {
			if err := m.s.Close(ctx); err != nil {
				errs[i] = fmt.Errorf("close %s: %w", m.name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
