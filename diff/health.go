package diff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// unhealthyAfter is how many store operations in a row must fail before
// MonitoredStore reports the store unhealthy: one group's unreadable file
// among many healthy ones should not flip readiness.
const unhealthyAfter = 3

// MonitoredStore is a Store that remembers, in memory, how the wrapped
// store's recent operations went, so that readiness is judged from the
// detector's own traffic instead of from a read of the store per probe.
type MonitoredStore struct {
	inner Store

	mu       sync.Mutex
	failures int   // consecutive failed operations
	lastErr  error // the latest of them
	closed   bool
}

var (
	_ Store         = (*MonitoredStore)(nil)
	_ HealthChecker = (*MonitoredStore)(nil)
	_ io.Closer     = (*MonitoredStore)(nil)
)

// Monitor wraps s.
func Monitor(s Store) *MonitoredStore { return &MonitoredStore{inner: s} }

// Unwrap returns the wrapped store, for its optional interfaces.
func (m *MonitoredStore) Unwrap() Store { return m.inner }

// record notes one operation's outcome. An error while ctx is done (a
// shutdown, a reload's deadline) says nothing about the store and is not
// counted either way. This is the one place that classifies outcomes: a
// store refusing a write as a conflict (someone else wrote the group) is
// an answer, not a failure.
func (m *MonitoredStore) record(ctx context.Context, err error) {
	var conflict *ConflictError
	if err != nil && (ctx.Err() != nil || errors.As(err, &conflict)) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		m.failures, m.lastErr = 0, nil
		return
	}
	if errors.Is(err, ErrClosed) {
		m.closed = true
	}
	m.failures++
	m.lastErr = err
}

// Load implements Store.
func (m *MonitoredStore) Load(ctx context.Context, groupID string) (*State, Revision, error) {
	s, rev, err := m.inner.Load(ctx, groupID)
	m.record(ctx, err)
	return s, rev, err
}

// Save implements Store.
func (m *MonitoredStore) Save(ctx context.Context, s *State, base Revision) (Revision, error) {
	rev, err := m.inner.Save(ctx, s, base)
	m.record(ctx, err)
	return rev, err
}

// SaveCheckpoint implements CheckpointSaver: the wrapped store's, or its
// Save when it has none.
func (m *MonitoredStore) SaveCheckpoint(ctx context.Context, s *State, base Revision) (Revision, error) {
	var rev Revision
	var err error
	if cs, ok := m.inner.(CheckpointSaver); ok {
		rev, err = cs.SaveCheckpoint(ctx, s, base)
	} else {
		rev, err = m.inner.Save(ctx, s, base)
	}
	m.record(ctx, err)
	return rev, err
}

// SaveOutbox implements Store.
func (m *MonitoredStore) SaveOutbox(ctx context.Context, groupID string, p *Pending, base Revision) (Revision, error) {
	rev, err := m.inner.SaveOutbox(ctx, groupID, p, base)
	m.record(ctx, err)
	return rev, err
}

// Healthy implements HealthChecker from what is in memory: it fails once
// the store is closed, when the wrapped store's own Healthy fails, or
// after unhealthyAfter failed operations in a row (until one succeeds).
// No operation has been tried yet counts as healthy.
func (m *MonitoredStore) Healthy(ctx context.Context) error {
	m.mu.Lock()
	closed, failures, lastErr := m.closed, m.failures, m.lastErr
	m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if h, ok := m.inner.(HealthChecker); ok {
		if err := h.Healthy(ctx); err != nil {
			return err
		}
	}
	if failures >= unhealthyAfter {
		return fmt.Errorf("the last %d state operations failed: %w", failures, lastErr)
	}
	return nil
}

// Close closes the wrapped store when it is an io.Closer; Healthy fails
// from then on.
func (m *MonitoredStore) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	if c, ok := m.inner.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
