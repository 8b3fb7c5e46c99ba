// Package poller schedules the polls of rollcall's groups: it lists each
// group's online members once per interval through a MemberLister (the
// Tencent client in poller/tencent) and hands each complete snapshot to a
// Handler (the diff detector).
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
// A failed listing (transient after the client's retries, rate limited, bad
// request) means no snapshot for that group this cycle: the handler is not
// called, so state is untouched and no event is emitted. A group the API
// reports gone is delivered once as a Dismissed snapshot and then no longer
// polled. A fatal configuration error stops Run with a *FatalError.
package poller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/poller/tencent"
	"github.com/rollcall-dev/rollcall/schema"
)

// MemberLister lists the online members of a group: every page, members
// de-duplicated and sorted. It retries transient errors itself, within ctx,
// whose deadline the scheduler sets to the end of the poll cycle.
type MemberLister interface {
	ListMembers(ctx context.Context, groupID string) ([]schema.Member, error)
}

// OnlineCounter is implemented by listers that can count a group's online
// members without the list's cap (get_online_member_num). The scheduler
// uses it to recognise the silent 30-member cap.
type OnlineCounter interface {
	OnlineMemberNum(ctx context.Context, groupID string) (int, error)
}

// GroupChecker is implemented by listers that can tell whether a group
// exists apart from listing it (get_group_info). The scheduler asks it
// before writing a group off on a listing's 10010/10015, as the fact sheet
// recommends; when it cannot tell, the listing's answer stands.
type GroupChecker interface {
	GroupExists(ctx context.Context, groupID string) (bool, error)
}

// featureCap is what get_members lists, without an error, for apps whose
// plan or console switch lacks the online-member-list feature.
const featureCap = 30

// MemberListerFunc adapts a function to MemberLister.
type MemberListerFunc func(ctx context.Context, groupID string) ([]schema.Member, error)

// ListMembers calls f.
func (f MemberListerFunc) ListMembers(ctx context.Context, groupID string) ([]schema.Member, error) {
	return f(ctx, groupID)
}

// Handler consumes complete snapshots (the diff detector). HandleSnapshot
// blocks until the snapshot's events are acknowledged by every sink and the
// state is committed, or returns an error. It is never called concurrently
// for one group, but is called concurrently for different groups. An error
// with a method GroupDismissed() bool that returns true says the group is
// stored as dismissed: it is no longer polled, as for a Dismissed snapshot.
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
	// MemberCap is poll.member_cap. When it is above 30 and a listing
	// returns exactly 30 members, a lister that is an OnlineCounter is asked
	// for the group's online count: more than 30 means the app lacks the
	// online-member-list feature, and the snapshot is marked Capped so the
	// diff treats it as truncated instead of reporting false departures.
	// Zero disables the check.
	MemberCap int
	// PageSize is the number of members per page assumed when estimating a
	// group's calls per listing. Default 250.
	PageSize int
	// DrainTimeout is how long in-flight polls and handlers may keep going
	// after Run's ctx ends: they run under a context that is cancelled
	// DrainTimeout after ctx ends (0: at once). Scheduling of new polls
	// always stops when ctx ends. This lets a caller stop on a signal and
	// still finish publishing the snapshots already read.
	DrainTimeout time.Duration
	// Classify maps a ListMembers error to its kind. Default tencent.KindOf.
	Classify func(error) tencent.Kind
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
	lister   MemberLister
	handler  Handler
	o        Options
	classify func(error) tencent.Kind
	now      func() time.Time
	log      *zap.Logger
	m        *Metrics
	sem      chan struct{}

	mu        sync.Mutex
	order     []string          // scheduled groups, in slot order
	groups    map[string]*group // scheduled groups, plus removed ones still in flight
	dismissed map[string]bool   // gone groups, never scheduled again
	st        runState
	// countUnavailable is set once get_online_member_num is found not served.
	countUnavailable atomic.Bool
}

