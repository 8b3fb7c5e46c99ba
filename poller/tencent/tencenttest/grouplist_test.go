package tencenttest_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
)

type groupListReply struct {
	ErrorCode   int
	TotalCount  int
	GroupIdList []struct{ GroupId string } //nolint:revive // the API's field names
	Next        json.Number
}

func listGroups(t *testing.T, s *tencenttest.Server, body string) groupListReply {
	t.Helper()
	status, b := post(t, s, http.MethodPost, tencenttest.PathGetAppIDGroupList, query(t, s), body)
	if status != http.StatusOK {
		t.Fatalf("HTTP %d", status)
	}
	var r groupListReply
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&r); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return r
}

func TestGroupListChecksAndPages(t *testing.T) {
	s, clk := start(t, tencenttest.Options{GroupListPageSize: 2})
	for _, id := range []string{"a", "b", "c"} {
		s.AddGroup(id)
	}
	s.AddGroupOfType("p", "Public")
	for body, code := range map[string]int{
		`{"Limit":0,"GroupType":"AVChatRoom"}`:       10004,
		`{"Limit":10001,"GroupType":"AVChatRoom"}`:   10004,
		`{"GroupType":"Nope"}`:                       10004,
		`{"GroupType":"AVChatRoom","Type":"Public"}`: 10004,
		`{"Next":1.5}`: 10004,
		`{"Next":12}`:  10004, // not a cursor the server issued
	} {
		clk.Add(time.Second)
		if r := listGroups(t, s, body); r.ErrorCode != code {
			t.Errorf("%s: ErrorCode %d, want %d", body, r.ErrorCode, code)
		}
	}
	clk.Add(time.Second)
	r := listGroups(t, s, `{"Limit":10000,"Next":0,"GroupType":"AVChatRoom"}`)
	if r.ErrorCode != 0 || r.TotalCount != 3 || len(r.GroupIdList) != 2 || r.GroupIdList[0].GroupId != "a" {
		t.Fatalf("first page %+v", r)
	}
	if r2 := listGroups(t, s, `{"Next":`+string(r.Next)+`,"GroupType":"AVChatRoom"}`); r2.ErrorCode != 60007 {
		t.Fatalf("second call within a second: ErrorCode %d, want 60007", r2.ErrorCode)
	}
	clk.Add(time.Second)
	r2 := listGroups(t, s, `{"Next":`+string(r.Next)+`,"GroupType":"AVChatRoom"}`)
	if r2.ErrorCode != 0 || len(r2.GroupIdList) != 1 || r2.GroupIdList[0].GroupId != "c" || r2.Next != "0" {
		t.Fatalf("last page %+v", r2)
	}
	clk.Add(time.Second)
	if r := listGroups(t, s, `{}`); r.TotalCount != 4 {
		t.Fatalf("unfiltered TotalCount %d, want 4", r.TotalCount)
	}
}

func TestGroupListSetListed(t *testing.T) {
	s, clk := start(t, tencenttest.Options{})
	s.AddGroup("a")
	s.AddGroup("b")
	s.SetListed("a", false)
	r := listGroups(t, s, `{"GroupType":"AVChatRoom"}`)
	if r.ErrorCode != 0 || len(r.GroupIdList) != 1 || r.GroupIdList[0].GroupId != "b" {
		t.Fatalf("with a unlisted: %+v", r)
	}
	if got := s.Groups(); len(got) != 2 {
		t.Fatalf("Groups = %v: an unlisted group still exists", got)
	}
	s.SetListed("a", true)
	clk.Add(time.Second)
	if r := listGroups(t, s, `{"GroupType":"AVChatRoom"}`); len(r.GroupIdList) != 2 {
		t.Fatalf("listed again: %+v", r)
	}
}
