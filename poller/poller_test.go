package poller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rollcall-dev/rollcall/schema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const appID = 1400000000

// clock is real time shifted by an offset that a test may move forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// recorder is a fake Lister and Handler that records calls.
type recorder struct {
	mu        sync.Mutex
	listed    map[string]int
	scheduled [][]string // every Scheduled call
	snaps     []schema.Snapshot
	list      func(ctx context.Context, id string) ([]schema.Member, error)
	handle    func(ctx context.Context, snap schema.Snapshot) error
	changed   chan struct{} // signalled on every call
}

func newRecorder() *recorder {
	return &recorder{listed: map[string]int{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) List(ctx context.Context, id string) (schema.Snapshot, error) {
	r.mu.Lock()
	r.listed[id]++
	r.mu.Unlock()
	r.signal()
	if r.list != nil {
		ms, err := r.list(ctx, id)
		return schema.Snapshot{Members: ms}, err
	}
	return schema.Snapshot{Members: []schema.Member{{Account: "u-" + id, JoinTime: 1}}}, nil
}

func (r *recorder) Scheduled(ids []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scheduled = append(r.scheduled, ids)
}

func (r *recorder) HandleSnapshot(ctx context.Context, snap schema.Snapshot) error {
	var err error
	if r.handle != nil {
		err = r.handle(ctx, snap)
	}
	r.mu.Lock()
	r.snaps = append(r.snaps, snap)
	r.mu.Unlock()
	r.signal()
	return err
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.listed[id]
}

func (r *recorder) handled(id string) []schema.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []schema.Snapshot
	for _, s := range r.snaps {
		if s.GroupID == id {
			out = append(out, s)
		}
	}
	return out
}

// waitFor polls cond until it holds; it fails the test after 10s, a bound
// on a hang, not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type fixture struct {
	s     *Scheduler
	rec   *recorder
	logs  *observer.ObservedLogs
	m     *Metrics
	reg   *prometheus.Registry
	clock *clock
}

func newFixture(t *testing.T, o Options, setup func(*recorder)) *fixture {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	reg := prometheus.NewRegistry()
	f := &fixture{rec: newRecorder(), logs: logs, m: NewMetrics(reg), reg: reg, clock: &clock{}}
	if setup != nil {
		setup(f.rec)
	}
	if o.SDKAppID == 0 {
		o.SDKAppID = appID
	}
	o.Logger = zap.New(core)
	o.Metrics = f.m
	if o.Now == nil {
		o.Now = f.clock.now
	}
	s, err := New(f.rec, f.rec, o)
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	return f
}

// run starts Run in the background; stop cancels it and returns its error.
func (f *fixture) run(t *testing.T) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- f.s.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-errc
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func (f *fixture) polls(result string) float64 {
	return testutil.ToFloat64(f.m.polls.WithLabelValues(result))
}

func (f *fixture) logged(msg string) []observer.LoggedEntry {
	return f.logs.FilterMessage(msg).All()
}

// kindErr is a lister's failure of the given kind, described in the
// scheduler's log by the lister's own fields (as poller/tencent does with
// the API's kind and code).
func kindErr(kind Kind, msg string) error {
	return fmt.Errorf("list members: %w", &Error{Kind: kind, Err: errors.New(msg),
		Fields: []zap.Field{zap.String("kind", "api-"+kind.String()), zap.String("code", "test")}})
}

