package tencent_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/rollcall-dev/rollcall/poller/tencent"
	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
	"github.com/rollcall-dev/rollcall/schema"
)

// newAgainst returns a client of the fake API s, signing with s's key.
func newAgainst(t *testing.T, s *tencenttest.Server, mod func(*tencent.Options)) *tencent.Client {
	t.Helper()
	signer, err := usersig.NewSigner(usersig.SignerOptions{SDKAppID: s.SDKAppID(), Identifier: tencenttest.DefaultAdmin, Key: s.Key()})
	if err != nil {
		t.Fatal(err)
	}
	o := tencent.Options{
		SDKAppID: s.SDKAppID(), Identifier: tencenttest.DefaultAdmin, Sig: signer,
		Endpoint: s.URL, HTTPClient: s.Client(), RateLimit: 1e6,
		Backoff: func() backoff.BackOff { return backoff.WithMaxRetries(&backoff.ZeroBackOff{}, 3) },
	}
	if mod != nil {
		mod(&o)
	}
	c, err := tencent.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func members(n int) []schema.Member {
	ms := make([]schema.Member, n)
	for i := range ms {
		ms[i] = schema.Member{Account: fmt.Sprintf("user-%04d", i), NickName: "n", JoinTime: int64(1700000000 + i)}
	}
	return ms
}

func TestAgainstFakeAPI(t *testing.T) {
	s := tencenttest.NewServer(tencenttest.Options{})
	defer s.Close()
	s.AddGroup("@TGS#room", members(900)...)
	c := newAgainst(t, s, nil)

	// Faults on three different pages: each page is retried on its own.
	s.InjectFault(tencenttest.Fault{Command: "get_members", Page: 2, Kind: tencenttest.FaultHTTP502, Times: 1})
	s.InjectFault(tencenttest.Fault{Command: "get_members", Page: 3, Kind: tencenttest.FaultInvalidJSON, Times: 1})
	s.InjectFault(tencenttest.Fault{Command: "get_members", Page: 4, Kind: tencenttest.FaultMissingAccount, Times: 1})
	got, err := c.ListMembers(context.Background(), "@TGS#room")
	if err != nil {
		t.Fatal(err)
	}
	if want := s.Members("@TGS#room"); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %d members, want the %d the server has", len(got), len(want))
	}
	if n := s.Calls("get_members"); n != 4+3 {
		t.Errorf("%d get_members calls, want 4 pages + 3 retries", n)
	}

	n, err := c.OnlineMemberNum(context.Background(), "@TGS#room")
	if err != nil || n != 900 {
		t.Fatalf("OnlineMemberNum = %d, %v", n, err)
	}

	s.Dismiss("@TGS#room")
	if _, err := c.ListMembers(context.Background(), "@TGS#room"); tencent.KindOf(err) != tencent.KindGroupGone {
		t.Fatalf("dismissed group: %v (kind %v)", err, tencent.KindOf(err))
	}
}

