package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// readinessCheck is one named condition of /readyz.
type readinessCheck struct {
	name  string
	check func(ctx context.Context) error
}

// healthServer serves /metrics, /healthz and /readyz.
type healthServer struct {
	ln     net.Listener
	srv    *http.Server
	checks []readinessCheck
	logger *zap.Logger
}

// newHealthServer listens on addr right away, so a port conflict is an
// error at startup rather than a log line later.
func newHealthServer(addr string, reg *prometheus.Registry, checks []readinessCheck, pprof bool, logger *zap.Logger) (*healthServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	h := &healthServer{ln: ln, checks: checks, logger: logger}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", h.readyz)
	if pprof {
		// net/http/pprof registers on http.DefaultServeMux when imported;
		// route its handlers onto this mux instead.
		mux.HandleFunc("/debug/pprof/", httppprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	}
	h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return h, nil
}

// Addr is the address actually listened on (useful with port 0).
func (h *healthServer) Addr() string { return h.ln.Addr().String() }

// Ready runs every check and joins the failures.
func (h *healthServer) Ready(ctx context.Context) error {
	_, err := h.failing(ctx)
	return err
}

// runChecks runs every check once under one 3s budget; the result's
// errors are in h.checks' order, nil for a check that passed.
func (h *healthServer) runChecks(ctx context.Context) []error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	errs := make([]error, len(h.checks))
	for i, c := range h.checks {
		errs[i] = c.check(ctx)
	}
	return errs
}

// failing runs every check and returns the names of those that fail, and
// their errors joined.
func (h *healthServer) failing(ctx context.Context) ([]string, error) {
	var (
		names []string
		errs  []error
	)
	for i, err := range h.runChecks(ctx) {
		if err != nil {
			names = append(names, h.checks[i].name)
			errs = append(errs, fmt.Errorf("%s: %w", h.checks[i].name, err))
		}
	}
	return names, errors.Join(errs...)
}

func (h *healthServer) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var b strings.Builder
	failed := false
	for i, err := range h.runChecks(r.Context()) {
		if err != nil {
			failed = true
			fmt.Fprintf(&b, "[-] %s: %v\n", h.checks[i].name, err)
		} else {
			fmt.Fprintf(&b, "[+] %s ok\n", h.checks[i].name)
		}
	}
	if failed {
		w.WriteHeader(http.StatusServiceUnavailable)
		b.WriteString("not ready\n")
	} else {
		b.WriteString("ready\n")
	}
	fmt.Fprint(w, b.String())
}

// Run serves until ctx ends, then shuts the server down.
func (h *healthServer) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- h.srv.Serve(h.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// updateReady keeps the rollcall_ready gauge in step with /readyz.
func (h *healthServer) updateReady(ctx context.Context, gauge prometheus.Gauge) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	// The verdict last logged: "" at first, then "ready" or the failing
	// checks' names (not their texts, which carry counters).
	was := ""
	for {
		now := "ready"
		names, err := h.failing(ctx)
		if err != nil {
			gauge.Set(0)
			now = strings.Join(names, ",")
		} else {
			gauge.Set(1)
		}
		// Transitions only: a probe every few seconds must not flood the log.
		switch {
		case now == was || ctx.Err() != nil:
		case now == "ready":
			h.logger.Info("ready")
		case was == "": // starting: not ready yet is expected for a moment
			h.logger.Info("not ready", zap.Strings("checks", names), zap.String("reason", err.Error()))
		default:
			h.logger.Warn("not ready", zap.Strings("checks", names), zap.String("reason", err.Error()))
		}
		was = now
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
