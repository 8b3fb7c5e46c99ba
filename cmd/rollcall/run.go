package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oklog/run"
	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/poller"
)

// cmdRun is `rollcall run`: the daemon, or one pass with --once.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	path := fs.String("config", "", "configuration file (required)")
	once := fs.Bool("once", false, "poll every group once, publish, commit, and exit (non-zero when any poll or sink failed)")
	logFormat := fs.String("log-format", "", "json or console (overrides log.format)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (overrides log.level)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageError{"run: --config is required"}
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		return err
	}
	logger, err := newLogger(firstNonEmpty(*logFormat, cfg.Log.Format), firstNonEmpty(*logLevel, cfg.Log.Level), stderr)
	if err != nil {
		return err
	}
	defer logger.Sync() //nolint:errcheck // stderr may not support sync
	d := &daemon{cfg: cfg, path: *path, once: *once, stdout: stdout, logger: logger}
	return d.run(ctx)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// daemon runs a pipeline until a signal, handling the signals itself:
// SIGINT/SIGTERM drain and stop, a second one exits at once, SIGHUP
// reloads groups and poll settings.
type daemon struct {
	cfg    *Config
	path   string
	once   bool
	stdout io.Writer
	logger *zap.Logger
	// exit ends the process on a second signal; a test hook.
	exit func(code int)
	// sigs, when set, replaces the process's signals; a test hook.
	sigs chan os.Signal
	// quietInterval skips the short-interval warning (the demo polls fast
	// on purpose).
	quietInterval bool
	// stopAt is when the first stop signal came (a time.Time).
	stopAt atomic.Value
}

// minCloseTime is the least time sinks get to flush and close after the
// drain, even when draining used up shutdown_timeout.
const minCloseTime = 2 * time.Second

// run starts the daemon's parts as one group of actors and returns when
// all of them have ended: the pipeline (scheduler and reloads, then the
// closing of sinks and store) decides when; signal handling, the HTTP
// server and the readiness updater run until then.
func (d *daemon) run(parent context.Context) error {
	if d.exit == nil {
		d.exit = os.Exit
	}
	// run reads this copy: the reload actor replaces d.cfg on SIGHUP.
	cfg := d.cfg
	if cfg.Poll.Interval < 10*time.Second && !d.quietInterval {
		d.logger.Warn("poll.interval is below the API's cache granularity (10-40s): polls will often return the same snapshot",
			zap.Duration("interval", cfg.Poll.Interval))
	}
	// ctx ends on the first signal: no new polls are scheduled, in-flight
	// ones drain for up to shutdown_timeout (the scheduler's DrainTimeout).
	ctx, stop := context.WithCancel(parent)
	defer stop()
	sigs := d.sigs
	if sigs == nil {
		sigs = make(chan os.Signal, 4)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		defer signal.Stop(sigs)
	}

	// Sinks connect with ctx: the parent's end aborts the start.
	po := pipelineOptions{once: d.once, stdout: d.stdout}
	if cfg.State.Driver == DriverNATS {
		st, err := d.waitForStore(ctx, cfg, sigs)
		switch {
		case errors.Is(err, errStoppedWaiting) || (err != nil && parent.Err() != nil):
			d.logger.Info("rollcall stopped")
			return nil
		case err != nil:
			return err
		}
		po.store = st
	}
	p, err := newPipeline(ctx, cfg, d.logger, po)
	if err != nil {
		if po.store != nil {
			_ = po.store.(stateStore).Close()
		}
		return err
	}
	var hs *healthServer
	if addr := *cfg.HTTP.Listen; addr != "" && !d.once {
		if hs, err = newHealthServer(addr, p.metrics.reg, p.readiness(), cfg.HTTP.PProf, d.logger.Named("http")); err != nil {
			closeCtx, cancel := d.closeContext(cfg.ShutdownTimeout)
			defer cancel()
			_ = p.Close(closeCtx) // the listen error is the one to report
			return err
		}
		p.metrics.ready.Set(0)
	}

	var (
		g                         run.Group
		runErr, closeErr, httpErr error
		reloads                   = make(chan struct{}, 1)
	)
	g.Add(func() error {
		runErr, closeErr = d.runPipeline(ctx, stop, p, reloads)
		return nil
	}, func(error) { stop() })
	signalsDone := make(chan struct{})
	g.Add(func() error {
		d.handleSignals(stop, sigs, reloads, signalsDone, cfg.ShutdownTimeout)
		return nil
	}, func(error) { close(signalsDone) })
	if hs != nil {
		// The server outlives the drain and the closing: /metrics and
		// /readyz answer until the end.
		httpCtx, stopHTTP := context.WithCancel(context.Background())
		g.Add(func() error {
			httpErr = hs.Run(httpCtx)
			return httpErr
		}, func(error) { stopHTTP() })
		g.Add(func() error {
			hs.updateReady(httpCtx, p.metrics.ready)
			return nil
		}, func(error) { stopHTTP() })
		hs.logger.Info("http server listening", zap.String("addr", hs.Addr()))
	}

	d.logger.Info("rollcall starting",
		zap.Uint64("sdkappid", cfg.Tencent.SDKAppID),
		zap.Int("groups", len(p.sched.Groups())),
		zap.Duration("interval", cfg.Poll.Interval),
		zap.Int("sinks", len(p.sinks)),
		zap.Bool("once", d.once))
	logShard(d.logger, cfg)
	_ = g.Run() // every actor's outcome is in runErr, closeErr, httpErr
	return d.outcome(runErr, closeErr, httpErr)
}

