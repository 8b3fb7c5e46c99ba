package tencent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/time/rate"

	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/schematest/testclock"
)

func TestRequestFormat(t *testing.T) {
	f := newFakeAPI(t, always(200, ok("0", member("alice", 100))))
	c := newTestClient(t, f.srv.URL, nil)
	const calls = 20
	for i := 0; i < calls; i++ {
		if _, err := c.ListMembers(context.Background(), "@TGS#aRoom"); err != nil {
			t.Fatal(err)
		}
	}
	randoms := map[string]bool{}
	for _, r := range f.requests() {
		if r.Method != http.MethodPost || r.Path != "/v4/group_open_avchatroom_http_svc/get_members" {
			t.Fatalf("%s %s", r.Method, r.Path)
		}
		if r.ContentType != "application/json" {
			t.Errorf("Content-Type %q", r.ContentType)
		}
		if r.Body != `{"GroupId":"@TGS#aRoom","Timestamp":0}` {
			t.Errorf("body %s", r.Body)
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range r.Query {
				if !yield(k) {
					return
				}
			}
		})
		if !reflect.DeepEqual(keys, []string{"contenttype", "identifier", "random", "sdkappid", "usersig"}) {
			t.Errorf("query keys %v", keys)
		}
		q := r.Query
		if q.Get("sdkappid") != "1400000000" || q.Get("identifier") != testAdmin || q.Get("usersig") != testSig || q.Get("contenttype") != "json" {
			t.Errorf("query %v", q)
		}
		if _, err := strconv.ParseUint(q.Get("random"), 10, 32); err != nil {
			t.Errorf("random %q is not a uint32", q.Get("random"))
		}
		randoms[q.Get("random")] = true
		if !strings.HasPrefix(r.RawQuery, "sdkappid=1400000000&identifier=administrator&usersig=") {
			t.Errorf("query order %s", r.RawQuery)
		}
	}
	if len(randoms) != calls {
		t.Errorf("%d distinct random values in %d calls", len(randoms), calls)
	}
}

