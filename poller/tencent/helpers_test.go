package tencent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testAppID = 1400000000
	testAdmin = "administrator"
	// testSig stands in for a real usersig; redaction tests look for it.
	testSig = "eAEArwBQ-3siVExTLnZlciI6IjIuMCIsIlRMUy5pZGVudGlmaWVy*SECRET*_"
)

// recorded is one request the scripted server received.
type recorded struct {
	Method, Path, ContentType string
	Query                     url.Values
	RawQuery                  string
	Body                      string
}

// script answers the n-th request (0-based) with a status and a body.
type script func(n int, r recorded) (int, string)

type fakeAPI struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []recorded
}

func newFakeAPI(t testing.TB, s script) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec := recorded{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"),
			Query: r.URL.Query(), RawQuery: r.URL.RawQuery, Body: string(b)}
		f.mu.Lock()
		n := len(f.got)
		f.got = append(f.got, rec)
		f.mu.Unlock()
		status, body := s(n, rec)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.got...)
}

// ok builds a successful get_members page.
func ok(next string, members ...string) string {
	return fmt.Sprintf(`{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","MemberList":[%s],"NextTimestamp":%s}`,
		strings.Join(members, ","), next)
}

func member(account string, joinTime int64) string {
	return fmt.Sprintf(`{"Member_Account":%q,"NickName":"nick-%s","Avatar":"https://a/%s.png","JoinTime":%d}`,
		account, account, account, joinTime)
}

func fail(code int, info string) string {
	return fmt.Sprintf(`{"ActionStatus":"FAIL","ErrorCode":%d,"ErrorInfo":%q}`, code, info)
}

// always answers every request the same way.
func always(status int, body string) script {
	return func(int, recorded) (int, string) { return status, body }
}

// sequence answers the n-th request with bodies[n] (200), repeating the last.
func sequence(bodies ...string) script {
	return func(n int, _ recorded) (int, string) {
		if n >= len(bodies) {
			n = len(bodies) - 1
		}
		return http.StatusOK, bodies[n]
	}
}

// sleeps records the client's rate-limit waits instead of sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// retries allows n retries without waiting.
func retries(n uint64) func() backoff.BackOff {
	return func() backoff.BackOff { return backoff.WithMaxRetries(&backoff.ZeroBackOff{}, n) }
}

type testClient struct {
	*Client
	sleeps *sleeps
	logs   *observer.ObservedLogs
}

// newTestClient returns a client of f with a static usersig, a fast rate
// limit, two retries without backoff, a recorded sleep and observed logs;
// mod adjusts the options first.
func newTestClient(t testing.TB, endpoint string, mod func(*Options)) testClient {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	o := Options{
		SDKAppID: testAppID, Identifier: testAdmin, Sig: usersig.Static(testSig),
		Endpoint: endpoint, RateLimit: 1e6, Backoff: retries(2), Logger: zap.New(core),
	}
	if mod != nil {
		mod(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	s := &sleeps{}
	c.sleep = s.sleep
	return testClient{c, s, logs}
}

// countingSource hands out "sig-1", "sig-2", … and counts Invalidate.
type countingSource struct {
	mu          sync.Mutex
	n           int
	invalidated int
	stale       bool
}

func (s *countingSource) UserSig() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 || s.stale {
		s.n++
		s.stale = false
	}
	return fmt.Sprintf("sig-%d", s.n), nil
}

func (s *countingSource) Invalidate() {
	s.mu.Lock()
	s.invalidated++
	s.stale = true
	s.mu.Unlock()
}

// bodyJSON decodes a request body keeping numbers exact.
func bodyJSON(t testing.TB, body string) map[string]json.Number {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("request body %q: %v", body, err)
	}
	out := map[string]json.Number{}
	for k, v := range m {
		switch v := v.(type) {
		case json.Number:
			out[k] = v
		case string:
			out[k] = json.Number(v)
		}
	}
	return out
}
