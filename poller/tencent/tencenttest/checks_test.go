package tencenttest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
)

func TestRequestChecks(t *testing.T) {
	s, _ := start(t, tencenttest.Options{Admins: []string{"administrator", "ops"}})
	s.AddGroup("g1", members(3)...)
	s.Dismiss("gone")
	opsSig, err := usersig.Generate(s.SDKAppID(), "nobody", s.Key(), 3600, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := `{"GroupId":"g1","Timestamp":0}`
	tests := []struct {
		name   string
		method string
		path   string
		edit   func(q url.Values)
		body   string
		want   int
	}{
		{name: "ok", body: good, want: 0},
		{name: "ok with spaces in body", body: ` { "GroupId" : "g1" , "Timestamp" : 0 } `, want: 0},
		{name: "GET", method: http.MethodGet, body: good, want: 60002},
		{name: "PUT", method: http.MethodPut, body: good, want: 60002},
		{name: "unknown command", path: "/v4/group_open_avchatroom_http_svc/get_member", body: good, want: 10003},
		{name: "get_members under the wrong service", path: "/v4/group_open_http_svc/get_members", body: good, want: 10003},
		{name: "unknown service", path: "/v4/nope/get_members", body: good, want: 60009},
		{name: "root", path: "/", body: good, want: 60009},
		{name: "sdkappid missing", edit: func(q url.Values) { q.Del("sdkappid") }, body: good, want: 60012},
		{name: "sdkappid wrong case", edit: func(q url.Values) { q["SDKAppID"] = q["sdkappid"]; q.Del("sdkappid") }, body: good, want: 60012},
		{name: "sdkappid not a number", edit: func(q url.Values) { q.Set("sdkappid", "14000x") }, body: good, want: 60006},
		{name: "sdkappid of another app", edit: func(q url.Values) { q.Set("sdkappid", "1400000001") }, body: good, want: 70020},
		{name: "contenttype missing", edit: func(q url.Values) { q.Del("contenttype") }, body: good, want: 60002},
		{name: "contenttype JSON", edit: func(q url.Values) { q.Set("contenttype", "JSON") }, body: good, want: 60002},
		{name: "random missing", edit: func(q url.Values) { q.Del("random") }, body: good, want: 60002},
		{name: "random zero", edit: func(q url.Values) { q.Set("random", "0") }, body: good, want: 0},
		{name: "random above uint32", edit: func(q url.Values) { q.Set("random", "4294967296") }, body: good, want: 60002},
		{name: "random negative", edit: func(q url.Values) { q.Set("random", "-1") }, body: good, want: 60002},
		{name: "random not a number", edit: func(q url.Values) { q.Set("random", "abc") }, body: good, want: 60002},
		{name: "identifier not an admin", edit: func(q url.Values) { q.Set("identifier", "nobody"); q.Set("usersig", opsSig) }, body: good, want: 60010},
		{name: "body empty", body: "", want: 60003},
		{name: "body not JSON", body: "GroupId=g1", want: 60003},
		{name: "body truncated", body: `{"GroupId":"g1",`, want: 60003},
		{name: "body an array", body: `[]`, want: 60003},
		{name: "body null", body: `null`, want: 60003},
		{name: "GroupId missing", body: `{"Timestamp":0}`, want: 10004},
		{name: "GroupId a number", body: `{"GroupId":1,"Timestamp":0}`, want: 10004},
		{name: "GroupId empty", body: `{"GroupId":"","Timestamp":0}`, want: 10004},
		{name: "GroupId wrong case", body: `{"groupid":"g1","Timestamp":0}`, want: 10004},
		{name: "Timestamp missing", body: `{"GroupId":"g1"}`, want: 10004},
		{name: "Timestamp a string", body: `{"GroupId":"g1","Timestamp":"0"}`, want: 10004},
		{name: "Timestamp negative", body: `{"GroupId":"g1","Timestamp":-1}`, want: 10004},
		{name: "Timestamp fractional", body: `{"GroupId":"g1","Timestamp":1.5}`, want: 10004},
		{name: "Timestamp above uint64", body: `{"GroupId":"g1","Timestamp":18446744073709551616}`, want: 10004},
		{name: "Timestamp never issued", body: `{"GroupId":"g1","Timestamp":8589934592}`, want: 10004},
		{name: "Timestamp max uint64 never issued", body: `{"GroupId":"g1","Timestamp":18446744073709551615}`, want: 10004},
		{name: "Mark a string", body: `{"GroupId":"g1","Timestamp":0,"Mark":"1000"}`, want: 10004},
		{name: "Mark fractional", body: `{"GroupId":"g1","Timestamp":0,"Mark":1.5}`, want: 10004},
		{name: "unknown group", body: `{"GroupId":"nope","Timestamp":0}`, want: 10015},
		{name: "dismissed group", body: `{"GroupId":"gone","Timestamp":0}`, want: 10010},
		{name: "group info without GroupIdList", path: tencenttest.PathGetGroupInfo, body: `{"GroupId":"g1"}`, want: 10004},
		{name: "group info with 51 ids", path: tencenttest.PathGetGroupInfo, body: `{"GroupIdList":[` + strings.Repeat(`"g1",`, 50) + `"g1"]}`, want: 10004},
		{name: "group info", path: tencenttest.PathGetGroupInfo, body: `{"GroupIdList":["g1","gone","nope"]}`, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := query(t, s)
			if tt.edit != nil {
				tt.edit(q)
			}
			method, path := tt.method, tt.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = tencenttest.PathGetMembers
			}
			status, b := post(t, s, method, path, q, tt.body)
			r := decode(t, status, b)
			if r.code() != tt.want {
				t.Fatalf("ErrorCode = %d (%s), want %d", r.code(), *r.ErrorInfo, tt.want)
			}
			if tt.want == 0 && tt.path == tencenttest.PathGetGroupInfo {
				if !strings.Contains(string(b), `"GroupId":"g1","ErrorCode":0`) || !strings.Contains(string(b), `"GroupId":"gone","ErrorCode":10010`) ||
					!strings.Contains(string(b), `"GroupId":"nope","ErrorCode":10015`) {
					t.Fatalf("group info answer %s", b)
				}
				return
			}
			if tt.want == 0 && len(r.MemberList) != 3 {
				t.Fatalf("got %d members, want 3", len(r.MemberList))
			}
		})
	}
}

