// This file stays whole: it is the fake server's whole side of the wire
// protocol, one handler per API command sharing the request checks
// (query, usersig, rate limit, faults) and the wire types they answer with.

package tencenttest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
	"github.com/rollcall-dev/rollcall/schema"
)

// Service paths and commands the server knows.
const (
	svcAVChatRoom = "/v4/group_open_avchatroom_http_svc/"
	svcGroup      = "/v4/group_open_http_svc/"

	cmdGetMembers   = "get_members"
	cmdCheckMembers = "check_members"
	cmdOnlineNum    = "get_online_member_num"
	cmdGroupInfo    = "get_group_info"
)

// Paths of the commands the server serves, relative to Server.URL.
const (
	PathGetMembers         = svcAVChatRoom + cmdGetMembers
	PathCheckMembers       = svcAVChatRoom + cmdCheckMembers
	PathGetOnlineMemberNum = svcGroup + cmdOnlineNum
	PathGetGroupInfo       = svcGroup + cmdGroupInfo
)

var routes = map[string]string{
	PathGetMembers:         cmdGetMembers,
	PathCheckMembers:       cmdCheckMembers,
	PathGetOnlineMemberNum: cmdOnlineNum,
	PathGetGroupInfo:       cmdGroupInfo,
	PathGetAppIDGroupList:  cmdGroupList,
}

// Error codes the server answers (see the API fact sheet, §3).
const (
	codeInternal        = 10002
	codeBadCommand      = 10003
	codeBadParam        = 10004
	codeDismissed       = 10010
	codeNoGroup         = 10015
	codeHTTPParse       = 60002
	codeJSONParse       = 60003
	codeBadSDKAppID     = 60006
	codeRateLimited     = 60007
	codeBadResource     = 60009
	codeNotAdmin        = 60010
	codeNoSDKAppID      = 60012
	codeSigExpired      = 70001
	codeSigMalformed    = 70003
	codeSigBad          = 70009
	codeSigIdentifier   = 70013
	codeSigSDKAppID     = 70014
	codeUnknownSDKAppID = 70020
)

// maxCommands bounds the distinct commands Calls counts.
const maxCommands = 1000

// maxBody bounds a request body; the real API's bodies are tiny.
const maxBody = 1 << 20

// badGatewayPage is what a gateway in front of the API serves on a 502.
const badGatewayPage = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>stgw</center>\r\n</body>\r\n</html>\r\n"

type base struct {
	ActionStatus string `json:"ActionStatus"`
	ErrorCode    int    `json:"ErrorCode"`
	ErrorInfo    string `json:"ErrorInfo"`
}

var okBase = base{ActionStatus: "OK"}

type wireMember struct {
	JoinTime      int64  `json:"JoinTime"`
	MemberAccount string `json:"Member_Account,omitempty"`
	NickName      string `json:"NickName"`
	Avatar        string `json:"Avatar"`
}

type getMembersResp struct {
	base
	MemberList    []wireMember `json:"MemberList"`
	NextTimestamp uint64       `json:"NextTimestamp"`
}

type onlineNumResp struct {
	base
	OnlineMemberNum int `json:"OnlineMemberNum"`
}

type checkMembersResp struct {
	base
	MemberAccount []string `json:"Member_Account"`
}

type groupInfo struct {
	GroupID   string `json:"GroupId"`
	ErrorCode int    `json:"ErrorCode"`
	ErrorInfo string `json:"ErrorInfo"`
	Type      string `json:"Type,omitempty"`
}

type groupInfoResp struct {
	base
	GroupInfo []groupInfo `json:"GroupInfo"`
}

// maxGroupInfoIDs is get_group_info's limit on GroupIdList.
const maxGroupInfoIDs = 50

// answer is what ServeHTTP sends back.
type answer struct {
	status      int
	contentType string
	body        []byte
	code        int
	fault       FaultKind
	hangup      bool // close the connection without answering
	abandoned   bool // the client left during a slow fault
}

func fail(code int, info string) answer {
	return jsonAnswer(base{ActionStatus: "FAIL", ErrorCode: code, ErrorInfo: info}, code)
}

func jsonAnswer(v any, code int) answer {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain structs are marshalled here.
		panic(err)
	}
	return answer{status: http.StatusOK, contentType: "application/json", body: b, code: code}
}

