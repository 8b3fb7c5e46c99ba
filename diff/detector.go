package diff

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/poller"
	"github.com/rollcall-dev/rollcall/schema"
)

// Publisher is satisfied by the sink fan-out. Publish returns nil only
// when every sink acknowledged every event; on error any prefix may have
// been delivered and the Detector will publish the same events again.
type Publisher interface {
	Publish(ctx context.Context, events []schema.Event) error
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(ctx context.Context, events []schema.Event) error

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, events []schema.Event) error {
	return f(ctx, events)
}

// DetectorOptions configure a Detector.
type DetectorOptions struct {
	// Store and Publisher are required.
	Store     Store
	Publisher Publisher
	Diff      Options
	// Confirmer, when set, is asked whether members missing from a
	// truncated snapshot below its boundary have left (poll.confirm_departures);
	// without it they stay out of view until a complete snapshot shows them gone.
	Confirmer Confirmer
	// ConfirmTimeout bounds each confirmation, retries included, so that a
	// slow check_members cannot hold a group past its poll cycle (the
	// handler's own context has no deadline: publishing may retry for
	// long). Zero: no bound beyond the caller's context.
	ConfirmTimeout time.Duration
	// CheckpointInterval is state.checkpoint_interval: how often a group's
	// state is written when polls change no membership, only what events
	// do not carry (members' last-seen times, nick names, avatars, the
	// observation time). Zero writes every poll. Membership changes are
	// always written at once (outbox, then commit).
	CheckpointInterval time.Duration
	// Now is the clock for checkpoints (default time.Now).
	Now func() time.Time
	// Logger may be nil.
	Logger *zap.Logger
	// Metrics may be nil.
	Metrics *Metrics
}

// Confirmer tells which of accounts are members of the group now, without
// the list cap of get_members (check_members).
type Confirmer interface {
	CheckMembers(ctx context.Context, groupID string, accounts []string) (present []string, err error)
}

// Detector turns snapshots into published events and committed state.
// It is safe for concurrent use; snapshots of one group are handled one at
// a time.
type Detector struct {
	store          Store
	pub            Publisher
	confirm        Confirmer
	confirmTimeout time.Duration
	checkpoint     time.Duration
	now            func() time.Time
	log            *zap.Logger
	metrics        *Metrics

	mu     sync.Mutex
	opts   Options // replaced by SetOptions
	groups map[string]*group
}

// group is the Detector's in-process bookkeeping for one group.
type group struct {
	// lock (a one-slot channel, so waiting honours a context) serialises
	// load-diff-publish-save; a publish may retry for as long as a sink
	// is down.
	lock chan struct{}
	// The group's state, read from the store once and kept: guarded by
	// lock. cached is the state as the detector knows it (with its outbox
	// in Pending), rev the store revision it was read or written at; dirty
	// marks changes made in place since savedAt, the last write.
	loaded  bool
	cached  *State
	rev     Revision
	dirty   bool
	savedAt time.Time
	// gone mirrors cached.Dismissed for Dismissed, which must not wait for
	// the lock.
	gone atomic.Bool
	// reread, set by Forget, makes the next snapshot read the store again
	// instead of trusting the kept state: another replica may own the
	// group while it is not configured here.
	reread atomic.Bool
	// counted guards counts and forgotten: the gauges' share of the group.
	counted   sync.Mutex
	counts    counts // members last committed or loaded
	forgotten bool   // removed from the configuration: not in the gauges
}

