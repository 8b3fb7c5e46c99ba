package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/poller"
	"github.com/rollcall-dev/rollcall/poller/tencent"
	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
	"github.com/rollcall-dev/rollcall/sink"
	"github.com/rollcall-dev/rollcall/sink/kafka"
	"github.com/rollcall-dev/rollcall/sink/nats"
)

// The scheduler consumes the Tencent lister and the detector through its
// own interfaces; these assertions keep the wiring honest.
var (
	_ tencent.API    = (*tencent.Client)(nil)
	_ poller.Lister  = (*tencent.Lister)(nil)
	_ poller.Handler = (*diff.Detector)(nil)
	_ diff.Publisher = (*sink.Fanout)(nil)
)

// metricsSet is every component's metrics on one registry.
type metricsSet struct {
	reg     *prometheus.Registry
	tencent *tencent.Metrics
	poller  *poller.Metrics
	diff    *diff.Metrics
	sink    *sink.Metrics
	kafka   *kafka.Metrics
	nats    *nats.Metrics
	ready   prometheus.Gauge
}

func newMetricsSet() *metricsSet {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ver, rev := buildVersion()
	bi := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "rollcall_build_info",
		Help: "Always 1; the labels say which build is running.",
	}, []string{"version", "commit", "goversion"})
	bi.WithLabelValues(ver, rev, runtime.Version()).Set(1)
	ready := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rollcall_ready",
		Help: "1 when /readyz passes (every sink connected, polling neither stalled nor failing on auth/config), else 0.",
	})
	reg.MustRegister(bi, ready)
	return &metricsSet{
		reg:     reg,
		tencent: tencent.NewMetrics(reg),
		poller:  poller.NewMetrics(reg),
		diff:    diff.NewMetrics(reg),
		sink:    sink.NewMetrics(reg),
		kafka:   kafka.NewMetrics(reg),
		nats:    nats.NewMetrics(reg),
		ready:   ready,
	}
}

// pipeline is rollcall assembled from a configuration: client, store,
// sinks, detector and scheduler.
type pipeline struct {
	cfg     *Config
	logger  *zap.Logger
	metrics *metricsSet
	client  *tencent.Client
	lister  *tencent.Lister // holds poll.member_cap
	// hc is the client's HTTP client, whose idle connections Close ends.
	hc *http.Client
	// store records how its operations go, for the "state" check.
	store    *diff.MonitoredStore
	sinks    []sink.Sink
	fanout   *sink.Fanout
	detector *diff.Detector
	sched    *poller.Scheduler
	disc     *discovery // nil unless groups.discover is on
}

type pipelineOptions struct {
	// once bounds sink retries by each sink's retry.max_elapsed_time.
	once       bool
	stdout     io.Writer
	httpClient *http.Client
	// store overrides the configured state store (the demo uses memory).
	store diff.Store
}

// newUserSigSource builds the signer (or the static usersig) for cfg.
func newUserSigSource(cfg *TencentConfig, m *tencent.Metrics) (usersig.Source, error) {
	if cfg.UserSig != "" {
		return usersig.Static(cfg.UserSig), nil
	}
	s, err := usersig.NewSigner(usersig.SignerOptions{
		SDKAppID:   cfg.SDKAppID,
		Identifier: cfg.Identifier,
		Key:        string(cfg.SecretKey),
		Expire:     cfg.UserSigExpire,
		OnRefresh:  m.UserSigRefreshed,
	})
	if err != nil {
		return nil, cfgErr("tencent.secret_key", "%v", err)
	}
	return s, nil
}

func newClient(cfg *Config, m *tencent.Metrics, hc *http.Client, logger *zap.Logger) (*tencent.Client, error) {
	src, err := newUserSigSource(&cfg.Tencent, m)
	if err != nil {
		return nil, err
	}
	if cfg.Tencent.UserSig != "" {
		warnStaticUserSig(string(cfg.Tencent.UserSig), time.Now(), logger)
	}
	c, err := tencent.New(tencent.Options{
		SDKAppID:       cfg.Tencent.SDKAppID,
		Identifier:     cfg.Tencent.Identifier,
		Sig:            src,
		Region:         cfg.Tencent.Region,
		Endpoint:       cfg.Tencent.Endpoint,
		RateLimit:      cfg.rateLimit(), // this replica's share
		RequestTimeout: cfg.Tencent.RequestTimeout,
		Mark:           cfg.Groups.Mark,
		HTTPClient:     hc,
		Logger:         logger, // the client names itself "tencent"
		Metrics:        m,
	})
	if err != nil {
		return nil, cfgErr("tencent", "%v", err)
	}
	return c, nil
}