// ServeHTTP answers one REST call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.opts.Now()
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	rec := Request{
		Time:    now,
		Method:  r.Method,
		Path:    r.URL.Path,
		Command: path.Base(r.URL.Path),
		Query:   r.URL.Query(),
		Body:    body,
	}
	a := s.serve(r.Context(), r.Method, body, readErr, now, &rec)
	rec.HTTPStatus, rec.ErrorCode, rec.Fault = a.status, a.code, a.fault
	s.record(rec)
	switch {
	case a.hangup:
		// ErrAbortHandler makes net/http drop the connection silently.
		panic(http.ErrAbortHandler)
	case a.abandoned:
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

func (s *Server) record(rec Request) {
	s.log.Debug("request",
		zap.String("method", rec.Method),
		zap.String("path", rec.Path),
		zap.String("query", rec.RedactedQuery()),
		zap.String("group_id", rec.GroupID),
		zap.Uint64("timestamp", rec.Timestamp),
		zap.Int("status", rec.HTTPStatus),
		zap.Int("error_code", rec.ErrorCode),
		zap.Stringer("fault", rec.Fault))
	s.mu.Lock()
	defer s.mu.Unlock()
	// Bounded so a standalone server probed with random paths stays small.
	if _, seen := s.calls[rec.Command]; seen || len(s.calls) < maxCommands {
		s.calls[rec.Command]++
	}
	s.requests = append(s.requests, rec)
	// Trim only at twice the limit, so recording stays O(1) amortised;
	// Requests shows the last MaxRequests.
	if len(s.requests) >= 2*s.opts.MaxRequests {
		n := copy(s.requests, s.requests[len(s.requests)-s.opts.MaxRequests:])
		clear(s.requests[n:])
		s.requests = s.requests[:n]
	}
}

func (s *Server) serve(ctx context.Context, method string, body []byte, readErr error, now time.Time, rec *Request) answer {
	if method != http.MethodPost {
		return fail(codeHTTPParse, "HTTP method must be POST")
	}
	cmd, known := routes[rec.Path]
	if !known {
		if strings.HasPrefix(rec.Path, svcAVChatRoom) || strings.HasPrefix(rec.Path, svcGroup) {
			return fail(codeBadCommand, "invalid command")
		}
		return fail(codeBadResource, "bad request resource")
	}
	if a, bad := s.checkQuery(rec.Query, now); bad {
		return a
	}
	if readErr != nil {
		return fail(codeJSONParse, "request body too large")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return fail(codeJSONParse, "JSON parse error: the body must be a JSON object")
	}
	rec.GroupID, _ = stringField(fields, "GroupId")
	if cmd == cmdGroupInfo {
		var ids []string
		if json.Unmarshal(fields["GroupIdList"], &ids) == nil && len(ids) > 0 {
			rec.GroupID = ids[0] // for faults and the request log
		}
	}
	if cmd == cmdGetMembers {
		rec.Page = s.pageOf(fields, rec)
	}
	if cmd == cmdGroupList {
		rec.Page = s.groupListPage(fields)
	}

	f, faulty := s.takeFault(cmd, rec.GroupID, rec.Page)
	if faulty {
		switch f.Kind {
		case FaultHTTP502:
			status := f.Code
			if status == 0 {
				status = http.StatusBadGateway
			}
			return answer{status: status, contentType: "text/html", body: []byte(badGatewayPage), fault: f.Kind}
		case FaultErrorCode:
			code := f.Code
			if code == 0 {
				code = codeInternal
			}
			a := fail(code, "injected error")
			a.fault = f.Kind
			return a
		case FaultHangup:
			return answer{hangup: true, fault: f.Kind}
		case FaultSlow:
			t := time.NewTimer(f.Delay)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return answer{abandoned: true, fault: f.Kind}
			case <-t.C:
			}
		}
	}

	var a answer
	switch cmd {
	case cmdGetMembers:
		a = s.getMembers(fields, faulty && f.Kind == FaultMissingAccount)
	case cmdOnlineNum:
		a = s.onlineMemberNum(fields)
	case cmdCheckMembers:
		a = s.checkMembers(fields)
	case cmdGroupInfo:
		a = s.groupInfo(fields)
	case cmdGroupList:
		a = s.groupList(fields, now)
	}
	if faulty {
		a.fault = f.Kind
		if f.Kind == FaultInvalidJSON {
			a.body = a.body[:len(a.body)/2]
		}
	}
	return a
}

