// This file stays whole: it is the Scheduler's methods around its one
// lock (mu) over the groups and the run state; planning, claiming and
// finishing a poll read and write the same fields under it.

// Package poller schedules the polls of rollcall's groups: it lists each
// group's online members once per interval through a Lister (the Tencent
// rules of poller/tencent) and hands each complete snapshot to a Handler
// (the diff detector). It knows no API: a Lister reports each failure's
// Kind, and the scheduler reacts to that.
//
// # Schedule
//
// A cycle lasts Options.Interval. The n groups of a cycle start at offsets
// i*cycle/n so API calls are spread over the cycle instead of bursting at
// its start, and at most Options.Concurrency listings run at once. When the
// estimated calls of a cycle do not fit Options.RateLimit, the cycle is
// stretched until they do, and a warning says so.
//
// # Back-pressure
//
// A group whose previous poll is still in flight (typically its handler is
// retrying a sink that is down) is not polled again: its slot is skipped.
// Snapshots are therefore never queued, and no API call is made for a
// snapshot that could not be published anyway.
//
// # Failures
//
// A failed listing (KindTransient, KindGroupFailed, KindAuth) means no
// snapshot for that group this cycle: the handler is not called, so state
// is untouched and no event is emitted. A group the lister reports gone
// (KindGone) is delivered once as a Dismissed snapshot and then no longer
// polled. A fatal configuration error (KindFatal) stops Run with a
// *FatalError.
package poller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/groupid"
)

// Lister lists one group for the scheduler.
type Lister interface {
	// List returns the group's complete snapshot: every page read, members
	// de-duplicated and sorted, Truncated set when the list may miss
	// online members. The scheduler fills SDKAppID, GroupID and TakenAt.
	// A failure's Kind (see Error; any other error is KindTransient) says
	// how the scheduler reacts. List retries transient errors itself,
	// within ctx, whose deadline the scheduler sets to the end of the poll
	// cycle.
	List(ctx context.Context, groupID string) (schema.Snapshot, error)
	// Scheduled tells the lister the groups scheduled now, each time they
	// change (New, SetGroups, a dismissal), so that it can judge one
	// group's failure against all of them. It must not call back into the
	// Scheduler.
	Scheduled(groupIDs []string)
}

// ListerFunc adapts a function to a Lister that needs no group list.
type ListerFunc func(ctx context.Context, groupID string) (schema.Snapshot, error)

// List calls f.
func (f ListerFunc) List(ctx context.Context, groupID string) (schema.Snapshot, error) {
	return f(ctx, groupID)
}

// Scheduled does nothing.
func (ListerFunc) Scheduled([]string) {}

// Handler consumes complete snapshots (the diff detector). HandleSnapshot
// blocks until the snapshot's events are acknowledged by every sink and the
// state is committed, or returns an error. It is never called concurrently
// for one group, but is called concurrently for different groups. An
// *Error of KindGone (IsGone) says the group is stored as dismissed: it is
// no longer polled, as for a Dismissed snapshot.
type Handler interface {
	HandleSnapshot(ctx context.Context, snap schema.Snapshot) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, snap schema.Snapshot) error

// HandleSnapshot calls f.
func (f HandlerFunc) HandleSnapshot(ctx context.Context, snap schema.Snapshot) error {
	return f(ctx, snap)
}

// Defaults for the zero values of Options.
const (
	DefaultInterval    = 10 * time.Second
	DefaultConcurrency = 8
	// DefaultPageSize is the smaller of the documented pagination
	// thresholds (250 and 500 members), so the budget errs on the safe side.
	DefaultPageSize = 250
)

// staleCycles is how many cycles without a successful poll make a group
// stale, how long a group may stay blocked before a warning, and how long
// without progress makes the scheduler stalled.
const staleCycles = 3

