package poller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

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
