package tencenttest_test

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/schema"
)

func TestPaging(t *testing.T) {
	for _, pageSize := range []int{250, 500} {
		for _, n := range []int{0, 1, 249, 250, 251, 500, 501, 2500} {
			t.Run(fmt.Sprintf("page %d members %d", pageSize, n), func(t *testing.T) {
				s, _ := start(t, tencenttest.Options{PageSize: pageSize, MemberCap: 5000})
				s.AddGroup("g1", members(n)...)
				got, cursors := listAll(t, s, "g1")

				wantPages := max(1, (n+pageSize-1)/pageSize)
				if len(cursors)+1 != wantPages {
					t.Fatalf("%d pages, want %d", len(cursors)+1, wantPages)
				}
				for _, c := range cursors {
					if c < tencenttest.DefaultCursorBase {
						t.Fatalf("cursor %d below CursorBase", c)
					}
				}
				if s.Calls("get_members") != wantPages {
					t.Fatalf("Calls = %d, want %d", s.Calls("get_members"), wantPages)
				}
				// members(n) is already newest first, and every member comes
				// exactly once with its profile.
				want := members(n)
				if len(got) != len(want) {
					t.Fatalf("listed %d members, want %d", len(got), len(want))
				}
				for i, m := range got {
					w := want[i]
					if *m.Member_Account != w.Account || m.JoinTime != w.JoinTime || m.NickName != w.NickName || m.Avatar != w.Avatar {
						t.Fatalf("member %d = %+v (account %s), want %+v", i, m, *m.Member_Account, w)
					}
				}
			})
		}
	}
}

func TestRequestsRecordPages(t *testing.T) {
	s, _ := start(t, tencenttest.Options{PageSize: 10})
	s.AddGroup("g1", members(25)...)
	_, cursors := listAll(t, s, "g1")
	reqs := s.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.Command != "get_members" || r.GroupID != "g1" || r.Page != i+1 || r.HTTPStatus != http.StatusOK || r.ErrorCode != 0 {
			t.Fatalf("request %d = %+v", i, r)
		}
		if i > 0 && r.Timestamp != cursors[i-1] {
			t.Fatalf("request %d Timestamp = %d, want %d", i, r.Timestamp, cursors[i-1])
		}
	}
}

func TestMemberCap(t *testing.T) {
	for _, tc := range []struct{ pageSize, cap int }{{250, 1000}, {500, 1000}, {250, 30}, {500, 30}} {
		t.Run(fmt.Sprintf("page %d cap %d", tc.pageSize, tc.cap), func(t *testing.T) {
			opts := tencenttest.Options{PageSize: tc.pageSize}
			if tc.cap != tencenttest.DefaultMemberCap {
				opts.MemberCap = tc.cap
			}
			s, _ := start(t, opts)
			ms := members(2500)
			// Shuffle the insertion so the cap must sort, not keep order.
			slices.Reverse(ms)
			s.AddGroup("g1", ms...)
			got, _ := listAll(t, s, "g1")
			want := members(tc.cap) // the tc.cap latest joiners
			if len(got) != tc.cap {
				t.Fatalf("listed %d, want %d", len(got), tc.cap)
			}
			for i := range want {
				if *got[i].Member_Account != want[i].Account {
					t.Fatalf("member %d = %s, want %s", i, *got[i].Member_Account, want[i].Account)
				}
			}
			if n := len(s.Members("g1")); n != 2500 {
				t.Fatalf("Members = %d, want the uncapped 2500", n)
			}
		})
	}
}

func TestCapTiesBreakByAccount(t *testing.T) {
	s, _ := start(t, tencenttest.Options{MemberCap: 2, PageSize: 1})
	s.AddGroup("g1",
		schema.Member{Account: "c", JoinTime: 100},
		schema.Member{Account: "a", JoinTime: 100},
		schema.Member{Account: "b", JoinTime: 100},
		schema.Member{Account: "old", JoinTime: 50},
	)
	got, _ := listAll(t, s, "g1")
	if a := accounts(got); !equal(a, []string{"a", "b"}) {
		t.Fatalf("listed %v, want [a b]", a)
	}
}

func TestJoinTimeDefaultsToNow(t *testing.T) {
	s, clk := start(t, tencenttest.Options{})
	s.AddGroup("g1", schema.Member{Account: "a"})
	s.Join("g1", schema.Member{Account: "b", JoinTime: 42})
	clk.Add(90e9)
	s.Join("g1", schema.Member{Account: "c"})
	got := s.Members("g1")
	want := []schema.Member{{Account: "a", JoinTime: t0.Unix()}, {Account: "b", JoinTime: 42}, {Account: "c", JoinTime: t0.Unix() + 90}}
	if !slices.Equal(got, want) {
		t.Fatalf("Members = %+v, want %+v", got, want)
	}
}