// group is the scheduler's view of one group.
type group struct {
	id            string
	scheduled     bool      // false once removed by SetGroups or dismissed
	addedAt       time.Time // for staleness before the first success
	inFlight      bool
	since         time.Time // start of the in-flight poll
	blockedWarned bool
	cappedWarned  bool
	lastSize      int // members at the last successful listing; -1 unknown
	lastOK        time.Time
	failing       bool
	denied        bool // the last listing failed with 10007 (no permission)
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
func New(l MemberLister, h Handler, o Options) (*Scheduler, error) {
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
		if id == "" {
			return nil, errors.New("groups.ids: empty group id")
		}
	}
	s := &Scheduler{
		lister:    l,
		handler:   h,
		o:         o,
		classify:  o.Classify,
		now:       o.Now,
		log:       o.Logger,
		m:         o.Metrics,
		sem:       make(chan struct{}, o.Concurrency),
		groups:    map[string]*group{},
		dismissed: map[string]bool{},
	}
	if s.classify == nil {
		s.classify = tencent.KindOf
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
	for sched.Err() == nil {
		s.runCycle(sched, work, &wg, false, done)
	}
	wg.Wait()
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
	s.runCycle(ctx, ctx, &wg, true, done)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// runCycle starts the polls of one cycle, each at its slot, and returns
// after the cycle's end (once: after the last poll started). done receives
// each poll's error (nil errors are not reported).
func (s *Scheduler) runCycle(sched, work context.Context, wg *sync.WaitGroup, once bool, done func(error)) {
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
		go func() {
			defer wg.Done()
			if err := s.poll(work, id, slot, c); err != nil {
				done(err)
			}
		}()
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

// SetMemberCap changes poll.member_cap (see Options.MemberCap) for the
// polls started from now on.
func (s *Scheduler) SetMemberCap(n int) {
	s.mu.Lock()
	s.o.MemberCap = n
	s.mu.Unlock()
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
	members, err := s.lister.ListMembers(lctx, id)
	capped := err == nil && s.capped(lctx, id, len(members))
	stillThere := err != nil && ctx.Err() == nil && s.classify(err) == tencent.KindGroupGone && s.exists(lctx, id)
	cancel()
	<-s.sem

	snap := schema.Snapshot{SDKAppID: s.o.SDKAppID, GroupID: id, TakenAt: taken, Members: members, Capped: capped}
	if err != nil {
		if ctx.Err() != nil {
			s.finish(id, c, "", -1)
			return fmt.Errorf("list members of %s: %w", id, err)
		}
		kind := s.classify(err)
		switch kind {
		case tencent.KindFatalConfig:
			err = &FatalError{GroupID: id, Err: err}
			s.setAuthErr(err)
			s.finish(id, c, resultFailed, -1)
			return err
		case tencent.KindGroupGone:
			if stillThere {
				s.log.Warn("get_members says the group is gone but get_group_info finds it; not writing it off, trying again next cycle",
					zap.String("group_id", id), zap.Error(err))
				s.finish(id, c, resultFailed, -1)
				return fmt.Errorf("list members of %s: %w", id, err)
			}
			snap = schema.Snapshot{SDKAppID: s.o.SDKAppID, GroupID: id, TakenAt: taken, Dismissed: true}
		default:
			var ae *tencent.APIError
			if s.deny(id, errors.As(err, &ae) && ae.Code == codeNoPermission) {
				// 10007 on one group is that group's type; on every
				// group it is the identifier: a configuration error.
				err = &FatalError{GroupID: id, Err: fmt.Errorf("every group answers 10007: %w", err)}
				s.setAuthErr(err)
				s.finish(id, c, resultFailed, -1)
				return err
			}
			s.log.Warn("poll failed", zap.String("group_id", id), zap.String("kind", kind.String()),
				zap.String("code", tencent.CodeLabel(err)), zap.Error(err))
			if kind == tencent.KindAuth {
				s.setAuthErr(err)
			}
			s.finish(id, c, resultFailed, -1)
			return fmt.Errorf("list members of %s: %w", id, err)
		}
	} else {
		s.setAuthErr(nil)
		s.deny(id, false)
	}

	if err := s.handler.HandleSnapshot(ctx, snap); err != nil {
		var gd interface{ GroupDismissed() bool }
		if errors.As(err, &gd) && gd.GroupDismissed() {
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
	s.finish(id, c, resultOK, len(members))
	return nil
}

// exists asks a GroupChecker lister whether the group get_members called
// gone still exists. Without a checker, or when it cannot tell, the answer
// is false: the listing's 10010/10015 stands.
func (s *Scheduler) exists(ctx context.Context, id string) bool {
	gc, ok := s.lister.(GroupChecker)
	if !ok {
		return false
	}
	found, err := gc.GroupExists(ctx, id)
	if err != nil {
		s.log.Warn("could not confirm with get_group_info that the group is gone; trusting get_members",
			zap.String("group_id", id), zap.Error(err))
		return false
	}
	return found
}

// codeNoPermission is get_members' "insufficient permission": a group of a
// type the API does not serve, or an identifier without the right.
const codeNoPermission = 10007

// deny records whether id's last listing was refused with 10007 and
// reports whether every scheduled group's now is.
func (s *Scheduler) deny(id string, denied bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.groups[id]; g != nil {
		g.denied = denied
	}
	if !denied {
		return false
	}
	for _, g := range s.groups {
		if g.scheduled && !g.denied {
			return false
		}
	}
	return true
}

// capped reports whether a listing of n members was cut by a cap without
// reaching it, which the length alone cannot tell:
//   - the silent 30-member cap (no online-member-list feature): exactly 30
//     listed while the online count says more;
//   - the 1,000 cap with a list that shifted while it was paged (members
//     joining between page requests push the oldest out of the window, so
//     fewer than the cap come back): a listing just under the cap while the
//     online count is at or above it.
//
// When the count fails it answers true: a capped snapshot only keeps
// unlisted members out of view (their leave waits for a later snapshot),
// while taking a cut list at face value would report them all as left.
func (s *Scheduler) capped(ctx context.Context, id string, n int) bool {
	oc, ok := s.lister.(OnlineCounter)
	s.mu.Lock()
	memberCap := s.o.MemberCap
	s.mu.Unlock()
	if !ok || memberCap <= 0 || n >= memberCap {
		return false // no check configured, or already truncated by length
	}
	thirty := n == featureCap && memberCap > featureCap
	nearCap := memberCap > featureCap && n >= memberCap-capSlack(memberCap) // a paged list
	if !thirty && !nearCap {
		return false
	}
	online, err := oc.OnlineMemberNum(ctx, id)
	if err != nil {
		if k := s.classify(err); k == tencent.KindBadRequest || k == tencent.KindFatalConfig {
			// The API does not serve the count (unknown command, no
			// permission). Exactly 30 is the silent cap's signature: in
			// doubt, capped (unlisted members wait out of view rather than
			// all being reported gone). A list a little under 1,000 only
			// shifts if members join while it is paged: taken as it is.
			lvl := zap.DebugLevel
			if s.countUnavailable.CompareAndSwap(false, true) {
				lvl = zap.WarnLevel // once: it is the API's answer for every group
			}
			s.log.Log(lvl, "get_online_member_num is not available: a list of exactly 30 is treated as possibly capped (set poll.member_cap: 30 if the app lacks the online-member-list feature), others are taken as they are",
				zap.String("group_id", id), zap.Int("listed", n), zap.Error(err))
			return thirty
		}
		s.log.Warn("online member count unavailable for a list near a cap; treating the list as possibly capped",
			zap.String("group_id", id), zap.Int("listed", n), zap.Error(err))
		return true
	}
	if nearCap && online >= memberCap {
		s.log.Debug("listing shifted under the member cap while paged; treating it as capped",
			zap.String("group_id", id), zap.Int("listed", n), zap.Int("online", online))
		return true
	}
	if !thirty || online <= n {
		return false
	}
	s.mu.Lock()
	g := s.groups[id]
	warn := g != nil && !g.cappedWarned
	if warn {
		g.cappedWarned = true
	}
	s.mu.Unlock()
	if warn {
		s.log.Warn("get_members lists 30 members while more are online: the app lacks the online-member-list feature (plan and console switch); treating the list as capped, set poll.member_cap: 30",
			zap.String("group_id", id), zap.Int("listed", n), zap.Int("online", online))
	}
	return true
}

// capSlack is how far under the member cap a listing may fall because the
// list shifted while it was paged: a tenth of the cap (100 of 1,000).
func capSlack(memberCap int) int { return max(memberCap/10, 1) }

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
