package sink_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/sink"
	"github.com/rollcall-dev/rollcall/sink/sinktest"
)

// fast retries keep the tests quick; jitter still applies.
var fast = sink.RetryOptions{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond}

// fastWithin is fast with a failure budget (retry.max_elapsed_time).
func fastWithin(budget time.Duration) sink.RetryOptions {
	r := fast
	r.MaxElapsedTime = budget
	return r
}

// guard bounds waits for things that must happen; hitting it means a hang.
const guard = 30 * time.Second

// waitFor polls cond until it holds, failing t after guard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFanoutRetriesUntilHealed(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	rec := sinktest.NewRecorder("rec")
	rec.FailNext(3, nil)
	f := sink.NewFanout([]sink.Sink{rec}, sink.FanoutOptions{Retry: fast, Logger: zap.New(core)})
	batch := sinktest.Batch(0, 2)

	if err := f.Publish(context.Background(), batch); err != nil {
		t.Fatalf("Publish = %v, want nil after the sink healed", err)
	}
	if got := rec.Calls(); got != 4 {
		t.Errorf("sink called %d times, want 4 (3 failures, 1 success)", got)
	}
	if b := rec.Batches(); len(b) != 1 || len(b[0]) != len(batch) {
		t.Errorf("recorded batches %d, want the whole batch once", len(b))
	}
	if st := f.Status()[0]; st.Failing || st.ConsecutiveFailures != 0 || st.LastError != "" || st.Backlog != 0 {
		t.Errorf("status after success = %+v, want healthy and empty", st)
	}
	entries := logs.AllUntimed()
	if len(entries) != 3 {
		t.Fatalf("%d retry warnings, want 3", len(entries))
	}
	for i, e := range entries {
		fields := e.ContextMap()
		if fields["sink"] != "rec" || fields["attempt"] != int64(i+1) ||
			!strings.Contains(fmtAny(fields["error"]), sinktest.ErrInjected.Error()) || fields["wait"] == nil {
			t.Errorf("warning %d fields = %v, want sink, attempt %d, error, wait", i, fields, i+1)
		}
	}
}