func TestCursorsAbove32Bits(t *testing.T) {
	t.Run("default base", func(t *testing.T) {
		s, _ := start(t, tencenttest.Options{PageSize: 2})
		s.AddGroup("g1", members(5)...)
		_, cursors := listAll(t, s, "g1")
		for _, c := range cursors {
			if c <= math.MaxUint32 {
				t.Fatalf("cursor %d fits 32 bits", c)
			}
		}
	})
	t.Run("up to max uint64", func(t *testing.T) {
		s, _ := start(t, tencenttest.Options{PageSize: 2, CursorBase: math.MaxUint64 - 1})
		s.AddGroup("g1", members(6)...)
		// Check the wire form: a float64 decoder would round these.
		status, b := post(t, s, http.MethodPost, tencenttest.PathGetMembers, query(t, s), `{"GroupId":"g1","Timestamp":0}`)
		if status != http.StatusOK || !strings.Contains(string(b), `"NextTimestamp":18446744073709551614`) {
			t.Fatalf("first page: %d %s", status, b)
		}
		status, b = post(t, s, http.MethodPost, tencenttest.PathGetMembers, query(t, s), `{"GroupId":"g1","Timestamp":18446744073709551614}`)
		if status != http.StatusOK || !strings.Contains(string(b), `"NextTimestamp":18446744073709551615`) {
			t.Fatalf("second page: %d %s", status, b)
		}
		r := getMembers(t, s, "g1", math.MaxUint64)
		if r.code() != 0 || *r.NextTimestamp != 0 || len(r.MemberList) != 2 {
			t.Fatalf("last page: code %d next %d members %d", r.code(), *r.NextTimestamp, len(r.MemberList))
		}
		// Cursors wrap to the base; the full listing still works.
		if got, _ := listAll(t, s, "g1"); len(got) != 6 {
			t.Fatalf("relisted %d members, want 6", len(got))
		}
	})
	t.Run("a cursor is tied to its group", func(t *testing.T) {
		s, _ := start(t, tencenttest.Options{PageSize: 2})
		s.AddGroup("g1", members(5)...)
		s.AddGroup("g2", members(5)...)
		r := getMembers(t, s, "g1", 0)
		if r2 := getMembers(t, s, "g2", *r.NextTimestamp); r2.code() != 10004 {
			t.Fatalf("g1's cursor on g2: ErrorCode %d, want 10004", r2.code())
		}
	})
	t.Run("a cursor can be retried", func(t *testing.T) {
		s, _ := start(t, tencenttest.Options{PageSize: 2})
		s.AddGroup("g1", members(5)...)
		next := *getMembers(t, s, "g1", 0).NextTimestamp
		a, b := getMembers(t, s, "g1", next), getMembers(t, s, "g1", next)
		if !equal(accounts(a.MemberList), accounts(b.MemberList)) || !equal(accounts(a.MemberList), []string{"user00002", "user00003"}) {
			t.Fatalf("retry gave %v then %v", accounts(a.MemberList), accounts(b.MemberList))
		}
	})
}

func TestMembershipChangesBetweenPages(t *testing.T) {
	s, clk := start(t, tencenttest.Options{PageSize: 3})
	s.AddGroup("g1", members(9)...) // user00000 (newest) .. user00008
	first := getMembers(t, s, "g1", 0)
	if got := accounts(first.MemberList); !equal(got, []string{"user00000", "user00001", "user00002"}) {
		t.Fatalf("page 1 = %v", got)
	}
	clk.Add(10e9)
	s.Join("g1", schema.Member{Account: "newcomer"}) // newest: ahead of the cursor
	s.Leave("g1", "user00004")                       // on a later page
	s.Leave("g1", "user00001")                       // already listed
	// user00003 re-joins: it moves ahead of the cursor and is missed, as
	// with the real time-based cursor.
	s.Join("g1", schema.Member{Account: "user00003"})

	var rest []wireMember
	next := *first.NextTimestamp
	for next != 0 {
		r := getMembers(t, s, "g1", next)
		if r.code() != 0 {
			t.Fatalf("ErrorCode %d", r.code())
		}
		rest = append(rest, r.MemberList...)
		next = *r.NextTimestamp
	}
	if got := accounts(rest); !equal(got, []string{"user00005", "user00006", "user00007", "user00008"}) {
		t.Fatalf("later pages = %v", got)
	}
}

