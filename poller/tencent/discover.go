package tencent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/rollcall-dev/rollcall/schema/promdef"
)

// Discovery's limits and defaults.
const (
	// DefaultDiscoverInterval is groups.discover.interval's default.
	DefaultDiscoverInterval = 10 * time.Minute
	// MinDiscoverInterval is the shortest groups.discover.interval: the
	// listing may take several 1 call/s pages.
	MinDiscoverInterval = 10 * time.Second
	// GroupListRate is get_appid_group_list's documented limit, in calls/s
	// for the whole app.
	GroupListRate = 1.0
	// discoverRetryMin is the first wait after a failed listing; it
	// doubles per failure up to the interval.
	discoverRetryMin = 10 * time.Second
)

// GroupSource is what a Discoverer calls: a *Client.
type GroupSource interface {
	ListGroups(ctx context.Context, groupType string, pace func(context.Context) error) ([]string, error)
	GroupExists(ctx context.Context, groupID string) (bool, error)
}

// DiscoveryMetrics are the Discoverer's metrics; a nil one records nothing.
type DiscoveryMetrics struct {
	// Runs counts listings by result: "ok" or "failed".
	Runs *prometheus.CounterVec
	// Groups is the number of groups the last successful listing found
	// (excluded ones not counted).
	Groups prometheus.Gauge
}

// NewDiscoveryMetrics creates the discovery metrics and registers them with
// reg (nil: not registered).
func NewDiscoveryMetrics(reg prometheus.Registerer) *DiscoveryMetrics {
	m := &DiscoveryMetrics{
		Runs: promdef.CounterVec("rollcall_discovery_runs_total",
			"Group discovery runs (get_appid_group_list listings) by result: ok or failed.", "result"),
		Groups: promdef.Gauge("rollcall_discovered_groups",
			"AVChatRoom groups found by the last successful discovery run, excluded ones not counted."),
	}
	m.Runs.WithLabelValues("ok")
	m.Runs.WithLabelValues("failed")
	promdef.Register(reg, m.Runs, m.Groups)
	return m
}

func (m *DiscoveryMetrics) run(result string, groups int) {
	if m == nil {
		return
	}
	m.Runs.WithLabelValues(result).Inc()
	if groups >= 0 {
		m.Groups.Set(float64(groups))
	}
}

// DiscovererOptions configure a Discoverer.
type DiscovererOptions struct {
	API GroupSource
	// Interval is groups.discover.interval, at least MinDiscoverInterval.
	Interval time.Duration
	// Share is this process's share of the app's get_appid_group_list
	// budget of 1 call/s: 1/shard.count when replicas list the same app.
	// 0 means 1.
	Share float64
	// Static are groups.ids, always watched; Exclude are groups.exclude,
	// never watched (Static included). SetGroups changes both.
	Static, Exclude []string
	// Known are groups watched before this process started (those with
	// stored state): like a group of the last listing, one that is not
	// listed is asked about with get_group_info, so that a group dismissed
	// while rollcall was down is still reported dismissed.
	Known []string
	// Apply receives the groups to watch after each successful listing and
	// each SetGroups: Static and the discovered groups, sorted, without the
	// excluded and the dismissed ones. The caller schedules them. Calls
	// never overlap.
	Apply func(ctx context.Context, ids []string)
	// Dismissed reports whether the scheduler has written a group off: it
	// is then no longer watched, even if still listed.
	Dismissed func(id string) bool
	// Gone is called once for a group that left the listing and that
	// get_group_info says is gone: the caller has it delivered as a
	// dismissal. Until Dismissed says so, the group stays watched, so that
	// the dismissal is polled.
	Gone func(id string)
	// Owns, when set, keeps the listed groups this replica polls (its
	// shard): the others are neither watched nor, once gone, asked about.
	Owns func(id string) bool
	// Fatal tells a listing error no retry fixes (a configuration the API
	// rejects): Run returns it instead of retrying. Nil: none.
	Fatal func(error) bool
	// Now and sleep pace the calls; nil means real time.
	Now    func() time.Time
	Logger *zap.Logger
	// Metrics may be nil.
	Metrics *DiscoveryMetrics
}

