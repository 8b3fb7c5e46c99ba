package tencenttest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/schematest/testclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the fake clock's start; far from 2^31 so nothing works by accident.
var t0 = time.Unix(1_700_000_000, 0)

func newClock() *testclock.Clock { return testclock.New(t0) }

// start returns a started server with a fake clock and a test logger.
func start(t *testing.T, o tencenttest.Options) (*tencenttest.Server, *testclock.Clock) {
	t.Helper()
	c := newClock()
	if o.Now == nil {
		o.Now = c.Now
	}
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t)
	}
	s := tencenttest.NewServer(o)
	t.Cleanup(s.Close)
	return s, c
}

// query returns a valid query for identifier "administrator".
func query(t *testing.T, s *tencenttest.Server) url.Values {
	t.Helper()
	sig, err := s.UserSig(tencenttest.DefaultAdmin)
	if err != nil {
		t.Fatal(err)
	}
	return url.Values{
		"sdkappid":    {strconv.FormatUint(s.SDKAppID(), 10)},
		"identifier":  {tencenttest.DefaultAdmin},
		"usersig":     {sig},
		"random":      {"4294967295"},
		"contenttype": {"json"},
	}
}

// reply is every field any of the three commands answers; pointers tell
// "absent" from zero.
type reply struct {
	ActionStatus    *string
	ErrorCode       *int
	ErrorInfo       *string
	MemberList      []wireMember
	NextTimestamp   *uint64
	OnlineMemberNum *int
	Member_Account  []string //nolint:revive // the API's field name
}

type wireMember struct {
	JoinTime       int64
	Member_Account *string //nolint:revive // the API's field name
	NickName       string
	Avatar         string
}

func (r reply) code() int { return *r.ErrorCode }

// post sends a raw call and returns the HTTP status and body.
func post(t *testing.T, s *tencenttest.Server, method, path string, q url.Values, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path+"?"+q.Encode(), bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// call sends a call and decodes the answer, checking the envelope every
// answer must have.
func call(t *testing.T, s *tencenttest.Server, path string, q url.Values, body string) reply {
	t.Helper()
	status, b := post(t, s, http.MethodPost, path, q, body)
	return decode(t, status, b)
}

func decode(t *testing.T, status int, b []byte) reply {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("HTTP %d: %s", status, b)
	}
	var r reply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, b)
	}
	if r.ActionStatus == nil || r.ErrorCode == nil || r.ErrorInfo == nil {
		t.Fatalf("answer lacks ActionStatus, ErrorCode or ErrorInfo: %s", b)
	}
	want := "OK"
	if *r.ErrorCode != 0 {
		want = "FAIL"
	}
	if *r.ActionStatus != want {
		t.Fatalf("ActionStatus %q with ErrorCode %d", *r.ActionStatus, *r.ErrorCode)
	}
	return r
}

func getMembers(t *testing.T, s *tencenttest.Server, group string, ts uint64) reply {
	t.Helper()
	return call(t, s, tencenttest.PathGetMembers, query(t, s), fmt.Sprintf(`{"GroupId":%q,"Timestamp":%d}`, group, ts))
}

// listAll pages through group and returns the members in answer order and
// the cursors seen.
func listAll(t *testing.T, s *tencenttest.Server, group string) ([]wireMember, []uint64) {
	t.Helper()
	var all []wireMember
	var cursors []uint64
	var ts uint64
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("more than 100 pages")
		}
		r := getMembers(t, s, group, ts)
		if r.code() != 0 {
			t.Fatalf("page %d: ErrorCode %d %s", i+1, r.code(), *r.ErrorInfo)
		}
		if r.NextTimestamp == nil {
			t.Fatal("answer lacks NextTimestamp")
		}
		all = append(all, r.MemberList...)
		if *r.NextTimestamp == 0 {
			return all, cursors
		}
		ts = *r.NextTimestamp
		cursors = append(cursors, ts)
	}
}

// members returns n members; member i joined at t0 - i seconds, so
// user00000 is the newest.
func members(n int) []schema.Member {
	ms := make([]schema.Member, n)
	for i := range ms {
		ms[i] = schema.Member{
			Account:  fmt.Sprintf("user%05d", i),
			NickName: fmt.Sprintf("User %d", i),
			Avatar:   fmt.Sprintf("https://a.example/%d.png", i),
			JoinTime: t0.Unix() - int64(i),
		}
	}
	return ms
}

func accounts(ms []wireMember) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		if m.Member_Account != nil {
			out[i] = *m.Member_Account
		}
	}
	return out
}

// newPlainServer serves h on a loopback listener and returns its URL.
func newPlainServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return "http://" + ln.Addr().String()
}