// outcome is the daemon's result from what its actors returned.
func (d *daemon) outcome(runErr, closeErr, httpErr error) error {
	var fatal *poller.FatalError
	switch {
	case errors.As(runErr, &fatal):
		d.logger.Error("stopping: the API rejected the configuration", zap.String("group_id", fatal.GroupID), zap.Error(fatal.Err))
		return &exitError{code: exitFatal, err: fatal}
	case runErr != nil:
		return fmt.Errorf("poll: %w", runErr)
	case closeErr != nil:
		return fmt.Errorf("close: %w", closeErr)
	case httpErr != nil:
		return httpErr
	}
	d.logger.Info("rollcall stopped")
	return nil
}

// runPipeline polls until ctx ends (--once: one pass), applying reloads
// meanwhile, then closes the pipeline.
func (d *daemon) runPipeline(ctx context.Context, stop context.CancelFunc, p *pipeline, reloads <-chan struct{}) (runErr, closeErr error) {
	var g run.Group
	g.Add(func() error {
		if d.once {
			if err := p.discoverOnce(ctx); err != nil {
				return err
			}
			return p.sched.RunOnce(ctx)
		}
		return p.sched.Run(ctx)
	}, func(error) { stop() }) // --once: ends a reload in progress too
	// Reloads run on their own actor, one at a time: one that waits (for a
	// group's state behind a publish to a down sink) must not stop the
	// signal actor from seeing SIGTERM; ctx cuts it short.
	reloadsDone := make(chan struct{})
	g.Add(func() error {
		for {
			select {
			case <-reloadsDone:
				return nil
			case <-reloads:
				d.reload(ctx, p)
			}
		}
	}, func(error) { close(reloadsDone) })
	if !d.once {
		p.addDiscovery(ctx, &g)
		p.addStoreUpkeep(ctx, &g)
	}
	runErr = g.Run() // the scheduler's: the reload actor ends only when told

	// Polls and publishes have finished (or been cut off after
	// shutdown_timeout), and no reload runs: flush and close.
	closeCtx, cancel := d.closeContext(p.cfg.ShutdownTimeout)
	defer cancel()
	return runErr, p.Close(closeCtx)
}

// closeContext bounds closing the pipeline: what is left of
// shutdown_timeout since the first stop signal (from now without one),
// but at least minCloseTime, so an acknowledged batch's flush is not cut
// off at once.
func (d *daemon) closeContext(shutdownTimeout time.Duration) (context.Context, context.CancelFunc) {
	closeBy := time.Now().Add(shutdownTimeout)
	if at, ok := d.stopAt.Load().(time.Time); ok {
		closeBy = at.Add(shutdownTimeout)
	}
	if floor := time.Now().Add(minCloseTime); closeBy.Before(floor) {
		closeBy = floor
	}
	return context.WithDeadline(context.Background(), closeBy)
}

// handleSignals acts on signals until done: the first SIGINT/SIGTERM
// calls stop (the drain begins), a second one exits at once, SIGHUP asks
// the reload actor for a reload. It listens through the drain and the
// closing, so that a second signal is seen there too.
func (d *daemon) handleSignals(stop context.CancelFunc, sigs <-chan os.Signal, reloads chan<- struct{}, done <-chan struct{}, shutdownTimeout time.Duration) {
	stopping := false
	for {
		var sig os.Signal
		select {
		case <-done:
			return
		case sig = <-sigs:
		}
		if sig == syscall.SIGHUP {
			select {
			case reloads <- struct{}{}:
			default: // a reload is pending already; it reads the file anew
			}
			continue
		}
		if stopping {
			d.logger.Warn("second signal: exiting now; state is committed only up to what sinks acknowledged", zap.Stringer("signal", sig))
			d.logger.Sync() //nolint:errcheck
			d.exit(exitAbort)
			continue // only a test's exit returns
		}
		stopping = true
		d.stopAt.Store(time.Now())
		d.logger.Info("signal received: finishing in-flight polls and publishes",
			zap.Stringer("signal", sig), zap.Duration("shutdown_timeout", shutdownTimeout))
		stop()
	}
}

