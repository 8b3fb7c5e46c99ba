package diff

import (
	"context"
	"errors"
	"io"
	"sort"
	"sync"
)

// Store persists group states and their outboxes.
//
// Load returns (nil, nil) when the group has neither state nor outbox, and
// an error when either exists but cannot be read: treating unreadable
// state as absent would re-baseline the group. The returned State carries
// the outbox in Pending; a group with an outbox but no committed state yet
// (an interrupted baseline) comes back as a State with no ObservedAt and no
// members.
//
// SaveOutbox records a batch about to be published, leaving the committed
// state as it is. Save commits s (ignoring s.Pending) and then clears the
// outbox. Both are atomic: after a crash, Load returns the state and the
// outbox as before or as after each call (a crash between Save's commit
// and the clearing leaves an outbox whose Next is the committed state;
// publishing it again is harmless). A Store is safe for concurrent use by
// different groups; the Detector never loads or saves one group
// concurrently.
//
// Store holds only what the Detector needs. Other capabilities are
// optional interfaces, found with a type assertion by whoever needs them:
// Lister, HealthChecker, and io.Closer to release the store (after which
// its methods return ErrClosed).
type Store interface {
	Load(ctx context.Context, groupID string) (*State, error)
	Save(ctx context.Context, s *State) error
	SaveOutbox(ctx context.Context, groupID string, p *Pending) error
}

// Lister is implemented by stores that can enumerate their groups
// (`rollcall check` reports the count).
type Lister interface {
	// List returns the ids of the groups with state, sorted.
	List(ctx context.Context) ([]string, error)
}

// HealthChecker is implemented by stores that can say whether they are
// usable. Healthy must be cheap, with no I/O: /readyz calls it on every
// probe.
type HealthChecker interface {
	Healthy(ctx context.Context) error
}

// ErrClosed is returned by a Store used after Close.
var ErrClosed = errors.New("store closed")

// MemoryStore is a Store in memory, for tests and dry runs. It keeps deep
// copies, so callers may modify what they pass in and get back.
type MemoryStore struct {
	mu      sync.Mutex
	states  map[string]*State
	outboxs map[string]*Pending
	closed  bool
}

var (
	_ Store         = (*MemoryStore)(nil)
	_ Lister        = (*MemoryStore)(nil)
	_ HealthChecker = (*MemoryStore)(nil)
	_ io.Closer     = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{states: make(map[string]*State), outboxs: make(map[string]*Pending)}
}

// Load implements Store.
func (m *MemoryStore) Load(ctx context.Context, groupID string) (*State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	s, p := m.states[groupID].Clone(), m.outboxs[groupID].Clone()
	switch {
	case p == nil:
	case s == nil:
		s = OutboxOnly(groupID, p)
	default:
		s.Pending = p
	}
	return s, nil
}

// Save implements Store.
func (m *MemoryStore) Save(ctx context.Context, s *State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s == nil || s.GroupID == "" {
		return errors.New("save state: no group id")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	c := s.Clone()
	c.Pending = nil
	m.states[s.GroupID] = c
	delete(m.outboxs, s.GroupID)
	return nil
}

// SaveOutbox implements Store.
func (m *MemoryStore) SaveOutbox(ctx context.Context, groupID string, p *Pending) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := p.Check(groupID); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.outboxs[groupID] = p.Clone()
	return nil
}

// List implements Lister.
func (m *MemoryStore) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	ids := make([]string, 0, len(m.states))
	for id := range m.states {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// Healthy implements HealthChecker: only a closed store is unhealthy.
func (m *MemoryStore) Healthy(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

// Close implements io.Closer. Later calls fail with ErrClosed.
func (m *MemoryStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
