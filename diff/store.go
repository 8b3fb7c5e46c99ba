package diff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
)

// Store persists group states and their outboxes.
//
// A group's record — its committed state and its outbox — has a Revision.
// Load returns the record with the revision it was read at; every write
// carries the revision it was based on and returns the new one. A store
// shared by several processes refuses a write whose base is not the stored
// revision with a *ConflictError (someone else wrote): the caller must not
// publish from what it read, and reads the record again. The file and
// memory stores are not shared (the file store holds a lock), so only a
// caller's own stale revision makes them conflict.
//
// Load returns a nil State when the group has neither state nor outbox,
// and an error when either exists but cannot be read: treating unreadable
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
// Lister, Forgetter, HealthChecker, and io.Closer to release the store
// (after which its methods return ErrClosed).
type Store interface {
	Load(ctx context.Context, groupID string) (*State, Revision, error)
	Save(ctx context.Context, s *State, base Revision) (Revision, error)
	SaveOutbox(ctx context.Context, groupID string, p *Pending, base Revision) (Revision, error)
}

// Lister is implemented by stores that can enumerate their groups
// (`rollcall check` reports the count).
type Lister interface {
	// List returns the ids of the groups with state, sorted.
	List(ctx context.Context) ([]string, error)
}

// Forgetter is implemented by stores that can remove a group's record,
// state and outbox together (`rollcall state forget`, the supported way to
// watch a dismissed group again). Forgetting a group with no record is not
// an error. A daemon that still holds the group finds its next write
// refused with a *ConflictError and reads the store again.
type Forgetter interface {
	Forget(ctx context.Context, groupID string) error
}

// CheckpointSaver is implemented by stores with a cheaper write for
// checkpoints: a state that differs from the stored one only in what
// events do not carry (last-seen times, profiles). After a crash such a
// write may be found undone — the previous state, whole — but never torn.
// The Detector uses it, when present, instead of Save for those writes.
type CheckpointSaver interface {
	SaveCheckpoint(ctx context.Context, s *State, base Revision) (Revision, error)
}

// HealthChecker is implemented by stores that can say whether they are
// usable. Healthy must be cheap, with no I/O: /readyz calls it on every
// probe.
type HealthChecker interface {
	Healthy(ctx context.Context) error
}

// Revision identifies a version of a group's stored record. Zero means
// no record.
type Revision uint64

// ConflictError is returned by a Store write whose base revision is not
// the stored one: the record changed since the caller read it.
type ConflictError struct {
	GroupID       string
	Base, Current Revision
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("state of %s changed since it was read (revision %d, the write was based on %d)", e.GroupID, e.Current, e.Base)
}

// Fence keeps each group's revision for a store that holds its records
// alone (the file and memory stores) and serialises each group's reads
// and writes, so that a write based on a stale revision is refused as a
// shared store would refuse it. The zero Fence is ready to use.
type Fence struct {
	mu     sync.Mutex
	groups map[string]*fenced
}

type fenced struct {
	mu  sync.Mutex
	rev Revision
}

func (f *Fence) group(id string) *fenced {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.groups == nil {
		f.groups = make(map[string]*fenced)
	}
	g := f.groups[id]
	if g == nil {
		g = &fenced{}
		f.groups[id] = g
	}
	return g
}

// Read runs read, which reports whether the group has a record, and
// returns the record's revision: 0 for none, at least 1 for a record
// (one written before this process started gets 1). The revision follows
// what read found.
func (f *Fence) Read(groupID string, read func() (exists bool, err error)) (Revision, error) {
	g := f.group(groupID)
	g.mu.Lock()
	defer g.mu.Unlock()
	exists, err := read()
	if err != nil {
		return 0, err
	}
	switch {
	case !exists:
		// Also after a record was removed behind the store's back (an
		// operator deleting a state file): the next write starts anew
		// instead of conflicting for ever.
		g.rev = 0
	case g.rev == 0:
		g.rev = 1
	}
	return g.rev, nil
}

// Write runs write if base is the group's revision and returns the next
// one; otherwise it returns a *ConflictError without writing. A failed
// write leaves the revision as it was.
func (f *Fence) Write(groupID string, base Revision, write func() error) (Revision, error) {
	g := f.group(groupID)
	g.mu.Lock()
	defer g.mu.Unlock()
	if base != g.rev {
		return 0, &ConflictError{GroupID: groupID, Base: base, Current: g.rev}
	}
	if err := write(); err != nil {
		return 0, err
	}
	g.rev++
	return g.rev, nil
}

// Remove runs remove, which deletes the group's record, and resets the
// group's revision to 0 (no record), serialised with its reads and writes.
// A holder of an earlier revision then finds its next write refused, as a
// shared store would refuse it (Forgetter). A failed remove leaves the
// revision as it was.
func (f *Fence) Remove(groupID string, remove func() error) error {
	g := f.group(groupID)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := remove(); err != nil {
		return err
	}
	g.rev = 0
	return nil
}

// ErrClosed is returned by a Store used after Close.
var ErrClosed = errors.New("store closed")

// MemoryStore is a Store in memory, for tests and dry runs. It keeps deep
// copies, so callers may modify what they pass in and get back.
type MemoryStore struct {
	fence   Fence
	mu      sync.Mutex
	states  map[string]*State
	outboxs map[string]*Pending
	closed  bool
}

var (
	_ Store         = (*MemoryStore)(nil)
	_ Lister        = (*MemoryStore)(nil)
	_ Forgetter     = (*MemoryStore)(nil)
	_ HealthChecker = (*MemoryStore)(nil)
	_ io.Closer     = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{states: make(map[string]*State), outboxs: make(map[string]*Pending)}
}

// Load implements Store.
func (m *MemoryStore) Load(ctx context.Context, groupID string) (*State, Revision, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	var s *State
	rev, err := m.fence.Read(groupID, func() (bool, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.closed {
			return false, ErrClosed
		}
		var p *Pending
		s, p = m.states[groupID].Clone(), m.outboxs[groupID].Clone()
		switch {
		case p == nil:
		case s == nil:
			s = OutboxOnly(groupID, p)
		default:
			s.Pending = p
		}
		return s != nil, nil
	})
	if err != nil {
		return nil, 0, err
	}
	return s, rev, nil
}

// Save implements Store.
func (m *MemoryStore) Save(ctx context.Context, s *State, base Revision) (Revision, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if s == nil || s.GroupID == "" {
		return 0, errors.New("save state: no group id")
	}
	c := s.Clone()
	c.Pending = nil
	return m.fence.Write(s.GroupID, base, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.closed {
			return ErrClosed
		}
		m.states[s.GroupID] = c
		delete(m.outboxs, s.GroupID)
		return nil
	})
}

// SaveOutbox implements Store.
func (m *MemoryStore) SaveOutbox(ctx context.Context, groupID string, p *Pending, base Revision) (Revision, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := p.Check(groupID); err != nil {
		return 0, err
	}
	c := p.Clone()
	return m.fence.Write(groupID, base, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.closed {
			return ErrClosed
		}
		m.outboxs[groupID] = c
		return nil
	})
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

// Forget implements Forgetter.
func (m *MemoryStore) Forget(ctx context.Context, groupID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.fence.Remove(groupID, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.closed {
			return ErrClosed
		}
		delete(m.states, groupID)
		delete(m.outboxs, groupID)
		return nil
	})
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
