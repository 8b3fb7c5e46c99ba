package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/oklog/run"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/poller"
	"github.com/rollcall-dev/rollcall/poller/tencent"
)

// DiscoverConfig is groups.discover: list the app's AVChatRoom groups with
// get_appid_group_list and watch them besides groups.ids.
type DiscoverConfig struct {
	// Interval between listings; absent: 10m. 0 turns discovery off.
	Interval *time.Duration `yaml:"interval"`
}

// discoverInterval is how often groups are discovered; 0 when off (no
// groups.discover block, or interval 0).
func (g *GroupsConfig) discoverInterval() time.Duration {
	switch {
	case g.Discover == nil:
		return 0
	case g.Discover.Interval == nil:
		return tencent.DefaultDiscoverInterval
	}
	return *g.Discover.Interval
}

// validate checks the groups section: groups.ids (which may be empty only
// when discovery is on), groups.exclude and groups.discover.
func (g *GroupsConfig) validate() error {
	if g.Discover != nil && g.Discover.Interval != nil {
		if iv := *g.Discover.Interval; iv < 0 || (iv > 0 && iv < tencent.MinDiscoverInterval) {
			return cfgErr("groups.discover.interval", "must be at least %s, or 0 to turn discovery off (got %s)", tencent.MinDiscoverInterval, iv)
		}
	}
	if len(g.IDs) > 0 || g.discoverInterval() == 0 {
		if err := validateGroupIDs(g.IDs); err != nil {
			return err
		}
	}
	return validateIDList("groups.exclude", g.Exclude)
}

// watchedIDs are groups.ids without groups.exclude.
func (g *GroupsConfig) watchedIDs() []string {
	return slices.DeleteFunc(slices.Clone(g.IDs), func(id string) bool { return slices.Contains(g.Exclude, id) })
}

// discovery ties a tencent.Discoverer to the pipeline: what it finds is
// checked against the stored state (a group stored as dismissed is not
// watched again) and scheduled; what it finds gone is dismissed through
// the lister.
type discovery struct {
	p   *pipeline
	d   *tencent.Discoverer
	log *zap.Logger

	mu sync.Mutex
	// storedGone are groups the state says were dismissed: not watched,
	// and their state is read only once.
	storedGone map[string]bool
}

// newDiscovery sets p.disc up when groups.discover is on.
func (p *pipeline) newDiscovery(ctx context.Context, cfg *Config) error {
	iv := cfg.Groups.discoverInterval()
	if iv == 0 {
		return nil
	}
	ds := &discovery{p: p, log: p.logger.Named("discover"), storedGone: map[string]bool{}}
	known, err := ds.known(ctx)
	if err != nil {
		return err
	}
	d, err := tencent.NewDiscoverer(tencent.DiscovererOptions{
		API:      p.client,
		Interval: iv,
		// Replicas list the same app: each takes its share of 1 call/s.
		Share:     1 / float64(cfg.shard().Count),
		Owns:      func(id string) bool { return cfg.shard().Owns(cfg.Tencent.SDKAppID, id) },
		Static:    cfg.ownedGroups(cfg.Groups.IDs),
		Exclude:   cfg.Groups.Exclude,
		Known:     known,
		Apply:     ds.apply,
		Dismissed: ds.dismissed,
		Gone:      p.lister.MarkGone,
		Fatal:     isFatalAPIError,
		Logger:    p.logger,
		Metrics:   tencent.NewDiscoveryMetrics(p.metrics.reg),
	})
	if err != nil {
		return cfgErr("groups.discover", "%v", err)
	}
	ds.d = d
	p.disc = ds
	p.logger.Info("group discovery on: listing the app's AVChatRoom groups",
		zap.Duration("interval", iv), zap.Int("excluded", len(cfg.Groups.Exclude)))
	return nil
}

// known are the groups with stored state that are not stored as
// dismissed: discovered before, each is confirmed with get_group_info if
// the first listing lacks it, so a dismissal while rollcall was down is
// still reported.
func (ds *discovery) known(ctx context.Context) ([]string, error) {
	l, ok := ds.p.store.Unwrap().(diff.Lister)
	if !ok {
		return nil, nil
	}
	ids, err := l.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the groups in the state: %w", err)
	}
	var out []string
	// A shared store lists every replica's groups: only this one's count.
	for _, id := range ds.p.cfg.ownedGroups(ids) {
		gone, err := ds.p.detector.Dismissed(ctx, id)
		if err != nil && ctx.Err() == nil {
			// As at the start without discovery: its polls fail naming
			// it, the others go on.
			ds.log.Error("cannot read the group's state; its polls fail until it is mended (see rollcall state)",
				zap.String("group_id", id), zap.Error(err))
			err = nil
		}
		if err != nil {
			return nil, fmt.Errorf("state of group %s: %w", id, err)
		}
		if gone {
			ds.storedGone[id] = true
			continue
		}
		out = append(out, id)
	}
	return out, nil
}