func TestNewValidates(t *testing.T) {
	l := newRecorder()
	for name, o := range map[string]Options{
		"no sdkappid":          {Groups: []string{"a"}},
		"negative interval":    {SDKAppID: 1, Interval: -time.Second},
		"negative concurrency": {SDKAppID: 1, Concurrency: -1},
		"negative page size":   {SDKAppID: 1, PageSize: -1},
		"negative rate limit":  {SDKAppID: 1, RateLimit: -1},
		"negative drain":       {SDKAppID: 1, DrainTimeout: -1},
		"empty group id":       {SDKAppID: 1, Groups: []string{"a", ""}},
		"group id too long":    {SDKAppID: 1, Groups: []string{strings.Repeat("g", 49)}},
		"group id with a tab":  {SDKAppID: 1, Groups: []string{"a\tb"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(l, l, o); err == nil {
				t.Fatal("New accepted invalid options")
			}
		})
	}
	if _, err := New(nil, l, Options{SDKAppID: 1}); err == nil {
		t.Fatal("New accepted a nil lister")
	}
	s, err := New(l, l, Options{SDKAppID: 1, Groups: []string{"a", "b", "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.o.Interval != DefaultInterval || s.o.Concurrency != DefaultConcurrency || s.o.PageSize != DefaultPageSize {
		t.Errorf("defaults not applied: %+v", s.o)
	}
	if got := s.Groups(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Groups = %v, want duplicates dropped", got)
	}
}

func TestEachGroupPolledOncePerIntervalSpread(t *testing.T) {
	// Timers never fire early but may fire late on a loaded machine, so
	// every assertion here is a bound that lateness cannot break.
	const interval = 100 * time.Millisecond
	groups := []string{"g0", "g1", "g2", "g3"}
	f := newFixture(t, Options{Groups: groups, Interval: interval}, nil)
	runStart := f.clock.now()
	stop := f.run(t)
	waitFor(t, "three polls of every group", func() bool {
		for _, g := range groups {
			if len(f.rec.handled(g)) < 3 {
				return false
			}
		}
		return true
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	elapsed := f.clock.now().Sub(runStart)

	// Once per interval: no more polls than cycles that could have started.
	maxPolls := int(elapsed/interval) + 1
	for _, g := range groups {
		if n := f.rec.count(g); n > maxPolls {
			t.Errorf("%s listed %d times in %s, want at most %d (once per %s)", g, n, elapsed, maxPolls, interval)
		}
	}
	// Spread: group i of n is not polled before its slot at i*interval/n.
	// All at once would put g3's first poll near runStart.
	for i, g := range groups {
		slot := runStart.Add(time.Duration(i) * interval / time.Duration(len(groups)))
		if first := f.rec.handled(g)[0].TakenAt; first.Before(slot) {
			t.Errorf("%s first polled %s after start, before its slot at %s", g, first.Sub(runStart), slot.Sub(runStart))
		}
	}
}

func TestSnapshotContents(t *testing.T) {
	f := newFixture(t, Options{Groups: []string{"a"}}, nil)
	f.clock.advance(1000 * time.Hour) // TakenAt must come from the injected clock
	var listedAt time.Time
	f.rec.list = func(ctx context.Context, id string) ([]schema.Member, error) {
		listedAt = f.clock.now()
		return []schema.Member{{Account: "alice", JoinTime: 7}}, nil
	}
	before := f.clock.now()
	if err := f.s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	snaps := f.rec.handled("a")
	if len(snaps) != 1 {
		t.Fatalf("handled %d snapshots, want 1", len(snaps))
	}
	s := snaps[0]
	if s.SDKAppID != appID || s.GroupID != "a" || s.Dismissed || len(s.Members) != 1 || s.Members[0].Account != "alice" {
		t.Errorf("snapshot = %+v", s)
	}
	if s.TakenAt.Before(before) || s.TakenAt.After(listedAt) {
		t.Errorf("TakenAt %v, want the poll's start, between %v and %v", s.TakenAt, before, listedAt)
	}
}

func TestListingDeadlineIsTheCycle(t *testing.T) {
	f := newFixture(t, Options{Groups: []string{"a"}, Interval: time.Minute}, nil)
	var deadline time.Time
	var handlerHasDeadline bool
	f.rec.list = func(ctx context.Context, id string) ([]schema.Member, error) {
		deadline, _ = ctx.Deadline()
		return nil, nil
	}
	f.rec.handle = func(ctx context.Context, snap schema.Snapshot) error {
		_, handlerHasDeadline = ctx.Deadline()
		return nil
	}
	start := time.Now()
	if err := f.s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if deadline.IsZero() || deadline.Before(start.Add(time.Minute)) || deadline.After(time.Now().Add(time.Minute)) {
		t.Errorf("listing deadline %v, want one interval after the poll started (%v)", deadline, start)
	}
	if handlerHasDeadline {
		t.Error("the handler got the listing deadline; it must get the run context")
	}
}

func TestConcurrencyBound(t *testing.T) {
	var groups []string
	for i := range 10 {
		groups = append(groups, fmt.Sprintf("g%d", i))
	}
	var cur, peak atomic.Int32
	gate := make(chan struct{})
	f := newFixture(t, Options{Groups: groups, Concurrency: 3}, func(r *recorder) {
		r.list = func(ctx context.Context, id string) ([]schema.Member, error) {
			n := cur.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-gate
			cur.Add(-1)
			return nil, nil
		}
	})
	errc := make(chan error, 1)
	go func() { errc <- f.s.RunOnce(context.Background()) }()
	waitFor(t, "3 listings in flight", func() bool { return cur.Load() == 3 })
	if n := f.rec.count("g3"); n != 0 {
		t.Errorf("a 4th group was listed while 3 were in flight")
	}
	close(gate)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != 3 {
		t.Errorf("peak listings in flight = %d, want 3", p)
	}
	for _, g := range groups {
		if len(f.rec.handled(g)) != 1 {
			t.Errorf("%s handled %d times, want 1", g, len(f.rec.handled(g)))
		}
	}
}

func TestGroupSkippedWhileHandlerBlocks(t *testing.T) {
	const interval = 20 * time.Millisecond
	release := make(chan struct{})
	f := newFixture(t, Options{Groups: []string{"a", "b"}, Interval: interval}, nil)
	var blocked atomic.Bool
	blocked.Store(true)
	f.rec.handle = func(ctx context.Context, snap schema.Snapshot) error {
		if snap.GroupID == "a" && blocked.Load() {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	stop := f.run(t)
	waitFor(t, "group a blocked and skipped for several cycles", func() bool {
		return len(f.logged("group blocked behind publish")) > 0 && len(f.rec.handled("b")) >= 5
	})
	if n := f.rec.count("a"); n != 1 {
		t.Errorf("group a listed %d times while its handler blocked, want 1", n)
	}
	if f.polls(resultSkipped) < 3 {
		t.Errorf("skipped polls = %v, want >= 3", f.polls(resultSkipped))
	}
	w := f.logged("group blocked behind publish")
	if len(w) != 1 || w[0].Level != zapcore.WarnLevel || w[0].ContextMap()["group_id"] != "a" {
		t.Errorf("blocked warning = %+v, want one warning for group a", w)
	}
	if _, ok := w[0].ContextMap()["since"]; !ok {
		t.Error("blocked warning lacks since")
	}
	if st := f.s.Status(); st.GroupsInFlight != 1 {
		t.Errorf("GroupsInFlight = %d, want 1", st.GroupsInFlight)
	}

	blocked.Store(false)
	close(release)
	waitFor(t, "group a polled again", func() bool { return len(f.rec.handled("a")) >= 3 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func TestDismissedGroupDeliveredThenUnscheduled(t *testing.T) {
	f := newFixture(t, Options{Groups: []string{"a", "gone"}}, func(r *recorder) {
		r.list = func(ctx context.Context, id string) ([]schema.Member, error) {
			if id == "gone" {
				return nil, kindErr(KindGone, "no such group")
			}
			return nil, nil
		}
	})
	failHandler := true
	f.rec.handle = func(ctx context.Context, snap schema.Snapshot) error {
		if snap.Dismissed && failHandler {
			return errors.New("sink down")
		}
		return nil
	}
	// The handler failed: the group stays scheduled, to be delivered again.
	if err := f.s.RunOnce(context.Background()); err == nil || !strings.Contains(err.Error(), "sink down") {
		t.Fatalf("RunOnce = %v, want the handler's error", err)
	}
	if !slices.Contains(f.s.Groups(), "gone") {
		t.Fatal("group unscheduled although its dismissal was not handled")
	}

	failHandler = false
	if err := f.s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	snaps := f.rec.handled("gone")
	if len(snaps) != 2 {
		t.Fatalf("dismissed snapshots handled = %d, want 2", len(snaps))
	}
	if s := snaps[1]; !s.Dismissed || s.SDKAppID != appID || s.TakenAt.IsZero() || len(s.Members) != 0 {
		t.Errorf("dismissed snapshot = %+v", s)
	}
	if got := f.s.Groups(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("Groups = %v, want [a]", got)
	}
	if w := f.logged("group dismissed: no longer polled, remove it from groups.ids"); len(w) != 1 || w[0].ContextMap()["group_id"] != "gone" {
		t.Errorf("dismissal warning = %+v", w)
	}
	if f.polls(resultDismissed) != 1 || f.polls(resultFailed) != 1 {
		t.Errorf("polls dismissed=%v failed=%v, want 1 and 1", f.polls(resultDismissed), f.polls(resultFailed))
	}

	// Not listed again, and a reload that still names it does not revive it.
	f.s.SetGroups([]string{"a", "gone"})
	if err := f.s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.rec.count("gone"); n != 2 {
		t.Errorf("dismissed group listed %d times, want 2", n)
	}
	if st := f.s.Status(); !slices.Equal(st.Dismissed, []string{"gone"}) || st.GroupsPolled != 1 {
		t.Errorf("status = %+v", st)
	}
	if len(f.logged("ignoring dismissed groups: remove them from groups.ids")) != 1 {
		t.Error("no warning when a reload names a dismissed group")
	}
}

func TestFatalErrorStopsRun(t *testing.T) {
	cause := errors.New("sdkappid/key unknown in this region's data center")
	handlerCancelled := make(chan struct{})
	f := newFixture(t, Options{Groups: []string{"a", "b"}, Interval: 40 * time.Millisecond, DrainTimeout: time.Hour}, func(r *recorder) {
		r.list = func(ctx context.Context, id string) ([]schema.Member, error) {
			if id == "b" {
				return nil, &Error{Kind: KindFatal, GroupID: id, Err: cause}
			}
			return nil, nil
		}
		// a's handler would block for the drain timeout: the fatal error
		// must cancel it.
		r.handle = func(ctx context.Context, snap schema.Snapshot) error {
			<-ctx.Done()
			close(handlerCancelled)
			return ctx.Err()
		}
	})
	err := f.s.Run(context.Background())
	var fe *FatalError
	if !errors.As(err, &fe) {
		t.Fatalf("Run = %v, want a *FatalError", err)
	}
	if fe.GroupID != "b" || !errors.Is(err, cause) || !strings.Contains(err.Error(), "region") {
		t.Errorf("fatal error = %q (group %q), want it to name the cause", err, fe.GroupID)
	}
	select {
	case <-handlerCancelled:
	default:
		t.Error("in-flight handler was not cancelled")
	}
	st := f.s.Status()
	if st.Running || !errors.Is(st.AuthOrConfigError, cause) {
		t.Errorf("status = %+v, want not running and the config error", st)
	}
	if n := f.rec.count("b"); n != 1 {
		t.Errorf("b listed %d times after a fatal error, want 1", n)
	}
}

func TestTransientFailureRetriedNextInterval(t *testing.T) {
	var calls atomic.Int32
	f := newFixture(t, Options{Groups: []string{"a"}, Interval: 20 * time.Millisecond}, func(r *recorder) {
		r.list = func(ctx context.Context, id string) ([]schema.Member, error) {
			if calls.Add(1) == 1 {
				return nil, kindErr(KindTransient, "server busy")
			}
			return nil, nil
		}
	})
	stop := f.run(t)
	waitFor(t, "a handled snapshot", func() bool { return len(f.rec.handled("a")) >= 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n, h := f.rec.count("a"), len(f.rec.handled("a")); h != n-1 {
		t.Errorf("listed %d, handled %d: the failed listing must not reach the handler", n, h)
	}
	if f.polls(resultFailed) != 1 || f.polls(resultOK) < 1 {
		t.Errorf("polls failed=%v ok=%v", f.polls(resultFailed), f.polls(resultOK))
	}
	w := f.logged("poll failed")
	if len(w) != 1 || w[0].Level != zapcore.WarnLevel {
		t.Fatalf("poll failed logs = %+v", w)
	}
	ctx := w[0].ContextMap()
	if ctx["group_id"] != "a" || ctx["kind"] != "api-transient" || ctx["code"] != "test" || ctx["error"] != "server busy" {
		t.Errorf("poll failed fields = %v, want group_id, the lister's fields and the error", ctx)
	}
	if st := f.s.Status(); st.GroupsFailing != 0 {
		t.Errorf("GroupsFailing = %d after recovery, want 0", st.GroupsFailing)
	}
}

func TestRunOnceJoinsErrors(t *testing.T) {
	errList := kindErr(KindGroupFailed, "bad request")
	errHandle := errors.New("publish failed")
	f := newFixture(t, Options{Groups: []string{"ok", "badlist", "badhandle"}}, func(r *recorder) {
		r.list = func(ctx context.Context, id string) ([]schema.Member, error) {
			if id == "badlist" {
				return nil, errList
			}
			return nil, nil
		}
		r.handle = func(ctx context.Context, snap schema.Snapshot) error {
			if snap.GroupID == "badhandle" {
				return errHandle
			}
			return nil
		}
	})
	err := f.s.RunOnce(context.Background())
	if !errors.Is(err, errList) || !errors.Is(err, errHandle) {
		t.Fatalf("RunOnce = %v, want both failures joined", err)
	}
	for _, id := range []string{"badlist", "badhandle"} {
		if !strings.Contains(err.Error(), id) {
			t.Errorf("error %q does not name group %s", err, id)
		}
	}
	if strings.Contains(err.Error(), "of ok") {
		t.Errorf("error %q names the successful group", err)
	}
	if st := f.s.Status(); st.GroupsFailing != 2 || st.GroupsPolled != 3 {
		t.Errorf("status = %+v, want 2 failing of 3", st)
	}

	f2 := newFixture(t, Options{Groups: []string{"a", "b"}}, nil)
	if err := f2.s.RunOnce(context.Background()); err != nil {
		t.Fatalf("RunOnce = %v, want nil", err)
	}

	f3 := newFixture(t, Options{Groups: []string{"a"}}, func(r *recorder) {
		r.list = func(ctx context.Context, id string) ([]schema.Member, error) {
			return nil, kindErr(KindFatal, "not an app admin")
		}
	})
	var fe *FatalError
	if err := f3.s.RunOnce(context.Background()); !errors.As(err, &fe) {
		t.Fatalf("RunOnce = %v, want a *FatalError inside", err)
	}
}

func TestSetGroupsAddsAndRemoves(t *testing.T) {
	f := newFixture(t, Options{Groups: []string{"a", "b"}, Interval: 20 * time.Millisecond}, nil)
	stop := f.run(t)
	waitFor(t, "a and b polled", func() bool { return len(f.rec.handled("a")) >= 1 && len(f.rec.handled("b")) >= 1 })
	f.s.SetGroups([]string{"b", "c"})
	aCount := f.rec.count("a")
	waitFor(t, "c polled twice", func() bool { return len(f.rec.handled("c")) >= 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := f.rec.count("a"); n != aCount {
		t.Errorf("removed group a listed %d more times", n-aCount)
	}
	if got := f.s.Groups(); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("Groups = %v", got)
	}
	w := f.logged("groups changed")
	if len(w) != 1 {
		t.Fatalf("groups changed logs = %d, want 1", len(w))
	}
	ctx := w[0].ContextMap()
	if fmt.Sprint(ctx["added"]) != "[c]" || fmt.Sprint(ctx["removed"]) != "[a]" {
		t.Errorf("groups changed fields = %v", ctx)
	}
	if v := testutil.ToFloat64(f.m.groupsPolled); v != 2 {
		t.Errorf("rollcall_groups_polled = %v, want 2", v)
	}
}

func TestBudgetStretchesCycle(t *testing.T) {
	const interval = 10 * time.Millisecond
	f := newFixture(t, Options{Groups: []string{"a", "b", "c"}, Interval: interval, RateLimit: 100}, func(r *recorder) {
		r.list = func(ctx context.Context, id string) ([]schema.Member, error) {
			if id == "a" {
				return make([]schema.Member, 600), nil // 3 pages of 250
			}
			return nil, nil
		}
	})
	warns := func() []observer.LoggedEntry { return f.logged("poll cycle stretched to fit the api rate budget") }

	// Before any poll: 1 call per group, 3 calls / 100 per s = 30ms > 10ms.
	if _, length, _ := f.s.plan(); length != 30*time.Millisecond {
		t.Fatalf("cycle = %s, want 30ms", length)
	}
	w := warns()
	if len(w) != 1 {
		t.Fatalf("budget warnings = %d, want 1", len(w))
	}
	want := map[string]any{
		"groups": int64(3), "calls_per_cycle": int64(3), "budget_calls_per_second": 100.0,
		"interval": interval, "effective_cycle": 30 * time.Millisecond,
	}
	for k, v := range want {
		if got := w[0].ContextMap()[k]; got != v {
			t.Errorf("%s = %v (%T), want %v", k, got, got, v)
		}
	}

	// a now has 600 members: 3+1+1 calls.
	if err := f.s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, length, _ := f.s.plan(); length != 50*time.Millisecond {
		t.Fatalf("cycle = %s, want 50ms", length)
	}
	if c, i := testutil.ToFloat64(f.m.cycle), testutil.ToFloat64(f.m.interval); c != 0.05 || i != 0.01 {
		t.Errorf("rollcall_poll_cycle_seconds = %v, rollcall_poll_interval_seconds = %v; want 0.05 and 0.01", c, i)
	}
	if w := warns(); len(w) != 2 || w[1].ContextMap()["calls_per_cycle"] != int64(5) {
		t.Fatalf("budget warnings = %+v, want a second one with 5 calls", w)
	}
	f.s.plan()
	if n := len(warns()); n != 2 {
		t.Errorf("budget warnings = %d, want no repeat while unchanged", n)
	}
	if st := f.s.Status(); st.Cycle != 50*time.Millisecond {
		t.Errorf("Status.Cycle = %s", st.Cycle)
	}

	f.s.SetGroups([]string{"b"})
	if _, length, _ := f.s.plan(); length != interval {
		t.Errorf("cycle = %s, want the interval once within budget", length)
	}
	if n := len(f.logged("poll cycle back within the api rate budget")); n != 1 {
		t.Errorf("back-within-budget logs = %d, want 1", n)
	}
}

func TestPages(t *testing.T) {
	for _, c := range []struct{ size, want int }{{-1, 1}, {0, 1}, {250, 1}, {251, 2}, {500, 2}, {1000, 4}} {
		if got := pages(c.size, 250); got != c.want {
			t.Errorf("pages(%d) = %d, want %d", c.size, got, c.want)
		}
	}
}

func TestStatusAndStall(t *testing.T) {
	const interval = 20 * time.Millisecond
	f := newFixture(t, Options{Groups: []string{"a", "b"}, Interval: interval}, nil)
	if st := f.s.Status(); st.Running || st.Stalled || !st.LastCycleEnd.IsZero() || st.GroupsPolled != 2 {
		t.Errorf("initial status = %+v", st)
	}
	if err := f.s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := f.s.Status()
	if st.LastCycleStart.IsZero() || st.LastCycleEnd.Before(st.LastCycleStart) || st.GroupsFailing != 0 || st.GroupsStale != 0 {
		t.Errorf("status after a cycle = %+v", st)
	}

	// Every handler blocks (sinks down): no poll completes.
	f.rec.handle = func(ctx context.Context, snap schema.Snapshot) error {
		<-ctx.Done()
		return ctx.Err()
	}
	stop := f.run(t)
	waitFor(t, "both groups in flight", func() bool { return f.s.Status().GroupsInFlight == 2 })
	if st := f.s.Status(); !st.Running || st.Stalled {
		t.Errorf("status = %+v, want running and not yet stalled", st)
	}
	f.clock.advance(time.Hour)
	st = f.s.Status()
	if !st.Stalled || st.GroupsStale != 2 {
		t.Errorf("status an hour later = %+v, want stalled with 2 stale groups", st)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := f.s.Status(); st.Running || st.Stalled {
		t.Errorf("status after Run = %+v", st)
	}
}

func TestDrain(t *testing.T) {
	for _, c := range []struct {
		name      string
		drain     time.Duration
		wantAlive bool
	}{{"no drain timeout cancels handlers", 0, false}, {"drain timeout lets handlers finish", time.Hour, true}} {
		t.Run(c.name, func(t *testing.T) {
			release := make(chan struct{})
			entered := make(chan struct{})
			var aliveAtRelease atomic.Bool
			f := newFixture(t, Options{Groups: []string{"a"}, Interval: time.Hour, DrainTimeout: c.drain}, nil)
			f.rec.handle = func(ctx context.Context, snap schema.Snapshot) error {
				close(entered)
				select {
				case <-release:
					aliveAtRelease.Store(ctx.Err() == nil)
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- f.s.Run(ctx) }()
			<-entered
			cancel() // a signal: stop scheduling
			if c.wantAlive {
				close(release)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if c.wantAlive {
				if !aliveAtRelease.Load() || f.polls(resultOK) != 1 {
					t.Error("in-flight handler was not allowed to finish within the drain timeout")
				}
			} else if f.polls(resultOK) != 0 {
				t.Error("handler finished although its context was cancelled")
			}
			if n := f.logs.FilterMessageSnippet("drain deadline reached").Len(); n != map[bool]int{true: 0, false: 1}[c.wantAlive] {
				t.Errorf("drain deadline warnings = %d", n)
			}
			if n := f.rec.count("a"); n != 1 {
				t.Errorf("listed %d times, want 1: no poll after ctx ended", n)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	// Every result series exists from the start.
	if n := testutil.CollectAndCount(m.polls, "rollcall_polls_total"); n != 4 {
		t.Errorf("rollcall_polls_total series = %d, want 4", n)
	}
	var nilMetrics *Metrics
	nilMetrics.poll(resultOK) // must not panic
	nilMetrics.cycleDone(1, 1)

	f := newFixture(t, Options{Groups: []string{"a", "b", "c"}}, func(r *recorder) {
		r.list = func(ctx context.Context, id string) ([]schema.Member, error) {
			if id == "c" {
				return nil, kindErr(KindTransient, "server busy")
			}
			return nil, nil
		}
	})
	start := time.Now()
	_ = f.s.RunOnce(context.Background())
	if f.polls(resultOK) != 2 || f.polls(resultFailed) != 1 {
		t.Errorf("polls ok=%v failed=%v, want 2 and 1", f.polls(resultOK), f.polls(resultFailed))
	}
	if v := testutil.ToFloat64(f.m.groupsPolled); v != 3 {
		t.Errorf("rollcall_groups_polled = %v, want 3", v)
	}
	if v := testutil.ToFloat64(f.m.lastCycle); v < float64(start.Unix()) {
		t.Errorf("rollcall_last_cycle_timestamp_seconds = %v, want >= %d", v, start.Unix())
	}
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var cycles uint64
	for _, mf := range mfs {
		if mf.GetName() == "rollcall_poll_cycle_duration_seconds" {
			cycles = mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() != "result" {
					t.Errorf("%s has label %s: no group ids as labels", mf.GetName(), lp.GetName())
				}
			}
		}
	}
	if cycles != 1 {
		t.Errorf("cycle duration observations = %d, want 1", cycles)
	}
	// c never succeeded: stale once 3 cycles have passed.
	f.clock.advance(time.Hour)
	f.s.SetGroups([]string{"a", "b", "c"})
	if v := testutil.ToFloat64(f.m.groupsStale); v != 3 {
		t.Errorf("rollcall_groups_stale = %v, want 3 an hour later", v)
	}
}

func TestLagRecorded(t *testing.T) {
	// One listing at a time: b waits for a's listing, so it starts late.
	gate := make(chan struct{})
	f := newFixture(t, Options{Groups: []string{"a", "b"}, Concurrency: 1}, func(r *recorder) {
		r.list = func(ctx context.Context, id string) ([]schema.Member, error) {
			if id == "a" {
				<-gate
			}
			return nil, nil
		}
	})
	errc := make(chan error, 1)
	go func() { errc <- f.s.RunOnce(context.Background()) }()
	waitFor(t, "a listing", func() bool { return f.rec.count("a") == 1 })
	f.clock.advance(time.Minute) // b's slot is now a minute in the past
	close(gate)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if lag := testutil.ToFloat64(f.m.lag); lag < 60 {
		t.Errorf("rollcall_poll_lag_seconds = %v, want >= 60", lag)
	}
	if st := f.s.Status(); st.Lag < time.Minute {
		t.Errorf("Status.Lag = %s, want >= 1m", st.Lag)
	}
}

// TestKinds: a failure's kind is found through wrapping; an error that is
// not an *Error is transient; IsGone tells a dismissal.
func TestKinds(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Kind
	}{
		{errors.New("plain"), KindTransient},
		{kindErr(KindGroupFailed, "x"), KindGroupFailed},
		{fmt.Errorf("again: %w", kindErr(KindGone, "x")), KindGone},
		{&Error{Kind: KindFatal, Err: errors.New("x")}, KindFatal},
	} {
		if got := KindOf(tc.err); got != tc.want {
			t.Errorf("KindOf(%v) = %s, want %s", tc.err, got, tc.want)
		}
		if IsGone(tc.err) != (tc.want == KindGone) {
			t.Errorf("IsGone(%v) = %v", tc.err, !(tc.want == KindGone))
		}
	}
	inner := errors.New("the api's words")
	if e := (&Error{Kind: KindAuth, GroupID: "g", Err: inner}); e.Error() != "the api's words" || !errors.Is(e, inner) {
		t.Errorf("Error() = %q, want Err's message and chain", e.Error())
	}
}

// TestAuthFailureInStatus: an auth failure is reported by Status until a
// listing succeeds; other failures are not.
func TestAuthFailureInStatus(t *testing.T) {
	var fail error // RunOnce waits for its listings: no race
	f := newFixture(t, Options{Groups: []string{"a"}}, func(r *recorder) {
		r.list = func(ctx context.Context, id string) ([]schema.Member, error) { return nil, fail }
	})
	auth := &Error{Kind: KindAuth, Err: errors.New("usersig rejected")}
	fail = auth
	_ = f.s.RunOnce(context.Background())
	if st := f.s.Status(); !errors.Is(st.AuthOrConfigError, auth.Err) {
		t.Fatalf("AuthOrConfigError = %v, want the auth failure", st.AuthOrConfigError)
	}
	fail = &Error{Kind: KindTransient, Err: errors.New("busy")}
	_ = f.s.RunOnce(context.Background())
	if st := f.s.Status(); !errors.Is(st.AuthOrConfigError, auth.Err) {
		t.Fatalf("AuthOrConfigError = %v after a transient failure, want the auth failure kept", st.AuthOrConfigError)
	}
	fail = nil
	if err := f.s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := f.s.Status(); st.AuthOrConfigError != nil {
		t.Fatalf("AuthOrConfigError = %v after a success, want nil", st.AuthOrConfigError)
	}
}

func TestRunOnceRefusedWhileRunning(t *testing.T) {
	f := newFixture(t, Options{Groups: []string{"a"}, Interval: time.Hour}, nil)
	stop := f.run(t)
	waitFor(t, "Run started", func() bool { return f.s.Status().Running })
	if err := f.s.RunOnce(context.Background()); err == nil {
		t.Error("RunOnce ran concurrently with Run")
	}
	if err := f.s.Run(context.Background()); err == nil {
		t.Error("a second Run started")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkRunOnce measures the scheduler's own overhead per group with a
// lister and handler that do nothing.
func BenchmarkRunOnce(b *testing.B) {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("@TGS#%d", i)
	}
	nop := ListerFunc(func(ctx context.Context, id string) (schema.Snapshot, error) { return schema.Snapshot{}, nil })
	h := HandlerFunc(func(ctx context.Context, snap schema.Snapshot) error { return nil })
	s, err := New(nop, h, Options{SDKAppID: appID, Groups: ids, Metrics: NewMetrics(nil)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.RunOnce(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSetIntervalAppliesToTheNextCycle(t *testing.T) {
	f := newFixture(t, Options{Groups: []string{"a"}, Interval: time.Hour}, nil)
	if _, length, _ := f.s.plan(); length != time.Hour {
		t.Fatalf("cycle = %s, want 1h", length)
	}
	if err := f.s.SetInterval(0); err == nil {
		t.Fatal("SetInterval(0) accepted")
	}
	stop := f.run(t)
	waitFor(t, "first poll", func() bool { return f.rec.count("a") >= 1 })
	// The first cycle lasts an hour; the new interval applies from the
	// next one, so shorten it and check the hour-long cycle is the last.
	if err := f.s.SetInterval(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, length, interval := f.s.plan(); length != 20*time.Millisecond || interval != 20*time.Millisecond {
		t.Fatalf("after SetInterval: cycle %s interval %s, want 20ms", length, interval)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(f.logged("poll interval changed")) != 1 {
		t.Error("interval change not logged")
	}
}

// TestListerToldScheduledGroups: the lister learns the scheduled groups
// from New, each SetGroups, and a dismissal (for rules over all groups,
// such as poller/tencent's 10007 rule).
func TestListerToldScheduledGroups(t *testing.T) {
	f := newFixture(t, Options{Groups: []string{"a", "b", "a"}}, func(r *recorder) {
		r.list = func(ctx context.Context, id string) ([]schema.Member, error) {
			if id == "c" {
				return nil, kindErr(KindGone, "gone")
			}
			return nil, nil
		}
	})
	f.s.SetGroups([]string{"b", "c"})
	if err := f.s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.rec.mu.Lock()
	got := f.rec.scheduled
	f.rec.mu.Unlock()
	want := [][]string{{"a", "b"}, {"b", "c"}, {"b"}}
	if len(got) != len(want) {
		t.Fatalf("Scheduled calls = %v, want %v", got, want)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Fatalf("Scheduled calls = %v, want %v", got, want)
		}
	}
}

// TestHandlerSaysDismissed: a handler error of KindGone (the detector's
// state says dismissed) stops the group's polling like a dismissed
// snapshot, without failing the run.
func TestHandlerSaysDismissed(t *testing.T) {
	f := newFixture(t, Options{Groups: []string{"a", "b"}}, func(r *recorder) {
		r.handle = func(_ context.Context, snap schema.Snapshot) error {
			if snap.GroupID == "b" {
				return fmt.Errorf("handle: %w", &Error{Kind: KindGone, GroupID: "b", Err: errors.New("stored as dismissed")})
			}
			return nil
		}
	})
	if err := f.s.RunOnce(context.Background()); err != nil {
		t.Fatalf("RunOnce = %v", err)
	}
	if got := f.s.Groups(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("Groups = %v, want b no longer polled", got)
	}
	if st := f.s.Status(); !slices.Equal(st.Dismissed, []string{"b"}) {
		t.Errorf("Dismissed = %v", st.Dismissed)
	}
}

func TestSchedulerDismissed(t *testing.T) {
	gone := ListerFunc(func(_ context.Context, id string) (schema.Snapshot, error) {
		return schema.Snapshot{}, &Error{Kind: KindGone, GroupID: id, Err: errors.New("gone")}
	})
	s, err := New(gone, HandlerFunc(func(context.Context, schema.Snapshot) error { return nil }),
		Options{SDKAppID: 1, Groups: []string{"g"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Dismissed("g") {
		t.Fatal("dismissed before any poll")
	}
	if err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !s.Dismissed("g") || s.Dismissed("other") {
		t.Fatalf("Dismissed(g) = %v, Dismissed(other) = %v", s.Dismissed("g"), s.Dismissed("other"))
	}
}
