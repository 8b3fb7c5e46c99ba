package tencent_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/poller"
	"github.com/rollcall-dev/rollcall/poller/tencent"
	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
	"github.com/rollcall-dev/rollcall/schema"
)

// The real client is what a Lister calls.
var _ tencent.API = (*tencent.Client)(nil)

// newTencentClient returns a client of srv that signs with key.
func newTencentClient(t *testing.T, srv *tencenttest.Server, key string) (*tencent.Client, string) {
	t.Helper()
	sig, err := usersig.Generate(srv.SDKAppID(), tencenttest.DefaultAdmin, key, 86400, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tencent.New(tencent.Options{
		SDKAppID: srv.SDKAppID(), Identifier: tencenttest.DefaultAdmin, Sig: usersig.Static(sig),
		Endpoint: srv.URL, HTTPClient: srv.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, sig
}

// TestWithFakeAPI runs the scheduler against the Lister, the real client
// and the fake API: pages are read, a dismissed group is delivered and
// unscheduled, and the next cycle's call budget counts the pages.
func TestWithFakeAPI(t *testing.T) {
	srv := tencenttest.NewServer(tencenttest.Options{})
	defer srv.Close()
	var big []schema.Member
	for i := range 600 {
		big = append(big, schema.Member{Account: fmt.Sprintf("user%03d", i), JoinTime: 1700000000 + int64(i)})
	}
	srv.AddGroup("@TGS#big", big...)
	srv.AddGroup("@TGS#gone", schema.Member{Account: "alice", JoinTime: 1700000000})
	srv.Dismiss("@TGS#gone")

	c, _ := newTencentClient(t, srv, srv.Key())
	core, logs := observer.New(zapcore.DebugLevel)
	l, err := tencent.NewLister(c, tencent.ListerOptions{Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var handled []schema.Snapshot // read after RunOnce, which waits for its handlers
	s, err := poller.New(l, poller.HandlerFunc(func(_ context.Context, snap schema.Snapshot) error {
		mu.Lock()
		defer mu.Unlock()
		handled = append(handled, snap)
		return nil
	}), poller.Options{SDKAppID: srv.SDKAppID(), Groups: []string{"@TGS#big", "@TGS#gone"},
		Interval: 10 * time.Second, RateLimit: 0.25, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	byGroup := map[string][]schema.Snapshot{}
	for _, snap := range handled {
		byGroup[snap.GroupID] = append(byGroup[snap.GroupID], snap)
	}
	if snaps := byGroup["@TGS#big"]; len(snaps) != 1 || len(snaps[0].Members) != 600 || snaps[0].Truncated {
		t.Fatalf("big group snapshots = %d, want one complete with 600 members", len(snaps))
	}
	if snaps := byGroup["@TGS#gone"]; len(snaps) != 1 || !snaps[0].Dismissed {
		t.Fatalf("dismissed group snapshots = %+v", snaps)
	}
	if got := s.Groups(); len(got) != 1 || got[0] != "@TGS#big" {
		t.Errorf("Groups = %v", got)
	}
	// 600 members are 3 pages of 250: 12 s of calls at 0.25/s, more than
	// the 10 s interval (the first cycle's 2 one-page guesses fit).
	if err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	w := logs.FilterMessage("poll cycle stretched to fit the api rate budget").All()
	if len(w) != 1 || w[0].ContextMap()["calls_per_cycle"] != int64(3) {
		t.Errorf("budget warnings = %v, want one for 3 calls (the big group's last size)", w)
	}
}

// TestFakeAPIWrongKeyIsFatal: a usersig signed with the wrong key stops Run
// with a *FatalError that names the cause and does not contain the usersig.
func TestFakeAPIWrongKeyIsFatal(t *testing.T) {
	srv := tencenttest.NewServer(tencenttest.Options{})
	defer srv.Close()
	srv.AddGroup("@TGS#a", schema.Member{Account: "alice", JoinTime: 1700000000})
	c, sig := newTencentClient(t, srv, "not-the-key")
	s, logs, handled := newScheduler(t, c, []string{"@TGS#a"}, tencent.ListerOptions{})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := s.Run(ctx)
	var fe *poller.FatalError
	if !errors.As(err, &fe) {
		t.Fatalf("Run = %v, want a *FatalError", err)
	}
	if strings.Contains(err.Error(), sig) {
		t.Errorf("fatal error contains the usersig: %v", err)
	}
	if !strings.Contains(err.Error(), "key") {
		t.Errorf("fatal error %q does not name the cause", err)
	}
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), sig) {
			t.Errorf("log entry contains the usersig: %v", e.Message)
		}
	}
	if len(handled()) != 0 {
		t.Error("handler called after an auth failure")
	}
}

// TestListShiftedUnderTheCap: in a group over the 1,000 cap, a member who
// joins while the list is paged pushes the oldest out of the window, so
// 999 come back. The online count shows the group is over the cap: the
// snapshot is truncated, and the diff reports no one as left.
func TestListShiftedUnderTheCap(t *testing.T) {
	fake := tencenttest.NewHandler(tencenttest.Options{})
	var ms []schema.Member
	for i := range 1100 {
		ms = append(ms, schema.Member{Account: fmt.Sprintf("u%04d", i), JoinTime: int64(1700000000 + i)})
	}
	fake.AddGroup("g", ms...)
	var joinOnPage2 atomic.Bool
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/get_members") && joinOnPage2.Load() && calls.Add(1) == 2 {
			fake.Join("g", schema.Member{Account: "newbie", JoinTime: 1700009999})
		}
		fake.ServeHTTP(w, r)
	}))
	defer srv.Close()
	sig, err := fake.UserSig(tencenttest.DefaultAdmin)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tencent.New(tencent.Options{SDKAppID: fake.SDKAppID(), Identifier: tencenttest.DefaultAdmin,
		Sig: usersig.Static(sig), Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	s, _, handled := newScheduler(t, c, []string{"g"}, tencent.ListerOptions{MemberCap: 1000})
	for range 2 {
		if err := s.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		joinOnPage2.Store(true)
	}
	snaps := handled()
	if len(snaps) != 2 || len(snaps[0].Members) != 1000 || len(snaps[1].Members) != 999 || !snaps[0].Truncated || !snaps[1].Truncated {
		t.Fatalf("snapshots: %d members then %d (truncated %v, %v); want 1000, then 999, both truncated",
			len(snaps[0].Members), len(snaps[1].Members), snaps[0].Truncated, snaps[1].Truncated)
	}
	_, st := diff.Diff(nil, snaps[0], diff.Options{})
	events, _ := diff.Diff(st, snaps[1], diff.Options{})
	for _, e := range events {
		if e.Type == schema.TypeMemberLeft {
			t.Errorf("false left event: %s", e.Subject)
		}
	}
}