// checkQuery checks the URL parameters every call carries.
func (s *Server) checkQuery(q url.Values, now time.Time) (answer, bool) {
	sdk := q.Get("sdkappid")
	if sdk == "" {
		return fail(codeNoSDKAppID, "sdkappid is missing from the URL"), true
	}
	appID, err := strconv.ParseUint(sdk, 10, 64)
	if err != nil {
		return fail(codeBadSDKAppID, "invalid sdkappid"), true
	}
	if appID != s.opts.SDKAppID {
		return fail(codeUnknownSDKAppID, "sdkappid not found"), true
	}
	if q.Get("contenttype") != "json" {
		return fail(codeHTTPParse, "contenttype must be json"), true
	}
	if _, err := strconv.ParseUint(q.Get("random"), 10, 32); err != nil {
		return fail(codeHTTPParse, "random must be an unsigned 32-bit integer"), true
	}
	if s.limiter != nil && !s.limiter.allow(now) {
		return fail(codeRateLimited, "REST API call frequency over the limit"), true
	}
	identifier := q.Get("identifier")
	if err := usersig.Verify(q.Get("usersig"), s.opts.Key, appID, identifier, now); err != nil {
		// Fixed texts: the verifier's error might quote the token.
		code, info := sigFailure(err)
		return fail(code, info), true
	}
	if !s.admins[identifier] {
		return fail(codeNotAdmin, "the request requires app administrator rights"), true
	}
	return answer{}, false
}

func sigFailure(err error) (int, string) {
	switch {
	case errors.Is(err, usersig.ErrExpired):
		return codeSigExpired, "usersig expired"
	case errors.Is(err, usersig.ErrBadSignature):
		return codeSigBad, "usersig verification failed"
	case errors.Is(err, usersig.ErrIdentifierMismatch):
		return codeSigIdentifier, "identifier does not match the usersig"
	case errors.Is(err, usersig.ErrSDKAppIDMismatch):
		return codeSigSDKAppID, "sdkappid does not match the usersig"
	default:
		return codeSigMalformed, "usersig could not be parsed"
	}
}