func (g *group) acquire(ctx context.Context) error {
	select {
	case g.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *group) release() { <-g.lock }

// setCounts records the group's stored members and moves the gauges by the
// difference; configured puts a forgotten group back into them.
func (g *group) setCounts(m *Metrics, c counts, configured bool) {
	g.counted.Lock()
	defer g.counted.Unlock()
	switch {
	case configured && g.forgotten:
		g.forgotten = false
		m.track(c)
	case !g.forgotten:
		m.track(c.minus(g.counts))
	}
	g.counts = c
}

// configure puts a forgotten group's counts back into the gauges, as they
// are (read under the lock: a handler may be moving them).
func (g *group) configure(m *Metrics) {
	g.counted.Lock()
	defer g.counted.Unlock()
	if g.forgotten {
		g.forgotten = false
		m.track(g.counts)
	}
}

// Forget takes a group removed from the configuration out of
// rollcall_members_tracked and rollcall_members_out_of_view, which sum the
// configured groups; its stored state is kept. Dismissed (called for a
// group configured again) puts it back. The kept copy is not trusted
// again: a group configured anew is read from the store first, since with
// a shared store another replica may have polled it meanwhile.
func (d *Detector) Forget(groupID string) {
	g := d.group(groupID)
	g.reread.Store(true)
	g.counted.Lock()
	defer g.counted.Unlock()
	if !g.forgotten {
		g.forgotten = true
		d.metrics.track(counts{}.minus(g.counts))
	}
}

// storedDismissed is HandleSnapshot's error for a group whose stored state
// says it was dismissed but which the API lists again (its id reused, or
// the dismissal was wrong): nothing is emitted for it, and the scheduler
// stops polling it (a *poller.Error of KindGone, see poller.IsGone).
func storedDismissed(groupID string) error {
	return &poller.Error{Kind: poller.KindGone, GroupID: groupID,
		Err: errors.New("group " + groupID + " is stored as dismissed; its listing is ignored (`rollcall state forget --group ID` watches it again)")}
}

// NewDetector checks o and returns a Detector.
func NewDetector(o DetectorOptions) (*Detector, error) {
	if o.Store == nil {
		return nil, errors.New("detector: no store")
	}
	if o.Publisher == nil {
		return nil, errors.New("detector: no publisher")
	}
	diffOpts, err := checkOptions(o.Diff)
	if err != nil {
		return nil, err
	}
	o.Diff = diffOpts
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if o.ConfirmTimeout < 0 {
		return nil, fmt.Errorf("detector: confirm timeout %v is negative", o.ConfirmTimeout)
	}
	if o.CheckpointInterval < 0 {
		return nil, fmt.Errorf("detector: checkpoint interval %v is negative", o.CheckpointInterval)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Detector{store: o.Store, pub: o.Publisher, confirm: o.Confirmer, confirmTimeout: o.ConfirmTimeout,
		checkpoint: o.CheckpointInterval, now: o.Now, opts: o.Diff, log: log.Named("detector"),
		metrics: o.Metrics, groups: make(map[string]*group)}, nil
}

// departed asks the Confirmer which out-of-view candidates have left. Any
// failure leaves them out of view, as without a Confirmer: a confirmation
// is an improvement, never a reason to fail a poll.
func (d *Detector) departed(ctx context.Context, prev *State, snap schema.Snapshot) map[string]bool {
	if d.confirm == nil {
		return nil
	}
	cands := Candidates(prev, snap)
	if len(cands) == 0 {
		return nil
	}
	if d.confirmTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.confirmTimeout)
		defer cancel()
	}
	present, err := d.confirm.CheckMembers(ctx, snap.GroupID, cands)
	if err != nil {
		d.log.Warn("could not confirm departures below the list cap; keeping those members out of view",
			zap.String("group_id", snap.GroupID), zap.Int("members", len(cands)), zap.Error(err))
		return nil
	}
	gone := make(map[string]bool, len(cands))
	for _, a := range cands {
		gone[a] = true
	}
	for _, a := range present {
		delete(gone, a)
	}
	return gone
}

func checkOptions(o Options) (Options, error) {
	switch o.Baseline {
	case "", BaselineEmit, BaselineSilent:
	default:
		return o, fmt.Errorf("detector: baseline %q: want %q or %q", o.Baseline, BaselineEmit, BaselineSilent)
	}
	return o, nil
}

// SetOptions replaces the diff options (baseline mode) for the
// snapshots handled from now on: a configuration reload. A snapshot being
// handled keeps the options it started with.
func (d *Detector) SetOptions(o Options) error {
	o, err := checkOptions(o)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.opts = o
	d.mu.Unlock()
	return nil
}

func (d *Detector) options() Options {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.opts
}

func (d *Detector) group(id string) *group {
	d.mu.Lock()
	defer d.mu.Unlock()
	g, ok := d.groups[id]
	if !ok {
		g = &group{lock: make(chan struct{}, 1)}
		d.groups[id] = g
	}
	return g
}

