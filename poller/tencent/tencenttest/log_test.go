package tencenttest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
)

func TestUserSigNeverLogged(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	s, _ := start(t, tencenttest.Options{Logger: zap.New(core)})
	s.AddGroup("g1", members(3)...)
	s.InjectFault(tencenttest.Fault{Kind: tencenttest.FaultErrorCode, Code: 70009, Times: 1})
	q := query(t, s)
	sig := q.Get("usersig")
	getMembers(t, s, "g1", 0)                                                   // fault
	call(t, s, tencenttest.PathGetMembers, q, `{"GroupId":"g1","Timestamp":0}`) // ok
	bad := query(t, s)
	bad.Set("usersig", sig[:len(sig)-8]) // malformed
	_, body := post(t, s, http.MethodPost, tencenttest.PathGetMembers, bad, `{"GroupId":"g1","Timestamp":0}`)
	if strings.Contains(string(body), sig[:40]) {
		t.Fatalf("answer quotes the usersig: %s", body)
	}

	if logs.Len() != 3 {
		t.Fatalf("%d log entries, want one per request", logs.Len())
	}
	for _, e := range logs.All() {
		line := fmt.Sprintf("%s %v", e.Message, e.ContextMap())
		if strings.Contains(line, sig[:40]) || strings.Contains(line, s.Key()) {
			t.Fatalf("log entry leaks a secret: %s", line)
		}
		if !strings.Contains(line, "usersig=REDACTED") {
			t.Fatalf("log entry lacks the redacted query: %s", line)
		}
	}

	// The request log keeps the raw query for assertions, and a redacted form.
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[1].Query.Get("usersig") != sig {
		t.Fatalf("request log lost the raw usersig: %+v", reqs)
	}
	if rq := reqs[1].RedactedQuery(); strings.Contains(rq, sig[:40]) || !strings.Contains(rq, "usersig=REDACTED") || !strings.Contains(rq, "identifier=administrator") {
		t.Fatalf("RedactedQuery = %s", rq)
	}
	if reqs[0].Fault != tencenttest.FaultErrorCode || reqs[0].ErrorCode != 70009 || reqs[2].ErrorCode != 70003 {
		t.Fatalf("request log = %+v", reqs)
	}
	// Requests returns a copy.
	reqs[1].Query.Set("usersig", "changed")
	if s.Requests()[1].Query.Get("usersig") != sig {
		t.Fatal("Requests shares its maps with the server")
	}
}

func TestRequestLogIsBounded(t *testing.T) {
	s, _ := start(t, tencenttest.Options{MaxRequests: 3})
	s.AddGroup("g1")
	for i := range 10 {
		call(t, s, tencenttest.PathGetOnlineMemberNum, query(t, s), fmt.Sprintf(`{"GroupId":"g1","n":%d}`, i))
		reqs := s.Requests()
		if want := min(i+1, 3); len(reqs) != want {
			t.Fatalf("after %d calls Requests has %d, want %d", i+1, len(reqs), want)
		}
		if last := string(reqs[len(reqs)-1].Body); !strings.Contains(last, fmt.Sprintf(`"n":%d}`, i)) {
			t.Fatalf("after %d calls the last request is %s", i+1, last)
		}
		if first := string(reqs[0].Body); !strings.Contains(first, fmt.Sprintf(`"n":%d}`, max(0, i-2))) {
			t.Fatalf("after %d calls the first request is %s", i+1, first)
		}
	}
	if n := s.Calls("get_online_member_num"); n != 10 {
		t.Fatalf("Calls = %d, want 10", n)
	}
}