func (ds *discovery) dismissed(id string) bool {
	ds.mu.Lock()
	gone := ds.storedGone[id]
	ds.mu.Unlock()
	return gone || ds.p.sched.Dismissed(id)
}

// apply schedules ids: those not scheduled yet have their stored state
// read first, as at the start, so that a dismissed group is not polled
// again and a known one continues from its state (a new one baselines).
func (ds *discovery) apply(ctx context.Context, ids []string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	current := map[string]bool{}
	for _, id := range ds.p.sched.Groups() {
		current[id] = true
	}
	var out []string
	for _, id := range ids {
		if current[id] {
			out = append(out, id)
			continue
		}
		gone, err := ds.p.detector.Dismissed(ctx, id)
		switch {
		case err != nil:
			// Tried again at the next listing.
			ds.log.Warn("reading the state of a discovered group failed; not watching it yet", zap.String("group_id", id), zap.Error(err))
		case gone:
			ds.mu.Lock()
			ds.storedGone[id] = true
			ds.mu.Unlock()
			ds.log.Warn("discovered group is stored as dismissed; not polling it (rollcall state forget lets it be watched again)", zap.String("group_id", id))
		default:
			out = append(out, id)
		}
	}
	ds.p.sched.SetGroups(out)
}

// setGroups applies a reload's groups.ids (ids, already checked against
// the state) and groups.exclude.
func (p *pipeline) setGroups(ctx context.Context, ids []string, old, cur GroupsConfig) {
	if p.disc == nil {
		if cur.discoverInterval() != 0 {
			// groups.ids may now be empty: applied, it would stop every poll.
			p.logger.Warn("reload: groups.discover was turned on, which takes effect after a restart; the groups are unchanged")
			return
		}
		p.sched.SetGroups(slices.DeleteFunc(ids, func(id string) bool { return slices.Contains(cur.Exclude, id) }))
		return
	}
	if old.discoverInterval() != cur.discoverInterval() {
		p.logger.Warn("reload: groups.discover.interval takes effect after a restart",
			zap.Duration("running", old.discoverInterval()), zap.Duration("configured", cur.discoverInterval()))
	}
	p.disc.d.SetGroups(ctx, ids, cur.Exclude)
}

// addDiscovery adds the discovery loop to g. Like the reload actor it
// returns only when g interrupts it, so that g reports the scheduler's
// outcome; the loop itself stops with ctx already.
func (p *pipeline) addDiscovery(ctx context.Context, g *run.Group) {
	if p.disc == nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	interrupted := make(chan struct{})
	g.Add(func() error {
		if err := p.disc.d.Run(ctx); err != nil {
			return discoveryErr(err) // fatal: ends the run
		}
		<-interrupted // ended with ctx: the scheduler's outcome decides
		return nil
	}, func(error) {
		cancel()
		close(interrupted)
	})
}

// discoverOnce lists the groups once before a --once pass.
func (p *pipeline) discoverOnce(ctx context.Context) error {
	if p.disc == nil {
		return nil
	}
	if err := p.disc.d.RunOnce(ctx); err != nil {
		return discoveryErr(err)
	}
	return nil
}

// checkDiscovery lists the app's AVChatRoom groups once, as discovery
// does, for `rollcall check`.
func checkDiscovery(ctx context.Context, cfg *Config, m *metricsSet) (string, error) {
	client, err := newClient(cfg, m.tencent, nil, zap.NewNop())
	if err != nil {
		return "api client", err
	}
	lim := rate.NewLimiter(rate.Limit(tencent.GroupListRate), 1)
	ids, err := client.ListGroups(ctx, tencent.GroupTypeAVChatRoom, lim.Wait)
	if err != nil {
		return "api get_appid_group_list", err
	}
	return fmt.Sprintf("api get_appid_group_list (%d AVChatRoom groups)", len(ids)), nil
}

// isFatalAPIError: the API rejects the configuration (a usersig that a
// fresh one did not fix, an identifier without admin rights…): as for a
// poll, rollcall stops rather than retry forever.
func isFatalAPIError(err error) bool { return tencent.KindOf(err) == tencent.KindFatalConfig }

// discoveryErr is what a failed discovery ends the run with: a
// *poller.FatalError (exit code as for a poll) when the API rejects the
// configuration.
func discoveryErr(err error) error {
	if isFatalAPIError(err) {
		return &poller.FatalError{Err: fmt.Errorf("group discovery: %w", err)}
	}
	return fmt.Errorf("group discovery: %w", err)
}

// discoveryReadiness is the /readyz check of discovery, when on.
func (p *pipeline) discoveryReadiness() []readinessCheck {
	if p.disc == nil {
		return nil
	}
	return []readinessCheck{{"discovery", p.disc.d.Healthy}}
}
