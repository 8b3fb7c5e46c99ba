package diff

import (
	"context"
	"errors"
	"sort"
	"sync"
)

// Store persists group states.
//
// Load returns (nil, nil) when the group has no state, and an error when
// the state exists but cannot be read: treating unreadable state as absent
// would re-baseline the group. Save replaces the group's state atomically:
// after a crash, Load returns either the previous or the new state. A
// Store is safe for concurrent use by different groups; the Detector never
// loads or saves one group concurrently.
type Store interface {
	Load(ctx context.Context, groupID string) (*State, error)
	Save(ctx context.Context, s *State) error
	// List returns the ids of the groups with state, sorted.
	List(ctx context.Context) ([]string, error)
	Close() error
}

// ErrClosed is returned by a Store used after Close.
var ErrClosed = errors.New("store closed")

// MemoryStore is a Store in memory, for tests and dry runs. It keeps deep
// copies, so callers may modify what they pass in and get back.
type MemoryStore struct {
	mu     sync.Mutex
	states map[string]*State
	closed bool
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{states: make(map[string]*State)}
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
	return m.states[groupID].Clone(), nil
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
	m.states[s.GroupID] = s.Clone()
	return nil
}

// List implements Store.
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

// Close implements Store. Later calls fail with ErrClosed.
func (m *MemoryStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
