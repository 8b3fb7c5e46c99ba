// This file stays whole: it is one conformance suite, RunDetectorSuite,
// whose cases share its closures (newDetector, load, handle), and the two
// doubles those cases drive; every store's tests run it as one.

// Package difftest holds test doubles for the diff package and a suite
// that checks the Detector's commit protocol against any diff.Store.
package difftest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/poller"
	"github.com/rollcall-dev/rollcall/schema"
)

// Publisher is a diff.Publisher that records every batch it accepts. Set
// a failure with Fail; a failed batch is recorded in Attempts only.
type Publisher struct {
	// Acked, when set, is called after each accepted batch: a test uses
	// it to fail what comes after the publish (the commit).
	Acked func()

	mu       sync.Mutex
	err      error
	batches  [][]schema.Event
	attempts [][]schema.Event
}

var _ diff.Publisher = (*Publisher)(nil)

// Publish implements diff.Publisher.
func (p *Publisher) Publish(ctx context.Context, events []schema.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	b := append([]schema.Event(nil), events...)
	p.attempts = append(p.attempts, b)
	if err := p.err; err != nil {
		p.mu.Unlock()
		return err
	}
	p.batches = append(p.batches, b)
	acked := p.Acked
	p.mu.Unlock()
	if acked != nil {
		acked()
	}
	return nil
}

// Fail makes later Publish calls return err; nil restores success.
func (p *Publisher) Fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

// Batches returns the accepted batches, oldest first.
func (p *Publisher) Batches() [][]schema.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]schema.Event(nil), p.batches...)
}

// Attempts returns every batch Publish was called with, failed or not.
func (p *Publisher) Attempts() [][]schema.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]schema.Event(nil), p.attempts...)
}

// FailingStore wraps a diff.Store; after FailSave or FailLoad with a
// non-nil error, Save or Load returns it without touching the wrapped
// store.
type FailingStore struct {
	diff.Store
	mu      sync.Mutex
	saveErr error
	loadErr error
	loads   int
	saves   int
	// conflicts is how many of the next writes are refused as if another
	// process had written the group.
	conflicts int
}

// Conflict makes the next n writes return a *diff.ConflictError without
// writing, as a shared store does when someone else wrote the group.
func (s *FailingStore) Conflict(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conflicts = n
}

// writeErr is the error the next write returns, if any.
func (s *FailingStore) writeErr(groupID string, base diff.Revision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saves++
	if s.conflicts > 0 {
		s.conflicts--
		return &diff.ConflictError{GroupID: groupID, Base: base, Current: base + 1}
	}
	return s.saveErr
}

// FailSave makes later Save calls return err (nil: pass through).
func (s *FailingStore) FailSave(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saveErr = err
}

// FailLoad makes later Load calls return err (nil: pass through).
func (s *FailingStore) FailLoad(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadErr = err
}

// Save implements diff.Store.
func (s *FailingStore) Save(ctx context.Context, st *diff.State, base diff.Revision) (diff.Revision, error) {
	if err := s.writeErr(st.GroupID, base); err != nil {
		return 0, err
	}
	return s.Store.Save(ctx, st, base)
}

// SaveOutbox implements diff.Store; FailSave fails it too.
func (s *FailingStore) SaveOutbox(ctx context.Context, groupID string, p *diff.Pending, base diff.Revision) (diff.Revision, error) {
	if err := s.writeErr(groupID, base); err != nil {
		return 0, err
	}
	return s.Store.SaveOutbox(ctx, groupID, p, base)
}

// Load implements diff.Store.
func (s *FailingStore) Load(ctx context.Context, groupID string) (*diff.State, diff.Revision, error) {
	s.mu.Lock()
	err := s.loadErr
	s.loads++
	s.mu.Unlock()
	if err != nil {
		return nil, 0, err
	}
	return s.Store.Load(ctx, groupID)
}

// Counts returns how many times Load and the writes (Save, SaveOutbox)
// were called, failed or not.
func (s *FailingStore) Counts() (loads, writes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads, s.saves
}

// OpenStore opens a fresh store for one test. reopen closes s and opens
// a store over the same data, as a restarted process would.
type OpenStore func(t *testing.T) (s diff.Store, reopen func() diff.Store)

const (
	suiteApp   = 1400000001
	suiteGroup = "@TGS#suite/group"
)

