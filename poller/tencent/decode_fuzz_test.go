package tencent

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/schema"
)

// legacyMembersResponse is the decoder the one-pass one replaced (a raw
// MemberList decoded a second time, json.Number JoinTimes), kept as the
// reference the fuzz target compares with: the rules did not change.
type legacyMembersResponse struct {
	status
	MemberList []struct {
		Account  string      `json:"Member_Account"`
		NickName string      `json:"NickName"`
		Avatar   string      `json:"Avatar"`
		JoinTime json.Number `json:"JoinTime"`
	} `json:"MemberList"`
	NextTimestamp json.Number `json:"NextTimestamp"`
}

// legacyDecode returns the page's members and cursor, or ok=false where the
// old decoder rejected the page.
func legacyDecode(b []byte) (members []schema.Member, next uint64, ok bool) {
	type plain legacyMembersResponse
	var r plain
	var aux struct {
		*plain
		MemberList json.RawMessage `json:"MemberList"`
	}
	aux.plain = &r
	if json.Unmarshal(b, &aux) != nil || r.NextTimestamp == "" || len(aux.MemberList) == 0 {
		return nil, 0, false
	}
	next, err := strconv.ParseUint(string(r.NextTimestamp), 10, 64)
	if err != nil {
		return nil, 0, false
	}
	if string(aux.MemberList) != "null" && json.Unmarshal(aux.MemberList, &r.MemberList) != nil {
		return nil, 0, false
	}
	members = []schema.Member{}
	for _, w := range r.MemberList {
		jt, err := strconv.ParseInt(string(w.JoinTime), 10, 64)
		if w.Account == "" || err != nil || jt <= 0 {
			return nil, 0, false
		}
		members = append(members, schema.Member{Account: w.Account, NickName: w.NickName, Avatar: w.Avatar, JoinTime: jt})
	}
	return members, next, true
}

// FuzzDecodeMembersPage: no input panics; an accepted page has an exact
// 64-bit cursor and valid members, and the decoder accepts and yields
// exactly what the one it replaced did.
func FuzzDecodeMembersPage(f *testing.F) {
	f.Add([]byte(ok("0", member("alice", 100))))
	f.Add([]byte(ok("18446744073709551615", member("bob", 1), member("carol", 9007199254740993))))
	f.Add([]byte(`{"ActionStatus":"OK","ErrorCode":0,"MemberList":null,"NextTimestamp":"5"}`))
	f.Add([]byte(`{"ActionStatus":"OK","ErrorCode":0,"NextTimestamp":0}`))
	f.Add([]byte(`{"ActionStatus":"OK","MemberList":[{"Member_Account":"a","JoinTime":"12"},{"Member_Account":"b","JoinTime":1.5}],"NextTimestamp":0}`))
	f.Add(benchPage(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newMembersResponse(nil)
		err := decodeResponse(b, r)
		if err == nil {
			err = r.validate()
		}
		want, wantNext, wantOK := legacyDecode(b)
		if (err == nil) != wantOK {
			t.Fatalf("accepted = %v (err %v), the old decoder: %v", err == nil, err, wantOK)
		}
		if err != nil {
			return
		}
		if got := strconv.FormatUint(r.next, 10); got != string(r.NextTimestamp) || r.next != wantNext {
			t.Fatalf("cursor %q decoded as %d (old decoder %d)", r.NextTimestamp, r.next, wantNext)
		}
		for i, m := range r.members {
			if m.Account == "" || m.JoinTime <= 0 {
				t.Fatalf("member %d invalid: %+v", i, m)
			}
		}
		if len(r.members) != len(want) || (len(want) > 0 && !reflect.DeepEqual(r.members, want)) {
			t.Fatalf("members\n got %+v\nwant %+v", r.members, want)
		}
	})
}

// TestDecodeKeepsNothingFromThePreviousPage: page buffers are reused, and
// encoding/json does not zero a reused element before decoding into it; a
// field a member lacks must not come from the page before.
func TestDecodeKeepsNothingFromThePreviousPage(t *testing.T) {
	decode := func(body string) (*membersResponse, error) {
		r := newMembersResponse(nil)
		if err := decodeResponse([]byte(body), r); err != nil {
			return nil, err
		}
		return r, r.validate()
	}
	for range 20 {
		if _, err := decode(ok("0", member("alice", 100), member("bob", 200))); err != nil {
			t.Fatal(err)
		}
		if _, err := decode(ok("0", `{"Member_Account":"carol"}`)); err == nil || !strings.Contains(err.Error(), "no JoinTime") {
			t.Fatalf("a member without JoinTime: err = %v", err)
		}
		if _, err := decode(ok("0", member("alice", 100))); err != nil {
			t.Fatal(err)
		}
		r, err := decode(ok("0", `{"JoinTime":300}`))
		if err == nil || !strings.Contains(err.Error(), "no Member_Account") {
			t.Fatalf("a member without Member_Account: err = %v, members %+v", err, r.members)
		}
		if _, err := decode(ok("0", member("alice", 100))); err != nil {
			t.Fatal(err)
		}
		r, err = decode(ok("0", `{"Member_Account":"dave","JoinTime":400}`))
		if err != nil {
			t.Fatal(err)
		}
		if want := (schema.Member{Account: "dave", JoinTime: 400}); len(r.members) != 1 || r.members[0] != want {
			t.Fatalf("members %+v, want [%+v]", r.members, want)
		}
	}
}