// Options configure a Scheduler.
type Options struct {
	// SDKAppID is copied into every snapshot. Required.
	SDKAppID uint64
	// Groups are the ids of the groups to poll.
	Groups []string
	// Interval is poll.interval: each group is polled once per interval.
	// Default 10s. The API serves members from a cache refreshed every
	// 10 to 40 s, so polling faster mostly returns identical snapshots.
	Interval time.Duration
	// Concurrency bounds how many listings (API calls) run at once.
	// Default 8. Handlers are not bounded by it: each group has at most one
	// poll in flight, so at most len(Groups) handlers run at once.
	Concurrency int
	// RateLimit is the app's API budget in calls/s (tencent.rate_limit).
	// When a cycle needs more calls than Interval*RateLimit, the cycle is
	// stretched. 0 disables the check.
	RateLimit float64
	// PageSize is the number of members per page assumed when estimating a
	// group's calls per listing. Default 250.
	PageSize int
	// DrainTimeout is how long in-flight polls and handlers may keep going
	// after Run's ctx ends: they run under a context that is cancelled
	// DrainTimeout after ctx ends (0: at once). Scheduling of new polls
	// always stops when ctx ends. This lets a caller stop on a signal and
	// still finish publishing the snapshots already read.
	DrainTimeout time.Duration
	// Now is the clock (default time.Now). Timers run on real time, so a
	// test clock must advance like real time; it may be offset or jump.
	Now func() time.Time
	// Logger receives the scheduler's logs, named "poller"; nil: none.
	Logger *zap.Logger
	// Metrics may be nil.
	Metrics *Metrics
}

// Scheduler polls groups on a schedule. Its methods are safe for concurrent
// use; Run and RunOnce must not run at the same time.
type Scheduler struct {
	lister  Lister
	handler Handler
	o       Options
	now     func() time.Time
	log     *zap.Logger
	m       *Metrics
	sem     chan struct{}

	mu        sync.Mutex
	order     []string          // scheduled groups, in slot order
	groups    map[string]*group // scheduled groups, plus removed ones still in flight
	dismissed map[string]bool   // gone groups, never scheduled again
	st        runState
}

// group is the scheduler's view of one group.
type group struct {
	id            string
	scheduled     bool      // false once removed by SetGroups or dismissed
	addedAt       time.Time // for staleness before the first success
	inFlight      bool
	since         time.Time // start of the in-flight poll
	blockedWarned bool
	lastSize      int // members at the last successful listing; -1 unknown
	lastOK        time.Time
	failing       bool
}

type runState struct {
	running        bool
	runStart       time.Time
	lastProgress   time.Time // a poll completed
	lastCycleStart time.Time
	lastCycleEnd   time.Time
	lastCycleDur   time.Duration
	cycle          time.Duration // effective cycle length
	lag            time.Duration // max lag of the current cycle
	authErr        error
	budgetCalls    int // calls per cycle last warned about; 0 = within budget
}

