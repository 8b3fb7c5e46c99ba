package main

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
)

// errStoppedWaiting ends a daemon stopped while it waited for its state
// store: nothing was polled, so nothing is lost.
var errStoppedWaiting = errors.New("stopped while waiting for the state store")

// storeOpenTimeout bounds one attempt to reach the state store.
const storeOpenTimeout = 10 * time.Second

// waitForStore opens the configured store. A shared store (nats) that no
// server answers for is waited for, with backoff, for as long as it
// takes: the process stays alive (/healthz) and not ready (/readyz says
// why), and polls nothing, since no state can be read or fenced. Any
// other error (a missing bucket, a refused login, a locked directory) is
// returned at once. A stop signal while waiting returns
// errStoppedWaiting.
func (d *daemon) waitForStore(ctx context.Context, cfg *Config, sigs <-chan os.Signal) (stateStore, error) {
	attempt := func() (stateStore, error) {
		actx, cancel := context.WithTimeout(ctx, storeOpenTimeout)
		defer cancel()
		return openStore(actx, cfg, d.logger)
	}
	st, err := attempt()
	if err == nil || !unreachable(err) || d.once {
		return st, err
	}
	d.logger.Warn("the state store is unreachable; waiting for it (alive, not ready, polling nothing)", zap.Error(err))

	var lastErr atomic.Pointer[error]
	first := err
	lastErr.Store(&first)
	if addr := *cfg.HTTP.Listen; addr != "" {
		checks := []readinessCheck{{name: "state", check: func(context.Context) error { return *lastErr.Load() }}}
		hs, err := newHealthServer(addr, newMetricsSet().reg, checks, false, d.logger.Named("http"))
		if err != nil {
			return nil, err
		}
		httpCtx, stopHTTP := context.WithCancel(context.Background())
		served := make(chan struct{})
		go func() { _ = hs.Run(httpCtx); close(served) }()
		hs.logger.Info("http server listening", zap.String("addr", hs.Addr()), zap.Bool("waiting_for_state", true))
		// The daemon's own server takes the port over once the store is
		// open.
		defer func() { stopHTTP(); <-served }()
	}

	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = time.Second, 30*time.Second, 0
	for {
		wait := b.NextBackOff()
		if !d.sleepOrStop(ctx, wait, sigs) {
			d.logger.Info("stopping while waiting for the state store")
			return nil, errStoppedWaiting
		}
		st, err := attempt()
		switch {
		case err == nil:
			d.logger.Info("the state store is reachable")
			return st, nil
		case !unreachable(err):
			return nil, err
		}
		failed := err
		lastErr.Store(&failed)
		d.logger.Warn("the state store is still unreachable", zap.Error(err))
	}
}

// sleepOrStop waits d; false when ctx ends or a stop signal comes first.
// SIGHUP has nothing to reload yet and is ignored.
func (d *daemon) sleepOrStop(ctx context.Context, wait time.Duration, sigs <-chan os.Signal) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				return false
			}
		case <-t.C:
			return true
		}
	}
}
