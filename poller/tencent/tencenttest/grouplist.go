package tencenttest

import (
	"encoding/json"
	"sort"
	"time"
)

// get_appid_group_list as the real API documents it: at most 1 call/s
// for the app, Limit 1..10000 (default 10000), GroupType filtering by
// type, a 64-bit Next cursor, 0 at the end.
const (
	cmdGroupList = "get_appid_group_list"
	// PathGetAppIDGroupList is get_appid_group_list's path.
	PathGetAppIDGroupList = svcGroup + cmdGroupList

	groupListMaxLimit = 10000
	// groupListCursorBase is above 2^53 and not a multiple of 256, so a
	// client that parses Next as a float64 sends back a different number,
	// which the server refuses.
	groupListCursorBase uint64 = 1<<60 + 7
)

// groupTypes are the GroupType values the API knows.
var groupTypes = map[string]bool{
	"Public": true, "Private": true, "ChatRoom": true, "AVChatRoom": true,
	"BChatRoom": true, "Community": true, "Work": true, "Meeting": true,
}

type groupListID struct {
	GroupID string `json:"GroupId"`
}

type groupListResp struct {
	base
	TotalCount  int           `json:"TotalCount"`
	GroupIDList []groupListID `json:"GroupIdList"`
	Next        uint64        `json:"Next"`
}

// AddGroupOfType creates an empty group of type typ (AddGroup's groups are
// AVChatRoom), for the GroupType filter of get_appid_group_list.
func (s *Server) AddGroupOfType(id, typ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = &group{typ: typ, members: map[string]*entry{}}
}

// SetListed sets whether get_appid_group_list lists group id, which
// otherwise it does while the group exists: false makes an existing group
// vanish from the listing alone, as an eventually consistent index might.
func (s *Server) SetListed(id string, listed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.groups[id]; g != nil {
		g.unlisted = !listed
	}
}

func (g *group) groupType() string {
	if g.typ == "" {
		return "AVChatRoom"
	}
	return g.typ
}

// groupList answers get_appid_group_list. Next is the position in the
// sorted ids of the groups that exist, offset by groupListCursorBase.
func (s *Server) groupList(fields map[string]json.RawMessage, now time.Time) answer {
	if !s.listWindow.allow(now) {
		return fail(codeRateLimited, "get_appid_group_list: call frequency over the limit (1/s)")
	}
	limit := groupListMaxLimit
	if raw, ok := fields["Limit"]; ok {
		n, err := parseUint(raw)
		if err != nil || n < 1 || n > groupListMaxLimit {
			return fail(codeBadParam, "Limit must be an integer from 1 to 10000")
		}
		limit = int(n)
	}
	var next uint64
	if raw, ok := fields["Next"]; ok {
		n, err := parseUint(raw)
		if err != nil {
			return fail(codeBadParam, "Next must be an unsigned 64-bit integer")
		}
		next = n
	}
	typ, hasType := stringField(fields, "GroupType")
	if alt, ok := stringField(fields, "Type"); ok {
		if hasType && alt != typ {
			return fail(codeBadParam, "GroupType and Type disagree")
		}
		typ, hasType = alt, true
	}
	if _, present := fields["GroupType"]; present && !hasType {
		return fail(codeBadParam, "GroupType must be a string")
	}
	if hasType && !groupTypes[typ] {
		return fail(codeBadParam, "unknown GroupType")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.groups))
	for id, g := range s.groups {
		if !g.dismissed && !g.unlisted && (!hasType || g.groupType() == typ) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	start := 0
	if next != 0 {
		if next < groupListCursorBase || next-groupListCursorBase > uint64(len(ids)) {
			return fail(codeBadParam, "invalid Next")
		}
		start = int(next - groupListCursorBase)
	}
	size := min(limit, s.opts.GroupListPageSize)
	end := min(start+size, len(ids))
	resp := groupListResp{base: okBase, TotalCount: len(ids), GroupIDList: []groupListID{}}
	for _, id := range ids[start:end] {
		resp.GroupIDList = append(resp.GroupIDList, groupListID{id})
	}
	if end < len(ids) {
		resp.Next = groupListCursorBase + uint64(end)
	}
	return jsonAnswer(resp, 0)
}

// groupListPage numbers a get_appid_group_list request for faults: 1 for
// Next 0, then by the position Next names, in pages of GroupListPageSize.
func (s *Server) groupListPage(fields map[string]json.RawMessage) int {
	n, err := parseUint(fields["Next"])
	if err != nil || n < groupListCursorBase {
		return 1
	}
	return int((n-groupListCursorBase)/uint64(s.opts.GroupListPageSize)) + 1
}