// New returns a Scheduler; it starts nothing.
func New(l Lister, h Handler, o Options) (*Scheduler, error) {
	if l == nil || h == nil {
		return nil, errors.New("poller: lister and handler are required")
	}
	if o.SDKAppID == 0 {
		return nil, errors.New("poller: sdkappid is required")
	}
	if o.Interval < 0 {
		return nil, fmt.Errorf("poll.interval %s: must be positive", o.Interval)
	}
	if o.Concurrency < 0 {
		return nil, fmt.Errorf("poll.concurrency %d: must be positive", o.Concurrency)
	}
	c := Config{Interval: o.Interval, Concurrency: o.Concurrency}
	c.SetDefaults()
	o.Interval, o.Concurrency = c.Interval, c.Concurrency
	switch {
	case o.PageSize < 0:
		return nil, fmt.Errorf("page size %d: must be positive", o.PageSize)
	case o.PageSize == 0:
		o.PageSize = DefaultPageSize
	}
	if o.RateLimit < 0 {
		return nil, fmt.Errorf("tencent.rate_limit %g: must not be negative", o.RateLimit)
	}
	if o.DrainTimeout < 0 {
		return nil, fmt.Errorf("drain timeout %s: must not be negative", o.DrainTimeout)
	}
	for _, id := range o.Groups {
		if err := groupid.Validate(id); err != nil {
			return nil, fmt.Errorf("groups.ids: %w", err)
		}
	}
	s := &Scheduler{
		lister:    l,
		handler:   h,
		o:         o,
		now:       o.Now,
		log:       o.Logger,
		m:         o.Metrics,
		sem:       make(chan struct{}, o.Concurrency),
		groups:    map[string]*group{},
		dismissed: map[string]bool{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	s.log = s.log.Named("poller")
	s.st.cycle = o.Interval
	s.m.setCycle(o.Interval, o.Interval)
	now := s.now()
	for _, id := range dedupe(o.Groups) {
		s.order = append(s.order, id)
		s.groups[id] = &group{id: id, scheduled: true, addedAt: now, lastSize: -1}
	}
	s.m.setGroups(len(s.order), 0)
	l.Scheduled(slices.Clone(s.order))
	return s, nil
}

func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// SetGroups replaces the group list while running (a SIGHUP reload). Added
// groups are polled from the next cycle; removed ones are not polled again
// (a poll already in flight completes). Groups that were dismissed stay
// unscheduled.
func (s *Scheduler) SetGroups(ids []string) {
	ids = dedupe(ids)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	want := make(map[string]bool, len(ids))
	var order, added, removed, ignored []string
	for _, id := range ids {
		if s.dismissed[id] {
			ignored = append(ignored, id)
			continue
		}
		want[id] = true
		order = append(order, id)
		g := s.groups[id]
		switch {
		case g == nil:
			s.groups[id] = &group{id: id, scheduled: true, addedAt: now, lastSize: -1}
			added = append(added, id)
		case !g.scheduled: // removed earlier, still in flight
			g.scheduled, g.addedAt = true, now
			added = append(added, id)
		}
	}
	for _, id := range s.order {
		if want[id] {
			continue
		}
		removed = append(removed, id)
		if g := s.groups[id]; g.inFlight {
			g.scheduled = false
		} else {
			delete(s.groups, id)
		}
	}
	s.order = order
	s.lister.Scheduled(slices.Clone(order))
	s.m.setGroups(len(s.order), s.staleLocked(now))
	if len(ignored) > 0 {
		s.log.Warn("ignoring dismissed groups: remove them from groups.ids", zap.Strings("group_ids", ignored))
	}
	if len(added)+len(removed) == 0 {
		s.log.Debug("groups unchanged", zap.Int("groups", len(order)))
		return
	}
	s.log.Info("groups changed", zap.Int("groups", len(order)),
		zap.Strings("added", added), zap.Strings("removed", removed))
}

// Dismissed reports whether the group was found gone and is no longer
// polled (group discovery stops watching it).
func (s *Scheduler) Dismissed(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dismissed[id]
}

// Groups returns the ids currently scheduled, in slot order.
func (s *Scheduler) Groups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}

// cycle tracks the polls started in one cycle, to time it.
type cycle struct {
	start      time.Time
	length     time.Duration
	pending    int  // polls started and not finished
	dispatched bool // every slot of the cycle has passed
}

// Run polls every scheduled group once per cycle until ctx ends, then waits
// for in-flight polls and handlers (see Options.DrainTimeout) and returns
// nil. When the API reports a fatal configuration error it cancels all
// work and returns a *FatalError. The first cycle starts at once.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.st.running {
		s.mu.Unlock()
		return errors.New("poller: already running")
	}
	now := s.now()
	s.st.running, s.st.runStart, s.st.lastProgress = true, now, now
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.st.running = false
		s.mu.Unlock()
	}()

	// Scheduling stops with ctx; the work already started keeps its own
	// context so that it can drain.
	sched, cancelSched := context.WithCancel(ctx)
	defer cancelSched()
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	var (
		fatalMu sync.Mutex
		fatal   *FatalError
	)
	done := func(err error) {
		var fe *FatalError
		if !errors.As(err, &fe) {
			return // already logged and counted
		}
		fatalMu.Lock()
		defer fatalMu.Unlock()
		if fatal == nil {
			fatal = fe
			cancelSched()
			cancelWork()
		}
	}

	drained := make(chan struct{})
	drainerDone := make(chan struct{})
	go func() {
		defer close(drainerDone)
		select {
		case <-ctx.Done():
		case <-drained:
			return
		}
		if d := s.o.DrainTimeout; d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-drained:
				return
			}
		}
		if n := s.Status().GroupsInFlight; n > 0 {
			s.log.Warn("drain deadline reached: cancelling the polls still in flight; their batches stay uncommitted and go out again after a restart",
				zap.Int("groups_in_flight", n), zap.Duration("drain_timeout", s.o.DrainTimeout))
		}
		cancelWork()
	}()

	var wg sync.WaitGroup
	pool := newWorkers()
	for sched.Err() == nil {
		s.runCycle(sched, work, &wg, pool, false, done)
	}
	wg.Wait()
	pool.close()
	close(drained)
	<-drainerDone

	fatalMu.Lock()
	defer fatalMu.Unlock()
	if fatal != nil {
		return fatal // the caller logs it: it ends the process
	}
	return nil
}

