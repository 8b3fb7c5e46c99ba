package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
)

// countingStore is a memory store that counts every call and can fail
// its loads.
type countingStore struct {
	*diff.MemoryStore
	mu      sync.Mutex
	calls   int
	loadErr error
}

func (s *countingStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *countingStore) Load(ctx context.Context, id string) (*diff.State, diff.Revision, error) {
	s.mu.Lock()
	s.calls++
	err := s.loadErr
	s.mu.Unlock()
	if err != nil {
		return nil, 0, err
	}
	return s.MemoryStore.Load(ctx, id)
}

func (s *countingStore) Save(ctx context.Context, st *diff.State, base diff.Revision) (diff.Revision, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	return s.MemoryStore.Save(ctx, st, base)
}

func (s *countingStore) SaveOutbox(ctx context.Context, id string, p *diff.Pending, base diff.Revision) (diff.Revision, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	return s.MemoryStore.SaveOutbox(ctx, id, p, base)
}

func (s *countingStore) List(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	return s.MemoryStore.List(ctx)
}

// probe runs /readyz once and returns the status and body.
func probe(t *testing.T, hs *healthServer) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	hs.readyz(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code, rec.Body.String()
}

// TestReadinessStateFromMemory: the "state" check of /readyz reads what
// the store's recent operations did, never the store itself; failing
// operations and a closed store fail it.
func TestReadinessStateFromMemory(t *testing.T) {
	api := newAPI(t, tencenttest.Options{})
	api.AddGroup("@TGS#room")
	e := newEnv(t, api, []string{"@TGS#room"}, "")
	t.Setenv("ROLLCALL_TEST_KEY", api.Key())
	cfg, err := LoadConfig(e.config)
	if err != nil {
		t.Fatal(err)
	}
	st := &countingStore{MemoryStore: diff.NewMemoryStore()}
	ctx := context.Background()
	p, err := newPipeline(ctx, cfg, zaptest.NewLogger(t), pipelineOptions{stdout: io.Discard, store: st})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := newHealthServer("127.0.0.1:0", p.metrics.reg, p.readiness(), false, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer hs.ln.Close()

	before := st.count()
	for range 5 {
		if _, body := probe(t, hs); !strings.Contains(body, "[+] state ok") {
			t.Fatalf("fresh store: /readyz =\n%s", body)
		}
	}
	if n := st.count() - before; n != 0 {
		t.Fatalf("5 probes made %d store calls, want none", n)
	}

	st.mu.Lock()
	st.loadErr = errors.New("disk on fire")
	st.mu.Unlock()
	for range 3 {
		// A group a reload adds: its state is read now (the running ones are
		// kept in memory since the start).
		if _, err := p.detector.Dismissed(ctx, "@TGS#added"); err == nil {
			t.Fatal("Dismissed over a failing store succeeded")
		}
	}
	code, body := probe(t, hs)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "[-] state: ") || !strings.Contains(body, "disk on fire") {
		t.Fatalf("failing store: /readyz = %d\n%s", code, body)
	}

	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.loadErr = nil
	st.mu.Unlock()
	code, body = probe(t, hs)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "[-] state: "+diff.ErrClosed.Error()) {
		t.Fatalf("closed store: /readyz = %d\n%s", code, body)
	}
}

// TestCheckpointIntervalReachesTheDetector: with state.checkpoint_interval
// at its default a quiet poll writes nothing; at 0 it writes every poll;
// closing the pipeline writes what quiet polls changed.
func TestCheckpointIntervalReachesTheDetector(t *testing.T) {
	for _, tc := range []struct {
		yaml        string
		quietWrites int
	}{{"", 0}, {"  checkpoint_interval: 0s\n", 1}} {
		api := newAPI(t, tencenttest.Options{})
		api.AddGroup("@TGS#room")
		e := newEnv(t, api, []string{"@TGS#room"}, "")
		t.Setenv("ROLLCALL_TEST_KEY", api.Key())
		b, err := os.ReadFile(e.config)
		if err != nil {
			t.Fatal(err)
		}
		y := strings.Replace(string(b), "  driver: file\n", "  driver: file\n"+tc.yaml, 1)
		cfg, err := ParseConfig([]byte(y), os.LookupEnv)
		if err != nil {
			t.Fatal(err)
		}
		st := &countingStore{MemoryStore: diff.NewMemoryStore()}
		ctx := context.Background()
		p, err := newPipeline(ctx, cfg, zaptest.NewLogger(t), pipelineOptions{stdout: io.Discard, store: st, once: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.sched.RunOnce(ctx); err != nil { // the baseline
			t.Fatal(err)
		}
		before := st.count()
		if err := p.sched.RunOnce(ctx); err != nil { // nobody came or went
			t.Fatal(err)
		}
		if got := st.count() - before; got != tc.quietWrites {
			t.Errorf("%q: a quiet poll made %d store calls, want %d", tc.yaml, got, tc.quietWrites)
		}
		before = st.count()
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if want := 1 - tc.quietWrites; st.count()-before != want {
			t.Errorf("%q: Close made %d store calls, want %d (the checkpoint)", tc.yaml, st.count()-before, want)
		}
	}
}