// pageOf records the call's cursor and returns the 1-based page it asks
// for, or 0 if the cursor is missing or unknown.
func (s *Server) pageOf(fields map[string]json.RawMessage, rec *Request) int {
	raw, present := fields["Timestamp"]
	if !present {
		return 0
	}
	ts, err := parseUint(raw)
	if err != nil {
		return 0
	}
	rec.Timestamp = ts
	if ts == 0 {
		return 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cursors.lookup(ts); ok && c.group == rec.GroupID {
		return c.page
	}
	return 0
}

func (s *Server) getMembers(fields map[string]json.RawMessage, dropAccount bool) answer {
	gid, isString := stringField(fields, "GroupId")
	if !isString || gid == "" {
		return fail(codeBadParam, "GroupId is required and must be a string")
	}
	raw, present := fields["Timestamp"]
	if !present {
		return fail(codeBadParam, "Timestamp is required")
	}
	ts, err := parseUint(raw)
	if err != nil {
		return fail(codeBadParam, "Timestamp must be an unsigned integer")
	}
	var mark *int64
	if raw, present := fields["Mark"]; present {
		m, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return fail(codeBadParam, "Mark must be an integer")
		}
		mark = &m
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	g, bad := s.lookupGroupLocked(gid)
	if bad.body != nil {
		return bad
	}
	page := 1
	var from cursor
	if ts != 0 {
		c, known := s.cursors.lookup(ts)
		if !known || c.group != gid {
			return fail(codeBadParam, "invalid Timestamp")
		}
		from, page = c, c.page
	}

	list := make([]*schema.Member, 0, len(g.members))
	for _, e := range g.members {
		if mark == nil || e.marks[*mark] {
			list = append(list, &e.m)
		}
	}
	// Newest first; the cap keeps the latest joiners.
	slices.SortFunc(list, byNewest)
	if len(list) > s.opts.MemberCap {
		list = list[:s.opts.MemberCap]
	}
	start := 0
	if ts != 0 {
		// Resume after the cursor's (JoinTime, account) position: members
		// who re-joined since moved ahead of it and are missed, as with the
		// real time-based cursor.
		start = sort.Search(len(list), func(i int) bool { return after(list[i], from.joinTime, from.account) })
	}
	end := min(start+s.opts.PageSize, len(list))
	resp := getMembersResp{base: okBase, MemberList: make([]wireMember, 0, end-start)}
	for _, m := range list[start:end] {
		resp.MemberList = append(resp.MemberList, wireMember{
			JoinTime: m.JoinTime, MemberAccount: m.Account, NickName: m.NickName, Avatar: m.Avatar,
		})
	}
	if dropAccount && len(resp.MemberList) > 0 {
		resp.MemberList[0].MemberAccount = ""
	}
	if end < len(list) {
		last := list[end-1]
		resp.NextTimestamp = s.cursors.issue(cursor{group: gid, joinTime: last.JoinTime, account: last.Account, page: page + 1})
	}
	return jsonAnswer(resp, 0)
}

func (s *Server) onlineMemberNum(fields map[string]json.RawMessage) answer {
	gid, isString := stringField(fields, "GroupId")
	if !isString || gid == "" {
		return fail(codeBadParam, "GroupId is required and must be a string")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, bad := s.lookupGroupLocked(gid)
	if bad.body != nil {
		return bad
	}
	return jsonAnswer(onlineNumResp{base: okBase, OnlineMemberNum: len(g.members)}, 0)
}

func (s *Server) checkMembers(fields map[string]json.RawMessage) answer {
	gid, isString := stringField(fields, "GroupId")
	if !isString || gid == "" {
		return fail(codeBadParam, "GroupId is required and must be a string")
	}
	var accounts []string
	if err := json.Unmarshal(fields["Member_Account"], &accounts); err != nil || len(accounts) == 0 {
		return fail(codeBadParam, "Member_Account must be a non-empty array of strings")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, bad := s.lookupGroupLocked(gid)
	if bad.body != nil {
		return bad
	}
	resp := checkMembersResp{base: okBase, MemberAccount: []string{}}
	seen := make(map[string]bool, len(accounts))
	for _, a := range accounts {
		if g.members[a] != nil && !seen[a] {
			seen[a] = true
			resp.MemberAccount = append(resp.MemberAccount, a)
		}
	}
	return jsonAnswer(resp, 0)
}

// groupInfo answers get_group_info with each group's own ErrorCode: 0 and
// its Type for a live group, 10010 for a dismissed one, 10015 for one that
// never existed.
func (s *Server) groupInfo(fields map[string]json.RawMessage) answer {
	var ids []string
	if err := json.Unmarshal(fields["GroupIdList"], &ids); err != nil || len(ids) == 0 || len(ids) > maxGroupInfoIDs {
		return fail(codeBadParam, "GroupIdList must be an array of 1 to 50 group ids")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := groupInfoResp{base: okBase}
	for _, id := range ids {
		gi := groupInfo{GroupID: id, Type: "AVChatRoom"}
		if _, bad := s.lookupGroupLocked(id); bad.body != nil {
			gi = groupInfo{GroupID: id, ErrorCode: bad.code, ErrorInfo: "group does not exist or has been dismissed"}
		}
		resp.GroupInfo = append(resp.GroupInfo, gi)
	}
	return jsonAnswer(resp, 0)
}

// lookupGroupLocked returns the group, or a failure answer (non-nil body)
// for an unknown or dismissed one.
func (s *Server) lookupGroupLocked(id string) (*group, answer) {
	g := s.groups[id]
	switch {
	case g == nil:
		return nil, fail(codeNoGroup, "group does not exist")
	case g.dismissed:
		return nil, fail(codeDismissed, "group has been dismissed")
	}
	return g, answer{}
}

// byNewest orders members newer first, ties by account.
func byNewest(a, b *schema.Member) int {
	if c := cmp.Compare(b.JoinTime, a.JoinTime); c != 0 {
		return c
	}
	return strings.Compare(a.Account, b.Account)
}

// after reports whether m lists after the position (joinTime, account).
func after(m *schema.Member, joinTime int64, account string) bool {
	if m.JoinTime != joinTime {
		return m.JoinTime < joinTime
	}
	return m.Account > account
}

func stringField(fields map[string]json.RawMessage, name string) (string, bool) {
	var v string
	if err := json.Unmarshal(fields[name], &v); err != nil {
		return "", false
	}
	return v, true
}

// parseUint accepts a JSON integer in [0, 2^64-1] and nothing else.
func parseUint(raw json.RawMessage) (uint64, error) {
	return strconv.ParseUint(string(raw), 10, 64)
}