// RunOnce polls every scheduled group once, bounded by Concurrency, and
// waits for every handler. Polls start at once unless the rate budget
// requires spreading them. It returns nil when every group was polled and
// handled (dismissed groups included), otherwise an error joining each
// group's failure; a fatal API error is a *FatalError within it (errors.As).
// It must not be called while Run is running.
func (s *Scheduler) RunOnce(ctx context.Context) error {
	s.mu.Lock()
	running := s.st.running
	s.mu.Unlock()
	if running {
		return errors.New("poller: RunOnce called while Run is running")
	}
	var (
		mu   sync.Mutex
		errs []error
	)
	done := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	pool := newWorkers()
	s.runCycle(ctx, ctx, &wg, pool, true, done)
	wg.Wait()
	pool.close()
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// runCycle starts the polls of one cycle, each at its slot, and returns
// after the cycle's end (once: after the last poll started). done receives
// each poll's error (nil errors are not reported).
func (s *Scheduler) runCycle(sched, work context.Context, wg *sync.WaitGroup, pool *workers, once bool, done func(error)) {
	ids, length, interval := s.plan()
	start := s.now()
	c := &cycle{start: start, length: length}
	s.beginCycle(c)
	spread := !once || length > interval
	n := time.Duration(len(ids))
slots:
	for i, id := range ids {
		slot := start
		if spread {
			slot = start.Add(length * time.Duration(i) / n)
		}
		if !s.sleepUntil(sched, slot) {
			break
		}
		if !s.claim(id, c) {
			continue
		}
		select {
		case s.sem <- struct{}{}:
		case <-sched.Done():
			s.finish(id, c, "", 0)
			break slots
		}
		wg.Add(1)
		pool.do(func() {
			defer wg.Done()
			if err := s.poll(work, id, slot, c); err != nil {
				done(err)
			}
		})
	}
	s.endDispatch(c)
	if !once {
		s.sleepUntil(sched, start.Add(length))
	}
}

// sleepUntil waits until t or until ctx ends; it reports whether t came.
func (s *Scheduler) sleepUntil(ctx context.Context, t time.Time) bool {
	d := t.Sub(s.now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// plan returns the groups of the next cycle and the cycle's length,
// stretched to the rate budget, and logs when the budget verdict changes.
func (s *Scheduler) plan() (ids []string, length, interval time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids = slices.Clone(s.order)
	calls := 0
	for _, id := range ids {
		calls += pages(s.groups[id].lastSize, s.o.PageSize)
	}
	interval = s.o.Interval
	length = interval
	if s.o.RateLimit > 0 {
		if need := time.Duration(float64(calls) / s.o.RateLimit * float64(time.Second)); need > length {
			length = need
		}
	}
	s.st.cycle = length
	s.m.setCycle(interval, length)
	switch {
	case length > s.o.Interval && calls != s.st.budgetCalls:
		s.st.budgetCalls = calls
		s.log.Warn("poll cycle stretched to fit the api rate budget",
			zap.Int("groups", len(ids)),
			zap.Int("calls_per_cycle", calls),
			zap.Float64("budget_calls_per_second", s.o.RateLimit),
			zap.Duration("interval", s.o.Interval),
			zap.Duration("effective_cycle", length))
	case length == s.o.Interval && s.st.budgetCalls != 0:
		s.st.budgetCalls = 0
		s.log.Info("poll cycle back within the api rate budget",
			zap.Int("groups", len(ids)),
			zap.Int("calls_per_cycle", calls),
			zap.Float64("budget_calls_per_second", s.o.RateLimit),
			zap.Duration("interval", s.o.Interval))
	}
	return ids, length, interval
}

// SetInterval changes poll.interval from the next cycle on (a SIGHUP
// reload). The cycle in progress keeps its length.
func (s *Scheduler) SetInterval(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("poll.interval %s: must be positive", d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d != s.o.Interval {
		s.log.Info("poll interval changed", zap.Duration("from", s.o.Interval), zap.Duration("to", d))
		s.o.Interval = d
	}
	return nil
}

// pages estimates the API calls of one listing of a group of size members
// (-1: unknown, assumed one page).
func pages(size, pageSize int) int {
	if size <= pageSize {
		return 1
	}
	return (size + pageSize - 1) / pageSize
}

func (s *Scheduler) beginCycle(c *cycle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.lastCycleStart = c.start
	s.st.lag = 0
	s.m.setLag(0)
	s.m.setGroups(len(s.order), s.staleLocked(c.start))
}

// claim marks id in flight for a poll of cycle c; it reports false, and
// counts a skip, when the group's previous poll is still in flight or the
// group is no longer scheduled.
func (s *Scheduler) claim(id string, c *cycle) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[id]
	if g == nil || !g.scheduled {
		return false // removed since the cycle was planned
	}
	now := s.now()
	if g.inFlight {
		s.m.poll(resultSkipped)
		blocked := now.Sub(g.since)
		if blocked > staleCycles*c.length && !g.blockedWarned {
			g.blockedWarned = true
			s.log.Warn("group blocked behind publish", zap.String("group_id", id),
				zap.Time("since", g.since), zap.Duration("blocked", blocked))
		} else {
			s.log.Debug("skipping poll: previous poll still in flight", zap.String("group_id", id),
				zap.Time("since", g.since))
		}
		return false
	}
	g.inFlight, g.since = true, now
	c.pending++
	return true
}

// poll lists one group and hands the snapshot to the handler. It returns
// the group's failure, if any.
func (s *Scheduler) poll(ctx context.Context, id string, slot time.Time, c *cycle) error {
	taken := s.now()
	s.recordLag(taken.Sub(slot))

	// The listing must end with the cycle, retries included; the handler
	// gets ctx alone, as publishing may retry for long while a sink is down.
	lctx, cancel := context.WithTimeout(ctx, c.length)
	snap, err := s.lister.List(lctx, id)
	cancel()
	<-s.sem

	if err != nil {
		if ctx.Err() != nil {
			s.finish(id, c, "", -1)
			return fmt.Errorf("list members of %s: %w", id, err)
		}
		pe := asError(err)
		switch pe.Kind {
		case KindFatal:
			err = &FatalError{GroupID: id, Err: pe.Err}
			s.setAuthErr(err)
			s.finish(id, c, resultFailed, -1)
			return err
		case KindGone:
			snap = schema.Snapshot{Dismissed: true} // whatever the lister returned
		default:
			msg := pe.Msg
			if msg == "" {
				msg = "poll failed"
			}
			fields := append(append([]zap.Field{zap.String("group_id", id)}, pe.Fields...), zap.Error(pe.Err))
			s.log.Warn(msg, fields...)
			if pe.Kind == KindAuth {
				s.setAuthErr(pe.Err)
			}
			s.finish(id, c, resultFailed, -1)
			return fmt.Errorf("list members of %s: %w", id, err)
		}
	} else {
		s.setAuthErr(nil)
	}
	snap.SDKAppID, snap.GroupID, snap.TakenAt = s.o.SDKAppID, id, taken

	if err := s.handler.HandleSnapshot(ctx, snap); err != nil {
		if IsGone(err) {
			s.log.Warn("the group is stored as dismissed but is listed again; ignoring it", zap.String("group_id", id), zap.Error(err))
			s.finish(id, c, resultDismissed, 0)
			return nil
		}
		if ctx.Err() != nil {
			s.log.Debug("handle snapshot cancelled", zap.String("group_id", id), zap.Error(err))
			s.finish(id, c, "", -1)
		} else {
			s.log.Warn("handle snapshot failed", zap.String("group_id", id),
				zap.Bool("dismissed", snap.Dismissed), zap.Error(err))
			s.finish(id, c, resultFailed, -1)
		}
		return fmt.Errorf("handle snapshot of %s: %w", id, err)
	}
	if snap.Dismissed {
		s.finish(id, c, resultDismissed, 0)
		return nil
	}
	s.finish(id, c, resultOK, len(snap.Members))
	return nil
}

func (s *Scheduler) recordLag(lag time.Duration) {
	if lag < 0 {
		lag = 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if lag > s.st.lag {
		s.st.lag = lag
		s.m.setLag(lag.Seconds())
	}
}

func (s *Scheduler) setAuthErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.authErr = err
}

// finish records the end of a poll of id in cycle c. result is "" when the
// poll was cut short by shutdown; size is the member count of a successful
// listing.
func (s *Scheduler) finish(id string, c *cycle, result string, size int) {
	s.m.poll(result)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	g := s.groups[id]
	g.inFlight, g.blockedWarned = false, false
	switch result {
	case resultOK:
		g.lastOK, g.lastSize, g.failing = now, size, false
	case resultFailed:
		g.failing = true
	case resultDismissed:
		s.dismissed[id] = true
		g.scheduled = false
		s.order = slices.DeleteFunc(s.order, func(o string) bool { return o == id })
		s.lister.Scheduled(slices.Clone(s.order))
		s.log.Warn("group dismissed: no longer polled, remove it from groups.ids", zap.String("group_id", id))
		s.m.setGroups(len(s.order), s.staleLocked(now))
	}
	if !g.scheduled {
		delete(s.groups, id)
	}
	if result != "" {
		s.st.lastProgress = now
	}
	c.pending--
	s.maybeEndCycle(c, now)
}

func (s *Scheduler) endDispatch(c *cycle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.dispatched = true
	s.maybeEndCycle(c, s.now())
}

// maybeEndCycle records the end of c once every slot has passed and every
// poll started in it has finished.
func (s *Scheduler) maybeEndCycle(c *cycle, now time.Time) {
	if !c.dispatched || c.pending > 0 {
		return
	}
	c.pending = -1 // ended: never count it twice
	d := now.Sub(c.start)
	if now.After(s.st.lastCycleEnd) {
		s.st.lastCycleEnd, s.st.lastCycleDur = now, d
	}
	s.m.cycleDone(d.Seconds(), float64(now.UnixNano())/1e9)
	s.m.setGroups(len(s.order), s.staleLocked(now))
}

// staleLocked counts scheduled groups with no successful poll in the last
// staleCycles cycles (counting from when they were added).
func (s *Scheduler) staleLocked(now time.Time) int {
	n := 0
	limit := staleCycles * s.st.cycle
	for _, id := range s.order {
		g := s.groups[id]
		ref := g.lastOK
		if ref.IsZero() {
			ref = g.addedAt
		}
		if now.Sub(ref) > limit {
			n++
		}
	}
	return n
}