// buildSink connects one configured sink.
func buildSink(ctx context.Context, sc *SinkConfig, m *metricsSet, stdout io.Writer, logger *zap.Logger) (sink.Sink, error) {
	l := logger.Named("sink").With(zap.String("sink", sc.DisplayName()))
	var s sink.Sink
	var err error
	switch b := sc.block().(type) {
	case *sink.StdoutConfig:
		s = sink.NewStdout(stdout)
	case *sink.FileConfig:
		o := b.Options()
		o.Logger = l
		s, err = sink.NewFile(o)
	case *kafka.Config:
		o := b.Options()
		o.Metrics, o.Logger = m.kafka, l
		s, err = kafka.New(ctx, o)
	case *nats.Config:
		o := b.Options()
		o.Metrics, o.Logger = m.nats.For(sc.DisplayName()), l
		s, err = nats.New(ctx, o)
	default:
		return nil, fmt.Errorf("unknown sink type %q", sc.Type)
	}
	if err != nil {
		return nil, err
	}
	return named(s, sc), nil
}

// renamedSink gives a sink the name from the configuration (sinks[].name),
// keeping its optional capabilities visible.
type renamedSink struct {
	sink.Sink
	name string
}

func (r renamedSink) Name() string { return r.name }

func (r renamedSink) Healthy(ctx context.Context) error {
	if h, ok := r.Sink.(sink.HealthChecker); ok {
		return h.Healthy(ctx)
	}
	return nil
}

// checker is implemented by sinks that `rollcall check` can verify.
type checker interface {
	Check(ctx context.Context) error
}

func (r renamedSink) Check(ctx context.Context) error {
	if c, ok := r.Sink.(checker); ok {
		return c.Check(ctx)
	}
	return r.Healthy(ctx)
}

func named(s sink.Sink, sc *SinkConfig) sink.Sink {
	return renamedSink{Sink: s, name: sc.DisplayName()}
}

// buildSinks connects every configured sink. On error it returns the ones
// already open too, for the caller to close.
func buildSinks(ctx context.Context, cfg *Config, m *metricsSet, stdout io.Writer, logger *zap.Logger) ([]sink.Sink, error) {
	var out []sink.Sink
	for i := range cfg.Sinks {
		s, err := buildSink(ctx, &cfg.Sinks[i], m, stdout, logger)
		if err != nil {
			return out, fmt.Errorf("sinks[%d] (%s): %w", i, cfg.Sinks[i].DisplayName(), err)
		}
		out = append(out, s)
	}
	return out, nil
}

func newPipeline(ctx context.Context, cfg *Config, logger *zap.Logger, po pipelineOptions) (_ *pipeline, err error) {
	p := &pipeline{cfg: cfg, logger: logger, metrics: newMetricsSet()}
	// A transport of our own (as tencent.New would make), so that Close
	// can end its keep-alive connections and their goroutines.
	p.hc = po.httpClient
	if p.hc == nil {
		p.hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if p.client, err = newClient(cfg, p.metrics.tencent, p.hc, logger); err != nil {
		return nil, err
	}
	st := po.store
	if st == nil {
		if st, err = openStore(ctx, cfg, logger); err != nil {
			return nil, err
		}
	}
	p.store = diff.Monitor(st)
	defer func() {
		if err != nil {
			// Whatever was opened, within shutdown_timeout: nothing was
			// published yet, so nothing is lost.
			ctx, cancel := context.WithTimeout(context.Background(), max(cfg.ShutdownTimeout, minCloseTime))
			defer cancel()
			_ = p.Close(ctx) // err is the one to report
		}
	}()
	if p.sinks, err = buildSinks(ctx, cfg, p.metrics, po.stdout, logger); err != nil {
		return nil, err
	}
	retries := map[string]sink.RetryOptions{}
	for i := range cfg.Sinks {
		sc := &cfg.Sinks[i]
		// The daemon retries without limit; a one-shot run must end.
		retries[sc.DisplayName()] = sc.Retry.Options(po.once)
	}
	p.fanout = sink.NewFanout(p.sinks, sink.FanoutOptions{SinkRetry: retries, Logger: logger, Metrics: p.metrics.sink})
	var confirmer diff.Confirmer // a nil interface, not a nil *Client
	if cfg.Poll.ConfirmDepartures {
		confirmer = p.client
	}
	p.detector, err = diff.NewDetector(diff.DetectorOptions{
		Store:     p.store,
		Publisher: p.fanout,
		Confirmer: confirmer,
		// A confirmation is part of the poll: it ends with the cycle.
		ConfirmTimeout:     cfg.Poll.Interval,
		CheckpointInterval: cfg.State.Interval(),
		Diff: diff.Options{
			SDKAppID: cfg.Tencent.SDKAppID,
			Baseline: diff.BaselineMode(cfg.Poll.Baseline),
		},
		Logger:  logger.Named("diff"),
		Metrics: p.metrics.diff,
	})
	if err != nil {
		return nil, err
	}
	groups, err := p.activeGroups(ctx, cfg.ownedGroups(cfg.Groups.watchedIDs()))
	if err != nil {
		return nil, err
	}
	p.lister, err = newLister(p.client, cfg, logger)
	if err != nil {
		return nil, err
	}
	p.sched, err = poller.New(p.lister, p.detector, poller.Options{
		SDKAppID:     cfg.Tencent.SDKAppID,
		Groups:       groups,
		Interval:     cfg.Poll.Interval,
		Concurrency:  cfg.Poll.Concurrency,
		RateLimit:    cfg.rateLimit(),
		DrainTimeout: cfg.ShutdownTimeout,
		Logger:       logger,
		Metrics:      p.metrics.poller,
	})
	if err != nil {
		return nil, err
	}
	if err := p.newDiscovery(ctx, cfg); err != nil {
		return nil, err
	}
	return p, nil
}

// activeGroups drops groups whose stored state says they were dismissed:
// they are not polled again, also after a restart.
func (p *pipeline) activeGroups(ctx context.Context, ids []string) ([]string, error) {
	var out []string
	for _, id := range ids {
		gone, err := p.detector.Dismissed(ctx, id)
		if err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("state of group %s: %w", id, err)
		}
		if err != nil {
			// The others go on. This one is kept scheduled: each poll of
			// it fails on the same error, publishing nothing, until its
			// record is readable again (or forgotten).
			p.logger.Error("cannot read the group's state; its polls fail until it is mended (see rollcall state)",
				zap.String("group_id", id), zap.Error(err))
		}
		if gone {
			p.logger.Warn("group was dismissed; not polling it; remove it from groups.ids", zap.String("group_id", id))
			continue
		}
		out = append(out, id)
	}
	return out, nil
}