// HandleSnapshot diffs snap against the group's state, publishes the
// events (if any), and commits the new state only after Publish returned
// nil.
//
// The state is read from the store at the group's first snapshot (or by
// Dismissed) and kept in memory. A snapshot that changes no membership is
// applied in place and written only every CheckpointInterval. A batch is
// first written to the state's outbox (State.Pending), so a batch that was
// published in part — a crash, a failed commit, shutdown during a retry —
// is published again, whole and with the same ids, by the next
// HandleSnapshot of the group before it diffs anything newer. If loading,
// publishing or saving fails, the acknowledged state is unchanged and the
// error is returned: the caller retries the group later. After a store
// error or conflict the kept state is dropped and read again.
func (d *Detector) HandleSnapshot(ctx context.Context, snap schema.Snapshot) error {
	if snap.GroupID == "" {
		return errors.New("handle snapshot: no group id")
	}
	g := d.group(snap.GroupID)
	if err := g.acquire(ctx); err != nil {
		return fmt.Errorf("handle snapshot of %s: %w", snap.GroupID, err)
	}
	defer g.release()

	if err := d.load(ctx, g, snap.GroupID); err != nil {
		return err
	}
	prev := g.cached
	opts := d.options()
	d.metrics.observeSnapshot(snap, !snap.Dismissed && snap.Truncated)
	if prev != nil && prev.Pending != nil {
		if err := d.flush(ctx, g, snap.GroupID, prev.Pending, true); err != nil {
			return err
		}
		prev = g.cached
	}
	if prev != nil && snap.TakenAt.Before(prev.ObservedAt) {
		// Another writer (a replica) committed a newer listing since this
		// one was taken: applying it would step back in time and report
		// members who joined in between as leaving.
		d.metrics.staleListing()
		d.log.Info("ignoring a listing taken before the stored state was observed", zap.String("group_id", snap.GroupID),
			zap.Time("taken_at", snap.TakenAt), zap.Time("observed_at", prev.ObservedAt))
		return nil
	}
	if prev != nil && prev.Dismissed && !snap.Dismissed {
		return storedDismissed(snap.GroupID)
	}
	events, next, urgent, c := advance(prev, snap, opts, d.departed(ctx, prev, snap), true)
	// prev is next now (changed in place) unless this was a first
	// snapshot or a dismissal.
	g.cached = next
	if !urgent {
		// Nothing the next diff depends on changed: the state is written
		// when the checkpoint is due, so a quiet poll costs no write.
		g.dirty = true
		g.setCounts(d.metrics, c, false)
		if d.checkpoint > 0 && d.now().Sub(g.savedAt) < d.checkpoint {
			return nil
		}
		return d.save(ctx, g, next, true)
	}
	if len(events) == 0 {
		return d.commit(ctx, g, next)
	}
	outbox := &Pending{Events: events, Next: next}
	rev, err := d.store.SaveOutbox(ctx, snap.GroupID, outbox, g.rev)
	if err != nil {
		// Nothing was published: the kept state is read again next time,
		// from a store that may have been written by someone else.
		d.drop(g)
		d.metrics.commitFailed(err)
		return fmt.Errorf("save outbox of %s: %w", snap.GroupID, err)
	}
	// Kept as the store has it: next, with the batch still to publish (a
	// failed publish is replayed from here at the next snapshot).
	wasDismissed := prev != nil && prev.Dismissed
	next.Pending = outbox
	g.rev = rev
	if err = d.flush(ctx, g, snap.GroupID, outbox, false); err != nil {
		return err
	}
	if snap.Dismissed && !wasDismissed {
		d.log.Warn("group dismissed; remove it from groups.ids", zap.String("group_id", snap.GroupID),
			zap.Int("members_left", len(events)-1))
	}
	return nil
}

// load reads the group's state from the store unless it is kept already.
func (d *Detector) load(ctx context.Context, g *group, groupID string) error {
	if g.reread.Swap(false) {
		d.drop(g)
	}
	if g.loaded {
		return nil
	}
	s, rev, err := d.store.Load(ctx, groupID)
	if err != nil {
		d.metrics.commitFailed(err)
		return fmt.Errorf("load state of %s: %w", groupID, err)
	}
	if s != nil {
		// Sorted once here, so that each poll's merge can trust it.
		s.Members = sortedTracked(s.Members)
		if s.Pending != nil {
			s.Pending.Next.Members = sortedTracked(s.Pending.Next.Members)
		}
	}
	g.loaded, g.cached, g.rev, g.dirty, g.savedAt = true, s, rev, false, d.now()
	g.gone.Store(s != nil && s.Dismissed)
	g.setCounts(d.metrics, countOf(s), false)
	return nil
}

