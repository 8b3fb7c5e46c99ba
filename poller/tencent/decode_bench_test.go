package tencent

import (
	"encoding/json"
	"fmt"
	"testing"
)

// benchPage is a realistic 250-member get_members page, shaped as
// tencenttest serves it: 12-byte accounts, nick names, avatar URLs, Unix
// JoinTimes and a 64-bit cursor.
func benchPage(tb testing.TB) []byte {
	tb.Helper()
	type member struct {
		JoinTime      int64  `json:"JoinTime"`
		MemberAccount string `json:"Member_Account"`
		NickName      string `json:"NickName"`
		Avatar        string `json:"Avatar"`
	}
	page := struct {
		ActionStatus  string   `json:"ActionStatus"`
		ErrorCode     int      `json:"ErrorCode"`
		ErrorInfo     string   `json:"ErrorInfo"`
		MemberList    []member `json:"MemberList"`
		NextTimestamp uint64   `json:"NextTimestamp"`
	}{ActionStatus: "OK", NextTimestamp: 9007199254740993}
	for i := range 250 {
		a := fmt.Sprintf("u%011d", 7919*i+104729)
		page.MemberList = append(page.MemberList, member{
			JoinTime: 1764800000 + int64(i), MemberAccount: a,
			NickName: fmt.Sprintf("Viewer %d", i), Avatar: fmt.Sprintf("https://avatar.example.com/%s.png", a),
		})
	}
	b, err := json.Marshal(page)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkDecodeMembersPage decodes a page the way attempt does:
// decodeResponse, then validate.
func BenchmarkDecodeMembersPage(b *testing.B) {
	raw := benchPage(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		r := newMembersResponse(nil)
		if err := decodeResponse(raw, r); err != nil {
			b.Fatal(err)
		}
		if err := r.validate(); err != nil || len(r.members) != 250 || r.next != 9007199254740993 {
			b.Fatal(err, len(r.members), r.next)
		}
	}
}

// BenchmarkDecodeMembersPageBaseline is the floor: a plain encoding/json
// decode of the same bytes into the smallest struct holding what the
// client needs.
func BenchmarkDecodeMembersPageBaseline(b *testing.B) {
	raw := benchPage(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var r struct {
			ActionStatus string
			ErrorCode    int
			ErrorInfo    string
			MemberList   []struct {
				Member_Account string //nolint:revive // the wire name
				NickName       string
				Avatar         string
				JoinTime       int64
			}
			NextTimestamp uint64
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			b.Fatal(err)
		}
		if len(r.MemberList) != 250 || r.NextTimestamp != 9007199254740993 {
			b.Fatal(len(r.MemberList), r.NextTimestamp)
		}
	}
}
