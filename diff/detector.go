package diff

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// Forget takes a group removed from the configuration out of
// rollcall_members_tracked and rollcall_members_out_of_view, which sum the
// configured groups; its state is kept. Dismissed (called for a group
// configured again) puts it back.
func (d *Detector) Forget(groupID string) {
	g := d.group(groupID)
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
		Err: errors.New("group " + groupID + " is stored as dismissed; its listing is ignored (delete its state file to watch it again)")}
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
	return &Detector{store: o.Store, pub: o.Publisher, confirm: o.Confirmer, confirmTimeout: o.ConfirmTimeout, opts: o.Diff, log: log.Named("detector"),
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

// HandleSnapshot loads the group's state, diffs, publishes the events (if
// any), and commits the new state only after Publish returned nil.
//
// The batch is first written to the state's outbox (State.Pending), so a
// batch that was published in part — a crash, a failed commit, shutdown
// during a retry — is published again, whole and with the same ids, by the
// next HandleSnapshot of the group before it diffs anything newer. If
// loading, publishing or saving fails, the acknowledged state is unchanged
// and the error is returned: the caller retries the group later.
func (d *Detector) HandleSnapshot(ctx context.Context, snap schema.Snapshot) error {
	if snap.GroupID == "" {
		return errors.New("handle snapshot: no group id")
	}
	g := d.group(snap.GroupID)
	if err := g.acquire(ctx); err != nil {
		return fmt.Errorf("handle snapshot of %s: %w", snap.GroupID, err)
	}
	defer g.release()

	prev, err := d.store.Load(ctx, snap.GroupID)
	if err != nil {
		d.metrics.commitFailed()
		return fmt.Errorf("load state of %s: %w", snap.GroupID, err)
	}
	opts := d.options()
	d.metrics.observeSnapshot(snap, !snap.Dismissed && snap.Truncated)
	if prev != nil && prev.Pending != nil {
		if prev, err = d.flush(ctx, g, snap.GroupID, prev.Pending, true); err != nil {
			return err
		}
	}
	if prev != nil && prev.Dismissed && !snap.Dismissed {
		return storedDismissed(snap.GroupID)
	}
	events, next := DiffConfirmed(prev, snap, opts, d.departed(ctx, prev, snap))
	if len(events) == 0 {
		return d.commit(ctx, g, next)
	}
	outbox := &Pending{Events: events, Next: next}
	if err = d.store.SaveOutbox(ctx, snap.GroupID, outbox); err != nil {
		d.metrics.commitFailed()
		return fmt.Errorf("save outbox of %s: %w", snap.GroupID, err)
	}
	if _, err = d.flush(ctx, g, snap.GroupID, outbox, false); err != nil {
		return err
	}
	if snap.Dismissed && (prev == nil || !prev.Dismissed) {
		d.log.Warn("group dismissed; remove it from groups.ids", zap.String("group_id", snap.GroupID),
			zap.Int("members_left", len(events)-1))
	}
	return nil
}

// flush publishes the outbox p and commits the state that goes with it,
// which it returns. replay marks a batch left by an earlier poll.
func (d *Detector) flush(ctx context.Context, g *group, groupID string, p *Pending, replay bool) (*State, error) {
	if replay {
		d.log.Info("publishing again a batch an earlier poll left unacknowledged", zap.String("group_id", groupID),
			zap.Int("events", len(p.Events)), zap.Time("observed_at", p.Next.ObservedAt))
	}
	if err := d.pub.Publish(ctx, p.Events); err != nil {
		d.metrics.commitFailed()
		return nil, fmt.Errorf("publish %d events of %s: %w", len(p.Events), groupID, err)
	}
	d.metrics.published(p.Events)
	if err := d.commit(ctx, g, p.Next); err != nil {
		return nil, err
	}
	return p.Next, nil
}

// commit saves next as the acknowledged state (stores ignore its Pending).
func (d *Detector) commit(ctx context.Context, g *group, next *State) error {
	if err := d.store.Save(ctx, next); err != nil {
		d.metrics.commitFailed()
		return fmt.Errorf("save state of %s: %w", next.GroupID, err)
	}
	d.metrics.committed()
	g.setCounts(d.metrics, countOf(next), false)
	return nil
}

// Dismissed reports whether the group is stored as dismissed, so that it
// is not polled again after a restart. It also counts the group's stored
// members into rollcall_members_tracked, so the gauge is right from the
// start rather than from each group's first commit. It does not wait for
// a publish of the group in progress (a reload must not hang behind a
// down sink): stores are safe to read during a save, and the gauges settle
// at the next commit.
func (d *Detector) Dismissed(ctx context.Context, groupID string) (bool, error) {
	g := d.group(groupID)
	s, err := d.store.Load(ctx, groupID)
	if err != nil {
		return false, fmt.Errorf("load state of %s: %w", groupID, err)
	}
	g.setCounts(d.metrics, countOf(s), true)
	return s != nil && s.Dismissed, nil
}