func fmtAny(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

func TestFanoutMaxElapsedTimeGivesUp(t *testing.T) {
	rec := sinktest.NewRecorder("rec")
	rec.FailUntilHealed(nil)
	f := sink.NewFanout([]sink.Sink{rec}, sink.FanoutOptions{Retry: fastWithin(30 * time.Millisecond)})

	err := f.Publish(context.Background(), sinktest.Batch(0, 1))
	if !errors.Is(err, sinktest.ErrInjected) || !strings.Contains(err.Error(), "rec") {
		t.Fatalf("Publish = %v, want the sink's error naming the sink", err)
	}
	if rec.Calls() < 2 {
		t.Errorf("sink called %d times, want retries before giving up", rec.Calls())
	}
	st := f.Status()[0]
	if !st.Failing || st.ConsecutiveFailures != rec.Calls() || !strings.Contains(st.LastError, sinktest.ErrInjected.Error()) {
		t.Errorf("status = %+v, want failing with %d failures", st, rec.Calls())
	}
	if err := f.Healthy(context.Background()); err == nil || !strings.Contains(err.Error(), "rec") {
		t.Errorf("Healthy = %v, want an error naming the sink", err)
	}
}

// TestFanoutBudgetIsPerSink: MaxElapsedTime counts from the first failure
// of the sink's streak, not per batch: once spent, each later batch gets a
// single attempt, so a run with many groups on a down sink ends after
// about MaxElapsedTime, not once per group. A success starts over.
func TestFanoutBudgetIsPerSink(t *testing.T) {
	rec := sinktest.NewRecorder("rec")
	rec.FailUntilHealed(nil)
	f := sink.NewFanout([]sink.Sink{rec}, sink.FanoutOptions{Retry: fastWithin(30 * time.Millisecond)})
	if err := f.Publish(context.Background(), sinktest.Batch(0, 1)); err == nil {
		t.Fatal("Publish to a down sink succeeded")
	}
	for i := range 3 {
		before := rec.Calls()
		if err := f.Publish(context.Background(), sinktest.Batch(i+1, 1)); !errors.Is(err, sinktest.ErrInjected) {
			t.Fatalf("batch %d: Publish = %v", i+1, err)
		}
		if n := rec.Calls() - before; n != 1 {
			t.Errorf("batch %d after the budget was spent: %d attempts, want 1", i+1, n)
		}
	}
	rec.Heal()
	if err := f.Publish(context.Background(), sinktest.Batch(9, 1)); err != nil {
		t.Fatalf("Publish after the sink healed: %v", err)
	}
	rec.FailNext(2, nil)
	if err := f.Publish(context.Background(), sinktest.Batch(10, 1)); err != nil {
		t.Fatalf("a new streak has a new budget: %v", err)
	}
}

// slowFailSink fails every Publish after a while, like a broker that
// drops packets until the write timeout.
type slowFailSink struct {
	*sinktest.Recorder
	calls atomic.Int32
}

func (s *slowFailSink) Publish(ctx context.Context, _ *sink.Batch) error {
	s.calls.Add(1)
	select {
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
	}
	return errors.New("write timeout")
}

// TestFanoutSpentBudgetDoesNotQueue: once a sink's budget is spent, a
// batch whose attempt would have to wait behind another batch's fails at
// once instead: a run with many groups on a down sink does not take a
// write timeout per group.
func TestFanoutSpentBudgetDoesNotQueue(t *testing.T) {
	s := &slowFailSink{Recorder: sinktest.NewRecorder("slow")}
	f := sink.NewFanout([]sink.Sink{s}, sink.FanoutOptions{Retry: fastWithin(time.Millisecond)})
	if err := f.Publish(context.Background(), sinktest.Batch(0, 1)); err == nil {
		t.Fatal("Publish to a failing sink succeeded")
	}
	s.calls.Store(0)
	const batches = 20
	errs := make(chan error, batches)
	var wg sync.WaitGroup
	for i := range batches {
		wg.Go(func() { errs <- f.Publish(context.Background(), sinktest.Batch(i+1, 1)) })
	}
	wg.Wait()
	close(errs)
	queued := 0
	for err := range errs {
		if err == nil {
			t.Fatal("a batch succeeded on a failing sink")
		}
		if strings.Contains(err.Error(), "failing for over") {
			queued++
		}
	}
	if n := s.calls.Load(); queued == 0 || int(n) >= batches {
		t.Fatalf("%d attempts for %d batches, %d failed without one: want batches not to queue for attempts", n, batches, queued)
	}
}

// groupSink refuses, on every attempt, the events of one group (a subject
// the broker forbids) and accepts the others.
type groupSink struct {
	*sinktest.Recorder
	bad string
}

func (g groupSink) Publish(ctx context.Context, batch *sink.Batch) error {
	if events := batch.Events(); len(events) > 0 && events[0].Data.GroupID == g.bad {
		return errors.New("permission denied for " + g.bad)
	}
	return g.Recorder.Publish(ctx, batch)
}

// TestFanoutOneGroupRefusedDoesNotBlockOthers: while one group's batch is
// retried against a sink that refuses it, other groups' batches to the
// same sink still go through (the sink is held per attempt, not across
// the waits).
func TestFanoutOneGroupRefusedDoesNotBlockOthers(t *testing.T) {
	var bad, good []schema.Event // one group's events each
	for _, e := range sinktest.Batch(0, 1) {
		switch e.Data.GroupID {
		case sinktest.Groups[0]:
			bad = append(bad, e)
		case sinktest.Groups[1]:
			good = append(good, e)
		}
	}
	gs := groupSink{Recorder: sinktest.NewRecorder("rec"), bad: sinktest.Groups[0]}
	f := sink.NewFanout([]sink.Sink{gs}, sink.FanoutOptions{Retry: sink.RetryOptions{InitialInterval: 50 * time.Millisecond, MaxInterval: 50 * time.Millisecond}})
	ctx, cancel := context.WithCancel(context.Background())
	badDone := make(chan error, 1)
	go func() { badDone <- f.Publish(ctx, bad) }()
	waitFor(t, "the refused batch retrying", func() bool { return f.Status()[0].ConsecutiveFailures >= 2 })
	gctx, gcancel := context.WithTimeout(context.Background(), guard)
	defer gcancel()
	if err := f.Publish(gctx, good); err != nil {
		t.Fatalf("the other group's batch: %v", err)
	}
	cancel()
	if err := <-badDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("refused batch = %v, want cancelled", err)
	}
	if b := gs.Batches(); len(b) != 1 || b[0][0].ID != good[0].ID {
		t.Fatalf("sink holds %v, want only the good batch", b)
	}
}