func TestCursorPastTheEndAfterLeaves(t *testing.T) {
	s, _ := start(t, tencenttest.Options{PageSize: 2})
	s.AddGroup("g1", members(3)...)
	next := *getMembers(t, s, "g1", 0).NextTimestamp
	s.Leave("g1", "user00002")
	r := getMembers(t, s, "g1", next)
	if r.code() != 0 || len(r.MemberList) != 0 || *r.NextTimestamp != 0 {
		t.Fatalf("code %d, %d members, next %d; want an empty last page", r.code(), len(r.MemberList), *r.NextTimestamp)
	}
}

func TestMark(t *testing.T) {
	s, _ := start(t, tencenttest.Options{PageSize: 2})
	s.AddGroup("g1", members(6)...)
	s.SetMarks("g1", "user00001", 1000)
	s.SetMarks("g1", "user00003", 1000, 7)
	s.SetMarks("g1", "user00004", 7)
	s.SetMarks("g1", "user00005", 1000)
	s.SetMarks("g1", "stranger", 1000) // not a member: ignored
	marked := func(mark int64) []string {
		t.Helper()
		var out []string
		var ts uint64
		for {
			r := call(t, s, tencenttest.PathGetMembers, query(t, s), fmt.Sprintf(`{"GroupId":"g1","Timestamp":%d,"Mark":%d}`, ts, mark))
			if r.code() != 0 {
				t.Fatalf("ErrorCode %d", r.code())
			}
			out = append(out, accounts(r.MemberList)...)
			if ts = *r.NextTimestamp; ts == 0 {
				return out
			}
		}
	}
	if got := marked(1000); !equal(got, []string{"user00001", "user00003", "user00005"}) {
		t.Fatalf("Mark 1000 = %v", got)
	}
	if got := marked(7); !equal(got, []string{"user00003", "user00004"}) {
		t.Fatalf("Mark 7 = %v", got)
	}
	if got := marked(5); len(got) != 0 {
		t.Fatalf("Mark 5 = %v, want none", got)
	}
	// Marks go when the member leaves or re-joins.
	s.Leave("g1", "user00001")
	s.Join("g1", schema.Member{Account: "user00001"})
	s.Join("g1", schema.Member{Account: "user00005"})
	if got := marked(1000); !equal(got, []string{"user00003"}) {
		t.Fatalf("Mark 1000 after leave and re-join = %v", got)
	}
	// SetMembers keeps the marks of those who stay.
	s.SetMembers("g1", []schema.Member{{Account: "user00003", JoinTime: 1}, {Account: "x", JoinTime: 2}})
	if got := marked(7); !equal(got, []string{"user00003"}) {
		t.Fatalf("Mark 7 after SetMembers = %v", got)
	}
}

func TestDismiss(t *testing.T) {
	s, _ := start(t, tencenttest.Options{PageSize: 2})
	s.AddGroup("g1", members(5)...)
	next := *getMembers(t, s, "g1", 0).NextTimestamp
	s.Dismiss("g1")
	if r := getMembers(t, s, "g1", next); r.code() != 10010 {
		t.Fatalf("next page after dismiss: ErrorCode %d, want 10010", r.code())
	}
	if r := getMembers(t, s, "g1", 0); r.code() != 10010 {
		t.Fatalf("after dismiss: ErrorCode %d, want 10010", r.code())
	}
	if ms := s.Members("g1"); ms != nil {
		t.Fatalf("Members after dismiss = %v", ms)
	}
	s.Join("g1", schema.Member{Account: "late"})
	s.SetMembers("g1", members(1))
	if ms := s.Members("g1"); ms != nil {
		t.Fatalf("dismissed group took members: %v", ms)
	}
	if g := s.Groups(); len(g) != 0 {
		t.Fatalf("Groups = %v", g)
	}
	s.AddGroup("g1", members(1)...)
	if r := getMembers(t, s, "g1", 0); r.code() != 0 || len(r.MemberList) != 1 {
		t.Fatalf("re-added: ErrorCode %d, %d members", r.code(), len(r.MemberList))
	}
}

func TestNewHandlerOnOwnServer(t *testing.T) {
	h := tencenttest.NewHandler(tencenttest.Options{})
	if h.URL != "" {
		t.Fatalf("URL = %q for an unstarted server", h.URL)
	}
	h.Close() // a no-op, must not panic
	h.AddGroup("g1", members(3)...)
	// Serve it the way rollcall simulate does, on a listener of our own.
	srv := newPlainServer(t, h)
	h.URL = srv
	if got, _ := listAll(t, h, "g1"); len(got) != 3 {
		t.Fatalf("listed %d, want 3", len(got))
	}
}
