package tencenttest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
)

func TestFaultKinds(t *testing.T) {
	body := `{"GroupId":"g1","Timestamp":0}`
	tests := []struct {
		name  string
		fault tencenttest.Fault
		check func(t *testing.T, status int, b []byte)
	}{
		{"502", tencenttest.Fault{Kind: tencenttest.FaultHTTP502}, func(t *testing.T, status int, b []byte) {
			if status != http.StatusBadGateway || !strings.Contains(string(b), "<h1>502 Bad Gateway</h1>") {
				t.Fatalf("got %d %s", status, b)
			}
		}},
		{"504 via Code", tencenttest.Fault{Kind: tencenttest.FaultHTTP502, Code: http.StatusGatewayTimeout}, func(t *testing.T, status int, _ []byte) {
			if status != http.StatusGatewayTimeout {
				t.Fatalf("status %d", status)
			}
		}},
		{"error code 10002", tencenttest.Fault{Kind: tencenttest.FaultErrorCode, Code: 10002}, wantCode(10002)},
		{"error code 70001", tencenttest.Fault{Kind: tencenttest.FaultErrorCode, Code: 70001}, wantCode(70001)},
		{"error code 60007", tencenttest.Fault{Kind: tencenttest.FaultErrorCode, Code: 60007}, wantCode(60007)},
		{"error code defaults to 10002", tencenttest.Fault{Kind: tencenttest.FaultErrorCode}, wantCode(10002)},
		{"invalid JSON", tencenttest.Fault{Kind: tencenttest.FaultInvalidJSON}, func(t *testing.T, status int, b []byte) {
			if status != http.StatusOK || len(b) == 0 || json.Valid(b) {
				t.Fatalf("want a truncated JSON body with HTTP 200, got %d %q", status, b)
			}
		}},
		{"missing account", tencenttest.Fault{Kind: tencenttest.FaultMissingAccount}, func(t *testing.T, status int, b []byte) {
			r := decode(t, status, b)
			if len(r.MemberList) != 3 || r.MemberList[0].Member_Account != nil || r.MemberList[1].Member_Account == nil {
				t.Fatalf("want only the first member without Member_Account: %s", b)
			}
		}},
		{"slow then normal", tencenttest.Fault{Kind: tencenttest.FaultSlow, Delay: 10 * time.Millisecond}, func(t *testing.T, status int, b []byte) {
			if r := decode(t, status, b); r.code() != 0 || len(r.MemberList) != 3 {
				t.Fatalf("got %s", b)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := start(t, tencenttest.Options{})
			s.AddGroup("g1", members(3)...)
			s.InjectFault(tt.fault)
			status, b := post(t, s, http.MethodPost, tencenttest.PathGetMembers, query(t, s), body)
			tt.check(t, status, b)
			reqs := s.Requests()
			if len(reqs) != 1 || reqs[0].Fault != tt.fault.Kind || reqs[0].HTTPStatus != status {
				t.Fatalf("request log = %+v", reqs)
			}
			// Times 0 is forever.
			status2, b2 := post(t, s, http.MethodPost, tencenttest.PathGetMembers, query(t, s), body)
			tt.check(t, status2, b2)
		})
	}
}

func wantCode(code int) func(t *testing.T, status int, b []byte) {
	return func(t *testing.T, status int, b []byte) {
		t.Helper()
		if r := decode(t, status, b); r.code() != code {
			t.Fatalf("ErrorCode %d, want %d", r.code(), code)
		}
	}
}

func TestFaultHangup(t *testing.T) {
	s, _ := start(t, tencenttest.Options{})
	s.AddGroup("g1", members(3)...)
	s.InjectFault(tencenttest.Fault{Kind: tencenttest.FaultHangup, Times: 1})
	req, err := http.NewRequest(http.MethodPost, s.URL+tencenttest.PathGetMembers+"?"+query(t, s).Encode(), strings.NewReader(`{"GroupId":"g1","Timestamp":0}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := s.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("got HTTP %d, want a transport error", resp.StatusCode)
	}
	if r := getMembers(t, s, "g1", 0); r.code() != 0 {
		t.Fatalf("after the hang-up: ErrorCode %d", r.code())
	}
}

func TestFaultSlowHonoursClientCancel(t *testing.T) {
	s, _ := start(t, tencenttest.Options{})
	s.AddGroup("g1", members(3)...)
	s.InjectFault(tencenttest.Fault{Kind: tencenttest.FaultSlow, Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+tencenttest.PathGetMembers+"?"+query(t, s).Encode(), strings.NewReader(`{"GroupId":"g1","Timestamp":0}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := s.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("want the client to give up")
	}
	// Close waits for handlers: with an hour's delay it returns only if the
	// handler noticed the client left.
	s.Close()
	if reqs := s.Requests(); len(reqs) != 1 || reqs[0].Fault != tencenttest.FaultSlow {
		t.Fatalf("request log = %+v", reqs)
	}
}

func TestFaultMatching(t *testing.T) {
	s, _ := start(t, tencenttest.Options{PageSize: 2})
	s.AddGroup("g1", members(5)...)
	s.AddGroup("g2", members(5)...)

	t.Run("times", func(t *testing.T) {
		defer s.ClearFaults()
		s.InjectFault(tencenttest.Fault{Kind: tencenttest.FaultErrorCode, Code: 10002, Times: 2})
		for i, want := range []int{10002, 10002, 0, 0} {
			if r := getMembers(t, s, "g1", 0); r.code() != want {
				t.Fatalf("call %d: ErrorCode %d, want %d", i+1, r.code(), want)
			}
		}
	})
	t.Run("group", func(t *testing.T) {
		defer s.ClearFaults()
		s.InjectFault(tencenttest.Fault{Group: "g2", Kind: tencenttest.FaultErrorCode, Code: 10002})
		if r := getMembers(t, s, "g1", 0); r.code() != 0 {
			t.Fatalf("g1: ErrorCode %d", r.code())
		}
		if r := getMembers(t, s, "g2", 0); r.code() != 10002 {
			t.Fatalf("g2: ErrorCode %d", r.code())
		}
	})
	t.Run("page, then a retry of the same cursor succeeds", func(t *testing.T) {
		defer s.ClearFaults()
		s.InjectFault(tencenttest.Fault{Page: 2, Kind: tencenttest.FaultHTTP502, Times: 1})
		r := getMembers(t, s, "g1", 0)
		if r.code() != 0 {
			t.Fatalf("page 1: ErrorCode %d", r.code())
		}
		status, _ := post(t, s, http.MethodPost, tencenttest.PathGetMembers, query(t, s),
			`{"GroupId":"g1","Timestamp":`+jsonUint(*r.NextTimestamp)+`}`)
		if status != http.StatusBadGateway {
			t.Fatalf("page 2: HTTP %d, want 502", status)
		}
		r2 := getMembers(t, s, "g1", *r.NextTimestamp)
		if r2.code() != 0 || !equal(accounts(r2.MemberList), []string{"user00002", "user00003"}) {
			t.Fatalf("page 2 retry: ErrorCode %d, %v", r2.code(), accounts(r2.MemberList))
		}
	})
	t.Run("page 3 only", func(t *testing.T) {
		defer s.ClearFaults()
		s.InjectFault(tencenttest.Fault{Page: 3, Kind: tencenttest.FaultErrorCode, Code: 10002})
		r1 := getMembers(t, s, "g1", 0)
		r2 := getMembers(t, s, "g1", *r1.NextTimestamp)
		if r2.code() != 0 {
			t.Fatalf("page 2: ErrorCode %d", r2.code())
		}
		if r3 := getMembers(t, s, "g1", *r2.NextTimestamp); r3.code() != 10002 {
			t.Fatalf("page 3: ErrorCode %d", r3.code())
		}
	})
	t.Run("command", func(t *testing.T) {
		defer s.ClearFaults()
		s.InjectFault(tencenttest.Fault{Command: "get_online_member_num", Kind: tencenttest.FaultErrorCode, Code: 10002})
		if r := getMembers(t, s, "g1", 0); r.code() != 0 {
			t.Fatalf("get_members: ErrorCode %d", r.code())
		}
		if r := call(t, s, tencenttest.PathGetOnlineMemberNum, query(t, s), `{"GroupId":"g1"}`); r.code() != 10002 {
			t.Fatalf("get_online_member_num: ErrorCode %d", r.code())
		}
	})
	t.Run("missing account only hits get_members", func(t *testing.T) {
		defer s.ClearFaults()
		s.InjectFault(tencenttest.Fault{Kind: tencenttest.FaultMissingAccount, Times: 1})
		if r := call(t, s, tencenttest.PathGetOnlineMemberNum, query(t, s), `{"GroupId":"g1"}`); r.code() != 0 || *r.OnlineMemberNum != 5 {
			t.Fatalf("get_online_member_num: %+v", r)
		}
		if r := getMembers(t, s, "g1", 0); r.MemberList[0].Member_Account != nil {
			t.Fatal("get_members kept every Member_Account")
		}
	})
	t.Run("first injected wins", func(t *testing.T) {
		defer s.ClearFaults()
		s.InjectFault(tencenttest.Fault{Kind: tencenttest.FaultErrorCode, Code: 10002, Times: 1})
		s.InjectFault(tencenttest.Fault{Kind: tencenttest.FaultErrorCode, Code: 70001, Times: 1})
		for i, want := range []int{10002, 70001, 0} {
			if r := getMembers(t, s, "g1", 0); r.code() != want {
				t.Fatalf("call %d: ErrorCode %d, want %d", i+1, r.code(), want)
			}
		}
	})
	t.Run("clear", func(t *testing.T) {
		s.InjectFault(tencenttest.Fault{Kind: tencenttest.FaultErrorCode, Code: 10002})
		s.ClearFaults()
		if r := getMembers(t, s, "g1", 0); r.code() != 0 {
			t.Fatalf("ErrorCode %d after ClearFaults", r.code())
		}
	})
	t.Run("auth is checked before faults", func(t *testing.T) {
		defer s.ClearFaults()
		s.InjectFault(tencenttest.Fault{Kind: tencenttest.FaultHTTP502, Times: 1})
		q := query(t, s)
		q.Set("usersig", "garbage")
		if r := call(t, s, tencenttest.PathGetMembers, q, `{"GroupId":"g1","Timestamp":0}`); r.code() != 70003 {
			t.Fatalf("ErrorCode %d, want 70003", r.code())
		}
		status, _ := post(t, s, http.MethodPost, tencenttest.PathGetMembers, query(t, s), `{"GroupId":"g1","Timestamp":0}`)
		if status != http.StatusBadGateway {
			t.Fatalf("the fault was used up by a rejected call: HTTP %d", status)
		}
	})
}

func TestFaultKindString(t *testing.T) {
	for k, want := range map[tencenttest.FaultKind]string{
		tencenttest.FaultNone: "none", tencenttest.FaultHTTP502: "http_502", tencenttest.FaultErrorCode: "error_code",
		tencenttest.FaultInvalidJSON: "invalid_json", tencenttest.FaultSlow: "slow",
		tencenttest.FaultMissingAccount: "missing_account", tencenttest.FaultHangup: "hangup", 99: "FaultKind(99)",
	} {
		if k.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(k), k.String(), want)
		}
	}
}

func jsonUint(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