func TestAgainstFakeAPIWrongKey(t *testing.T) {
	s := tencenttest.NewServer(tencenttest.Options{})
	defer s.Close()
	s.AddGroup("g", members(3)...)
	signer, err := usersig.NewSigner(usersig.SignerOptions{SDKAppID: s.SDKAppID(), Identifier: tencenttest.DefaultAdmin, Key: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	c := newAgainst(t, s, func(o *tencent.Options) { o.Sig = signer })
	_, err = c.ListMembers(context.Background(), "g")
	if tencent.KindOf(err) != tencent.KindFatalConfig {
		t.Fatalf("err = %v (kind %v)", err, tencent.KindOf(err))
	}
	if n := s.Calls("get_members"); n != 2 {
		t.Errorf("%d calls, want 2 (one retry with a fresh usersig)", n)
	}
}

func TestAgainstFakeAPIMark(t *testing.T) {
	s := tencenttest.NewServer(tencenttest.Options{})
	defer s.Close()
	s.AddGroup("g", members(5)...)
	s.SetMarks("g", "user-0003", 1000)
	mark := int64(1000)
	c := newAgainst(t, s, func(o *tencent.Options) { o.Mark = &mark })
	got, err := c.ListMembers(context.Background(), "g")
	if err != nil || len(got) != 1 || got[0].Account != "user-0003" {
		t.Fatalf("%v, %v", got, err)
	}
}

func TestAgainstFakeAPIRateLimited(t *testing.T) {
	// The server allows 5 calls/s; the client, told 1000, is throttled
	// (60007), halves its rate and retries until the listing completes.
	s := tencenttest.NewServer(tencenttest.Options{RateLimit: 5, PageSize: 1})
	defer s.Close()
	s.AddGroup("g", members(8)...)
	c := newAgainst(t, s, func(o *tencent.Options) {
		o.RateLimit = 1000
		o.Backoff = func() backoff.BackOff { return backoff.NewConstantBackOff(50 * time.Millisecond) }
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, err := c.ListMembers(ctx, "g")
	if err != nil || len(got) != 8 {
		t.Fatalf("%d members, %v", len(got), err)
	}
}

func ExampleClient_ListMembers() {
	api := tencenttest.NewServer(tencenttest.Options{})
	defer api.Close()
	api.AddGroup("@TGS#aRoom", schema.Member{Account: "alice", JoinTime: 1700000000})

	signer, err := usersig.NewSigner(usersig.SignerOptions{
		SDKAppID: api.SDKAppID(), Identifier: "administrator", Key: api.Key(),
	})
	if err != nil {
		panic(err)
	}
	c, err := tencent.New(tencent.Options{
		SDKAppID: api.SDKAppID(), Identifier: "administrator", Sig: signer,
		Endpoint: api.URL, // Region: "singapore" in production
	})
	if err != nil {
		panic(err)
	}
	ms, err := c.ListMembers(context.Background(), "@TGS#aRoom")
	if err != nil {
		switch tencent.KindOf(err) {
		case tencent.KindGroupGone:
			fmt.Println("dismissed")
		default:
			fmt.Println(err)
		}
		return
	}
	fmt.Println(ms[0].Account, ms[0].JoinTime)
	// Output: alice 1700000000
}

// check_members is not capped: it finds members below get_members' latest
// 1,000, in batches of CheckMembersBatch.
func TestAgainstFakeAPICheckMembers(t *testing.T) {
	s := tencenttest.NewServer(tencenttest.Options{})
	defer s.Close()
	s.AddGroup("@TGS#big", members(1200)...)
	c := newAgainst(t, s, nil)
	var ask []string
	for i := range 250 { // user-0000..0249: the oldest, not in the listed 1,000
		ask = append(ask, fmt.Sprintf("user-%04d", i))
	}
	ask = append(ask, "never-joined")
	before := s.Calls("check_members")
	present, err := c.CheckMembers(context.Background(), "@TGS#big", ask)
	if err != nil {
		t.Fatal(err)
	}
	if len(present) != 250 || present[0] != "user-0000" {
		t.Fatalf("present = %d accounts (first %q), want the 250 members", len(present), present[0])
	}
	if n := s.Calls("check_members") - before; n != 3 {
		t.Errorf("check_members calls = %d, want 3 batches for 251 accounts", n)
	}
	s.Dismiss("@TGS#big")
	if _, err := c.CheckMembers(context.Background(), "@TGS#big", ask[:1]); tencent.KindOf(err) != tencent.KindGroupGone {
		t.Fatalf("dismissed group: err %v (kind %v), want group gone", err, tencent.KindOf(err))
	}
}

// get_group_info tells a live group from a dismissed or unknown one, each
// with its own ErrorCode.
func TestAgainstFakeAPIGroupExists(t *testing.T) {
	s := tencenttest.NewServer(tencenttest.Options{})
	defer s.Close()
	s.AddGroup("@TGS#live", members(2)...)
	s.AddGroup("@TGS#gone", members(2)...)
	s.Dismiss("@TGS#gone")
	c := newAgainst(t, s, nil)
	for id, want := range map[string]bool{"@TGS#live": true, "@TGS#gone": false, "@TGS#never": false} {
		got, err := c.GroupExists(context.Background(), id)
		if err != nil || got != want {
			t.Errorf("GroupExists(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
	reqs := s.Requests()
	last := reqs[len(reqs)-1]
	if last.Command != "get_group_info" || !strings.Contains(string(last.Body), `"GroupIdList":["@TGS#`) {
		t.Errorf("request %s %s", last.Command, last.Body)
	}
}