// Discoverer watches the app's AVChatRoom groups: every Interval it lists
// them with get_appid_group_list, under that command's own limit, and
// reports the set to watch. A failed listing changes nothing: a page that
// fails is never read as "these groups are gone". A group that leaves the
// listing is asked about with get_group_info: gone, it is handed to Gone;
// still there (or unknown), it stays watched.
type Discoverer struct {
	o     DiscovererOptions
	log   *zap.Logger
	lim   *rate.Limiter
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu      sync.Mutex // serialises Apply; guards the fields below
	static  []string
	exclude map[string]bool
	found   map[string]bool // groups listed, or vanished but not known gone
	listed  bool            // a listing has succeeded
	goneFor map[string]bool // handed to Gone, not yet dismissed
	kept    map[string]bool // vanished yet reported existing: logged once
	lastOK  time.Time       // the last successful listing
	lastErr error           // the last listing's error, nil after a success
}

// NewDiscoverer checks o and returns a Discoverer; Run starts it.
func NewDiscoverer(o DiscovererOptions) (*Discoverer, error) {
	switch {
	case o.API == nil || o.Apply == nil:
		return nil, errors.New("discoverer: api and apply are required")
	case o.Interval < MinDiscoverInterval:
		return nil, fmt.Errorf("groups.discover.interval %s: must be at least %s", o.Interval, MinDiscoverInterval)
	case o.Share < 0 || o.Share > 1:
		return nil, fmt.Errorf("discoverer: share %g: must be in (0, 1]", o.Share)
	case o.Share == 0:
		o.Share = 1
	}
	if o.Dismissed == nil {
		o.Dismissed = func(string) bool { return false }
	}
	if o.Gone == nil {
		o.Gone = func(string) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	d := &Discoverer{o: o, log: o.Logger.Named("discover"), now: o.Now, sleep: sleepCtx,
		// Burst 1: the 1/s is counted per second, as for the app's budget.
		lim:   rate.NewLimiter(rate.Limit(GroupListRate*o.Share), 1),
		found: map[string]bool{}, goneFor: map[string]bool{}, kept: map[string]bool{}}
	d.setLocked(o.Static, o.Exclude)
	for _, id := range o.Known {
		d.found[id] = true
	}
	return d, nil
}

func (d *Discoverer) setLocked(static, exclude []string) {
	d.static = slices.Clone(static)
	d.exclude = make(map[string]bool, len(exclude))
	for _, id := range exclude {
		d.exclude[id] = true
	}
}

// SetGroups replaces groups.ids and groups.exclude (a reload) and applies
// the result at once, with the groups discovered so far.
func (d *Discoverer) SetGroups(ctx context.Context, static, exclude []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setLocked(static, exclude)
	d.applyLocked(ctx)
}

// Watched returns the groups to watch now (what Apply was last given, give
// or take dismissals since).
func (d *Discoverer) Watched() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.watchedLocked()
}