var suiteT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(n int) time.Time { return suiteT0.Add(time.Duration(n) * 30 * time.Second) }

func snap(n int, accounts ...string) schema.Snapshot {
	ms := make([]schema.Member, 0, len(accounts))
	for _, a := range accounts {
		ms = append(ms, schema.Member{Account: a, NickName: "nick " + a, JoinTime: suiteT0.Unix() - 600})
	}
	return schema.Snapshot{SDKAppID: suiteApp, GroupID: suiteGroup, TakenAt: at(n), Members: schema.NormalizeMembers(ms)}
}

// acked is s without its outbox: the state every sink acknowledged.
func acked(s *diff.State) *diff.State {
	c := s.Clone()
	if c != nil {
		c.Pending = nil
	}
	return c
}

func ids(events []schema.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// RunDetectorSuite checks the Detector's commit protocol over stores made
// by open: state moves only when publishing and saving succeeded, failed
// commits re-emit the same ids, dismissal persists, restarts are quiet.
func RunDetectorSuite(t *testing.T, open OpenStore) {
	ctx := context.Background()
	newDetector := func(t *testing.T, st diff.Store, pub diff.Publisher) *diff.Detector {
		t.Helper()
		d, err := diff.NewDetector(diff.DetectorOptions{Store: st, Publisher: pub, Diff: diff.Options{SDKAppID: suiteApp}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	load := func(t *testing.T, st diff.Store) *diff.State {
		t.Helper()
		s, _, err := st.Load(ctx, suiteGroup)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		return s
	}

	// handle hands s to d, which must commit it.
	handle := func(t *testing.T, d *diff.Detector, s schema.Snapshot) {
		t.Helper()
		if err := d.HandleSnapshot(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	// crashAfterPublish handles s so that every sink acknowledges the batch
	// and the commit then fails, as if the process died in between.
	crashAfterPublish := func(t *testing.T, d *diff.Detector, inner *FailingStore, pub *Publisher, s schema.Snapshot) {
		t.Helper()
		crash := errors.New("killed")
		pub.Acked = func() { inner.FailSave(crash) }
		defer func() { pub.Acked = nil }()
		if err := d.HandleSnapshot(ctx, s); !errors.Is(err, crash) {
			t.Fatalf("HandleSnapshot = %v, want it to wrap %v", err, crash)
		}
	}

	t.Run("commits after publish", func(t *testing.T) {
		st, _ := open(t)
		pub := &Publisher{}
		d := newDetector(t, st, pub)
		if s := load(t, st); s != nil {
			t.Fatalf("fresh store has state %+v", s)
		}
		first := snap(0, "alice", "bob")
		handle(t, d, first)
		wantEvents, wantState := diff.Diff(nil, first, diff.Options{SDKAppID: suiteApp})
		if b := pub.Batches(); len(b) != 1 || !reflect.DeepEqual(b[0], wantEvents) {
			t.Fatalf("published %v, want one batch %v", b, wantEvents)
		}
		if got := load(t, st); !reflect.DeepEqual(got, wantState) {
			t.Fatalf("stored %+v, want %+v", got, wantState)
		}
		if l, ok := st.(diff.Lister); ok { // optional
			list, err := l.List(ctx)
			if err != nil || !reflect.DeepEqual(list, []string{suiteGroup}) {
				t.Fatalf("List = %v, %v", list, err)
			}
		}
	})

	t.Run("publish failure leaves state unchanged and re-emits the same ids", func(t *testing.T) {
		st, _ := open(t)
		pub := &Publisher{}
		d := newDetector(t, st, pub)
		handle(t, d, snap(0, "alice", "bob"))
		committed := load(t, st)
		boom := errors.New("broker down")
		pub.Fail(boom)
		change := snap(1, "bob", "carol")
		if err := d.HandleSnapshot(ctx, change); !errors.Is(err, boom) {
			t.Fatalf("HandleSnapshot = %v, want it to wrap %v", err, boom)
		}
		got := load(t, st)
		if !reflect.DeepEqual(acked(got), committed) {
			t.Fatalf("state moved after a failed publish: %+v", got)
		}
		if got.Pending == nil || !reflect.DeepEqual(ids(got.Pending.Events), ids(pub.Attempts()[1])) {
			t.Fatalf("outbox %+v does not hold the failed batch", got.Pending)
		}
		pub.Fail(nil)
		retry := change
		retry.TakenAt = at(2) // the caller retries with a fresh snapshot of the same group
		handle(t, d, retry)
		att := pub.Attempts()
		failed, ok := att[len(att)-2], att[len(att)-1]
		if len(failed) != 2 || !reflect.DeepEqual(ids(failed), ids(ok)) {
			t.Fatalf("retry ids %v, failed attempt ids %v", ids(ok), ids(failed))
		}
		if got := load(t, st); !got.ObservedAt.Equal(at(2)) || len(got.Members) != 2 || got.Members[1].Account != "carol" {
			t.Fatalf("state after retry %+v", got)
		}
	})

	t.Run("save failure leaves state unchanged and re-emits the same ids", func(t *testing.T) {
		inner, _ := open(t)
		st := &FailingStore{Store: inner}
		pub := &Publisher{}
		d := newDetector(t, st, pub)
		handle(t, d, snap(0, "alice"))
		committed := load(t, st)
		diskFull := errors.New("disk full")
		pub.Acked = func() { st.FailSave(diskFull) } // the publish succeeds, the commit fails
		if err := d.HandleSnapshot(ctx, snap(1)); !errors.Is(err, diskFull) {
			t.Fatalf("HandleSnapshot = %v, want it to wrap %v", err, diskFull)
		}
		pub.Acked = nil
		if got := load(t, st); !reflect.DeepEqual(acked(got), committed) {
			t.Fatalf("state moved after a failed save: %+v", got)
		}
		st.FailSave(nil)
		handle(t, d, snap(2))
		b := pub.Batches()
		if len(b) != 3 || !reflect.DeepEqual(ids(b[1]), ids(b[2])) || b[2][0].Type != schema.TypeMemberLeft {
			t.Fatalf("batches %v: want the left event published twice with one id", b)
		}
		if got := load(t, st); len(got.Members) != 0 || !got.ObservedAt.Equal(at(2)) {
			t.Fatalf("state after retry %+v", got)
		}
	})

	t.Run("a batch published in part goes out again whole before the group's next changes", func(t *testing.T) {
		st, reopen := open(t)
		inner := &FailingStore{Store: st}
		pub := &Publisher{}
		d := newDetector(t, inner, pub)
		handle(t, d, snap(0, "alice", "bob"))
		// The sinks take alice's leave and carol's join, then the process
		// dies before the commit (the commit fails, and the store is
		// reopened as a restarted process would).
		crashAfterPublish(t, d, inner, pub, snap(1, "bob", "carol"))
		partial := pub.Batches()[1]
		st = reopen()
		d = newDetector(t, st, pub)
		// By the next poll carol has gone again. Re-diffing the acknowledged
		// state (alice, bob) against this snapshot would send only alice's
		// leave, and consumers would keep carol online for ever.
		handle(t, d, snap(2, "bob"))
		b := pub.Batches()
		if len(b) != 4 || !reflect.DeepEqual(ids(b[2]), ids(partial)) {
			t.Fatalf("batches %v: want the interrupted batch %v again, whole", b, ids(partial))
		}
		for i := range partial {
			was, _ := partial[i].MarshalJSON()
			again, _ := b[2][i].MarshalJSON()
			if string(was) != string(again) {
				t.Fatalf("event %d re-published as %s, was %s", i, again, was)
			}
		}
		if len(b[3]) != 1 || b[3][0].Type != schema.TypeMemberLeft || b[3][0].Subject != "carol" {
			t.Fatalf("last batch %v, want carol's leave", b[3])
		}
		if got := load(t, st); got.Pending != nil || len(got.Members) != 1 || got.Members[0].Account != "bob" {
			t.Fatalf("state %+v, want bob and an empty outbox", got)
		}
	})

	t.Run("an interrupted baseline goes out again whole", func(t *testing.T) {
		st, reopen := open(t)
		inner := &FailingStore{Store: st}
		pub := &Publisher{}
		d := newDetector(t, inner, pub)
		crashAfterPublish(t, d, inner, pub, snap(0, "alice", "bob"))
		st = reopen()
		d = newDetector(t, st, pub)
		if gone, err := d.Dismissed(ctx, suiteGroup); err != nil || gone {
			t.Fatalf("Dismissed over an outbox-only state = %v, %v", gone, err)
		}
		handle(t, d, snap(1, "bob"))
		b := pub.Batches()
		if len(b) != 3 || !reflect.DeepEqual(ids(b[0]), ids(b[1])) || b[1][0].Data.Reason != schema.ReasonBaseline {
			t.Fatalf("batches %v: want the baseline twice", b)
		}
		if len(b[2]) != 1 || b[2][0].Subject != "alice" || b[2][0].Type != schema.TypeMemberLeft {
			t.Fatalf("last batch %v, want alice's leave", b[2])
		}
	})

	t.Run("an interrupted dismissal goes out again, then the group stays dismissed", func(t *testing.T) {
		st, reopen := open(t)
		inner := &FailingStore{Store: st}
		pub := &Publisher{}
		d := newDetector(t, inner, pub)
		handle(t, d, snap(0, "alice"))
		crashAfterPublish(t, d, inner, pub, schema.Snapshot{SDKAppID: suiteApp, GroupID: suiteGroup, TakenAt: at(1), Dismissed: true})
		st = reopen()
		d = newDetector(t, st, pub)
		// Not committed as dismissed yet: polled again, so the outbox goes out.
		if gone, err := d.Dismissed(ctx, suiteGroup); err != nil || gone {
			t.Fatalf("Dismissed with the dismissal in the outbox = %v, %v; want false", gone, err)
		}
		// The API lists the group again (its id reused): the dismissal is
		// replayed, then the listing is refused as the group's stored state
		// says dismissed; nothing else is emitted.
		err := d.HandleSnapshot(ctx, snap(2, "alice", "bob"))
		var de *poller.Error
		if !errors.As(err, &de) || de.Kind != poller.KindGone || de.GroupID != suiteGroup {
			t.Fatalf("HandleSnapshot = %v, want a *poller.Error of KindGone for %s", err, suiteGroup)
		}
		b := pub.Batches()
		if len(b) != 3 || !reflect.DeepEqual(ids(b[1]), ids(b[2])) || b[2][1].Type != schema.TypeGroupDismissed {
			t.Fatalf("batches %v: want the dismissal twice and nothing else", b)
		}
		if gone, err := d.Dismissed(ctx, suiteGroup); err != nil || !gone {
			t.Fatalf("Dismissed after the replay = %v, %v", gone, err)
		}
	})

	t.Run("Dismissed does not wait behind a publish", func(t *testing.T) {
		st, _ := open(t)
		release := make(chan struct{})
		entered := make(chan struct{})
		pub := diff.PublisherFunc(func(ctx context.Context, _ []schema.Event) error {
			close(entered)
			<-release
			return nil
		})
		d, err := diff.NewDetector(diff.DetectorOptions{Store: st, Publisher: pub, Diff: diff.Options{SDKAppID: suiteApp}})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- d.HandleSnapshot(ctx, snap(0, "alice")) }()
		<-entered
		// The publish is blocked; Dismissed answers from the stored
		// state (the outbox is not committed, so not dismissed).
		short, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if gone, err := d.Dismissed(short, suiteGroup); err != nil || gone {
			t.Errorf("Dismissed during a blocked publish = %v, %v; want false at once", gone, err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("load failure publishes nothing", func(t *testing.T) {
		inner, _ := open(t)
		st := &FailingStore{Store: inner}
		pub := &Publisher{}
		d := newDetector(t, st, pub)
		bad := errors.New("unreadable")
		st.FailLoad(bad)
		if err := d.HandleSnapshot(ctx, snap(0, "alice")); !errors.Is(err, bad) {
			t.Fatalf("HandleSnapshot = %v, want it to wrap %v", err, bad)
		}
		if _, err := d.Dismissed(ctx, suiteGroup); !errors.Is(err, bad) {
			t.Fatalf("Dismissed error = %v, want it to wrap %v", err, bad)
		}
		if a := pub.Attempts(); len(a) != 0 {
			t.Fatalf("published %v without state", a)
		}
		st.FailLoad(nil)
		if s := load(t, st); s != nil {
			t.Fatalf("state %+v saved without a load", s)
		}
	})

	t.Run("dismissed state persists across a restart", func(t *testing.T) {
		st, reopen := open(t)
		pub := &Publisher{}
		d := newDetector(t, st, pub)
		handle(t, d, snap(0, "alice", "bob"))
		if gone, err := d.Dismissed(ctx, suiteGroup); err != nil || gone {
			t.Fatalf("Dismissed before dismissal = %v, %v", gone, err)
		}
		dis := schema.Snapshot{SDKAppID: suiteApp, GroupID: suiteGroup, TakenAt: at(1), Dismissed: true}
		handle(t, d, dis)
		b := pub.Batches()
		last := b[len(b)-1]
		if len(last) != 3 || last[2].Type != schema.TypeGroupDismissed || *last[2].Data.MembersLeft != 2 {
			t.Fatalf("dismissal batch %v", last)
		}
		st = reopen()
		d = newDetector(t, st, pub)
		if gone, err := d.Dismissed(ctx, suiteGroup); err != nil || !gone {
			t.Fatalf("Dismissed after restart = %v, %v", gone, err)
		}
		if gone, err := d.Dismissed(ctx, "other group"); err != nil || gone {
			t.Fatalf("Dismissed(unknown group) = %v, %v", gone, err)
		}
		handle(t, d, dis)
		if n := len(pub.Attempts()); n != len(b) {
			t.Fatalf("a dismissed group published again: %v", pub.Attempts()[len(b):])
		}
	})

	t.Run("restart over an unchanged group emits nothing", func(t *testing.T) {
		st, reopen := open(t)
		pub := &Publisher{}
		d := newDetector(t, st, pub)
		handle(t, d, snap(0, "alice", "bob"))
		st = reopen()
		d = newDetector(t, st, pub)
		handle(t, d, snap(1, "alice", "bob"))
		if a := pub.Attempts(); len(a) != 1 {
			t.Fatalf("published after restart: %v", a[1:])
		}
		// The state still advanced, so online_seconds of a later leave is right.
		s := load(t, st)
		if !s.ObservedAt.Equal(at(1)) || !s.Members[0].LastSeen.Equal(at(1)) {
			t.Fatalf("state not advanced: %+v", s)
		}
	})

	t.Run("silent baseline saves state without publishing", func(t *testing.T) {
		st, _ := open(t)
		pub := &Publisher{}
		d, err := diff.NewDetector(diff.DetectorOptions{Store: st, Publisher: pub,
			Diff: diff.Options{SDKAppID: suiteApp, Baseline: diff.BaselineSilent}})
		if err != nil {
			t.Fatal(err)
		}
		handle(t, d, snap(0, "alice"))
		if a := pub.Attempts(); len(a) != 0 {
			t.Fatalf("silent baseline published %v", a)
		}
		if s := load(t, st); s == nil || len(s.Members) != 1 {
			t.Fatalf("silent baseline state %+v", s)
		}
	})

	t.Run("revisions: a write based on a stale revision is refused", func(t *testing.T) {
		st, _ := open(t)
		s0, rev0, err := st.Load(ctx, suiteGroup)
		if err != nil || s0 != nil || rev0 != 0 {
			t.Fatalf("fresh Load = %v, %d, %v; want nothing at revision 0", s0, rev0, err)
		}
		_, first := diff.Diff(nil, snap(0, "alice"), diff.Options{SDKAppID: suiteApp})
		rev1, err := st.Save(ctx, first, rev0)
		if err != nil || rev1 == rev0 {
			t.Fatalf("Save = %d, %v; want a new revision", rev1, err)
		}
		var ce *diff.ConflictError
		if _, err := st.Save(ctx, first, rev0); !errors.As(err, &ce) || ce.GroupID != suiteGroup {
			t.Fatalf("Save on a stale revision = %v, want a *diff.ConflictError", err)
		}
		evs, next := diff.Diff(first, snap(1), diff.Options{SDKAppID: suiteApp})
		if _, err := st.SaveOutbox(ctx, suiteGroup, &diff.Pending{Events: evs, Next: next}, rev0); !errors.As(err, &ce) {
			t.Fatalf("SaveOutbox on a stale revision = %v, want a *diff.ConflictError", err)
		}
		rev2, err := st.SaveOutbox(ctx, suiteGroup, &diff.Pending{Events: evs, Next: next}, rev1)
		if err != nil || rev2 == rev1 {
			t.Fatalf("SaveOutbox = %d, %v", rev2, err)
		}
		got, rev, err := st.Load(ctx, suiteGroup)
		if err != nil || rev != rev2 || got.Pending == nil || !reflect.DeepEqual(acked(got), first) {
			t.Fatalf("Load = %+v at %d, %v; want the state and outbox at %d", got, rev, err, rev2)
		}
	})

	t.Run("state is read once; a quiet poll writes nothing until the checkpoint is due", func(t *testing.T) {
		inner, _ := open(t)
		st := &FailingStore{Store: inner}
		pub := &Publisher{}
		now := suiteT0
		d, err := diff.NewDetector(diff.DetectorOptions{Store: st, Publisher: pub, Diff: diff.Options{SDKAppID: suiteApp},
			CheckpointInterval: time.Minute, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		handle(t, d, snap(0, "alice", "bob"))
		loads, writes := st.Counts()
		if loads != 1 || writes != 2 {
			t.Fatalf("baseline: %d loads, %d writes; want 1 load, the outbox and the commit", loads, writes)
		}
		now = now.Add(30 * time.Second)
		handle(t, d, snap(1, "alice", "bob"))
		if l, w := st.Counts(); l != 1 || w != 2 {
			t.Fatalf("quiet poll within the interval: %d loads, %d writes; want none", l-1, w-2)
		}
		if s := load(t, inner); !s.ObservedAt.Equal(at(0)) {
			t.Fatalf("stored state moved without a checkpoint: %v", s.ObservedAt)
		}
		now = now.Add(31 * time.Second)
		handle(t, d, snap(2, "alice", "bob"))
		if s := load(t, inner); !s.ObservedAt.Equal(at(2)) || !s.Members[0].LastSeen.Equal(at(2)) {
			t.Fatalf("checkpoint did not write the latest observation: %+v", s)
		}
		// A membership change is written at once, checkpoint or not.
		now = now.Add(time.Second)
		handle(t, d, snap(3, "alice"))
		if s := load(t, inner); len(s.Members) != 1 || !s.ObservedAt.Equal(at(3)) {
			t.Fatalf("a leave was not committed at once: %+v", s)
		}
		// Changes in place since are written by Checkpoint (at shutdown).
		now = now.Add(time.Second)
		handle(t, d, snap(4, "alice"))
		if err := d.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if s := load(t, inner); !s.ObservedAt.Equal(at(4)) {
			t.Fatalf("Checkpoint did not write the state changed in place: %v", s.ObservedAt)
		}
		_, w := st.Counts()
		if err := d.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if _, w2 := st.Counts(); w2 != w {
			t.Fatalf("Checkpoint wrote a group with nothing new")
		}
		if l, _ := st.Counts(); l != 1 {
			t.Fatalf("state read %d times; want once", l)
		}
	})

	t.Run("after a crash the checkpointed observations are true bounds", func(t *testing.T) {
		st, reopen := open(t)
		pub := &Publisher{}
		now := suiteT0
		opts := diff.DetectorOptions{Store: st, Publisher: pub, Diff: diff.Options{SDKAppID: suiteApp},
			CheckpointInterval: time.Hour, Now: func() time.Time { return now }}
		d, err := diff.NewDetector(opts)
		if err != nil {
			t.Fatal(err)
		}
		for n := range 3 { // a baseline, then two quiet polls kept in memory
			handle(t, d, snap(n, "alice"))
		}
		// kill -9: no Checkpoint. The restarted detector starts from the
		// baseline's state: alice's stay is bounded by what was written.
		opts.Store = reopen()
		d, err = diff.NewDetector(opts)
		if err != nil {
			t.Fatal(err)
		}
		handle(t, d, snap(3))
		b := pub.Batches()
		left := b[len(b)-1][0]
		if left.Type != schema.TypeMemberLeft || *left.Data.OnlineSeconds != at(0).Unix()-(suiteT0.Unix()-600) ||
			!left.Data.PreviousObservedAt.Equal(at(0)) {
			t.Fatalf("leave after a crash %+v: want online_seconds and previous_observed_at from the last write", left.Data)
		}
	})

	t.Run("a conflict publishes nothing, drops the kept state and reads it again", func(t *testing.T) {
		inner, _ := open(t)
		st := &FailingStore{Store: inner}
		pub := &Publisher{}
		d := newDetector(t, st, pub)
		handle(t, d, snap(0, "alice"))
		st.Conflict(1)
		var ce *diff.ConflictError
		if err := d.HandleSnapshot(ctx, snap(1, "alice", "bob")); !errors.As(err, &ce) {
			t.Fatalf("HandleSnapshot = %v, want a *diff.ConflictError", err)
		}
		if a := pub.Attempts(); len(a) != 1 {
			t.Fatalf("published after a conflict: %v", a[1:])
		}
		handle(t, d, snap(2, "alice", "bob"))
		if l, _ := st.Counts(); l != 2 {
			t.Fatalf("state read %d times; want again after the conflict", l)
		}
		b := pub.Batches()
		if len(b) != 2 || len(b[1]) != 1 || b[1][0].Subject != "bob" {
			t.Fatalf("batches %v: want bob's join after the re-read", b)
		}
		// A conflict on the commit, after the sinks acknowledged: the
		// batch is in the outbox and goes out again after the re-read.
		pub.Acked = func() { st.Conflict(1) }
		if err := d.HandleSnapshot(ctx, snap(3, "bob")); !errors.As(err, &ce) {
			t.Fatalf("HandleSnapshot = %v, want a *diff.ConflictError", err)
		}
		pub.Acked = nil
		handle(t, d, snap(4, "bob"))
		b = pub.Batches()
		if len(b) != 4 || !reflect.DeepEqual(ids(b[2]), ids(b[3])) {
			t.Fatalf("batches %v: want alice's leave again, same id", b)
		}
	})

	t.Run("forget removes state and outbox; an older revision's writes are refused", func(t *testing.T) {
		st, reopen := open(t)
		f, ok := st.(diff.Forgetter)
		if !ok {
			t.Skip("the store has no Forget") // optional
		}
		_, first := diff.Diff(nil, snap(0, "alice"), diff.Options{SDKAppID: suiteApp})
		rev1, err := st.Save(ctx, first, 0)
		if err != nil {
			t.Fatal(err)
		}
		evs, next := diff.Diff(first, snap(1), diff.Options{SDKAppID: suiteApp})
		rev2, err := st.SaveOutbox(ctx, suiteGroup, &diff.Pending{Events: evs, Next: next}, rev1)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Forget(ctx, suiteGroup); err != nil {
			t.Fatalf("Forget = %v", err)
		}
		if got, rev, err := st.Load(ctx, suiteGroup); err != nil || got != nil || rev != 0 {
			t.Fatalf("Load after Forget = %+v at %d, %v; want nothing at revision 0", got, rev, err)
		}
		if l, ok := st.(diff.Lister); ok {
			if list, err := l.List(ctx); err != nil || len(list) != 0 {
				t.Fatalf("List after Forget = %v, %v", list, err)
			}
		}
		if err := f.Forget(ctx, suiteGroup); err != nil {
			t.Fatalf("Forget of a forgotten group = %v, want nil", err)
		}
		if err := f.Forget(ctx, "@TGS#never-stored"); err != nil {
			t.Fatalf("Forget of a group never stored = %v, want nil", err)
		}
		var ce *diff.ConflictError
		if _, err := st.Save(ctx, next, rev2); !errors.As(err, &ce) {
			t.Fatalf("Save on the revision before Forget = %v, want a *diff.ConflictError", err)
		}
		st = reopen()
		if got := load(t, st); got != nil {
			t.Fatalf("state back after a restart: %+v", got)
		}

		// A detector that kept the group: its next write is refused, it
		// reads the store again and starts the group anew (a baseline).
		f = st.(diff.Forgetter)
		pub := &Publisher{}
		d := newDetector(t, st, pub)
		handle(t, d, snap(2, "alice"))
		if err := f.Forget(ctx, suiteGroup); err != nil {
			t.Fatal(err)
		}
		if err := d.HandleSnapshot(ctx, snap(3, "alice", "bob")); !errors.As(err, &ce) {
			t.Fatalf("HandleSnapshot after Forget = %v, want a *diff.ConflictError", err)
		}
		handle(t, d, snap(4, "alice", "bob"))
		b := pub.Batches()
		if len(b) != 2 || len(b[1]) != 2 || b[1][0].Data.Reason != schema.ReasonBaseline || b[1][1].Data.Reason != schema.ReasonBaseline {
			t.Fatalf("batches %v: want a baseline of alice and bob after Forget", b)
		}
	})

}