func TestMarkSentOnlyWhenSet(t *testing.T) {
	f := newFakeAPI(t, always(200, ok("0")))
	mark := int64(1000)
	c := newTestClient(t, f.srv.URL, func(o *Options) { o.Mark = &mark })
	if _, err := c.ListMembers(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	noMark := newTestClient(t, f.srv.URL, nil)
	if _, err := noMark.ListMembers(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	got := f.requests()
	if got[0].Body != `{"GroupId":"g","Timestamp":0,"Mark":1000}` {
		t.Errorf("with mark: %s", got[0].Body)
	}
	if got[1].Body != `{"GroupId":"g","Timestamp":0}` {
		t.Errorf("without mark: %s", got[1].Body)
	}
}

func TestPagingLargeCursorsAndDuplicates(t *testing.T) {
	// Cursors a float64 or int64 decoder would corrupt: above 2^32, 2^53+1,
	// above 2^63 and 2^64-1.
	cursors := []string{"4294967297", "9007199254740993", "9223372036854775809", "18446744073709551615"}
	pages := []string{
		ok(cursors[0], member("carol", 300), member("alice", 100)),
		// alice again at the page edge, with a later JoinTime: that view wins.
		ok(cursors[1], member("alice", 150), member("bob", 200)),
		ok(cursors[2]),
		ok(cursors[3], member("dave", 400), member("bob", 200)),
		ok("0", member("erin", 500)),
	}
	f := newFakeAPI(t, sequence(pages...))
	c := newTestClient(t, f.srv.URL, nil)
	got, err := c.ListMembers(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	want := []schema.Member{
		{Account: "alice", NickName: "nick-alice", Avatar: "https://a/alice.png", JoinTime: 150},
		{Account: "bob", NickName: "nick-bob", Avatar: "https://a/bob.png", JoinTime: 200},
		{Account: "carol", NickName: "nick-carol", Avatar: "https://a/carol.png", JoinTime: 300},
		{Account: "dave", NickName: "nick-dave", Avatar: "https://a/dave.png", JoinTime: 400},
		{Account: "erin", NickName: "nick-erin", Avatar: "https://a/erin.png", JoinTime: 500},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("members\n got %+v\nwant %+v", got, want)
	}
	reqs := f.requests()
	if len(reqs) != len(pages) {
		t.Fatalf("%d requests, want %d", len(reqs), len(pages))
	}
	sent := []string{"0"}
	sent = append(sent, cursors...)
	for i, r := range reqs {
		if want := `{"GroupId":"g","Timestamp":` + sent[i] + `}`; r.Body != want {
			t.Errorf("page %d body %s, want %s", i+1, r.Body, want)
		}
	}
}

func TestPagingLoopDetected(t *testing.T) {
	t.Run("repeated_cursor", func(t *testing.T) {
		f := newFakeAPI(t, sequence(ok("7", member("a", 1)), ok("8"), ok("7")))
		c := newTestClient(t, f.srv.URL, nil)
		got, err := c.ListMembers(context.Background(), "g")
		if !errors.Is(err, ErrPagingLoop) || got != nil {
			t.Fatalf("got %v, %v; want ErrPagingLoop", got, err)
		}
		if n := len(f.requests()); n != 3 {
			t.Fatalf("%d requests", n)
		}
	})
	t.Run("too_many_pages", func(t *testing.T) {
		f := newFakeAPI(t, func(n int, _ recorded) (int, string) { return 200, ok(strconv.Itoa(n+1), member("a", 1)) })
		c := newTestClient(t, f.srv.URL, nil)
		c.maxPages = 5
		if _, err := c.ListMembers(context.Background(), "g"); !errors.Is(err, ErrPagingLoop) {
			t.Fatalf("err = %v, want ErrPagingLoop", err)
		}
		if n := len(f.requests()); n != 5 {
			t.Fatalf("%d requests, want 5", n)
		}
	})
}

func TestBadResponses(t *testing.T) {
	for _, tc := range []struct{ name, body, wantInfo string }{
		{"invalid_json", `{"ActionStatus":"OK",`, "decode JSON"},
		{"html", `<html>gateway</html>`, "decode JSON"},
		{"no_action_status", `{"ErrorCode":0,"MemberList":[],"NextTimestamp":0}`, "no ActionStatus"},
		{"fail_without_code", `{"ActionStatus":"FAIL","ErrorCode":0,"MemberList":[],"NextTimestamp":0}`, "ActionStatus"},
		{"member_without_account", ok("0", `{"NickName":"x","JoinTime":1}`), "no Member_Account"},
		{"empty_account", ok("0", `{"Member_Account":"","JoinTime":1}`), "no Member_Account"},
		{"no_next_timestamp", `{"ActionStatus":"OK","ErrorCode":0,"MemberList":[]}`, "no NextTimestamp"},
		{"negative_cursor", ok("-1"), "NextTimestamp"},
		{"fractional_cursor", ok("1.5"), "NextTimestamp"},
		{"cursor_over_uint64", ok("18446744073709551616"), "NextTimestamp"},
		{"string_error_code", `{"ActionStatus":"OK","ErrorCode":"0","MemberList":[],"NextTimestamp":0}`, "decode JSON"},
		{"bad_join_time", ok("0", `{"Member_Account":"a","JoinTime":"soon"}`), "decode JSON"},
		{"no_join_time", ok("0", `{"Member_Account":"a"}`), "no JoinTime"},
		{"page_without_member_list_but_more", `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","NextTimestamp":12345}`, "no MemberList"},
		{"zero_join_time", ok("0", `{"Member_Account":"a","JoinTime":0}`), "not a Unix time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t, always(200, tc.body))
			c := newTestClient(t, f.srv.URL, nil)
			got, err := c.ListMembers(context.Background(), "g")
			if err == nil || got != nil {
				t.Fatalf("got %v, %v; want an error and no members", got, err)
			}
			if KindOf(err) != KindTransient || !strings.Contains(err.Error(), tc.wantInfo) {
				t.Fatalf("err = %v (kind %v), want transient mentioning %q", err, KindOf(err), tc.wantInfo)
			}
			// Two retries, then the page fails.
			if n := len(f.requests()); n != 3 {
				t.Fatalf("%d requests, want 3", n)
			}
		})
	}
}

func TestNoPartialList(t *testing.T) {
	f := newFakeAPI(t, func(n int, _ recorded) (int, string) {
		if n == 0 {
			return 200, ok("5", member("alice", 1))
		}
		return 200, fail(10002, "internal error")
	})
	c := newTestClient(t, f.srv.URL, nil)
	got, err := c.ListMembers(context.Background(), "g")
	if err == nil || got != nil {
		t.Fatalf("got %v, %v", got, err)
	}
	if !strings.Contains(err.Error(), "page 2") {
		t.Errorf("error does not name the page: %v", err)
	}
}

func TestErrorKinds(t *testing.T) {
	type want struct {
		kind     Kind
		requests int
	}
	cases := map[string]struct {
		status int
		body   string
		want   want
	}{
		"http_502":    {502, "bad gateway", want{KindTransient, 3}},
		"http_503":    {503, "", want{KindTransient, 3}},
		"http_429":    {429, "", want{KindRateLimited, 3}},
		"unknown":     {200, fail(99999, "what"), want{KindBadRequest, 1}},
		"action_fail": {200, fail(10004, "invalid GroupId"), want{KindBadRequest, 1}},
	}
	for code, kind := range codeKinds {
		w := want{kind, 1}
		switch kind {
		case KindTransient, KindRateLimited:
			w.requests = 3
		case KindAuth:
			// Retried once with a fresh usersig, then a configuration error.
			w = want{KindFatalConfig, 2}
		}
		cases[strconv.Itoa(code)] = struct {
			status int
			body   string
			want   want
		}{200, fail(code, "info"), w}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeAPI(t, always(tc.status, tc.body))
			c := newTestClient(t, f.srv.URL, nil)
			_, err := c.ListMembers(context.Background(), "g")
			if err == nil {
				t.Fatal("no error")
			}
			if got := KindOf(err); got != tc.want.kind {
				t.Errorf("kind %v, want %v (%v)", got, tc.want.kind, err)
			}
			if n := len(f.requests()); n != tc.want.requests {
				t.Errorf("%d requests, want %d", n, tc.want.requests)
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.Command != "get_members" {
				t.Fatalf("no *APIError in %v", err)
			}
			if tc.status == 200 {
				if want, _ := strconv.Atoi(name); want != 0 && ae.Code != want {
					t.Errorf("code %d", ae.Code)
				}
			} else if ae.HTTPStatus != tc.status {
				t.Errorf("http status %d", ae.HTTPStatus)
			}
		})
	}
}

func TestErrorMessagesNameTheCause(t *testing.T) {
	for code, want := range map[int]string{
		70009: "the secret key is probably wrong",
		70016: "check tencent.region",
		70020: "check tencent.region",
		60010: "not an app admin",
		60021: "IP allow-list",
		60020: "plan expired",
		60006: "tencent.sdkappid",
	} {
		f := newFakeAPI(t, always(200, fail(code, "tencent says no")))
		c := newTestClient(t, f.srv.URL, nil)
		_, err := c.ListMembers(context.Background(), "g")
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "tencent says no") {
			t.Errorf("%d: %v, want it to mention %q", code, err, want)
		}
		if KindOf(err) != KindFatalConfig {
			t.Errorf("%d: kind %v", code, KindOf(err))
		}
	}
}

