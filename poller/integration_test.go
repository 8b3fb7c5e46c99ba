package poller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/poller/tencent"
	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
	"github.com/rollcall-dev/rollcall/schema"
)

// The real client implements MemberLister.
var _ MemberLister = (*tencent.Client)(nil)

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

// TestWithFakeAPI runs the scheduler against the real client and the fake
// API: pages are read, a dismissed group is delivered and unscheduled.
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
	f := newFixture(t, Options{SDKAppID: srv.SDKAppID(), Groups: []string{"@TGS#big", "@TGS#gone"}}, nil)
	f.s.lister = c
	if err := f.s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if snaps := f.rec.handled("@TGS#big"); len(snaps) != 1 || len(snaps[0].Members) != 600 {
		t.Fatalf("big group snapshots = %d, want one with 600 members", len(snaps))
	}
	if snaps := f.rec.handled("@TGS#gone"); len(snaps) != 1 || !snaps[0].Dismissed {
		t.Fatalf("dismissed group snapshots = %+v", snaps)
	}
	if got := f.s.Groups(); len(got) != 1 || got[0] != "@TGS#big" {
		t.Errorf("Groups = %v", got)
	}
	if g := f.s.groups["@TGS#big"]; g.lastSize != 600 {
		t.Errorf("lastSize = %d, want 600 for the budget estimate", g.lastSize)
	}
}

// TestFakeAPIWrongKeyIsFatal: a usersig signed with the wrong key stops Run
// with a *FatalError that names the cause and does not contain the usersig.
func TestFakeAPIWrongKeyIsFatal(t *testing.T) {
	srv := tencenttest.NewServer(tencenttest.Options{})
	defer srv.Close()
	srv.AddGroup("@TGS#a", schema.Member{Account: "alice", JoinTime: 1700000000})
	c, sig := newTencentClient(t, srv, "not-the-key")
	f := newFixture(t, Options{SDKAppID: srv.SDKAppID(), Groups: []string{"@TGS#a"}, Interval: time.Second}, nil)
	f.s.lister = c

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := f.s.Run(ctx)
	var fe *FatalError
	if !errors.As(err, &fe) {
		t.Fatalf("Run = %v, want a *FatalError", err)
	}
	if strings.Contains(err.Error(), sig) {
		t.Errorf("fatal error contains the usersig: %v", err)
	}
	if !strings.Contains(err.Error(), "key") {
		t.Errorf("fatal error %q does not name the cause", err)
	}
	for _, e := range f.logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), sig) {
			t.Errorf("log entry contains the usersig: %v", e.Message)
		}
	}
	if len(f.rec.handled("@TGS#a")) != 0 {
		t.Error("handler called after an auth failure")
	}
}

// TestListShiftedUnderTheCap: in a group over the 1,000 cap, a member who
// joins while the list is paged pushes the oldest out of the window, so
// 999 come back. The online count shows the group is over the cap: the
// snapshot is capped, and the diff reports no one as left.
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
	f := newFixture(t, Options{SDKAppID: fake.SDKAppID(), Groups: []string{"g"}, MemberCap: 1000}, nil)
	f.s.lister = c
	for range 2 {
		if err := f.s.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		joinOnPage2.Store(true)
	}
	snaps := f.rec.handled("g")
	if len(snaps) != 2 || len(snaps[0].Members) != 1000 || len(snaps[1].Members) != 999 || !snaps[1].Capped {
		t.Fatalf("snapshots: %d members then %d (capped %v); want 1000, then 999 capped",
			len(snaps[0].Members), len(snaps[1].Members), snaps[1].Capped)
	}
	_, st := diff.Diff(nil, snaps[0], diff.Options{MemberCap: 1000})
	events, _ := diff.Diff(st, snaps[1], diff.Options{MemberCap: 1000})
	for _, e := range events {
		if e.Type == schema.TypeMemberLeft {
			t.Errorf("false left event: %s", e.Subject)
		}
	}
}
