package diff_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/diff/difftest"
	"github.com/rollcall-dev/rollcall/schema"
)

func TestDetectorWithMemoryStore(t *testing.T) {
	difftest.RunDetectorSuite(t, func(t *testing.T) (diff.Store, func() diff.Store) {
		s := diff.NewMemoryStore()
		// A memory store outlives the "restart": the same instance is the same data.
		return s, func() diff.Store { return s }
	})
}

func TestNewDetectorValidates(t *testing.T) {
	st, pub := diff.NewMemoryStore(), &difftest.Publisher{}
	for name, o := range map[string]diff.DetectorOptions{
		"no store":                 {Publisher: pub},
		"no publisher":             {Store: st},
		"bad baseline":             {Store: st, Publisher: pub, Diff: diff.Options{Baseline: "loud"}},
		"negative confirm timeout": {Store: st, Publisher: pub, ConfirmTimeout: -time.Second},
	} {
		if _, err := diff.NewDetector(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	d, err := diff.NewDetector(diff.DetectorOptions{Store: st, Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.HandleSnapshot(context.Background(), schema.Snapshot{}); err == nil {
		t.Error("snapshot without group id accepted")
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func members(n int, join int64) []schema.Member {
	ms := make([]schema.Member, n)
	for i := range ms {
		ms[i] = schema.Member{Account: fmt.Sprintf("u%05d", i), JoinTime: join + int64(i)}
	}
	return ms
}

func TestDetectorMetrics(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	m := diff.NewMetrics(reg)
	st := &difftest.FailingStore{Store: diff.NewMemoryStore()}
	pub := &difftest.Publisher{}
	d, err := diff.NewDetector(diff.DetectorOptions{Store: st, Publisher: pub, Metrics: m,
		Diff: diff.Options{SDKAppID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// All valid type×reason series exist from the start.
	if n := testutil.CollectAndCount(reg, "rollcall_events_total"); n != 7 {
		t.Fatalf("rollcall_events_total has %d series, want 7", n)
	}
	snap := func(group string, n int, at time.Time) schema.Snapshot {
		// Truncated as the lister marks a list at a member cap of 5.
		return schema.Snapshot{SDKAppID: 1, GroupID: group, TakenAt: at, Members: members(n, t0.Unix()-100), Truncated: n >= 5}
	}
	steps := []error{
		d.HandleSnapshot(ctx, snap("g1", 3, t0)),                                                             // 3 baseline
		d.HandleSnapshot(ctx, snap("g2", 5, t0)),                                                             // 5 baseline, truncated
		d.HandleSnapshot(ctx, snap("g1", 1, t0.Add(time.Minute))),                                            // 2 left
		d.HandleSnapshot(ctx, schema.Snapshot{GroupID: "g2", TakenAt: t0.Add(time.Minute), Dismissed: true}), // 5 left + dismissed
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	pub.Fail(errors.New("down"))
	if err := d.HandleSnapshot(ctx, snap("g3", 2, t0)); err == nil {
		t.Fatal("publish failure not reported")
	}
	pub.Fail(nil)
	st.FailSave(errors.New("disk"))
	if err := d.HandleSnapshot(ctx, snap("g3", 2, t0)); err == nil {
		t.Fatal("save failure not reported")
	}
	want := `
# HELP rollcall_events_total Events published (every sink acknowledged), by type and reason. Re-published events after a failed commit count again.
# TYPE rollcall_events_total counter
rollcall_events_total{reason="baseline",type="joined"} 10
rollcall_events_total{reason="group_dismissed",type="dismissed"} 1
rollcall_events_total{reason="group_dismissed",type="left"} 5
rollcall_events_total{reason="joined",type="joined"} 0
rollcall_events_total{reason="left",type="left"} 2
rollcall_events_total{reason="rejoined",type="joined"} 0
rollcall_events_total{reason="rejoined",type="left"} 0
# HELP rollcall_members_tracked Members in stored state (including members out of view), summed over the configured groups.
# TYPE rollcall_members_tracked gauge
rollcall_members_tracked 1
# HELP rollcall_snapshots_truncated_total Snapshots that reached the member cap, so members below the window are not listed.
# TYPE rollcall_snapshots_truncated_total counter
rollcall_snapshots_truncated_total 1
# HELP rollcall_state_commit_failures_total Snapshots not committed because loading state, publishing or saving failed; the group's state is unchanged.
# TYPE rollcall_state_commit_failures_total counter
rollcall_state_commit_failures_total 2
# HELP rollcall_state_commits_total Snapshots committed: events published and state saved.
# TYPE rollcall_state_commits_total counter
rollcall_state_commits_total 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rollcall_events_total", "rollcall_members_tracked",
		"rollcall_snapshots_truncated_total", "rollcall_state_commit_failures_total", "rollcall_state_commits_total"); err != nil {
		t.Error(err)
	}
	// Five non-dismissed snapshots were observed: 3, 5, 1, 2, 2 members.
	if n := testutil.CollectAndCount(reg, "rollcall_snapshot_members"); n != 1 {
		t.Errorf("rollcall_snapshot_members series: %d", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "rollcall_snapshot_members" {
			h := mf.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != 5 || h.GetSampleSum() != 13 {
				t.Errorf("histogram count %d sum %v, want 5 and 13", h.GetSampleCount(), h.GetSampleSum())
			}
		}
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if v := l.GetValue(); v == "g1" || v == "g2" || v == "g3" || strings.HasPrefix(v, "u0") {
					t.Errorf("%s has a group or member label %q", mf.GetName(), l.GetValue())
				}
			}
		}
	}
}

func TestDetectorWarnings(t *testing.T) {
	ctx := context.Background()
	core, logs := observer.New(zapcore.WarnLevel)
	d, err := diff.NewDetector(diff.DetectorOptions{Store: diff.NewMemoryStore(), Publisher: &difftest.Publisher{},
		Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		snap := schema.Snapshot{GroupID: "g30", TakenAt: t0.Add(time.Duration(i) * time.Minute), Members: members(30, t0.Unix())}
		if err := d.HandleSnapshot(ctx, snap); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.HandleSnapshot(ctx, schema.Snapshot{GroupID: "other", TakenAt: t0, Members: members(29, t0.Unix())}); err != nil {
		t.Fatal(err)
	}
	// The lister (poller/tencent) warns about a list of exactly 30, once.
	if n := logs.FilterMessageSnippet("capped at 30").Len(); n != 0 {
		t.Fatalf("the detector warned about 30 members %d times", n)
	}
	for range 2 { // the second dismissed snapshot finds the marker and says nothing
		if err := d.HandleSnapshot(ctx, schema.Snapshot{GroupID: "g30", TakenAt: t0.Add(time.Hour), Dismissed: true}); err != nil {
			t.Fatal(err)
		}
	}
	gone := logs.FilterMessage("group dismissed; remove it from groups.ids").All()
	if len(gone) != 1 || gone[0].ContextMap()["group_id"] != "g30" {
		t.Fatalf("dismissal warnings: %v", gone)
	}
}

// Snapshots of many groups handled concurrently, some of the same group:
// every commit lands and the race detector stays quiet.
func TestDetectorConcurrentGroups(t *testing.T) {
	ctx := context.Background()
	st := diff.NewMemoryStore()
	pub := &difftest.Publisher{}
	d, err := diff.NewDetector(diff.DetectorOptions{Store: st, Publisher: pub, Metrics: diff.NewMetrics(nil)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		for round := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				snap := schema.Snapshot{GroupID: fmt.Sprintf("g%d", g), TakenAt: t0.Add(time.Duration(round) * time.Minute),
					Members: members(10, t0.Unix())}
				if err := d.HandleSnapshot(ctx, snap); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	ids, err := st.List(ctx)
	if err != nil || len(ids) != 8 {
		t.Fatalf("List = %v, %v", ids, err)
	}
	// Each group's baseline was published exactly once: the second snapshot
	// of a group saw the first one's state.
	total := 0
	for _, b := range pub.Batches() {
		total += len(b)
	}
	if total != 80 {
		t.Errorf("published %d events, want 80 baselines", total)
	}
}

func TestDetectorSetOptions(t *testing.T) {
	store := diff.NewMemoryStore()
	var got [][]schema.Event
	d, err := diff.NewDetector(diff.DetectorOptions{Store: store, Publisher: diff.PublisherFunc(func(_ context.Context, evs []schema.Event) error {
		got = append(got, evs)
		return nil
	}), Diff: diff.Options{SDKAppID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetOptions(diff.Options{SDKAppID: 1, Baseline: "loud"}); err == nil {
		t.Fatal("bad baseline accepted")
	}
	if err := d.SetOptions(diff.Options{SDKAppID: 1, Baseline: diff.BaselineSilent}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_800_000_000, 0)
	snap := schema.Snapshot{SDKAppID: 1, GroupID: "g", TakenAt: t0, Members: []schema.Member{{Account: "a", JoinTime: 1}, {Account: "b", JoinTime: 2}}}
	if err := d.HandleSnapshot(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("silent baseline after SetOptions published %v", got)
	}
	if st, _, _ := store.Load(context.Background(), "g"); st == nil || len(st.Members) != 2 {
		t.Errorf("silent baseline after SetOptions stored %+v, want both members", st)
	}
}

func TestDismissedPrimesMembersTracked(t *testing.T) {
	store := diff.NewMemoryStore()
	st := &diff.State{Version: diff.StateVersion, SDKAppID: 1, GroupID: "g", ObservedAt: time.Unix(1_800_000_000, 0).UTC(),
		Members: []diff.Tracked{{Member: schema.Member{Account: "a", JoinTime: 1}}, {Member: schema.Member{Account: "b", JoinTime: 2}}}}
	if _, err := store.Save(context.Background(), st, 0); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	d, err := diff.NewDetector(diff.DetectorOptions{Store: store, Publisher: diff.PublisherFunc(func(context.Context, []schema.Event) error { return nil }),
		Diff: diff.Options{SDKAppID: 1}, Metrics: diff.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a reload asks again: the gauge must not double count
		if gone, err := d.Dismissed(context.Background(), "g"); err != nil || gone {
			t.Fatalf("Dismissed = %v, %v", gone, err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "rollcall_members_tracked" {
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 2 {
				t.Fatalf("rollcall_members_tracked = %v, want 2", v)
			}
			return
		}
	}
	t.Fatal("rollcall_members_tracked not exported")
}

type confirmerFunc func(ctx context.Context, groupID string, accounts []string) ([]string, error)

func (f confirmerFunc) CheckMembers(ctx context.Context, groupID string, accounts []string) ([]string, error) {
	return f(ctx, groupID, accounts)
}

var errHang = errors.New("hang until the context ends")

func TestDetectorConfirmsDepartures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answer   []string
		err      error
		wantLeft []string
	}{
		{"b left, a still online", []string{"a"}, nil, []string{"b"}},
		{"check_members failing keeps both out of view", nil, errors.New("10003"), nil},
		// A check_members that never answers is cut off by ConfirmTimeout.
		{"check_members hanging keeps both out of view", nil, errHang, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := diff.NewMemoryStore()
			var published []schema.Event
			var asked []string
			d, err := diff.NewDetector(diff.DetectorOptions{
				Store: store,
				Publisher: diff.PublisherFunc(func(_ context.Context, evs []schema.Event) error {
					published = append(published, evs...)
					return nil
				}),
				Diff: diff.Options{SDKAppID: 1, Baseline: diff.BaselineSilent},
				Confirmer: confirmerFunc(func(ctx context.Context, _ string, accounts []string) ([]string, error) {
					asked = append(asked, accounts...)
					if tc.err == errHang {
						<-ctx.Done()
						return nil, ctx.Err()
					}
					return tc.answer, tc.err
				}),
				ConfirmTimeout: 50 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Unix(1_800_000_000, 0)
			m := func(a string, jt int64) schema.Member { return schema.Member{Account: a, JoinTime: jt} }
			ctx := context.Background()
			if err := d.HandleSnapshot(ctx, schema.Snapshot{SDKAppID: 1, GroupID: "g", TakenAt: t0, Members: []schema.Member{m("a", 1), m("b", 2)}, Truncated: true}); err != nil {
				t.Fatal(err)
			}
			// Two newcomers push a and b below the window of the list capped
			// at 2.
			if err := d.HandleSnapshot(ctx, schema.Snapshot{SDKAppID: 1, GroupID: "g", TakenAt: t0.Add(10 * time.Second), Members: []schema.Member{m("c", 3), m("d", 4)}, Truncated: true}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(asked, []string{"a", "b"}) {
				t.Fatalf("asked check_members about %v, want [a b]", asked)
			}
			var left []string
			for _, e := range published {
				if e.Type == schema.TypeMemberLeft {
					left = append(left, e.Subject)
				}
			}
			if !slices.Equal(left, tc.wantLeft) {
				t.Fatalf("left events for %v, want %v", left, tc.wantLeft)
			}
		})
	}
}

// TestDetectorOutOfViewGauge: members that slide below a capped list's
// window are counted in rollcall_members_out_of_view until a complete
// snapshot shows them gone.
func TestDetectorOutOfViewGauge(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	d, err := diff.NewDetector(diff.DetectorOptions{Store: diff.NewMemoryStore(), Publisher: &difftest.Publisher{},
		Metrics: diff.NewMetrics(reg), Diff: diff.Options{SDKAppID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	m := func(a string, jt int64) schema.Member { return schema.Member{Account: a, JoinTime: jt} }
	snaps := []struct {
		members      []schema.Member
		tracked, oov float64
	}{
		{[]schema.Member{m("a", 1), m("b", 2), m("c", 3)}, 3, 0},
		{[]schema.Member{m("c", 3), m("d", 4), m("e", 5)}, 5, 2}, // a and b slid out of view
		{[]schema.Member{m("e", 5)}, 1, 0},                       // complete: a to d left
	}
	for i, s := range snaps {
		if err := d.HandleSnapshot(ctx, schema.Snapshot{SDKAppID: 1, GroupID: "g", TakenAt: t0.Add(time.Duration(i) * time.Minute), Members: s.members,
			Truncated: len(s.members) >= 3}); err != nil { // as listed at a member cap of 3
			t.Fatal(err)
		}
		want := fmt.Sprintf(`
# HELP rollcall_members_out_of_view Members in stored state that slid below a capped list's window and were not seen since, summed over the configured groups. Growing without bound in a group that stays at the cap: consider poll.confirm_departures.
# TYPE rollcall_members_out_of_view gauge
rollcall_members_out_of_view %v
# HELP rollcall_members_tracked Members in stored state (including members out of view), summed over the configured groups.
# TYPE rollcall_members_tracked gauge
rollcall_members_tracked %v
`, s.oov, s.tracked)
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "rollcall_members_out_of_view", "rollcall_members_tracked"); err != nil {
			t.Errorf("after snapshot %d: %v", i, err)
		}
	}
}

// TestDetectorForget: a group removed from the configuration leaves
// rollcall_members_tracked (which sums the configured groups), also when
// its last poll commits afterwards; configured again, it is counted again.
func TestDetectorForget(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewPedanticRegistry()
	m := diff.NewMetrics(reg)
	store := diff.NewMemoryStore()
	d, err := diff.NewDetector(diff.DetectorOptions{Store: store, Publisher: &difftest.Publisher{}, Metrics: m, Diff: diff.Options{SDKAppID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	snap := func(group string, n int, at time.Time) schema.Snapshot {
		return schema.Snapshot{SDKAppID: 1, GroupID: group, TakenAt: at, Members: members(n, t0.Unix()-100)}
	}
	tracked := func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "rollcall_members_tracked" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}
	for _, s := range []schema.Snapshot{snap("g1", 3, t0), snap("g2", 2, t0)} {
		if err := d.HandleSnapshot(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if v := tracked(); v != 5 {
		t.Fatalf("tracked = %v, want 5", v)
	}
	d.Forget("g1")
	if v := tracked(); v != 2 {
		t.Fatalf("tracked after forgetting g1 = %v, want 2", v)
	}
	// g1's poll in flight at the reload commits afterwards: still not counted.
	if err := d.HandleSnapshot(ctx, snap("g1", 4, t0.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	if v := tracked(); v != 2 {
		t.Fatalf("tracked after a forgotten group's commit = %v, want 2", v)
	}
	// Configured again: Dismissed reads its state and counts it.
	if _, err := d.Dismissed(ctx, "g1"); err != nil {
		t.Fatal(err)
	}
	if v := tracked(); v != 6 {
		t.Fatalf("tracked with g1 back = %v, want 6", v)
	}
}

// checkpointStore counts the writes that go through SaveCheckpoint.
type checkpointStore struct {
	*diff.MemoryStore
	checkpoints int
}

func (s *checkpointStore) SaveCheckpoint(ctx context.Context, st *diff.State, base diff.Revision) (diff.Revision, error) {
	s.checkpoints++
	return s.MemoryStore.Save(ctx, st, base)
}

// TestDetectorCheckpointsThroughTheCheaperWrite: a quiet poll's write (and
// Checkpoint's) uses the store's SaveCheckpoint; a membership change does
// not.
func TestDetectorCheckpointsThroughTheCheaperWrite(t *testing.T) {
	ctx := context.Background()
	st := &checkpointStore{MemoryStore: diff.NewMemoryStore()}
	d, err := diff.NewDetector(diff.DetectorOptions{Store: st, Diff: diff.Options{SDKAppID: 1},
		Publisher: diff.PublisherFunc(func(context.Context, []schema.Event) error { return nil })})
	if err != nil {
		t.Fatal(err)
	}
	snap := func(n int, accounts ...string) schema.Snapshot {
		s := schema.Snapshot{SDKAppID: 1, GroupID: "g", TakenAt: t0.Add(time.Duration(n) * time.Minute)}
		for _, a := range accounts {
			s.Members = append(s.Members, schema.Member{Account: a, JoinTime: t0.Unix() - 60})
		}
		return s
	}
	for i, tc := range []struct {
		snap schema.Snapshot
		want int
	}{{snap(0, "a"), 0}, {snap(1, "a"), 1}, {snap(2, "a", "b"), 1}, {snap(3, "a", "b"), 2}} {
		if err := d.HandleSnapshot(ctx, tc.snap); err != nil {
			t.Fatal(err)
		}
		if st.checkpoints != tc.want {
			t.Fatalf("poll %d: %d checkpoint writes, want %d", i, st.checkpoints, tc.want)
		}
	}
}

// TestDismissedDuringAPublishRestoresAForgottenGroup: a group removed by a
// reload and added back while its publish hangs is counted again at once,
// from the counts its handler keeps (read under their lock: -race).
func TestDismissedDuringAPublishRestoresAForgottenGroup(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	entered, release := make(chan struct{}), make(chan struct{})
	calls := 0
	pub := diff.PublisherFunc(func(context.Context, []schema.Event) error {
		if calls++; calls == 2 {
			close(entered)
			<-release
		}
		return nil
	})
	d, err := diff.NewDetector(diff.DetectorOptions{Store: diff.NewMemoryStore(), Publisher: pub,
		Metrics: diff.NewMetrics(reg), Diff: diff.Options{SDKAppID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	tracked := func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "rollcall_members_tracked" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}
	snap := func(n int, accounts ...string) schema.Snapshot {
		s := schema.Snapshot{SDKAppID: 1, GroupID: "g", TakenAt: t0.Add(time.Duration(n) * time.Minute)}
		for _, a := range accounts {
			s.Members = append(s.Members, schema.Member{Account: a, JoinTime: t0.Unix() - 60})
		}
		return s
	}
	if err := d.HandleSnapshot(ctx, snap(0, "a", "b")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.HandleSnapshot(ctx, snap(1, "a", "b", "c")) }()
	<-entered
	d.Forget("g")
	if v := tracked(); v != 0 {
		t.Fatalf("forgotten group still counted: %v", v)
	}
	if gone, err := d.Dismissed(ctx, "g"); err != nil || gone {
		t.Fatalf("Dismissed = %v, %v", gone, err)
	}
	if v := tracked(); v != 2 {
		t.Fatalf("group added back during its publish: tracked %v, want 2", v)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := tracked(); v != 3 {
		t.Fatalf("after the commit: tracked %v, want 3", v)
	}
}

// listing is group "g" of app 1 listed s seconds after t0 with accounts.
func listing(s int, accounts ...string) schema.Snapshot {
	ms := make([]schema.Member, len(accounts))
	for i, acc := range accounts {
		ms[i] = schema.Member{Account: acc, JoinTime: t0.Unix()}
	}
	return schema.Snapshot{SDKAppID: 1, GroupID: "g", TakenAt: t0.Add(time.Duration(s) * time.Second), Members: ms}
}

// Two detectors over one store, as two replicas that poll one group by
// mistake: what they publish is one linear chain of states. A listing
// taken before the stored state was observed is not applied, and a write
// from a stale cache is refused and publishes nothing.
func TestDetectorsSharingAStoreStayLinear(t *testing.T) {
	ctx := context.Background()
	st := diff.NewMemoryStore()
	reg := prometheus.NewPedanticRegistry()
	m := diff.NewMetrics(reg)
	pubA, pubB := &difftest.Publisher{}, &difftest.Publisher{}
	a, err := diff.NewDetector(diff.DetectorOptions{Store: st, Publisher: pubA, Metrics: m, Diff: diff.Options{SDKAppID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := diff.NewDetector(diff.DetectorOptions{Store: st, Publisher: pubB, Diff: diff.Options{SDKAppID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// A baselines {u1}; B reads that and reports u2 joining at 20s.
	if err := a.HandleSnapshot(ctx, listing(10, "u1")); err != nil {
		t.Fatal(err)
	}
	if err := b.HandleSnapshot(ctx, listing(20, "u1", "u2")); err != nil {
		t.Fatal(err)
	}
	// A still holds {u1} at revision 1. A listing with a member neither
	// saw (u3) makes A write from that stale cache: refused, nothing
	// published.
	var conflict *diff.ConflictError
	if err := a.HandleSnapshot(ctx, listing(30, "u1", "u3")); !errors.As(err, &conflict) {
		t.Fatalf("A's write from a stale cache = %v, want a *diff.ConflictError", err)
	}
	// A reads the store again; a listing taken at 18s, before B's commit
	// at 20s, is not applied: it would report u2 as leaving.
	if err := a.HandleSnapshot(ctx, listing(18, "u1")); err != nil {
		t.Fatal(err)
	}
	// And a fresh one continues B's chain: u2 left, u3 joined.
	if err := a.HandleSnapshot(ctx, listing(40, "u1", "u3")); err != nil {
		t.Fatal(err)
	}
	var chain []string
	for _, batch := range append(pubA.Batches()[:1:1], append(pubB.Batches(), pubA.Batches()[1:]...)...) {
		for _, e := range batch {
			chain = append(chain, e.Data.Reason+":"+e.Data.MemberAccount)
		}
	}
	want := []string{"baseline:u1", "joined:u2", "left:u2", "joined:u3"}
	if !slices.Equal(chain, want) {
		t.Fatalf("published %v, want %v", chain, want)
	}
	metricsWant := `
# HELP rollcall_stale_listings_total Listings not applied because they were taken before the stored state was observed (a newer listing, by another replica, is already committed).
# TYPE rollcall_stale_listings_total counter
rollcall_stale_listings_total 1
# HELP rollcall_state_conflicts_total State writes the store refused because another writer (a replica) changed the group since it was read; nothing was published from the refused state, which is read again at the group's next poll.
# TYPE rollcall_state_conflicts_total counter
rollcall_state_conflicts_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(metricsWant), "rollcall_state_conflicts_total", "rollcall_stale_listings_total"); err != nil {
		t.Error(err)
	}
}

// A group removed from the configuration (sharded away) and configured
// again is read from the store, not from the copy kept before: another
// replica may have committed it meanwhile.
func TestDetectorRereadsAGroupConfiguredAgain(t *testing.T) {
	ctx := context.Background()
	st := diff.NewMemoryStore()
	pubA, pubB := &difftest.Publisher{}, &difftest.Publisher{}
	a, _ := diff.NewDetector(diff.DetectorOptions{Store: st, Publisher: pubA, Diff: diff.Options{SDKAppID: 1}})
	b, _ := diff.NewDetector(diff.DetectorOptions{Store: st, Publisher: pubB, Diff: diff.Options{SDKAppID: 1}})
	if err := a.HandleSnapshot(ctx, listing(10, "u1")); err != nil {
		t.Fatal(err)
	}
	a.Forget("g") // moved to B
	if err := b.HandleSnapshot(ctx, listing(20, "u1", "u2")); err != nil {
		t.Fatal(err)
	}
	a.Dismissed(ctx, "g") // back to A
	if err := a.HandleSnapshot(ctx, listing(30, "u1", "u2")); err != nil {
		t.Fatalf("A on a group configured again: %v", err)
	}
	if n := len(pubA.Batches()); n != 1 {
		t.Fatalf("A published %d batches, want only its baseline: %v", n, pubA.Batches())
	}
}

// A shutdown checkpoint of a group another replica wrote since is skipped,
// not an error: the other's state is newer.
func TestDetectorCheckpointSkipsAGroupWrittenElsewhere(t *testing.T) {
	ctx := context.Background()
	st := diff.NewMemoryStore()
	a, _ := diff.NewDetector(diff.DetectorOptions{Store: st, Publisher: &difftest.Publisher{}, Diff: diff.Options{SDKAppID: 1}, CheckpointInterval: time.Hour})
	b, _ := diff.NewDetector(diff.DetectorOptions{Store: st, Publisher: &difftest.Publisher{}, Diff: diff.Options{SDKAppID: 1}})
	for _, s := range []int{10, 20} { // a baseline, then a quiet poll: dirty
		if err := a.HandleSnapshot(ctx, listing(s, "u1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.HandleSnapshot(ctx, listing(30, "u1", "u2")); err != nil {
		t.Fatal(err)
	}
	if err := a.Checkpoint(ctx); err != nil {
		t.Fatalf("Checkpoint = %v, want the conflicting group skipped", err)
	}
	got, _, err := st.Load(ctx, "g")
	if err != nil || len(got.Members) != 2 {
		t.Fatalf("stored %+v, %v: want B's state with u2 kept", got, err)
	}
}