func TestAuthRetryOnceWithFreshUserSig(t *testing.T) {
	src := &countingSource{}
	f := newFakeAPI(t, sequence(fail(70001, "expired"), ok("0", member("a", 1))))
	c := newTestClient(t, f.srv.URL, func(o *Options) { o.Sig = src })
	got, err := c.ListMembers(context.Background(), "g")
	if err != nil || len(got) != 1 {
		t.Fatalf("%v, %v", got, err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[0].Query.Get("usersig") != "sig-1" || reqs[1].Query.Get("usersig") != "sig-2" {
		t.Fatalf("usersigs sent: %v", reqs)
	}
	if src.invalidated != 1 {
		t.Fatalf("invalidated %d times", src.invalidated)
	}
}

func TestAuthFailsTwiceIsFatal(t *testing.T) {
	src := &countingSource{}
	f := newFakeAPI(t, always(200, fail(70009, "sig verification failed")))
	c := newTestClient(t, f.srv.URL, func(o *Options) { o.Sig = src; o.Backoff = retries(10) })
	_, err := c.ListMembers(context.Background(), "g")
	if KindOf(err) != KindFatalConfig || !strings.Contains(err.Error(), "secret key is probably wrong") {
		t.Fatalf("err = %v (kind %v)", err, KindOf(err))
	}
	if n := len(f.requests()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

// TestRealSignerVerifiedByServer: the usersig survives query encoding (its
// alphabet has * - _) and verifies on the server side.
func TestRealSignerVerifiedByServer(t *testing.T) {
	const key = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e"
	clk := testclock.New(time.Unix(1700000000, 0))
	m := NewMetrics(nil)
	signer, err := usersig.NewSigner(usersig.SignerOptions{SDKAppID: testAppID, Identifier: testAdmin, Key: key,
		Expire: 2 * time.Hour, Now: clk.Now, OnRefresh: m.UserSigRefreshed})
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeAPI(t, func(n int, r recorded) (int, string) {
		sig := r.Query.Get("usersig")
		if err := usersig.Verify(sig, key, testAppID, r.Query.Get("identifier"), clk.Now()); err != nil {
			if errors.Is(err, usersig.ErrExpired) {
				return 200, fail(70001, "expired")
			}
			return 200, fail(70009, err.Error())
		}
		return 200, ok("0", member("a", 1))
	})
	c := newTestClient(t, f.srv.URL, func(o *Options) { o.Sig = signer; o.Metrics = m })
	if _, err := c.ListMembers(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	// 3h later the cached usersig would be expired; the signer re-minted
	// it at 80% of its life, so the call still works.
	clk.Add(3 * time.Hour)
	if _, err := c.ListMembers(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.UserSigRefreshes.WithLabelValues("expiry")); got != 1 {
		t.Errorf("expiry refreshes %v", got)
	}
	if got := testutil.ToFloat64(m.UserSigRefreshes.WithLabelValues("initial")); got != 1 {
		t.Errorf("initial refreshes %v", got)
	}
}

func TestRetryFailedPageOnly(t *testing.T) {
	f := newFakeAPI(t, func(n int, _ recorded) (int, string) {
		switch n {
		case 0:
			return 200, ok("5", member("alice", 1))
		case 1, 2:
			return 502, "bad gateway"
		}
		return 200, ok("0", member("bob", 2))
	})
	c := newTestClient(t, f.srv.URL, nil)
	got, err := c.ListMembers(context.Background(), "g")
	if err != nil || len(got) != 2 {
		t.Fatalf("%v, %v", got, err)
	}
	reqs := f.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests", len(reqs))
	}
	for _, r := range reqs[1:] {
		if r.Body != `{"GroupId":"g","Timestamp":5}` {
			t.Errorf("retry sent %s: the failed page must be retried, not the listing", r.Body)
		}
	}
	// Each retry is logged with the group, the code and the attempt.
	logged := c.logs.FilterMessage("api call failed, retrying").All()
	if len(logged) != 2 {
		t.Fatalf("%d retry logs", len(logged))
	}
	fields := logged[1].ContextMap()
	if fields["group_id"] != "g" || fields["code"] != "http_502" || fields["attempt"] != int64(2) {
		t.Errorf("retry log fields %v", fields)
	}
}

func TestRetriesBoundedByContextDeadline(t *testing.T) {
	f := newFakeAPI(t, always(502, ""))
	c := newTestClient(t, f.srv.URL, func(o *Options) {
		// Unbounded retries: only the context can stop them.
		o.Backoff = func() backoff.BackOff { return backoff.NewConstantBackOff(5 * time.Millisecond) }
	})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, err := c.ListMembers(ctx, "g")
	if err == nil || KindOf(err) != KindTransient || !strings.Contains(err.Error(), "http status 502") {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.requests()); n < 2 {
		t.Fatalf("%d requests: not retried", n)
	}
}

// cancelBackOff cancels the call's context when asked for the first wait,
// so the context ends while the retry loop sleeps.
type cancelBackOff struct{ cancel context.CancelFunc }

func (b cancelBackOff) NextBackOff() time.Duration { b.cancel(); return time.Hour }
func (b cancelBackOff) Reset()                     {}

func TestRetriesStopWhenContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFakeAPI(t, always(502, ""))
	c := newTestClient(t, f.srv.URL, func(o *Options) {
		o.Backoff = func() backoff.BackOff { return cancelBackOff{cancel} }
	})
	_, err := c.ListMembers(ctx, "g")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "502") || KindOf(err) != KindTransient {
		t.Errorf("the last failure is lost: %v", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests", n)
	}
}

func TestRateLimiterSharedAcrossCalls(t *testing.T) {
	clk := testclock.New(time.Unix(1700000000, 0))
	f := newFakeAPI(t, always(200, ok("0")))
	c := newTestClient(t, f.srv.URL, func(o *Options) { o.RateLimit = 10; o.Now = clk.Now })
	// The clock stands still and the sleeps are recorded, not slept: five
	// concurrent calls must queue on one bucket, 100ms apart.
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.ListMembers(context.Background(), fmt.Sprintf("g%d", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got := c.sleeps.all()
	slices.Sort(got)
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
	// OnlineMemberNum draws from the same bucket.
	f2 := newFakeAPI(t, always(200, `{"ActionStatus":"OK","ErrorCode":0,"OnlineMemberNum":3}`))
	c.bases = []string{f2.srv.URL}
	if _, err := c.OnlineMemberNum(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	if got := c.sleeps.all(); got[len(got)-1] != 500*time.Millisecond {
		t.Fatalf("OnlineMemberNum waited %v, want 500ms", got[len(got)-1])
	}
}

func TestRateLimitWaitBeyondDeadlineFailsFast(t *testing.T) {
	clk := testclock.New(time.Unix(1700000000, 0))
	f := newFakeAPI(t, always(200, ok("0")))
	c := newTestClient(t, f.srv.URL, func(o *Options) { o.RateLimit = 0.001; o.Now = clk.Now })
	if _, err := c.ListMembers(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.ListMembers(ctx, "g")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "rate limit wait") {
		t.Fatalf("err = %v", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d requests", n)
	}
	// The token was handed back: the next call waits for one token, not two.
	c.ListMembers(context.Background(), "g")
	if got := c.sleeps.all(); len(got) != 1 || got[0] != 1000*time.Second {
		t.Fatalf("waits %v, want [1000s]", got)
	}
}

func TestRateLimitedHalvesRateForAMinute(t *testing.T) {
	clk := testclock.New(time.Unix(1700000000, 0))
	f := newFakeAPI(t, func(n int, _ recorded) (int, string) {
		if n == 0 || n == 2 {
			return 200, fail(60007, "too fast")
		}
		return 200, ok("0")
	})
	c := newTestClient(t, f.srv.URL, func(o *Options) { o.RateLimit = 100; o.Now = clk.Now })
	if _, err := c.ListMembers(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	if got := c.lim.Limit(); got != 50 {
		t.Fatalf("limit %v after 60007, want 50", got)
	}
	// Another complaint within the minute extends it but does not halve again.
	clk.Add(30 * time.Second)
	if _, err := c.ListMembers(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	if got := c.lim.Limit(); got != 50 {
		t.Fatalf("limit %v after a second 60007, want 50", got)
	}
	clk.Add(59 * time.Second)
	c.ListMembers(context.Background(), "g")
	if got := c.lim.Limit(); got != 50 {
		t.Fatalf("limit %v before the extended minute ended", got)
	}
	clk.Add(2 * time.Second)
	c.ListMembers(context.Background(), "g")
	if got := c.lim.Limit(); got != rate.Limit(100) {
		t.Fatalf("limit %v a minute later, want 100 restored", got)
	}
	if n := c.logs.FilterMessage("rate limit restored").Len(); n != 1 {
		t.Errorf("%d restore logs", n)
	}
}

func TestUserSigLockout70050(t *testing.T) {
	clk := testclock.New(time.Unix(1700000000, 0))
	src := &countingSource{}
	f := newFakeAPI(t, sequence(fail(70050, "locked"), ok("0")))
	c := newTestClient(t, f.srv.URL, func(o *Options) { o.Sig = src; o.Now = clk.Now })
	if _, err := c.ListMembers(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	if got := c.sleeps.all(); len(got) != 1 || got[0] != 60*time.Second {
		t.Fatalf("waits %v, want one of 60s", got)
	}
	if src.invalidated == 0 || f.requests()[1].Query.Get("usersig") == "sig-1" {
		t.Fatal("usersig not renewed after 70050")
	}

	// Within the minute, with a poll deadline shorter than the lockout, a
	// call fails at once without touching the API.
	f2 := newFakeAPI(t, always(200, fail(70050, "locked")))
	c2 := newTestClient(t, f2.srv.URL, func(o *Options) { o.Now = clk.Now })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c2.ListMembers(ctx, "g")
	if KindOf(err) != KindRateLimited || !strings.Contains(err.Error(), "lockout") {
		t.Fatalf("err = %v (kind %v)", err, KindOf(err))
	}
	if n := len(f2.requests()); n != 1 {
		t.Fatalf("%d requests", n)
	}
}

func TestOnlineMemberNum(t *testing.T) {
	f := newFakeAPI(t, sequence(
		`{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","OnlineMemberNum":1234}`,
		`{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`,
		fail(10010, "dismissed"),
	))
	c := newTestClient(t, f.srv.URL, func(o *Options) { o.Backoff = retries(0) })
	n, err := c.OnlineMemberNum(context.Background(), "@TGS#x")
	if err != nil || n != 1234 {
		t.Fatalf("%d, %v", n, err)
	}
	r := f.requests()[0]
	if r.Path != "/v4/group_open_http_svc/get_online_member_num" || r.Body != `{"GroupId":"@TGS#x"}` {
		t.Fatalf("%s %s", r.Path, r.Body)
	}
	if _, err := c.OnlineMemberNum(context.Background(), "@TGS#x"); err == nil || !strings.Contains(err.Error(), "OnlineMemberNum") {
		t.Fatalf("missing count accepted: %v", err)
	}
	if _, err := c.OnlineMemberNum(context.Background(), "@TGS#x"); KindOf(err) != KindGroupGone {
		t.Fatalf("err = %v", err)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	// Series exist before any call: one per command, code "0".
	if n := testutil.CollectAndCount(m.Calls); n != 4 {
		t.Fatalf("%d initial call series, want 4 (get_members, get_online_member_num, check_members, get_group_info)", n)
	}
	if n := testutil.CollectAndCount(m.UserSigRefreshes); n != 3 {
		t.Fatalf("%d initial refresh series, want 3", n)
	}
	f := newFakeAPI(t, func(n int, _ recorded) (int, string) {
		switch n {
		case 0:
			return 502, ""
		case 1:
			return 200, "nope"
		case 2:
			return 200, fail(10002, "busy")
		case 3:
			return 200, ok("0")
		}
		return 200, fail(10010, "gone")
	})
	c := newTestClient(t, f.srv.URL, func(o *Options) { o.Metrics = m; o.Backoff = retries(5) })
	if _, err := c.ListMembers(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	c.ListMembers(context.Background(), "g")
	for code, want := range map[string]float64{"http_502": 1, "invalid_response": 1, "10002": 1, "0": 1, "10010": 1} {
		if got := testutil.ToFloat64(m.Calls.WithLabelValues("get_members", code)); got != want {
			t.Errorf("calls{code=%s} = %v, want %v", code, got, want)
		}
	}
	var pb dto.Metric
	if err := m.RateLimitWait.(prometheus.Metric).Write(&pb); err != nil {
		t.Fatal(err)
	}
	if got := pb.GetHistogram().GetSampleCount(); got != 5 {
		t.Errorf("rate limit waits observed %d, want one per attempt (5)", got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) != 0 {
		t.Error(problems, err)
	}
	var nilM *Metrics
	nilM.UserSigRefreshed("initial") // must not panic
}

func TestTransportErrorMetricAndRedaction(t *testing.T) {
	// A closed server: connection refused.
	f := newFakeAPI(t, always(200, ok("0")))
	f.srv.Close()
	m := NewMetrics(nil)
	c := newTestClient(t, f.srv.URL, func(o *Options) { o.Metrics = m })
	_, err := c.ListMembers(context.Background(), "g")
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), testSig) || !strings.Contains(err.Error(), "usersig=REDACTED") {
		t.Fatalf("usersig not redacted: %v", err)
	}
	if KindOf(err) != KindTransient {
		t.Errorf("kind %v", KindOf(err))
	}
	if got := testutil.ToFloat64(m.Calls.WithLabelValues("get_members", "transport")); got != 3 {
		t.Errorf("transport calls %v, want 3", got)
	}
	assertNoSecretInLogs(t, c)
}

func TestBadResponseRedaction(t *testing.T) {
	for name, body := range map[string]string{
		"error_info_echoes_sig": fail(70003, "cannot parse usersig "+testSig),
		"invalid_json_with_sig": `{"ActionStatus":"OK","ErrorInfo":"` + testSig + `",`,
		"cursor_with_sig":       ok(`"` + testSig + `"`),
		// A gateway echoing the request URL quotes the sig: * becomes %2A.
		"error_info_echoes_escaped_sig": fail(70003, "bad request /v4/x?usersig="+url.QueryEscape(testSig)+"&random=1"),
		"error_info_echoes_quoted_url":  fail(70003, "upstream "+url.QueryEscape("https://h/v4/x?usersig="+testSig)),
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeAPI(t, always(200, body))
			c := newTestClient(t, f.srv.URL, nil)
			_, err := c.ListMembers(context.Background(), "g")
			if err == nil || strings.Contains(err.Error(), testSig) || strings.Contains(err.Error(), url.QueryEscape(testSig)) ||
				strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("err = %v", err)
			}
			assertNoSecretInLogs(t, c)
		})
	}
}

// TestRedirectNotFollowed: a 3xx would carry the usersig in the query to
// wherever Location points; it is an HTTP error instead.
func TestRedirectNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	f := newFakeAPI(t, always(200, ok("0")))
	f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	})
	c := newTestClient(t, f.srv.URL, nil)
	_, err := c.ListMembers(context.Background(), "g")
	if err == nil || !strings.Contains(err.Error(), "307") || KindOf(err) != KindTransient {
		t.Fatalf("err = %v (kind %v), want a transient HTTP 307 error", err, KindOf(err))
	}
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the redirect was followed %d times: the usersig left for another host", n)
	}
	assertNoSecretInLogs(t, c)
}

func assertNoSecretInLogs(t *testing.T, c testClient) {
	t.Helper()
	if c.logs.Len() == 0 {
		t.Fatal("expected some logs to inspect")
	}
	for _, e := range c.logs.All() {
		if s := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(s, testSig) || strings.Contains(s, "SECRET") {
			t.Fatalf("usersig in log: %s %v", e.Message, e.ContextMap())
		}
	}
}

// hostRecorder is a RoundTripper that fails for some hosts and answers OK
// for the others, recording the hosts it sees.
type hostRecorder struct {
	mu    sync.Mutex
	hosts []string
	down  map[string]bool
	// gateway502 answers 502 for these hosts: reachable, but the gateway
	// cannot reach the service.
	gateway502 map[string]bool
}

func (h *hostRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.hosts = append(h.hosts, r.URL.Scheme+"://"+r.URL.Host)
	down, bad := h.down[r.URL.Host], h.gateway502[r.URL.Host]
	h.mu.Unlock()
	if down {
		return nil, errors.New("dial tcp: connection refused")
	}
	if bad {
		return &http.Response{StatusCode: http.StatusBadGateway, Body: http.NoBody, Request: r, Header: http.Header{}}, nil
	}
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r,
		Header: http.Header{}, ContentLength: 0}, nil
}

func TestRegions(t *testing.T) {
	want := map[string]string{
		"china": "console.tim.qq.com", "singapore": "adminapisgp.im.qcloud.com",
		"seoul": "adminapikr.im.qcloud.com", "tokyo": "adminapijpn.im.qcloud.com",
		"frankfurt": "adminapiger.im.qcloud.com", "mumbai": "adminapiind.im.qcloud.com",
		"silicon_valley": "adminapiusa.im.qcloud.com", "jakarta": "adminapiidn.im.qcloud.com",
	}
	if got := Regions(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Regions() = %v", got)
	}
	for name, domain := range want {
		rt := &hostRecorder{}
		c := newTestClient(t, "", func(o *Options) {
			o.Region = name
			o.HTTPClient = &http.Client{Transport: rt}
			o.Backoff = retries(0)
		})
		c.ListMembers(context.Background(), "g") // the empty body is an invalid response; only the host matters
		if len(rt.hosts) != 1 || rt.hosts[0] != "https://"+domain {
			t.Errorf("%s: called %v", name, rt.hosts)
		}
	}
}

func TestFailoverToBackupDomain(t *testing.T) {
	rt := &hostRecorder{down: map[string]bool{"adminapisgp.im.qcloud.com": true}}
	c := newTestClient(t, "", func(o *Options) {
		o.Region = "singapore"
		o.HTTPClient = &http.Client{Transport: rt}
	})
	c.ListMembers(context.Background(), "g")
	c.ListMembers(context.Background(), "g")
	want := []string{"https://adminapisgp.im.qcloud.com", "https://adminapisgp.my-imcloud.com"}
	if len(rt.hosts) < 3 || !reflect.DeepEqual(rt.hosts[:2], want) {
		t.Fatalf("hosts %v, want to start with %v", rt.hosts, want)
	}
	// It stays on the working backup.
	for _, h := range rt.hosts[1:] {
		if h != want[1] {
			t.Fatalf("hosts %v: went back to the failing primary", rt.hosts)
		}
	}
	// And alternates back when the backup fails too.
	rt.mu.Lock()
	rt.down["adminapisgp.my-imcloud.com"] = true
	rt.hosts = nil
	rt.mu.Unlock()
	c.ListMembers(context.Background(), "g")
	if !reflect.DeepEqual(rt.hosts, []string{want[1], want[0], want[1]}) {
		t.Fatalf("hosts %v", rt.hosts)
	}
	// Tokyo has no backup: it keeps retrying the primary.
	rt2 := &hostRecorder{down: map[string]bool{"adminapijpn.im.qcloud.com": true}}
	c2 := newTestClient(t, "", func(o *Options) { o.Region = "tokyo"; o.HTTPClient = &http.Client{Transport: rt2} })
	c2.ListMembers(context.Background(), "g")
	if len(rt2.hosts) != 3 || rt2.hosts[2] != "https://adminapijpn.im.qcloud.com" {
		t.Fatalf("tokyo hosts %v", rt2.hosts)
	}
}

// TestFailoverOnGatewayErrors: a primary domain whose gateway answers 502
// (reachable, but not reaching the service) fails over like a refused
// connection.
func TestFailoverOnGatewayErrors(t *testing.T) {
	rt := &hostRecorder{gateway502: map[string]bool{"adminapisgp.im.qcloud.com": true}}
	c := newTestClient(t, "", func(o *Options) {
		o.Region = "singapore"
		o.HTTPClient = &http.Client{Transport: rt}
	})
	c.ListMembers(context.Background(), "g")
	want := []string{"https://adminapisgp.im.qcloud.com", "https://adminapisgp.my-imcloud.com"}
	if len(rt.hosts) < 2 || !reflect.DeepEqual(rt.hosts[:2], want) {
		t.Fatalf("hosts %v, want to start with %v", rt.hosts, want)
	}
}

func TestEndpointOverride(t *testing.T) {
	f := newFakeAPI(t, always(200, ok("0")))
	c := newTestClient(t, f.srv.URL+"/im/", func(o *Options) { o.Region = "china" })
	if _, err := c.ListMembers(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	if p := f.requests()[0].Path; p != "/im/v4/group_open_avchatroom_http_svc/get_members" {
		t.Fatalf("path %s", p)
	}
}

func TestNewValidates(t *testing.T) {
	base := Options{SDKAppID: testAppID, Identifier: testAdmin, Sig: usersig.Static(testSig), Region: "china"}
	for name, mod := range map[string]func(*Options){
		"no_sdkappid":      func(o *Options) { o.SDKAppID = 0 },
		"no_identifier":    func(o *Options) { o.Identifier = "" },
		"bad_identifier":   func(o *Options) { o.Identifier = "ad min" },
		"no_sig":           func(o *Options) { o.Sig = nil },
		"unknown_region":   func(o *Options) { o.Region = "mars" },
		"no_region":        func(o *Options) { o.Region = "" },
		"endpoint_scheme":  func(o *Options) { o.Endpoint = "ftp://x" },
		"endpoint_no_host": func(o *Options) { o.Endpoint = "http://" },
		"endpoint_query":   func(o *Options) { o.Endpoint = "http://x/?a=b" },
		"negative_rate":    func(o *Options) { o.RateLimit = -1 },
		"negative_timeout": func(o *Options) { o.RequestTimeout = -time.Second },
	} {
		o := base
		mod(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	if c.lim.Limit() != DefaultRateLimit || c.timeout != DefaultRequestTimeout || len(c.bases) != 2 {
		t.Errorf("defaults: %v %v %v", c.lim.Limit(), c.timeout, c.bases)
	}
}

func TestRequestTimeout(t *testing.T) {
	block := make(chan struct{})
	f := newFakeAPI(t, func(n int, r recorded) (int, string) {
		if n == 0 {
			<-block
		}
		return 200, ok("0", member("a", 1))
	})
	defer close(block)
	c := newTestClient(t, f.srv.URL, func(o *Options) { o.RequestTimeout = 50 * time.Millisecond })
	got, err := c.ListMembers(context.Background(), "g")
	if err != nil || len(got) != 1 {
		t.Fatalf("a timed-out request was not retried: %v, %v", got, err)
	}
}

func TestKindString(t *testing.T) {
	for k, s := range map[Kind]string{KindTransient: "transient", KindRateLimited: "rate_limited", KindAuth: "auth",
		KindGroupGone: "group_gone", KindFatalConfig: "fatal_config", KindBadRequest: "bad_request", Kind(42): "kind(42)"} {
		if k.String() != s {
			t.Errorf("%d: %q", k, k.String())
		}
	}
	if KindOf(errors.New("x")) != KindTransient || KindOf(context.Canceled) != KindTransient {
		t.Error("unknown errors must be transient")
	}
	wrapped := fmt.Errorf("poll: %w", &APIError{Command: "get_members", HTTPStatus: 200, Code: 10015, Kind: KindGroupGone})
	if KindOf(wrapped) != KindGroupGone {
		t.Error("KindOf does not unwrap")
	}
}

func BenchmarkListMembers1000(b *testing.B) {
	var pages []string
	for p := 0; p < 4; p++ {
		var ms []string
		for i := 0; i < 250; i++ {
			ms = append(ms, member(fmt.Sprintf("user-%04d", p*250+i), int64(1700000000+p*250+i)))
		}
		next := "0"
		if p < 3 {
			next = strconv.Itoa(1700000000 + (p+1)*250)
		}
		pages = append(pages, ok(next, ms...))
	}
	f := newFakeAPI(b, func(n int, _ recorded) (int, string) { return 200, pages[n%4] })
	c := newTestClient(b, f.srv.URL, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ms, err := c.ListMembers(context.Background(), "g")
		if err != nil || len(ms) != 1000 {
			b.Fatalf("%d, %v", len(ms), err)
		}
	}
}

// TestCheckMembersEmptyAnswer: an OK check_members answer whose
// Member_Account is null or left out means none of the accounts is in the
// group (a server encoding an empty list that way), not a bad response.
func TestCheckMembersEmptyAnswer(t *testing.T) {
	for name, body := range map[string]string{
		"empty":  `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","Member_Account":[]}`,
		"null":   `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","Member_Account":null}`,
		"absent": `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`,
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeAPI(t, always(200, body))
			c := newTestClient(t, f.srv.URL, nil)
			present, err := c.CheckMembers(context.Background(), "g", []string{"a", "b"})
			if err != nil || len(present) != 0 {
				t.Fatalf("CheckMembers = %v, %v; want none present", present, err)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d requests, want 1 (no retries)", n)
			}
		})
	}
}

// TestRepeated70050IsFatal: 70050 after the minute's cool-down, with a
// fresh usersig and no success in between, is a configuration error (the
// fact sheet's "A": regenerate and retry once, then fatal), not an
// endless minute-by-minute retry.
func TestRepeated70050IsFatal(t *testing.T) {
	clk := testclock.New(time.Unix(1700000000, 0))
	src := &countingSource{}
	f := newFakeAPI(t, always(200, fail(70050, "locked")))
	c := newTestClient(t, f.srv.URL, func(o *Options) { o.Sig = src; o.Now = clk.Now })
	c.sleep = func(ctx context.Context, d time.Duration) error { clk.Add(d); return ctx.Err() }
	_, err := c.ListMembers(context.Background(), "g")
	if KindOf(err) != KindFatalConfig || !strings.Contains(err.Error(), "70050") {
		t.Fatalf("err = %v (kind %v), want a fatal 70050", err, KindOf(err))
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("%d requests, want 2 (one before and one after the cool-down)", n)
	}
	if src.invalidated == 0 {
		t.Error("the usersig was not renewed for the retry")
	}

	// A success in between starts over: the next 70050 is a new lockout.
	f2 := newFakeAPI(t, sequence(fail(70050, "locked"), ok("0"), fail(70050, "locked"), ok("0")))
	c2 := newTestClient(t, f2.srv.URL, func(o *Options) { o.Sig = &countingSource{}; o.Now = clk.Now })
	c2.sleep = func(ctx context.Context, d time.Duration) error { clk.Add(d); return ctx.Err() }
	for i := range 2 {
		if _, err := c2.ListMembers(context.Background(), "g"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

// TestGroupExistsAnswers: get_group_info's per-group ErrorCode decides;
// an answer it cannot read, or another code, is an error (the caller then
// trusts get_members).
func TestGroupExistsAnswers(t *testing.T) {
	for name, tc := range map[string]struct {
		body    string
		want    bool
		wantErr bool
	}{
		"live":             {`{"ActionStatus":"OK","ErrorCode":0,"GroupInfo":[{"GroupId":"g","ErrorCode":0,"Type":"AVChatRoom"}]}`, true, false},
		"dismissed":        {`{"ActionStatus":"OK","ErrorCode":0,"GroupInfo":[{"GroupId":"g","ErrorCode":10010,"ErrorInfo":"dismissed"}]}`, false, false},
		"unknown":          {`{"ActionStatus":"OK","ErrorCode":0,"GroupInfo":[{"GroupId":"g","ErrorCode":10015}]}`, false, false},
		"call-level 10015": {fail(10015, "no group"), false, false},
		"no permission":    {`{"ActionStatus":"OK","ErrorCode":0,"GroupInfo":[{"GroupId":"g","ErrorCode":10007}]}`, false, true},
		"no GroupInfo":     {`{"ActionStatus":"OK","ErrorCode":0}`, false, true},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeAPI(t, always(200, tc.body))
			c := newTestClient(t, f.srv.URL, func(o *Options) { o.Backoff = retries(0) })
			got, err := c.GroupExists(context.Background(), "g")
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Fatalf("GroupExists = %v, %v; want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
			if r := f.requests()[0]; r.Path != "/v4/group_open_http_svc/get_group_info" || !strings.Contains(r.Body, `"GroupIdList":["g"]`) {
				t.Errorf("request %s %s", r.Path, r.Body)
			}
		})
	}
}

// TestGroupExistsDoesNotRetry: a server without get_group_info (404), or
// one failing, gets one request: the answer is only a second opinion.
func TestGroupExistsDoesNotRetry(t *testing.T) {
	f := newFakeAPI(t, always(404, "not found"))
	c := newTestClient(t, f.srv.URL, func(o *Options) { o.Backoff = retries(5) })
	if _, err := c.GroupExists(context.Background(), "g"); err == nil {
		t.Fatal("GroupExists against a 404 succeeded")
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

// TestNotServedIsNotRetried: HTTP 404 (the endpoint does not serve the
// command) is a bad request, not retried in a loop.
func TestNotServedIsNotRetried(t *testing.T) {
	f := newFakeAPI(t, always(404, "not found"))
	c := newTestClient(t, f.srv.URL, func(o *Options) { o.Backoff = retries(5) })
	_, err := c.OnlineMemberNum(context.Background(), "g")
	if KindOf(err) != KindBadRequest || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %v (kind %v), want a bad request naming 404", err, KindOf(err))
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

// TestMemberListAbsentNullEmpty: [] and null are empty pages (a filter may
// empty a page; a Go server encodes an empty slice as null); an absent
// MemberList is a bad response, also on the last page.
func TestMemberListAbsentNullEmpty(t *testing.T) {
	for name, tc := range map[string]struct {
		pages []string
		ok    bool
	}{
		"empty page then more": {[]string{`{"ActionStatus":"OK","ErrorCode":0,"MemberList":[],"NextTimestamp":5}`, ok("0", member("a", 1))}, true},
		"null page then more":  {[]string{`{"ActionStatus":"OK","ErrorCode":0,"MemberList":null,"NextTimestamp":5}`, ok("0", member("a", 1))}, true},
		"absent, last page":    {[]string{`{"ActionStatus":"OK","ErrorCode":0,"NextTimestamp":0}`}, false},
		"absent, more to come": {[]string{`{"ActionStatus":"OK","ErrorCode":0,"NextTimestamp":5}`, ok("0", member("a", 1))}, false},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeAPI(t, sequence(tc.pages...))
			c := newTestClient(t, f.srv.URL, func(o *Options) { o.Backoff = retries(0) })
			_, err := c.ListMembers(context.Background(), "g")
			if (err == nil) != tc.ok {
				t.Fatalf("ListMembers error = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
