package diff_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/diff/difftest"
)

// The wrapper is transparent: the commit protocol holds through it.
func TestDetectorWithMonitoredStore(t *testing.T) {
	difftest.RunDetectorSuite(t, func(t *testing.T) (diff.Store, func() diff.Store) {
		s := diff.Monitor(diff.NewMemoryStore())
		return s, func() diff.Store { return s }
	})
}

func TestMonitoredStoreHealth(t *testing.T) {
	ctx := context.Background()
	mem := diff.NewMemoryStore()
	inner := &difftest.FailingStore{Store: mem}
	m := diff.Monitor(inner)
	if err := m.Healthy(ctx); err != nil {
		t.Fatalf("fresh store: Healthy = %v", err)
	}
	disk := errors.New("disk full")
	inner.FailLoad(disk)
	for i := range 3 {
		if err := m.Healthy(ctx); err != nil {
			t.Fatalf("after %d failures: Healthy = %v, want nil until 3 in a row", i, err)
		}
		if _, _, err := m.Load(ctx, "g"); !errors.Is(err, disk) {
			t.Fatalf("Load = %v", err)
		}
	}
	err := m.Healthy(ctx)
	if !errors.Is(err, disk) || !strings.Contains(err.Error(), "3 state operations failed") {
		t.Fatalf("after 3 failures: Healthy = %v", err)
	}

	// Failures while the caller's context is done say nothing about the
	// store: they neither count nor reset.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	inner.FailLoad(nil)
	if _, _, err := m.Load(cctx, "g"); err == nil {
		t.Fatal("Load with a cancelled context succeeded")
	}
	if err := m.Healthy(ctx); !errors.Is(err, disk) {
		t.Fatalf("after a cancelled Load: Healthy = %v, want still failing", err)
	}

	// One success ends it.
	if _, _, err := m.Load(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if err := m.Healthy(ctx); err != nil {
		t.Fatalf("after a success: Healthy = %v", err)
	}

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Healthy(ctx); !errors.Is(err, diff.ErrClosed) {
		t.Fatalf("after Close: Healthy = %v", err)
	}

	// Close reaches a wrapped io.Closer.
	if err := diff.Monitor(mem).Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mem.Load(ctx, "g"); !errors.Is(err, diff.ErrClosed) {
		t.Fatalf("Load after Close = %v: Close did not reach the wrapped store", err)
	}
}

// A store closed underneath (not through the wrapper) shows at its first
// use, and through its own Healthy before that.
func TestMonitoredStoreInnerClosed(t *testing.T) {
	ctx := context.Background()
	inner := diff.NewMemoryStore()
	m := diff.Monitor(inner)
	inner.Close()
	if err := m.Healthy(ctx); !errors.Is(err, diff.ErrClosed) {
		t.Fatalf("Healthy = %v, want the wrapped store's ErrClosed", err)
	}
	m2 := diff.Monitor(&difftest.FailingStore{Store: inner}) // hides the inner Healthy
	if err := m2.Healthy(ctx); err != nil {
		t.Fatalf("before any use: Healthy = %v", err)
	}
	if _, err := m2.Save(ctx, &diff.State{GroupID: "g"}, 0); !errors.Is(err, diff.ErrClosed) {
		t.Fatalf("Save = %v", err)
	}
	if err := m2.Healthy(ctx); !errors.Is(err, diff.ErrClosed) {
		t.Fatalf("after a Save on a closed store: Healthy = %v", err)
	}
}

// TestMonitoredStoreConflictsAreAnswers: a write refused as a conflict
// (someone else wrote the group) is the store working, not failing: any
// number of them leaves the store healthy.
func TestMonitoredStoreConflictsAreAnswers(t *testing.T) {
	ctx := context.Background()
	inner := &difftest.FailingStore{Store: diff.NewMemoryStore()}
	m := diff.Monitor(inner)
	inner.Conflict(5)
	st := &diff.State{Version: diff.StateVersion, GroupID: "g"}
	var ce *diff.ConflictError
	for range 5 {
		if _, err := m.Save(ctx, st, 0); !errors.As(err, &ce) {
			t.Fatalf("Save = %v, want a conflict", err)
		}
	}
	if err := m.Healthy(ctx); err != nil {
		t.Fatalf("after 5 conflicts: Healthy = %v, want nil", err)
	}
}