// reload re-reads the configuration and applies groups and poll settings;
// other sections need a restart and are reported, not applied. Only the
// reload goroutine calls it, so d.cfg is its own after the start.
func (d *daemon) reload(ctx context.Context, p *pipeline) {
	cfg, err := LoadConfig(d.path)
	if err != nil {
		d.logger.Error("reload: configuration invalid; keeping the running one", zap.Error(err))
		return
	}
	old := d.cfg
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	added, removed := diffStrings(old.Groups.IDs, cfg.Groups.IDs)
	// Only added groups need their stored state read: the running ones
	// are known, and the scheduler keeps dismissed ones out by itself.
	// The shard is the running one: a change of shard needs a restart.
	fresh, err := p.activeGroups(ctx, old.ownedGroups(added))
	if err != nil {
		d.logger.Error("reload: reading the state of added groups; keeping the running configuration", zap.Error(err))
		return
	}
	keep := make(map[string]bool, len(fresh))
	for _, id := range fresh {
		keep[id] = true
	}
	// The others keep their standing: polled if they are now, not if they
	// were found dismissed (at the start or since).
	for _, id := range p.sched.Groups() {
		keep[id] = true
	}
	var groups []string
	for _, id := range cfg.Groups.IDs {
		if keep[id] {
			groups = append(groups, id)
		}
	}
	p.setGroups(ctx, groups, old.Groups, cfg.Groups)
	scheduled := p.sched.Groups()
	for _, id := range removed {
		if !slices.Contains(scheduled, id) { // still discovered: still watched
			p.detector.Forget(id) // its members leave the gauges; its state stays
		}
	}
	// poll.interval, member_cap and baseline apply from the next cycle;
	// concurrency sizes the scheduler's semaphore and needs a restart.
	applied := old.Poll
	if err := p.sched.SetInterval(cfg.Poll.Interval); err == nil {
		applied.Interval = cfg.Poll.Interval
		if rt := old.Tencent.RequestTimeout; rt >= cfg.Poll.Interval {
			// The client keeps its timeout until a restart; requests are
			// still cut at the end of each cycle.
			d.logger.Warn("reload: poll.interval is now not longer than the running tencent.request_timeout, which changes only at a restart",
				zap.Duration("poll_interval", cfg.Poll.Interval), zap.Duration("running_request_timeout", rt))
		}
	}
	if err := p.detector.SetOptions(diff.Options{SDKAppID: cfg.Tencent.SDKAppID,
		Baseline: diff.BaselineMode(cfg.Poll.Baseline)}); err == nil {
		applied.MemberCap, applied.Baseline = cfg.Poll.MemberCap, cfg.Poll.Baseline
		p.lister.SetMemberCap(cfg.Poll.MemberCap)
	}
	if cfg.Poll.Concurrency != old.Poll.Concurrency || cfg.Poll.ConfirmDepartures != old.Poll.ConfirmDepartures {
		d.logger.Warn("reload: poll.concurrency and poll.confirm_departures take effect after a restart",
			zap.Int("running_concurrency", old.Poll.Concurrency), zap.Int("configured_concurrency", cfg.Poll.Concurrency),
			zap.Bool("running_confirm_departures", old.Poll.ConfirmDepartures), zap.Bool("configured_confirm_departures", cfg.Poll.ConfirmDepartures))
	}
	for _, section := range changedSections(old, cfg) {
		d.logger.Warn("reload: this section changed but takes effect only after a restart", zap.String("section", section))
	}
	d.logger.Info("configuration reloaded",
		zap.Strings("groups_added", added), zap.Strings("groups_removed", removed),
		zap.Duration("poll_interval", applied.Interval), zap.Int("poll_member_cap", applied.MemberCap),
		zap.String("poll_baseline", applied.Baseline))
	cfg.Poll = applied
	// Keep what is running for the sections that need a restart, so the
	// next reload compares against reality.
	next := *old
	next.Groups, next.Poll = cfg.Groups, cfg.Poll
	d.cfg = &next
}

// changedSections names the top-level sections, other than groups and
// poll, whose values differ.
func changedSections(a, b *Config) []string {
	var out []string
	check := func(name string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			out = append(out, name)
		}
	}
	at, bt := a.Tencent, b.Tencent
	if at.requestTimeoutDefault && bt.requestTimeoutDefault {
		at.RequestTimeout, bt.RequestTimeout = 0, 0 // derived, not written
	}
	check("tencent", at, bt)
	check("state", a.State, b.State)
	check("sinks", a.Sinks, b.Sinks)
	check("shard", a.Shard, b.Shard)
	check("http", a.HTTP, b.HTTP)
	check("log", a.Log, b.Log)
	check("shutdown_timeout", a.ShutdownTimeout, b.ShutdownTimeout)
	return out
}

func diffStrings(old, cur []string) (added, removed []string) {
	for _, s := range cur {
		if !slices.Contains(old, s) {
			added = append(added, s)
		}
	}
	for _, s := range old {
		if !slices.Contains(cur, s) {
			removed = append(removed, s)
		}
	}
	return added, removed
}