func TestUserSigChecks(t *testing.T) {
	s, clk := start(t, tencenttest.Options{Admins: []string{"administrator", "ops"}})
	s.AddGroup("g1", members(1)...)
	gen := func(t *testing.T, app uint64, id, key string, expire int64, at time.Time) string {
		t.Helper()
		sig, err := usersig.Generate(app, id, key, expire, at, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	app := s.SDKAppID()
	tests := []struct {
		name       string
		identifier string
		sig        func(t *testing.T) string
		want       int
	}{
		{"valid", "administrator", func(t *testing.T) string { return gen(t, app, "administrator", s.Key(), 3600, t0) }, 0},
		{"valid with userbuf", "administrator", func(t *testing.T) string {
			sig, err := usersig.Generate(app, "administrator", s.Key(), 3600, t0, []byte("buf"))
			if err != nil {
				t.Fatal(err)
			}
			return sig
		}, 0},
		{"valid second admin", "ops", func(t *testing.T) string { return gen(t, app, "ops", s.Key(), 3600, t0) }, 0},
		{"valid at the last second", "administrator", func(t *testing.T) string { return gen(t, app, "administrator", s.Key(), 60, t0.Add(-60*time.Second)) }, 0},
		{"expired", "administrator", func(t *testing.T) string { return gen(t, app, "administrator", s.Key(), 60, t0.Add(-61*time.Second)) }, 70001},
		{"wrong key", "administrator", func(t *testing.T) string { return gen(t, app, "administrator", "another-key", 3600, t0) }, 70009},
		{"wrong identifier", "ops", func(t *testing.T) string { return gen(t, app, "administrator", s.Key(), 3600, t0) }, 70013},
		{"wrong sdkappid", "administrator", func(t *testing.T) string { return gen(t, app+1, "administrator", s.Key(), 3600, t0) }, 70014},
		{"garbage", "administrator", func(*testing.T) string { return "not-a-usersig" }, 70003},
		{"truncated", "administrator", func(t *testing.T) string {
			sig := gen(t, app, "administrator", s.Key(), 3600, t0)
			return sig[:len(sig)/2]
		}, 70003},
		{"missing", "administrator", func(*testing.T) string { return "" }, 70003},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := query(t, s)
			q.Set("identifier", tt.identifier)
			q.Set("usersig", tt.sig(t))
			r := call(t, s, tencenttest.PathGetMembers, q, `{"GroupId":"g1","Timestamp":0}`)
			if r.code() != tt.want {
				t.Fatalf("ErrorCode = %d (%s), want %d", r.code(), *r.ErrorInfo, tt.want)
			}
		})
	}

	t.Run("expiry follows the server clock", func(t *testing.T) {
		q := query(t, s)
		q.Set("usersig", gen(t, app, "administrator", s.Key(), 100, clk.Now()))
		body := `{"GroupId":"g1","Timestamp":0}`
		if r := call(t, s, tencenttest.PathGetMembers, q, body); r.code() != 0 {
			t.Fatalf("fresh: ErrorCode %d", r.code())
		}
		clk.Add(101 * time.Second)
		if r := call(t, s, tencenttest.PathGetMembers, q, body); r.code() != 70001 {
			t.Fatalf("after expiry: ErrorCode %d, want 70001", r.code())
		}
	})
}

