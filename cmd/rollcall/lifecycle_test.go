package main

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
)

// These tests run the daemon in-process, with signals fed through the
// daemon's sigs hook, so that goleak sees every goroutine it started.

// inProcess is a daemon over e's config, its logs observed.
type inProcess struct {
	d    *daemon
	sigs chan os.Signal
	logs *observer.ObservedLogs
	mu   sync.Mutex
	exit []int
}

func newInProcess(t *testing.T, e *e2eEnv, key string, once bool) *inProcess {
	t.Helper()
	t.Setenv("ROLLCALL_TEST_KEY", key)
	cfg, err := LoadConfig(e.config)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	ip := &inProcess{sigs: make(chan os.Signal, 4), logs: logs}
	ip.d = &daemon{cfg: cfg, path: e.config, once: once, stdout: io.Discard, logger: zap.New(core), sigs: ip.sigs,
		exit: func(code int) {
			ip.mu.Lock()
			defer ip.mu.Unlock()
			ip.exit = append(ip.exit, code)
		}}
	return ip
}

// waitLog waits up to d for a log entry with message msg.
func (ip *inProcess) waitLog(t *testing.T, d time.Duration, msg string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for ip.logs.FilterMessage(msg).Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no %q log within %v", msg, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startedBy returns a check, for when the daemon has returned, that no
// goroutine started since startedBy was called is still running: not
// the daemon's actors, not a sink's, not a keep-alive connection of its
// API client (nor the fake API's end of one).
func startedBy(t *testing.T) func() {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	return func() {
		t.Helper()
		goleak.VerifyNone(t, opt)
	}
}

// TestDaemonLifecycleInProcess: start, SIGHUP reload, SIGTERM drain; run
// returns nil and leaves no goroutine behind (HTTP server, readiness
// updater, reload and signal actors, sinks all joined).
func TestDaemonLifecycleInProcess(t *testing.T) {
	api := newAPI(t, tencenttest.Options{})
	api.AddGroup("@TGS#life", member("alice", 1795600000))
	e := newDaemonEnv(t, api, []string{"@TGS#life"}, "")
	ip := newInProcess(t, e, api.Key(), false)

	verify := startedBy(t)
	done := make(chan error, 1)
	go func() { done <- ip.d.run(context.Background()) }()
	ip.waitLog(t, 10*time.Second, "http server listening")
	deadline := time.Now().Add(10 * time.Second)
	for len(readEventDir(t, e.eventDir)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no baseline event within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	ip.sigs <- syscall.SIGHUP
	ip.waitLog(t, 10*time.Second, "configuration reloaded")

	ip.sigs <- syscall.SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v, want nil after SIGTERM", err)
		}
	case <-time.After(opsShutdownTimeout + 5*time.Second):
		t.Fatal("run did not return after SIGTERM")
	}
	verify()
	for _, msg := range []string{"signal received: finishing in-flight polls and publishes", "rollcall stopped"} {
		if ip.logs.FilterMessage(msg).Len() != 1 {
			t.Errorf("%q logged %d times, want once", msg, ip.logs.FilterMessage(msg).Len())
		}
	}
	if len(ip.exit) != 0 {
		t.Errorf("exit called with %v after one signal", ip.exit)
	}
}

// TestDaemonOnceInProcess: --once returns after one pass, with its events
// published and nothing left running.
func TestDaemonOnceInProcess(t *testing.T) {
	api := newAPI(t, tencenttest.Options{})
	api.AddGroup("@TGS#once", member("alice", 1795600000), member("bob", 1795600001))
	e := newEnv(t, api, []string{"@TGS#once"}, "")
	ip := newInProcess(t, e, api.Key(), true)
	verify := startedBy(t)
	if err := ip.d.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	verify()
	if n := len(readEventDir(t, e.eventDir)); n != 2 {
		t.Fatalf("%d events, want 2 baselines", n)
	}
}

// TestDaemonFatalInProcess: a rejected key ends the daemon with exit code
// 3, every actor joined.
func TestDaemonFatalInProcess(t *testing.T) {
	api := newAPI(t, tencenttest.Options{})
	api.AddGroup("@TGS#fatal", member("alice", 1795600000))
	e := newDaemonEnv(t, api, []string{"@TGS#fatal"}, "")
	ip := newInProcess(t, e, "wrong-key-0123456789abcdef", false)
	verify := startedBy(t)
	err := ip.d.run(context.Background())
	verify()
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitFatal {
		t.Fatalf("run = %v, want an exit code %d", err, exitFatal)
	}
}

// TestHandleSignals: the first SIGTERM stops, SIGHUP asks for a reload
// without blocking, a second SIGINT exits 130, and the handler returns
// when told.
func TestHandleSignals(t *testing.T) {
	core, _ := observer.New(zap.DebugLevel)
	var codes []int
	d := &daemon{logger: zap.New(core), exit: func(c int) { codes = append(codes, c) }}
	sigs, reloads, done := make(chan os.Signal), make(chan struct{}, 1), make(chan struct{})
	stopped := make(chan struct{})
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		d.handleSignals(func() { close(stopped) }, sigs, reloads, done, time.Second)
	}()
	sigs <- syscall.SIGHUP
	sigs <- syscall.SIGHUP // one pending reload is enough: this one is dropped, not blocking
	if len(reloads) != 1 {
		t.Fatalf("%d reloads pending, want 1", len(reloads))
	}
	sigs <- syscall.SIGTERM
	<-stopped
	if _, ok := d.stopAt.Load().(time.Time); !ok {
		t.Error("stopAt not recorded at the first signal")
	}
	sigs <- os.Interrupt
	sigs <- syscall.SIGHUP // handled after the exit hook returned: the exit came first
	close(done)
	<-returned
	if len(codes) != 1 || codes[0] != exitAbort {
		t.Fatalf("exit codes %v, want [%d]", codes, exitAbort)
	}
}

// TestNewPipelineClosesOnError: a start that fails after the sinks and
// the store opened (here: a group's state is unreadable) closes them.
func TestNewPipelineClosesOnError(t *testing.T) {
	api := newAPI(t, tencenttest.Options{})
	e := newEnv(t, api, []string{"@TGS#bad"}, "")
	t.Setenv("ROLLCALL_TEST_KEY", api.Key())
	cfg, err := LoadConfig(e.config)
	if err != nil {
		t.Fatal(err)
	}
	// The file sink cannot open its directory: a regular file is there.
	if err := os.WriteFile(e.eventDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mem := diff.NewMemoryStore()
	verify := startedBy(t)
	if _, err := newPipeline(context.Background(), cfg, zap.NewNop(), pipelineOptions{stdout: io.Discard, store: mem}); err == nil {
		t.Fatal("newPipeline succeeded with a sink that cannot open")
	}
	if err := mem.Healthy(context.Background()); !errors.Is(err, diff.ErrClosed) {
		t.Errorf("store after a failed start: Healthy = %v, want closed", err)
	}
	verify()
}
