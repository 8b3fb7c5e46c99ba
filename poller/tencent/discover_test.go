package tencent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
	"github.com/rollcall-dev/rollcall/schema/schematest/testclock"
)

// clock is the project's test clock, shared by the fake server and the
// pacing, whose sleeps advance it instead of sleeping.
type clock struct{ *testclock.Clock }

func (c clock) advance(d time.Duration) { c.Add(d) }

func (c clock) sleep(ctx context.Context, d time.Duration) error {
	c.Add(d)
	return ctx.Err()
}

func fakeWithClock(t *testing.T, o tencenttest.Options) (*tencenttest.Server, clock, *Client) {
	t.Helper()
	// Near real time: the signer dates usersigs by the real clock.
	clk := clock{testclock.New(time.Now())}
	o.Now = clk.Now
	s := tencenttest.NewServer(o)
	t.Cleanup(s.Close)
	signer, err := usersig.NewSigner(usersig.SignerOptions{SDKAppID: s.SDKAppID(), Identifier: tencenttest.DefaultAdmin, Key: s.Key()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{SDKAppID: s.SDKAppID(), Identifier: tencenttest.DefaultAdmin, Sig: signer,
		Endpoint: s.URL, HTTPClient: s.Client(), RateLimit: 1e6,
		Backoff: func() backoff.BackOff { return backoff.WithMaxRetries(&backoff.ZeroBackOff{}, 2) }})
	if err != nil {
		t.Fatal(err)
	}
	c.sleep = clk.sleep
	return s, clk, c
}

// groupListNexts returns the Next of each get_appid_group_list request, as
// sent.
func groupListNexts(t *testing.T, s *tencenttest.Server) []string {
	t.Helper()
	var out []string
	for _, r := range s.Requests() {
		if r.Command != "get_appid_group_list" {
			continue
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		if string(body["GroupType"]) != `"AVChatRoom"` || string(body["Limit"]) != "10000" {
			t.Fatalf("request body %s: want GroupType AVChatRoom and Limit 10000", r.Body)
		}
		out = append(out, string(body["Next"]))
	}
	return out
}

func TestListGroupsPagesWithA64BitCursor(t *testing.T) {
	s, clk, c := fakeWithClock(t, tencenttest.Options{GroupListPageSize: 2})
	for _, id := range []string{"g5", "g1", "g4", "g2", "g3"} {
		s.AddGroup(id)
	}
	s.AddGroupOfType("public-1", "Public")
	s.AddGroup("dismissed")
	s.Dismiss("dismissed")

	pace := func(ctx context.Context) error { clk.advance(time.Second); return nil }
	got, err := c.ListGroups(context.Background(), GroupTypeAVChatRoom, pace)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"g1", "g2", "g3", "g4", "g5"}; !slices.Equal(got, want) {
		t.Fatalf("ListGroups = %v, want %v", got, want)
	}
	nexts := groupListNexts(t, s)
	if len(nexts) != 3 || nexts[0] != "0" {
		t.Fatalf("Next sent %v: want 0 then two cursors", nexts)
	}
	for _, n := range nexts[1:] {
		v, err := strconv.ParseUint(n, 10, 64)
		if err != nil || v <= 1<<53 {
			t.Fatalf("cursor %s: want a uint64 above 2^53 sent back exactly", n)
		}
		if uint64(float64(v)) == v {
			t.Fatalf("cursor %d survives float64: the test would not catch a float parse", v)
		}
	}
}

// The fake enforces get_appid_group_list's 1 call/s: pages requested
// without pacing are refused, so the listing fails rather than returning
// the first page alone.
func TestListGroupsUnpacedIsRateLimited(t *testing.T) {
	s, _, c := fakeWithClock(t, tencenttest.Options{GroupListPageSize: 1})
	s.AddGroup("g1")
	s.AddGroup("g2")
	got, err := c.ListGroups(context.Background(), GroupTypeAVChatRoom, nil)
	if err == nil || CodeLabel(err) != "60007" {
		t.Fatalf("ListGroups = %v, %v: want a 60007 failure and no partial list", got, err)
	}
	if got != nil {
		t.Fatalf("partial list %v returned", got)
	}
}

func TestListGroupsRejectsBadAnswers(t *testing.T) {
	for name, body := range map[string]string{
		"float cursor":     `{"ActionStatus":"OK","ErrorCode":0,"GroupIdList":[{"GroupId":"a"}],"Next":1.5e18}`,
		"no Next":          `{"ActionStatus":"OK","ErrorCode":0,"GroupIdList":[{"GroupId":"a"}]}`,
		"no list, more":    `{"ActionStatus":"OK","ErrorCode":0,"Next":12}`,
		"empty id":         `{"ActionStatus":"OK","ErrorCode":0,"GroupIdList":[{"GroupId":""}],"Next":0}`,
		"negative cursor":  `{"ActionStatus":"OK","ErrorCode":0,"GroupIdList":[],"Next":-1}`,
		"cursor too large": `{"ActionStatus":"OK","ErrorCode":0,"GroupIdList":[],"Next":18446744073709551616}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeAPI(t, always(200, body))
			c := newTestClient(t, f.srv.URL, nil)
			if ids, err := c.ListGroups(context.Background(), GroupTypeAVChatRoom, nil); err == nil {
				t.Fatalf("ListGroups = %v, want an error", ids)
			}
		})
	}
	t.Run("cursor above 2^63 accepted", func(t *testing.T) {
		f := newFakeAPI(t, sequence(
			`{"ActionStatus":"OK","ErrorCode":0,"GroupIdList":[{"GroupId":"a"}],"Next":18446744073709551615}`,
			`{"ActionStatus":"OK","ErrorCode":0,"GroupIdList":[{"GroupId":"b"}],"Next":0}`))
		c := newTestClient(t, f.srv.URL, nil)
		ids, err := c.ListGroups(context.Background(), GroupTypeAVChatRoom, nil)
		if err != nil || !slices.Equal(ids, []string{"a", "b"}) {
			t.Fatalf("ListGroups = %v, %v", ids, err)
		}
		if got := bodyJSON(t, f.requests()[1].Body)["Next"]; got != "18446744073709551615" {
			t.Fatalf("second request's Next = %s", got)
		}
	})
}

// A Discoverer sharing the app's 1 call/s with another replica (Share 0.5)
// spaces its requests 2s apart on the fake's clock, and the fake, which
// counts 1/s, never refuses one.
func TestDiscovererPacesAtItsShare(t *testing.T) {
	s, clk, c := fakeWithClock(t, tencenttest.Options{GroupListPageSize: 1})
	for i := range 4 {
		s.AddGroup(fmt.Sprintf("g%d", i))
	}
	var applied []string
	d, err := NewDiscoverer(DiscovererOptions{API: c, Interval: time.Minute, Share: 0.5, Now: clk.Now,
		Apply: func(_ context.Context, ids []string) { applied = ids }})
	if err != nil {
		t.Fatal(err)
	}
	d.sleep = clk.sleep
	for range 2 {
		if err := d.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"g0", "g1", "g2", "g3"}; !slices.Equal(applied, want) {
		t.Fatalf("applied %v, want %v", applied, want)
	}
	var times []time.Time
	for _, r := range s.Requests() {
		if r.Command == "get_appid_group_list" {
			if r.ErrorCode != 0 {
				t.Fatalf("a request was refused with %d", r.ErrorCode)
			}
			times = append(times, r.Time)
		}
	}
	if len(times) != 8 {
		t.Fatalf("%d requests, want 8", len(times))
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < 2*time.Second {
			t.Fatalf("requests %d and %d %v apart on the clock, want >= 2s", i-1, i, gap)
		}
	}
}

// groupSource is an in-memory GroupSource.
type groupSource struct {
	mu       sync.Mutex
	groups   []string
	listErr  error
	exists   map[string]bool // get_group_info's answer; absent: gone
	infoErr  error
	asked    []string
	listings int
}

func (g *groupSource) ListGroups(_ context.Context, typ string, pace func(context.Context) error) ([]string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.listings++
	if typ != GroupTypeAVChatRoom {
		return nil, fmt.Errorf("group type %q", typ)
	}
	if g.listErr != nil {
		return nil, g.listErr
	}
	return slices.Sorted(slices.Values(g.groups)), nil
}

func (g *groupSource) GroupExists(_ context.Context, id string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked = append(g.asked, id)
	if g.infoErr != nil {
		return false, g.infoErr
	}
	return g.exists[id], nil
}

func (g *groupSource) set(ids ...string) {
	g.mu.Lock()
	g.groups = ids
	g.mu.Unlock()
}

type discoverRig struct {
	src       *groupSource
	d         *Discoverer
	applied   [][]string
	gone      []string
	dismissed map[string]bool
}

func newDiscoverRig(t *testing.T, static, exclude []string) *discoverRig {
	t.Helper()
	r := &discoverRig{src: &groupSource{exists: map[string]bool{}}, dismissed: map[string]bool{}}
	var err error
	r.d, err = NewDiscoverer(DiscovererOptions{API: r.src, Interval: time.Minute, Static: static, Exclude: exclude,
		Apply:     func(_ context.Context, ids []string) { r.applied = append(r.applied, ids) },
		Gone:      func(id string) { r.gone = append(r.gone, id) },
		Dismissed: func(id string) bool { return r.dismissed[id] },
		Metrics:   NewDiscoveryMetrics(nil)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *discoverRig) run(t *testing.T) {
	t.Helper()
	if err := r.d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (r *discoverRig) last() []string { return r.applied[len(r.applied)-1] }

func TestDiscovererMergesStaticAndExcludes(t *testing.T) {
	r := newDiscoverRig(t, []string{"static", "both", "static-excluded"}, []string{"static-excluded", "listed-excluded"})
	r.src.set("both", "listed", "listed-excluded")
	r.run(t)
	if want := []string{"both", "listed", "static"}; !slices.Equal(r.last(), want) {
		t.Fatalf("applied %v, want %v", r.last(), want)
	}
	r.src.set("both", "listed", "listed-excluded", "new")
	r.run(t)
	if want := []string{"both", "listed", "new", "static"}; !slices.Equal(r.last(), want) {
		t.Fatalf("after a new group: applied %v, want %v", r.last(), want)
	}
	// A reload excludes "listed" and drops "static".
	r.d.SetGroups(context.Background(), []string{"both"}, []string{"listed"})
	if want := []string{"both", "listed-excluded", "new"}; !slices.Equal(r.last(), want) {
		t.Fatalf("after the reload: applied %v, want %v", r.last(), want)
	}
	if got := testutil.ToFloat64(r.d.o.Metrics.Groups); got != 3 {
		t.Fatalf("rollcall_discovered_groups = %v, want 3 (excluded not counted)", got)
	}
}

func TestDiscovererVanishedGroupConfirmedGone(t *testing.T) {
	r := newDiscoverRig(t, nil, nil)
	r.src.set("a", "b")
	r.src.exists["a"] = true
	r.run(t)
	r.src.set("a") // b leaves the listing; get_group_info says gone
	r.run(t)
	if !slices.Equal(r.gone, []string{"b"}) || !slices.Equal(r.src.asked, []string{"b"}) {
		t.Fatalf("gone %v after asking %v, want b once", r.gone, r.src.asked)
	}
	// Still watched until the scheduler has polled the dismissal.
	if want := []string{"a", "b"}; !slices.Equal(r.last(), want) {
		t.Fatalf("applied %v, want %v", r.last(), want)
	}
	r.run(t) // the dismissal is not yet through: not handed over again
	if len(r.gone) != 1 || len(r.src.asked) != 1 {
		t.Fatalf("gone %v, asked %v: want one of each", r.gone, r.src.asked)
	}
	r.dismissed["b"] = true
	r.run(t)
	if want := []string{"a"}; !slices.Equal(r.last(), want) {
		t.Fatalf("after the dismissal: applied %v, want %v", r.last(), want)
	}
}

func TestDiscovererVanishedGroupStillExisting(t *testing.T) {
	r := newDiscoverRig(t, nil, nil)
	r.src.set("a", "b")
	r.run(t)
	r.src.set("a")
	r.src.exists["b"] = true
	r.run(t)
	r.src.infoErr = errors.New("get_group_info down")
	r.run(t)
	if len(r.gone) != 0 {
		t.Fatalf("gone %v: a group get_group_info finds (or cannot judge) is not gone", r.gone)
	}
	if want := []string{"a", "b"}; !slices.Equal(r.last(), want) {
		t.Fatalf("applied %v, want %v", r.last(), want)
	}
}

func TestDiscovererFailedListingChangesNothing(t *testing.T) {
	r := newDiscoverRig(t, []string{"static"}, nil)
	r.src.set("a", "b")
	r.run(t)
	r.src.set()
	r.src.listErr = errors.New("page 2: 10002")
	if err := r.d.RunOnce(context.Background()); err == nil {
		t.Fatal("RunOnce succeeded on a failed listing")
	}
	if len(r.applied) != 1 || len(r.gone) != 0 || len(r.src.asked) != 0 {
		t.Fatalf("a failed listing applied %v, gone %v, asked %v", r.applied, r.gone, r.src.asked)
	}
	if want := []string{"a", "b", "static"}; !slices.Equal(r.d.Watched(), want) {
		t.Fatalf("watched %v, want %v", r.d.Watched(), want)
	}
}

// Against the fake: a listing whose second page keeps failing leaves every
// group watched and asks get_group_info about none.
func TestDiscovererListingFailsMidway(t *testing.T) {
	s, clk, c := fakeWithClock(t, tencenttest.Options{GroupListPageSize: 2})
	for _, id := range []string{"a", "b", "c", "d"} {
		s.AddGroup(id)
	}
	var applied [][]string
	var gone []string
	d, err := NewDiscoverer(DiscovererOptions{API: c, Interval: time.Minute, Now: clk.Now,
		Apply: func(_ context.Context, ids []string) { applied = append(applied, ids) },
		Gone:  func(id string) { gone = append(gone, id) }})
	if err != nil {
		t.Fatal(err)
	}
	d.sleep = clk.sleep
	if err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Dismiss("c")
	s.InjectFault(tencenttest.Fault{Command: "get_appid_group_list", Page: 2, Kind: tencenttest.FaultErrorCode, Code: 10002})
	if err := d.RunOnce(context.Background()); err == nil {
		t.Fatal("listing with a failing page succeeded")
	}
	if len(applied) != 1 || len(gone) != 0 || s.Calls("get_group_info") != 0 {
		t.Fatalf("after a failed listing: applied %v, gone %v, get_group_info calls %d", applied, gone, s.Calls("get_group_info"))
	}
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(d.Watched(), want) {
		t.Fatalf("watched %v, want %v", d.Watched(), want)
	}
	s.ClearFaults()
	if err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gone, []string{"c"}) {
		t.Fatalf("gone %v, want [c] once the listing works", gone)
	}
}

func TestNewDiscovererValidates(t *testing.T) {
	apply := func(context.Context, []string) {}
	for name, o := range map[string]DiscovererOptions{
		"no api":         {Apply: apply, Interval: time.Minute},
		"no apply":       {API: &groupSource{}, Interval: time.Minute},
		"short interval": {API: &groupSource{}, Apply: apply, Interval: time.Second},
		"share above 1":  {API: &groupSource{}, Apply: apply, Interval: time.Minute, Share: 2},
	} {
		if _, err := NewDiscoverer(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestDiscovererRunEndsWithContext(t *testing.T) {
	r := newDiscoverRig(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.d.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDiscovererHealthyAndFatal(t *testing.T) {
	clk := clock{testclock.New(time.Unix(1_700_000_000, 0))}
	src := &groupSource{groups: []string{"a"}}
	fatal := errors.New("rejected")
	d, err := NewDiscoverer(DiscovererOptions{API: src, Interval: time.Minute, Now: clk.Now,
		Apply: func(context.Context, []string) {}, Fatal: func(err error) bool { return errors.Is(err, fatal) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Healthy(ctx); err != nil {
		t.Fatalf("healthy before any listing: %v", err)
	}
	src.listErr = errors.New("10002")
	_ = d.RunOnce(ctx)
	if err := d.Healthy(ctx); err == nil {
		t.Fatal("healthy though no listing ever succeeded")
	}
	src.listErr = nil
	if err := d.RunOnce(ctx); err != nil || d.Healthy(ctx) != nil {
		t.Fatalf("after a success: %v, healthy %v", err, d.Healthy(ctx))
	}
	src.listErr = errors.New("10002")
	clk.Add(2 * time.Minute)
	_ = d.RunOnce(ctx)
	if err := d.Healthy(ctx); err != nil {
		t.Fatalf("one failure within three intervals of a success: %v", err)
	}
	clk.Add(2 * time.Minute)
	if err := d.Healthy(ctx); err == nil {
		t.Fatal("healthy with no success in three intervals")
	}
	src.listErr = fmt.Errorf("page 1: %w", fatal)
	if err := d.Run(ctx); !errors.Is(err, fatal) {
		t.Fatalf("Run = %v, want the fatal listing error", err)
	}
}

// A 60007 on get_appid_group_list is about its own 1 call/s: the app's
// rate for get_members is not halved.
func TestListGroupsRateLimitKeepsTheAppRate(t *testing.T) {
	f := newFakeAPI(t, sequence(fail(60007, "too fast"),
		`{"ActionStatus":"OK","ErrorCode":0,"GroupIdList":[{"GroupId":"a"}],"Next":0}`))
	c := newTestClient(t, f.srv.URL, nil)
	ids, err := c.ListGroups(context.Background(), GroupTypeAVChatRoom, nil)
	if err != nil || !slices.Equal(ids, []string{"a"}) {
		t.Fatalf("ListGroups = %v, %v", ids, err)
	}
	c.mu.Lock()
	halved := !c.restoreAt.IsZero()
	c.mu.Unlock()
	if halved || c.lim.Limit() != c.baseRate {
		t.Fatal("a get_appid_group_list 60007 halved the app's rate")
	}
}

// With Owns (a shard), only this replica's groups are watched, and a
// group of another replica's that leaves the listing is not asked about.
func TestDiscovererKeepsOnlyOwnedGroups(t *testing.T) {
	src := &groupSource{exists: map[string]bool{}}
	var applied [][]string
	d, err := NewDiscoverer(DiscovererOptions{API: src, Interval: time.Minute,
		Owns:      func(id string) bool { return strings.HasPrefix(id, "mine-") },
		Apply:     func(_ context.Context, ids []string) { applied = append(applied, ids) },
		Gone:      func(string) {},
		Dismissed: func(string) bool { return false },
		Metrics:   NewDiscoveryMetrics(nil)})
	if err != nil {
		t.Fatal(err)
	}
	src.set("mine-a", "mine-b", "theirs-a", "theirs-b")
	if err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"mine-a", "mine-b"}; !slices.Equal(applied[len(applied)-1], want) {
		t.Fatalf("applied %v, want %v", applied[len(applied)-1], want)
	}
	src.set("mine-a", "mine-b", "theirs-a") // theirs-b leaves
	if err := d.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(src.asked) != 0 {
		t.Fatalf("asked get_group_info about %v, another replica's groups", src.asked)
	}
}
