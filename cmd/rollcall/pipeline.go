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

// The scheduler consumes the client and the detector through its own
// interfaces; these assertions keep the wiring honest.
var (
	_ poller.MemberLister = (*tencent.Client)(nil)
	_ poller.Handler      = (*diff.Detector)(nil)
	_ diff.Publisher      = (*sink.Fanout)(nil)
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
	cfg      *Config
	logger   *zap.Logger
	metrics  *metricsSet
	client   *tencent.Client
	store    diff.Store
	sinks    []sink.Sink
	fanout   *sink.Fanout
	detector *diff.Detector
	sched    *poller.Scheduler
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
		RateLimit:      cfg.Tencent.RateLimit,
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

func openStore(cfg *Config, logger *zap.Logger) (diff.Store, error) {
	return cfg.State.Open(logger)
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

// buildSinks connects every configured sink; on error it closes the ones
// already open.
func buildSinks(ctx context.Context, cfg *Config, m *metricsSet, stdout io.Writer, logger *zap.Logger) ([]sink.Sink, error) {
	var out []sink.Sink
	for i := range cfg.Sinks {
		s, err := buildSink(ctx, &cfg.Sinks[i], m, stdout, logger)
		if err != nil {
			closeSinks(out)
			return nil, fmt.Errorf("sinks[%d] (%s): %w", i, cfg.Sinks[i].DisplayName(), err)
		}
		out = append(out, s)
	}
	return out, nil
}

func closeSinks(ss []sink.Sink) {
	ctx, cancel := context.WithTimeout(context.Background(), defaultShutdownTimeout)
	defer cancel()
	for _, s := range ss {
		_ = s.Close(ctx)
	}
}

func newPipeline(ctx context.Context, cfg *Config, logger *zap.Logger, po pipelineOptions) (_ *pipeline, err error) {
	p := &pipeline{cfg: cfg, logger: logger, metrics: newMetricsSet()}
	if p.client, err = newClient(cfg, p.metrics.tencent, po.httpClient, logger); err != nil {
		return nil, err
	}
	p.store = po.store
	if p.store == nil {
		if p.store, err = openStore(cfg, logger); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			p.store.Close()
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
		ConfirmTimeout: cfg.Poll.Interval,
		Diff: diff.Options{
			SDKAppID:  cfg.Tencent.SDKAppID,
			MemberCap: cfg.Poll.MemberCap,
			Baseline:  diff.BaselineMode(cfg.Poll.Baseline),
		},
		Logger:  logger.Named("diff"),
		Metrics: p.metrics.diff,
	})
	if err != nil {
		closeSinks(p.sinks)
		return nil, err
	}
	groups, err := p.activeGroups(ctx, cfg.Groups.IDs)
	if err != nil {
		closeSinks(p.sinks)
		return nil, err
	}
	p.sched, err = poller.New(lister(p.client, cfg.Groups.Mark), p.detector, poller.Options{
		SDKAppID:     cfg.Tencent.SDKAppID,
		Groups:       groups,
		Interval:     cfg.Poll.Interval,
		Concurrency:  cfg.Poll.Concurrency,
		RateLimit:    cfg.Tencent.RateLimit,
		MemberCap:    cfg.Poll.MemberCap,
		DrainTimeout: cfg.ShutdownTimeout,
		Logger:       logger,
		Metrics:      p.metrics.poller,
	})
	if err != nil {
		closeSinks(p.sinks)
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
		if err != nil {
			return nil, fmt.Errorf("state of group %s: %w", id, err)
		}
		if gone {
			p.logger.Warn("group was dismissed; not polling it; remove it from groups.ids", zap.String("group_id", id))
			continue
		}
		out = append(out, id)
	}
	return out, nil
}

// close flushes and closes the sinks, then the store.
func (p *pipeline) close(ctx context.Context) error {
	return errors.Join(p.fanout.Close(ctx), p.store.Close())
}

// readiness lists the /readyz checks.
func (p *pipeline) readiness() []readinessCheck {
	return []readinessCheck{
		{"config", func(context.Context) error { return nil }},
		{"state", func(ctx context.Context) error {
			_, err := p.store.List(ctx)
			return err
		}},
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
	}
}

// lister is what the scheduler lists with. A Mark-filtered list would be
// compared with an online count of the whole group, so the cap checks
// (poller.OnlineCounter) are hidden from the scheduler then.
func lister(c *tencent.Client, mark *int64) poller.MemberLister {
	if mark != nil {
		return struct {
			poller.MemberLister
			poller.GroupChecker
		}{c, c}
	}
	return c
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