func TestOtherCommands(t *testing.T) {
	s, _ := start(t, tencenttest.Options{MemberCap: 30})
	s.AddGroup("g1", members(40)...)
	s.Dismiss("gone")
	tests := []struct {
		name, path, body string
		want             int
		check            func(t *testing.T, r reply)
	}{
		{"online num counts past the cap", tencenttest.PathGetOnlineMemberNum, `{"GroupId":"g1"}`, 0, func(t *testing.T, r reply) {
			if r.OnlineMemberNum == nil || *r.OnlineMemberNum != 40 {
				t.Fatalf("OnlineMemberNum = %v, want 40", r.OnlineMemberNum)
			}
		}},
		{"online num unknown group", tencenttest.PathGetOnlineMemberNum, `{"GroupId":"nope"}`, 10015, nil},
		{"online num dismissed", tencenttest.PathGetOnlineMemberNum, `{"GroupId":"gone"}`, 10010, nil},
		{"online num no GroupId", tencenttest.PathGetOnlineMemberNum, `{}`, 10004, nil},
		{"check finds members past the cap", tencenttest.PathCheckMembers,
			`{"GroupId":"g1","Member_Account":["user00039","stranger","user00000","user00039"]}`, 0, func(t *testing.T, r reply) {
				if got, want := r.Member_Account, []string{"user00039", "user00000"}; !equal(got, want) {
					t.Fatalf("Member_Account = %v, want %v", got, want)
				}
			}},
		{"check none present", tencenttest.PathCheckMembers, `{"GroupId":"g1","Member_Account":["stranger"]}`, 0, func(t *testing.T, r reply) {
			if r.Member_Account == nil || len(r.Member_Account) != 0 {
				t.Fatalf("Member_Account = %#v, want an empty array", r.Member_Account)
			}
		}},
		{"check no accounts", tencenttest.PathCheckMembers, `{"GroupId":"g1","Member_Account":[]}`, 10004, nil},
		{"check accounts not strings", tencenttest.PathCheckMembers, `{"GroupId":"g1","Member_Account":[1]}`, 10004, nil},
		{"check dismissed", tencenttest.PathCheckMembers, `{"GroupId":"gone","Member_Account":["a"]}`, 10010, nil},
		{"check unknown group", tencenttest.PathCheckMembers, `{"GroupId":"nope","Member_Account":["a"]}`, 10015, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, s, tt.path, query(t, s), tt.body)
			if r.code() != tt.want {
				t.Fatalf("ErrorCode = %d (%s), want %d", r.code(), *r.ErrorInfo, tt.want)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	s, clk := start(t, tencenttest.Options{RateLimit: 5})
	s.AddGroup("g1", members(2)...)
	for i := range 5 {
		if r := getMembers(t, s, "g1", 0); r.code() != 0 {
			t.Fatalf("call %d: ErrorCode %d", i+1, r.code())
		}
	}
	// The limit is app-wide: another command shares the budget.
	r := call(t, s, tencenttest.PathGetOnlineMemberNum, query(t, s), `{"GroupId":"g1"}`)
	if r.code() != 60007 {
		t.Fatalf("call 6: ErrorCode %d, want 60007", r.code())
	}
	clk.Add(time.Second)
	if r := getMembers(t, s, "g1", 0); r.code() != 0 {
		t.Fatalf("after a second: ErrorCode %d", r.code())
	}
	if got := s.Calls("get_members"); got != 6 {
		t.Fatalf("Calls(get_members) = %d, want 6", got)
	}
}

func TestUnlimitedByDefault(t *testing.T) {
	s, _ := start(t, tencenttest.Options{})
	s.AddGroup("g1")
	for i := range 300 {
		if r := getMembers(t, s, "g1", 0); r.code() != 0 {
			t.Fatalf("call %d: ErrorCode %d", i+1, r.code())
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRateLimitSlidingWindow: no one-second window holds more calls than
// the limit, also at the start (no initial burst on top of the rate).
func TestRateLimitSlidingWindow(t *testing.T) {
	s, clk := start(t, tencenttest.Options{RateLimit: 4})
	s.AddGroup("g1", members(1)...)
	accepted := 0
	for range 20 { // 20 calls over 2s, one every 100ms
		if getMembers(t, s, "g1", 0).code() == 0 {
			accepted++
		}
		clk.Add(100 * time.Millisecond)
	}
	if accepted != 8 {
		t.Fatalf("%d calls accepted in 2s at a limit of 4/s, want 8", accepted)
	}
}