func TestFanoutAcknowledgedSinkIsNotRepublished(t *testing.T) {
	good, flaky := sinktest.NewRecorder("good"), sinktest.NewRecorder("flaky")
	flaky.FailNext(2, nil)
	f := sink.NewFanout([]sink.Sink{good, flaky}, sink.FanoutOptions{Retry: fast})
	if err := f.Publish(context.Background(), sinktest.Batch(0, 3)); err != nil {
		t.Fatal(err)
	}
	if good.Calls() != 1 || len(good.Events()) != 9 {
		t.Errorf("good sink: %d calls, %d events; want 1 call, 9 events", good.Calls(), len(good.Events()))
	}
	if flaky.Calls() != 3 || len(flaky.Events()) != 9 {
		t.Errorf("flaky sink: %d calls, %d events; want 3 calls, 9 events", flaky.Calls(), len(flaky.Events()))
	}
}

func TestFanoutOneSinkFailingDoesNotFailTheOthers(t *testing.T) {
	good, bad := sinktest.NewRecorder("good"), sinktest.NewRecorder("bad")
	bad.FailUntilHealed(nil)
	f := sink.NewFanout([]sink.Sink{good, bad}, sink.FanoutOptions{
		Retry: fast, // unbounded by default...
		SinkRetry: map[string]sink.RetryOptions{ // ...but bounded for this sink
			"bad": {InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond, MaxElapsedTime: 20 * time.Millisecond},
		},
	})
	err := f.Publish(context.Background(), sinktest.Batch(0, 1))
	if err == nil || !strings.Contains(err.Error(), "bad") || strings.Contains(err.Error(), "good") {
		t.Fatalf("Publish = %v, want an error about the bad sink only", err)
	}
	if len(good.Events()) != 3 {
		t.Errorf("good sink got %d events, want 3", len(good.Events()))
	}
}

func TestFanoutContextCancelStopsRetries(t *testing.T) {
	rec := sinktest.NewRecorder("rec")
	rec.FailUntilHealed(nil)
	// The wait before the next attempt is an hour: only cancellation can
	// end this Publish.
	f := sink.NewFanout([]sink.Sink{rec}, sink.FanoutOptions{Retry: sink.RetryOptions{InitialInterval: time.Hour}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Publish(ctx, sinktest.Batch(0, 1)) }()
	waitFor(t, "the first failure", func() bool { return f.Status()[0].Failing })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, sinktest.ErrInjected) {
			t.Fatalf("Publish = %v, want context.Canceled with the sink's last error", err)
		}
	case <-time.After(guard):
		t.Fatal("Publish kept retrying after its context was cancelled")
	}
	if rec.Calls() != 1 {
		t.Errorf("sink called %d times, want 1", rec.Calls())
	}
	if st := f.Status()[0]; st.Backlog != 0 {
		t.Errorf("backlog %d after Publish returned, want 0", st.Backlog)
	}
}

func TestFanoutMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := sink.NewMetrics(reg)
	a, b := sinktest.NewRecorder("a"), sinktest.NewRecorder("b")
	f := sink.NewFanout([]sink.Sink{a, b}, sink.FanoutOptions{Retry: fast, Metrics: m})

	// Every sink's series exist before anything is published.
	for _, name := range []string{
		"rollcall_sink_publish_duration_seconds", "rollcall_sink_publish_errors_total",
		"rollcall_sink_backlog_events", "rollcall_sink_events_published_total",
	} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 2 {
			t.Errorf("%s: %d series (%v), want 2", name, n, err)
		}
	}

	// While a sink fails, its backlog shows the waiting events.
	a.FailUntilHealed(nil)
	batch := sinktest.Batch(0, 4) // 12 events
	done := make(chan error, 1)
	go func() { done <- f.Publish(context.Background(), batch) }()
	waitFor(t, "sink a to fail", func() bool { return f.Status()[0].ConsecutiveFailures >= 2 })
	if got := gaugeValue(t, reg, "rollcall_sink_backlog_events", "a"); got != 12 {
		t.Errorf("backlog{a} = %v while failing, want 12", got)
	}
	if st := f.Status()[0]; st.Backlog != 12 {
		t.Errorf("Status backlog = %d while failing, want 12", st.Backlog)
	}
	a.Heal()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	failures := float64(a.Calls() - 1)

	want := map[string]map[string]float64{
		"rollcall_sink_publish_errors_total":   {"a": failures, "b": 0},
		"rollcall_sink_events_published_total": {"a": 12, "b": 12},
		"rollcall_sink_backlog_events":         {"a": 0, "b": 0},
	}
	for metric, bySink := range want {
		for s, v := range bySink {
			if got := gaugeValue(t, reg, metric, s); got != v {
				t.Errorf("%s{sink=%q} = %v, want %v", metric, s, got, v)
			}
		}
	}
	if got := histogramCount(t, reg, "a"); got != 1 {
		t.Errorf("publish duration count{a} = %d, want 1 (one successful Publish)", got)
	}
}

// gaugeValue reads a counter or gauge sample by its sink label.
func gaugeValue(t *testing.T, reg prometheus.Gatherer, metric, sinkName string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() != sinkName {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s{sink=%q}", metric, sinkName)
	return 0
}

func histogramCount(t *testing.T, reg prometheus.Gatherer, sinkName string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "rollcall_sink_publish_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == sinkName {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	t.Fatalf("no duration histogram for %s", sinkName)
	return 0
}

func TestFanoutNilMetricsAndLogger(t *testing.T) {
	rec := sinktest.NewRecorder("rec")
	rec.FailNext(1, nil)
	f := sink.NewFanout([]sink.Sink{rec}, sink.FanoutOptions{Retry: fast})
	if err := f.Publish(context.Background(), sinktest.Batch(0, 1)); err != nil {
		t.Fatal(err)
	}
}

func TestFanoutHealthy(t *testing.T) {
	a, b := sinktest.NewRecorder("a"), sinktest.NewRecorder("b")
	f := sink.NewFanout([]sink.Sink{a, b}, sink.FanoutOptions{Retry: fast})
	if err := f.Healthy(context.Background()); err != nil {
		t.Fatalf("Healthy = %v, want nil", err)
	}
	// The Recorder's HealthChecker reports the outage before any Publish.
	b.FailUntilHealed(errors.New("broker unreachable"))
	err := f.Healthy(context.Background())
	if err == nil || !strings.Contains(err.Error(), "sink b") || strings.Contains(err.Error(), "sink a") {
		t.Fatalf("Healthy = %v, want an error naming sink b only", err)
	}
	b.Heal()
	if err := f.Healthy(context.Background()); err != nil {
		t.Fatalf("Healthy after heal = %v, want nil", err)
	}
}

func TestFanoutEmptyBatchIsNoop(t *testing.T) {
	rec := sinktest.NewRecorder("rec")
	f := sink.NewFanout([]sink.Sink{rec}, sink.FanoutOptions{})
	if err := f.Publish(context.Background(), nil); err != nil || rec.Calls() != 0 {
		t.Fatalf("Publish(nil) = %v with %d sink calls, want nil and none", err, rec.Calls())
	}
}

type closeErrSink struct{ *sinktest.Recorder }

func (s closeErrSink) Close(ctx context.Context) error {
	s.Recorder.Close(ctx)
	return errors.New("flush timed out")
}

func TestFanoutClose(t *testing.T) {
	a := sinktest.NewRecorder("a")
	b := closeErrSink{sinktest.NewRecorder("b")}
	f := sink.NewFanout([]sink.Sink{a, b}, sink.FanoutOptions{})
	err := f.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "close b") || !strings.Contains(err.Error(), "flush timed out") {
		t.Fatalf("Close = %v, want b's error", err)
	}
	if !a.Closed() || !b.Closed() {
		t.Fatal("Close did not close every sink")
	}
	if err := f.Publish(context.Background(), sinktest.Batch(0, 1)); !errors.Is(err, sink.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
	if err := f.Close(context.Background()); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
}

func TestFanoutCloseAbortsStuckPublish(t *testing.T) {
	rec := sinktest.NewRecorder("rec")
	rec.FailUntilHealed(nil)
	f := sink.NewFanout([]sink.Sink{rec}, sink.FanoutOptions{Retry: sink.RetryOptions{InitialInterval: time.Hour}})
	done := make(chan error, 1)
	go func() { done <- f.Publish(context.Background(), sinktest.Batch(0, 1)) }()
	waitFor(t, "the first failure", func() bool { return f.Status()[0].Failing })

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no time to wait for the retrying Publish
	if err := f.Close(ctx); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("aborted Publish = %v, want context.Canceled", err)
	}
	if !rec.Closed() {
		t.Fatal("sink not closed")
	}
}