func (d *Discoverer) watchedLocked() []string {
	out := make([]string, 0, len(d.static)+len(d.found))
	for _, id := range d.static {
		if !d.exclude[id] && !d.o.Dismissed(id) {
			out = append(out, id)
		}
	}
	for id := range d.found {
		if d.exclude[id] {
			continue
		}
		if d.o.Dismissed(id) {
			// Written off: forget it, so that a later listing of the same
			// id (ids can be reused) is judged afresh by the caller.
			delete(d.found, id)
			delete(d.goneFor, id)
			continue
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (d *Discoverer) applyLocked(ctx context.Context) {
	d.o.Apply(ctx, d.watchedLocked())
}

// Run lists at once, then every Interval (sooner after a failure, backing
// off from 10s), until ctx ends; it returns nil then.
func (d *Discoverer) Run(ctx context.Context) error {
	fails := 0
	for {
		wait := d.o.Interval
		if err := d.RunOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if d.o.Fatal != nil && d.o.Fatal(err) {
				return err
			}
			fails++
			wait = min(d.o.Interval, discoverRetryMin<<min(fails-1, 16))
			d.log.Warn("group discovery failed; the watched groups are unchanged, retrying",
				zap.Duration("retry_in", wait), zap.Int("failures", fails), zap.Error(err))
		} else {
			fails = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// RunOnce lists the groups once and applies the result. A failed listing
// changes nothing and is returned.
func (d *Discoverer) RunOnce(ctx context.Context) error {
	// A listing must not outlive its interval: the next run starts afresh.
	lctx, cancel := context.WithTimeout(ctx, d.o.Interval)
	defer cancel()
	ids, err := d.o.API.ListGroups(lctx, GroupTypeAVChatRoom, d.pace)
	if err != nil {
		d.o.Metrics.run("failed", -1)
		d.mu.Lock()
		d.lastErr = err
		d.mu.Unlock()
		return err
	}
	if d.o.Owns != nil {
		ids = slices.DeleteFunc(ids, func(id string) bool { return !d.o.Owns(id) })
	}
	listed := make(map[string]bool, len(ids))
	for _, id := range ids {
		listed[id] = true
	}

	d.mu.Lock()
	var vanished []string
	for id := range d.found {
		if !listed[id] && !d.exclude[id] && !d.goneFor[id] {
			vanished = append(vanished, id)
		}
	}
	d.mu.Unlock()
	slices.Sort(vanished)
	// Asked outside the lock: get_group_info may take a while, and a
	// reload's SetGroups must not wait for it.
	gone := map[string]bool{}
	for _, id := range vanished {
		exists, err := d.o.API.GroupExists(lctx, id)
		switch {
		case err != nil:
			d.log.Warn("a group left the listing but get_group_info could not say whether it exists; still watching it",
				zap.String("group_id", id), zap.Error(err))
		case exists:
			d.mu.Lock()
			first := !d.kept[id]
			d.kept[id] = true
			d.mu.Unlock()
			if first {
				d.log.Info("a group left the listing but get_group_info finds it; still watching it", zap.String("group_id", id))
			}
		default:
			gone[id] = true
		}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, id := range ids {
		if !d.exclude[id] {
			n++
		}
		d.found[id] = true
		delete(d.kept, id)
	}
	for id := range gone {
		d.goneFor[id] = true
		d.log.Info("group left the listing and get_group_info says it is gone: handling it as dismissed", zap.String("group_id", id))
		d.o.Gone(id)
	}
	if !d.listed {
		d.listed = true
		d.log.Info("groups discovered", zap.Int("groups", n))
	}
	d.o.Metrics.run("ok", n)
	d.lastOK, d.lastErr = d.now(), nil
	d.applyLocked(ctx)
	return nil
}

// Healthy fails while listings fail and none succeeded in the last three
// intervals (or ever): the groups watched may be out of date, and with
// discovery alone none may be watched at all.
func (d *Discoverer) Healthy(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lastErr == nil {
		return nil
	}
	if d.lastOK.IsZero() {
		return fmt.Errorf("group discovery has not listed the groups yet: %w", d.lastErr)
	}
	if since := d.now().Sub(d.lastOK); since > 3*d.o.Interval {
		return fmt.Errorf("group discovery failing for %s: %w", since.Round(time.Second), d.lastErr)
	}
	return nil
}

// pace holds each get_appid_group_list request to this process's share of
// the app's 1 call/s.
func (d *Discoverer) pace(ctx context.Context) error {
	now := d.now()
	r := d.lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	if wait <= 0 {
		return nil
	}
	if err := d.sleep(ctx, wait); err != nil {
		r.CancelAt(d.now())
		return err
	}
	return nil
}