// Close flushes and closes the sinks, then the store, within ctx. It
// closes what a failed newPipeline had opened too.
func (p *pipeline) Close(ctx context.Context) error {
	var errs []error
	if p.fanout != nil {
		errs = append(errs, p.fanout.Close(ctx))
	} else {
		for _, s := range p.sinks {
			errs = append(errs, s.Close(ctx))
		}
	}
	if p.detector != nil {
		// What quiet polls changed in memory since the last checkpoint
		// (last-seen times, profiles), so a restart starts from it.
		errs = append(errs, p.detector.Checkpoint(ctx))
	}
	if p.store != nil {
		errs = append(errs, p.store.Close())
	}
	p.hc.CloseIdleConnections() // polls have ended
	return errors.Join(errs...)
}

// readiness lists the /readyz checks.
func (p *pipeline) readiness() []readinessCheck {
	return append([]readinessCheck{
		{"config", func(context.Context) error { return nil }},
		// From what the detector's store calls went through, in memory: a
		// probe does no I/O.
		{"state", p.store.Healthy},
		{"sinks", p.fanout.Healthy},
		{"poller", func(context.Context) error {
			st := p.sched.Status()
			switch {
			case st.AuthOrConfigError != nil:
				return fmt.Errorf("auth/config error from the API: %v", st.AuthOrConfigError)
			case st.Stalled:
				return fmt.Errorf("no poll completed for 3 cycles (%d groups in flight; a sink may be down)", st.GroupsInFlight)
			case st.GroupsPolled > 0 && st.GroupsStale == st.GroupsPolled:
				return fmt.Errorf("no group listed successfully for 3 cycles (%d of %d failing; see the poll failed logs)", st.GroupsFailing, st.GroupsPolled)
			}
			return nil
		}},
	}, p.discoveryReadiness()...)
}

// newLister is what the scheduler and the snapshot command list with: the
// Tencent rules around the client. A Mark-filtered list would be compared
// with an online count of the whole group, so the cap checks are off then.
func newLister(c *tencent.Client, cfg *Config, logger *zap.Logger) (*tencent.Lister, error) {
	return tencent.NewLister(c, tencent.ListerOptions{
		MemberCap: cfg.Poll.MemberCap,
		Marked:    cfg.Groups.Mark != nil,
		Logger:    logger,
	})
}

// staticUserSigWarning is how long before a configured usersig expires the
// start-up warns: rollcall cannot renew it.
const staticUserSigWarning = 7 * 24 * time.Hour

// warnStaticUserSig logs when a configured usersig expires, as a warning
// when that is soon.
func warnStaticUserSig(sig string, now time.Time, logger *zap.Logger) {
	doc, err := usersig.Decode(sig)
	if err != nil {
		return // validated with the config
	}
	exp := tencent.StaticUserSigExpiry(doc)
	if left := exp.Sub(now); left < staticUserSigWarning {
		logger.Warn("the configured usersig expires soon and rollcall cannot renew it; configure tencent.secret_key instead, or replace it in time",
			zap.Time("expires_at", exp), zap.Duration("left", left.Round(time.Minute)))
		return
	}
	logger.Info("using the configured usersig; rollcall cannot renew it", zap.Time("expires_at", exp))
}