func TestFanoutCloseWaitsForPublishInProgress(t *testing.T) {
	rec := sinktest.NewRecorder("rec")
	rec.FailNext(3, nil)
	f := sink.NewFanout([]sink.Sink{rec}, sink.FanoutOptions{Retry: sink.RetryOptions{InitialInterval: 10 * time.Millisecond}})
	done := make(chan error, 1)
	go func() { done <- f.Publish(context.Background(), sinktest.Batch(0, 1)) }()
	waitFor(t, "the first failure", func() bool { return f.Status()[0].Failing })
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Publish in progress during Close = %v, want it to finish", err)
	}
	if len(rec.Events()) != 3 {
		t.Fatalf("%d events delivered, want 3", len(rec.Events()))
	}
}

// serialSink records how many Publish calls overlap.
type serialSink struct {
	inFlight, maxInFlight atomic.Int32
	mu                    sync.Mutex
	n                     int
}

func (s *serialSink) Name() string { return "serial" }
func (s *serialSink) Publish(ctx context.Context, batch *sink.Batch) error {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxInFlight.Load()
		if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(time.Millisecond) // widen the window an overlap would need
	s.mu.Lock()
	s.n += batch.Len()
	s.mu.Unlock()
	return nil
}
func (s *serialSink) Close(context.Context) error { return nil }

func TestFanoutSerializesPublishPerSink(t *testing.T) {
	s := &serialSink{}
	f := sink.NewFanout([]sink.Sink{s, sinktest.NewRecorder("other")}, sink.FanoutOptions{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := f.Publish(context.Background(), sinktest.Batch(i*10, 1)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := s.maxInFlight.Load(); got != 1 {
		t.Errorf("%d concurrent Publish calls on one sink, want 1", got)
	}
	if s.n != 24 {
		t.Errorf("sink got %d events, want 24", s.n)
	}
}

func TestNewFanoutRejectsDuplicateNames(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewFanout accepted two sinks named the same")
		}
	}()
	sink.NewFanout([]sink.Sink{sinktest.NewRecorder("x"), sinktest.NewRecorder("x")}, sink.FanoutOptions{})
}

// permanentSink fails with an error marked as not worth retrying.
type permanentSink struct{ *sinktest.Recorder }

func (p permanentSink) Publish(ctx context.Context, batch *sink.Batch) error {
	_ = p.Recorder.Publish(ctx, batch) // count the call
	return backoff.Permanent(errors.New("message too large"))
}

func TestFanoutStopsOnPermanentError(t *testing.T) {
	p := permanentSink{sinktest.NewRecorder("p")}
	f := sink.NewFanout([]sink.Sink{p}, sink.FanoutOptions{Retry: fast}) // unbounded
	err := f.Publish(context.Background(), sinktest.Batch(0, 1))
	if err == nil || !strings.Contains(err.Error(), "message too large") {
		t.Fatalf("Publish = %v, want the permanent error", err)
	}
	if p.Calls() != 1 {
		t.Fatalf("sink called %d times, want 1: a permanent error is not retried", p.Calls())
	}
}