// drop forgets the kept state after a failed or refused write: the store
// is the truth, and it is read again at the group's next snapshot.
func (d *Detector) drop(g *group) {
	g.loaded, g.cached, g.rev, g.dirty = false, nil, 0, false
}

// flush publishes the outbox p and commits the state that goes with it.
// replay marks a batch left by an earlier poll.
func (d *Detector) flush(ctx context.Context, g *group, groupID string, p *Pending, replay bool) error {
	if replay {
		d.log.Info("publishing again a batch an earlier poll left unacknowledged", zap.String("group_id", groupID),
			zap.Int("events", len(p.Events)), zap.Time("observed_at", p.Next.ObservedAt))
	}
	if err := d.pub.Publish(ctx, p.Events); err != nil {
		d.metrics.commitFailed(err)
		return fmt.Errorf("publish %d events of %s: %w", len(p.Events), groupID, err)
	}
	d.metrics.published(p.Events)
	return d.commit(ctx, g, p.Next)
}

// commit saves next as the acknowledged state (stores ignore its Pending)
// and keeps it.
func (d *Detector) commit(ctx context.Context, g *group, next *State) error {
	return d.save(ctx, g, next, false)
}

// save writes next and keeps it; a checkpoint (only what events do not
// carry changed) goes through the store's cheaper write when it has one.
func (d *Detector) save(ctx context.Context, g *group, next *State, checkpoint bool) error {
	// The batch (whose Next may be next itself) is being committed: a
	// store must not see it, and next must not point at itself.
	next.Pending = nil
	var rev Revision
	var err error
	if cs, ok := d.store.(CheckpointSaver); ok && checkpoint {
		rev, err = cs.SaveCheckpoint(ctx, next, g.rev)
	} else {
		rev, err = d.store.Save(ctx, next, g.rev)
	}
	if err != nil {
		d.drop(g)
		d.metrics.commitFailed(err)
		return fmt.Errorf("save state of %s: %w", next.GroupID, err)
	}
	d.metrics.committed()
	g.cached, g.rev, g.dirty, g.savedAt = next, rev, false, d.now()
	g.gone.Store(next.Dismissed)
	if !checkpoint { // a checkpoint's counts were set when the poll changed it
		g.setCounts(d.metrics, countOf(next), false)
	}
	return nil
}

// Checkpoint writes the state of every group changed in place since its
// last write (members' last-seen times, profiles): at shutdown, so that a
// restart starts from the latest observations. It waits for groups being
// handled; it returns the first error and goes on with the others.
func (d *Detector) Checkpoint(ctx context.Context) error {
	d.mu.Lock()
	groups := make([]*group, 0, len(d.groups))
	for _, g := range d.groups {
		groups = append(groups, g)
	}
	d.mu.Unlock()
	var first error
	for _, g := range groups {
		if err := g.acquire(ctx); err != nil {
			return errors.Join(first, err)
		}
		if g.loaded && g.dirty && g.cached != nil && g.cached.Pending == nil {
			var conflict *ConflictError
			switch err := d.save(ctx, g, g.cached, true); {
			case errors.As(err, &conflict):
				// Another replica wrote the group since: its state is
				// newer than these last-seen times, and is kept.
				d.log.Info("checkpoint skipped: the group was written by another replica", zap.String("group_id", conflict.GroupID))
			case err != nil && first == nil:
				first = err
			}
		}
		g.release()
	}
	return first
}

// Dismissed reports whether the group is stored as dismissed, so that it
// is not polled again after a restart. It reads the group's state into
// memory (its first read), which also counts its members into
// rollcall_members_tracked from the start rather than from its first
// commit. It does not wait for a publish of the group in progress (a
// reload must not hang behind a down sink): a group being handled is
// loaded already, and its answer is kept apart.
func (d *Detector) Dismissed(ctx context.Context, groupID string) (bool, error) {
	g := d.group(groupID)
	select {
	case g.lock <- struct{}{}:
	default:
		g.configure(d.metrics) // its counts are the handler's to move
		return g.gone.Load(), nil
	}
	defer g.release()
	if err := d.load(ctx, g, groupID); err != nil {
		return false, err
	}
	g.setCounts(d.metrics, countOf(g.cached), true)
	return g.gone.Load(), nil
}
