// This file stays whole: it is the whole wire protocol of one API in one
// place, each command's request and response types next to the single
// signed, rate-limited, retrying call path they all go through.

// Package tencent is rollcall's client for the Tencent Cloud Chat REST API:
// it lists the online members of audio-video groups
// (v4/group_open_avchatroom_http_svc/get_members) and reads their online
// headcount.
//
// The client owns everything that is specific to Tencent: request signing
// through a usersig.Source, the app-wide rate limit (one token bucket for
// every call, halved for a minute when Tencent says the app is too fast),
// cursor paging, per-page retries with exponential backoff bounded by the
// caller's context, failover to the region's backup domain on transport
// errors, and the mapping of ErrorCodes to an *APIError with a Kind. The
// usersig never appears in an error, a log line or a metric.
package tencent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/groupid"
)

// Defaults for Options.
const (
	// DefaultRateLimit is Tencent's documented limit for get_members and
	// get_online_member_num, in calls per second. Bursts are not allowed
	// (see Options.RateLimit); a 60007 halves the rate for a minute.
	DefaultRateLimit      = 200
	DefaultRequestTimeout = 5 * time.Second
)

const (
	svcAVChatRoom = "group_open_avchatroom_http_svc"
	svcGroup      = "group_open_http_svc"

	// maxPages guards against a server that never ends a listing; a group
	// has at most 1,000 listed members, so this is far beyond any real one.
	maxPages = 10000
	// maxResponseBytes bounds a response body: Tencent caps responses at
	// 1 MB (error 10018).
	maxResponseBytes = 8 << 20
	// slowDownFor is how long the rate stays halved after a rate-limit code.
	slowDownFor = time.Minute
	// authCooldown is how long 70050 locks the app out.
	authCooldown = 60 * time.Second
	// maxIdleConnsPerHost keeps a keep-alive connection for every call in
	// flight at any concurrency a poller sensibly runs.
	maxIdleConnsPerHost = 64
	// maxPooledBody is the largest response buffer kept for reuse: a full
	// 1,000-member listing's page is far below it.
	maxPooledBody = 1 << 20
)

// bodyPool holds response buffers: a body is read whole before decoding,
// and decoding copies what it keeps, so the buffer is free once decoded.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// ErrPagingLoop reports a listing the server never ended: a cursor came back
// twice, or there were more than 10,000 pages.
var ErrPagingLoop = errors.New("server paging loop")

type region struct{ primary, backup string }

// regions are the data centers' REST domains, from Tencent's RESTful API
// overview. Tokyo has no documented backup domain.
var regions = map[string]region{
	"china":          {"console.tim.qq.com", "adminapi.my-imcloud.com"},
	"singapore":      {"adminapisgp.im.qcloud.com", "adminapisgp.my-imcloud.com"},
	"seoul":          {"adminapikr.im.qcloud.com", "adminapikr.my-imcloud.com"},
	"tokyo":          {"adminapijpn.im.qcloud.com", ""},
	"frankfurt":      {"adminapiger.im.qcloud.com", "adminapiger.my-imcloud.com"},
	"mumbai":         {"adminapiind.im.qcloud.com", "adminapiind.my-imcloud.com"},
	"silicon_valley": {"adminapiusa.im.qcloud.com", "adminapiusa.my-imcloud.com"},
	"jakarta":        {"adminapiidn.im.qcloud.com", "adminapiidn.my-imcloud.com"},
}

// Regions returns the known region names and their primary domains.
func Regions() map[string]string {
	out := make(map[string]string, len(regions))
	for name, r := range regions {
		out[name] = r.primary
	}
	return out
}

// Options configures a Client.
type Options struct {
	SDKAppID uint64
	// Identifier is the App admin account the calls are made as.
	Identifier string
	// Sig supplies the usersig for Identifier. Required.
	Sig usersig.Source
	// Region selects the data center's domains (see Regions). Ignored when
	// Endpoint is set.
	Region string
	// Endpoint overrides the base URL, e.g. "http://127.0.0.1:8080" for a
	// simulator. http is allowed; there is no backup domain.
	Endpoint string
	// RateLimit is the calls per second allowed for all calls of this
	// client together; 0 means DefaultRateLimit. Bursts are not allowed,
	// so no one-second window sees more than RateLimit+1 calls.
	RateLimit float64
	// RequestTimeout bounds each HTTP request; 0 means 5s.
	RequestTimeout time.Duration
	// Mark, when set, makes get_members return only members with this mark.
	Mark *int64
	// HTTPClient is optional; its Timeout should be unset or longer than
	// RequestTimeout.
	HTTPClient *http.Client
	// Backoff returns the retry policy for one API call; it is a test hook.
	// The default is exponential with jitter from 200ms to 5s, for at most
	// two minutes (the caller's context normally ends it sooner).
	Backoff func() backoff.BackOff
	// Now is the clock behind the rate limiter and its penalties; nil
	// means time.Now.
	Now     func() time.Time
	Logger  *zap.Logger
	Metrics *Metrics
}

// Client calls the Tencent Cloud Chat REST API for one app. It is safe for
// concurrent use; all calls share one rate limit.
type Client struct {
	sdkappid   uint64
	identifier string
	sig        usersig.Source
	bases      []string
	base       atomic.Int32 // index into bases of the domain in use
	mark       *int64
	hc         *http.Client
	timeout    time.Duration
	newBackoff func() backoff.BackOff
	now        func() time.Time
	log        *zap.Logger
	m          *Metrics

	// Test hooks.
	sleep    func(ctx context.Context, d time.Duration) error
	maxPages int

	lim      *rate.Limiter
	baseRate rate.Limit
	mu       sync.Mutex
	// restoreAt is when a halved rate goes back to baseRate; zero when the
	// rate is not halved.
	restoreAt time.Time
	// coolUntil holds every call back after a 70050 lockout.
	coolUntil time.Time
	// lockedAt is when the current 70050 lockout began, zero once a call
	// succeeds: a 70050 after the cool-down, with a fresh usersig, means
	// the usersig is wrong, not unlucky.
	lockedAt time.Time

	// query caches the query string up to the usersig for the usersig it
	// was built with: the usersig changes once in days, calls every few
	// milliseconds.
	query atomic.Pointer[sigQuery]
}

type sigQuery struct{ sig, query string }

// queryFor returns "?sdkappid=…&identifier=…&usersig=…" for sig.
func (c *Client) queryFor(sig string) string {
	if q := c.query.Load(); q != nil && q.sig == sig {
		return q.query
	}
	q := &sigQuery{sig: sig, query: "?sdkappid=" + strconv.FormatUint(c.sdkappid, 10) +
		"&identifier=" + url.QueryEscape(c.identifier) +
		"&usersig=" + url.QueryEscape(sig)}
	c.query.Store(q)
	return q.query
}

// New validates o and returns a Client. It does no I/O.
func New(o Options) (*Client, error) {
	if o.SDKAppID == 0 {
		return nil, errors.New("tencent: sdkappid is required")
	}
	if err := usersig.ValidateIdentifier(o.Identifier); err != nil {
		return nil, fmt.Errorf("tencent: %w", err)
	}
	if o.Sig == nil {
		return nil, errors.New("tencent: a usersig source is required")
	}
	var bases []string
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("tencent: endpoint %q: want http(s)://host[:port][/path]", o.Endpoint)
		}
		bases = []string{strings.TrimRight(o.Endpoint, "/")}
	} else {
		r, ok := regions[o.Region]
		if !ok {
			return nil, fmt.Errorf("tencent: region %q unknown: want one of %s, or an endpoint", o.Region, regionNames())
		}
		bases = []string{"https://" + r.primary}
		if r.backup != "" {
			bases = append(bases, "https://"+r.backup)
		}
	}
	switch {
	case o.RateLimit < 0:
		return nil, fmt.Errorf("tencent: rate limit %v: must be > 0", o.RateLimit)
	case o.RateLimit == 0:
		o.RateLimit = DefaultRateLimit
	}
	switch {
	case o.RequestTimeout < 0:
		return nil, fmt.Errorf("tencent: request timeout %v: must be > 0", o.RequestTimeout)
	case o.RequestTimeout == 0:
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Listings run in parallel against one host: with the default of 2
		// idle connections per host, all but two would be closed after
		// each call and dialled (TLS handshake included) again.
		t.MaxIdleConnsPerHost = maxIdleConnsPerHost
		o.HTTPClient = &http.Client{Transport: t}
	}
	if o.HTTPClient.CheckRedirect == nil {
		// Never follow a redirect: it would carry the usersig in the query
		// to wherever the Location points. A 3xx is an HTTP error instead.
		hc := *o.HTTPClient
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		o.HTTPClient = &hc
	}
	if o.Backoff == nil {
		o.Backoff = defaultBackoff
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return &Client{
		sdkappid: o.SDKAppID, identifier: o.Identifier, sig: o.Sig, bases: bases,
		mark: o.Mark, hc: o.HTTPClient, timeout: o.RequestTimeout,
		newBackoff: o.Backoff, now: o.Now, log: o.Logger.Named("tencent"), m: o.Metrics,
		sleep: sleepCtx, maxPages: maxPages,
		// Burst 1: Tencent counts calls per second, so a full bucket must
		// not let a burst of RateLimit calls through on top of the rate.
		lim: rate.NewLimiter(rate.Limit(o.RateLimit), 1), baseRate: rate.Limit(o.RateLimit),
	}, nil
}

func defaultBackoff() backoff.BackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(200*time.Millisecond),
		backoff.WithMaxInterval(5*time.Second),
		backoff.WithMaxElapsedTime(2*time.Minute),
	)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type membersRequest struct {
	GroupID string `json:"GroupId"`
	// Timestamp is the cursor, sent back exactly as received so values
	// beyond 2^53 (or 2^63) survive.
	Timestamp json.Number `json:"Timestamp"`
	Mark      *int64      `json:"Mark,omitempty"`
}

// appendJSON encodes r as encoding/json does, without reflection: one
// request is made per page of every poll.
func (r *membersRequest) appendJSON(b []byte) []byte {
	b = append(b, `{"GroupId":`...)
	b = schema.AppendJSONString(b, r.GroupID)
	b = append(b, `,"Timestamp":`...)
	if r.Timestamp == "" {
		b = append(b, '0') // as encoding/json writes an empty json.Number
	} else {
		b = append(b, r.Timestamp...)
	}
	if r.Mark != nil {
		b = append(b, `,"Mark":`...)
		b = strconv.AppendInt(b, *r.Mark, 10)
	}
	return append(b, '}')
}

type wireMember struct {
	Account  string   `json:"Member_Account"`
	NickName string   `json:"NickName"`
	Avatar   string   `json:"Avatar"`
	JoinTime joinTime `json:"JoinTime"`
}

// joinTime is a member's JoinTime, parsed as it is decoded so that a page
// costs no allocation per member beyond its strings. It accepts what the
// json.Number it replaces accepted: a number, or a string holding one;
// null leaves it unset. validate judges the value.
type joinTime struct {
	v    int64
	set  bool
	text string // the literal, kept only when it is not an int64
}

func (j *joinTime) UnmarshalJSON(b []byte) error {
	switch b[0] {
	case 'n':
		return nil // null: unset, as an empty json.Number was
	case '"':
		// A quoted number: rare enough to take json.Number's own rules.
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		if n == "" {
			return nil
		}
		b = []byte(n)
	case 't', 'f', '{', '[':
		return &json.UnmarshalTypeError{Value: jsonKind(b[0]), Type: reflect.TypeFor[json.Number](), Field: "JoinTime"}
	}
	j.set, j.text = true, ""
	if v, ok := parseDigits(b); ok {
		j.v = v
		return nil
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		j.text = string(b)
	}
	j.v = v
	return nil
}

func jsonKind(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "bool"
}

// parseDigits parses up to 18 decimal digits (no sign), which always fit an
// int64, without the string conversion strconv needs.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

type membersResponse struct {
	status
	// MemberList tells an absent key from [] or null in one decode:
	// newMembersResponse points it at list, an empty pooled buffer with
	// room; encoding/json leaves it all so when the key is absent, sets
	// MemberList to nil for null, replaces list with a new slice of no
	// capacity for [], and fills list in place for members. Decode only
	// into a newMembersResponse: a nil MemberList reads as null.
	MemberList    *[]wireMember `json:"MemberList"`
	NextTimestamp json.Number   `json:"NextTimestamp"`

	list   []wireMember
	pooled *[]wireMember // list's buffer, back to wirePool after validate
	// members is where validate appends the page's members; ListMembers
	// seeds it with the listing so far to save a copy per page.
	members []schema.Member
	next    uint64
}

// newMembersResponse returns a response ready to decode into, whose
// members will be appended to dst.
func newMembersResponse(dst []schema.Member) *membersResponse {
	r := &membersResponse{members: dst, pooled: wirePool.Get().(*[]wireMember)}
	r.list = (*r.pooled)[:0]
	r.MemberList = &r.list
	return r
}

// wirePool holds the buffers pages are decoded into before validate
// copies their members out. They are put back zeroed: encoding/json
// decodes into a slice's spare elements without zeroing them first.
var wirePool = sync.Pool{New: func() any {
	s := make([]wireMember, 0, pageMembers)
	return &s
}}

// pageMembers is the page size wirePool's buffers are made for (the
// Chinese docs' 250); a larger page grows one.
const pageMembers = 250

// maxPooledMembers bounds the buffers wirePool keeps.
const maxPooledMembers = 1024

// release puts list's buffer back into wirePool, zeroed.
func (r *membersResponse) release() {
	if r.pooled == nil {
		return
	}
	buf := r.list
	if cap(buf) < cap(*r.pooled) || cap(buf) > maxPooledMembers {
		buf = *r.pooled // [] replaced list, or a page grew it too large
	}
	clear(buf[:cap(buf)])
	*r.pooled = buf[:0]
	wirePool.Put(r.pooled)
	r.pooled, r.list, r.MemberList = nil, nil, nil
}

func (r *membersResponse) validate() error {
	defer r.release()
	if r.NextTimestamp == "" {
		return errors.New("no NextTimestamp")
	}
	next, err := strconv.ParseUint(string(r.NextTimestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("NextTimestamp %.40q is not an unsigned 64-bit integer", string(r.NextTimestamp))
	}
	r.next = next
	if r.MemberList != nil && len(*r.MemberList) == 0 && cap(*r.MemberList) > 0 {
		// No MemberList at all is a broken answer, not an empty page:
		// taken as one, the group's members would all leave. ([] and null
		// are empty pages: an empty group, or a page a filter emptied.)
		return errors.New("no MemberList")
	}
	var list []wireMember
	if r.MemberList != nil {
		list = *r.MemberList
	}
	r.members = slices.Grow(r.members, len(list))
	for i, w := range list {
		if w.Account == "" {
			return fmt.Errorf("member %d has no Member_Account", i)
		}
		// JoinTime places the member against a capped list's boundary and
		// dates its join: a member without one would make every tracked
		// member below it look gone.
		jt := w.JoinTime
		switch {
		case !jt.set:
			return fmt.Errorf("member %d has no JoinTime", i)
		case jt.text != "":
			return fmt.Errorf("member %d: JoinTime %.40q is not an integer", i, jt.text)
		case jt.v <= 0:
			return fmt.Errorf("member %d: JoinTime %d is not a Unix time", i, jt.v)
		}
		r.members = append(r.members, schema.Member{Account: w.Account, NickName: w.NickName, Avatar: w.Avatar, JoinTime: jt.v})
	}
	return nil
}

// ListMembers returns the online members of an audio-video group,
// de-duplicated and sorted by account (schema.NormalizeMembers). It reads
// every page; a page is retried while ctx allows, and a page that still
// fails fails the whole listing: a partial list is never returned.
//
// Errors carry a Kind (KindOf) and leave naming the group to the caller;
// KindGroupGone means the group does not
// exist. Tencent returns at most the 1,000 most recent online members, and
// only 30 when the app's plan or console switch lacks the feature, without
// any error.
func (c *Client) ListMembers(ctx context.Context, groupID string) ([]schema.Member, error) {
	if err := groupid.Validate(groupID); err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	req := membersRequest{GroupID: groupID, Timestamp: "0", Mark: c.mark}
	seen := make(map[uint64]bool)
	var members []schema.Member
	for page := 1; ; page++ {
		if page > c.maxPages {
			return nil, fmt.Errorf("get_members: %w: more than %d pages", ErrPagingLoop, c.maxPages)
		}
		var resp *membersResponse
		err := c.call(ctx, cmdGetMembers, svcAVChatRoom, groupID, &req, func() response {
			resp = newMembersResponse(members)
			return resp
		})
		if err != nil {
			return nil, fmt.Errorf("page %d: %w", page, err) // err names get_members
		}
		members = resp.members
		if resp.next == 0 {
			break
		}
		if seen[resp.next] {
			return nil, fmt.Errorf("get_members: %w: cursor %s repeated on page %d", ErrPagingLoop, resp.NextTimestamp, page)
		}
		seen[resp.next] = true
		req.Timestamp = resp.NextTimestamp
	}
	return schema.NormalizeMembers(members), nil
}

type onlineNumResponse struct {
	status
	OnlineMemberNum *int `json:"OnlineMemberNum"`
}

func (r *onlineNumResponse) validate() error {
	if r.OnlineMemberNum == nil || *r.OnlineMemberNum < 0 {
		return errors.New("no valid OnlineMemberNum")
	}
	return nil
}

// OnlineMemberNum returns the online headcount of an audio-video group
// (get_online_member_num). Compared with the length of ListMembers it
// reveals the 1,000-member cap and the 30-member cap of an app without the
// online-member-list feature.
func (c *Client) OnlineMemberNum(ctx context.Context, groupID string) (int, error) {
	if err := groupid.Validate(groupID); err != nil {
		return 0, fmt.Errorf("online member num: %w", err)
	}
	var resp *onlineNumResponse
	err := c.call(ctx, cmdOnlineMemberNum, svcGroup, groupID, struct {
		GroupID string `json:"GroupId"`
	}{groupID}, func() response {
		resp = &onlineNumResponse{}
		return resp
	})
	if err != nil {
		return 0, fmt.Errorf("online member num of %s: %w", groupID, err)
	}
	return *resp.OnlineMemberNum, nil
}

type groupInfoResponse struct {
	status
	GroupInfo []struct {
		GroupID   string `json:"GroupId"`
		ErrorCode *int   `json:"ErrorCode"`
		ErrorInfo string `json:"ErrorInfo"`
	} `json:"GroupInfo"`
}

func (r *groupInfoResponse) validate() error {
	if len(r.GroupInfo) != 1 {
		return fmt.Errorf("GroupInfo has %d entries, want 1", len(r.GroupInfo))
	}
	return nil
}

// GroupExists asks get_group_info whether the group exists: the second
// opinion the fact sheet recommends before writing a group off on a
// get_members 10010/10015. It returns false for a group get_group_info
// reports as missing (10010/10015, per group or for the call), true when it
// reports the group, and an error when it cannot tell.
func (c *Client) GroupExists(ctx context.Context, groupID string) (bool, error) {
	if err := groupid.Validate(groupID); err != nil {
		return false, fmt.Errorf("group exists: %w", err)
	}
	var resp *groupInfoResponse
	type filter struct {
		GroupBaseInfoFilter []string `json:"GroupBaseInfoFilter"`
	}
	// A second opinion: one attempt, no retries; the caller trusts
	// get_members when this cannot tell.
	err := c.callRetry(ctx, false, cmdGroupInfo, svcGroup, groupID, struct {
		GroupIDList []string `json:"GroupIdList"`
		// Type only: the smallest answer that still says the group exists.
		ResponseFilter filter `json:"ResponseFilter"`
	}{[]string{groupID}, filter{[]string{"Type"}}}, func() response {
		resp = &groupInfoResponse{}
		return resp
	})
	switch {
	case err != nil && KindOf(err) == KindGroupGone:
		return false, nil
	case err != nil:
		return false, fmt.Errorf("group info of %s: %w", groupID, err)
	}
	g := resp.GroupInfo[0]
	code := 0
	if g.ErrorCode != nil {
		code = *g.ErrorCode
	}
	switch {
	case code == 0:
		return true, nil
	case classify(code) == KindGroupGone:
		return false, nil
	}
	return false, fmt.Errorf("group info of %s: %w", groupID,
		&APIError{Command: cmdGroupInfo, HTTPStatus: 200, Code: code, Info: scrub(g.ErrorInfo, ""), Kind: classify(code)})
}

// GroupListLimit is get_appid_group_list's largest page (and its default).
const GroupListLimit = 10000

// GroupTypeAVChatRoom is the GroupType of audio-video groups, the only
// type get_members serves.
const GroupTypeAVChatRoom = "AVChatRoom"

type groupListRequest struct {
	Limit int `json:"Limit"`
	// Next is the cursor, sent back exactly as received: it is a uint64
	// the API warns overflows smaller parsers.
	Next json.Number `json:"Next"`
	// GroupType is the documented filter; Type carries the same value for
	// servers that read the name one third-party SDK sends. Tencent ignores
	// fields it does not know, so sending both costs nothing.
	GroupType string `json:"GroupType"`
	Type      string `json:"Type"`
}

type groupListResponse struct {
	status
	TotalCount  *int `json:"TotalCount"`
	GroupIDList *[]struct {
		GroupID string `json:"GroupId"`
	} `json:"GroupIdList"`
	// Next decodes as json.Number, never float64: a cursor above 2^53
	// would otherwise come back rounded and page from the wrong place.
	Next json.Number `json:"Next"`
	next uint64
}

func (r *groupListResponse) validate() error {
	if r.Next == "" {
		return errors.New("no Next")
	}
	n, err := strconv.ParseUint(string(r.Next), 10, 64)
	if err != nil {
		return fmt.Errorf("Next %.40q is not an unsigned 64-bit integer", string(r.Next))
	}
	r.next = n
	if r.GroupIDList == nil && n != 0 {
		// A page without the list is broken, not empty: taken as empty it
		// could hide groups (a last page may leave it out: no groups).
		return errors.New("no GroupIdList")
	}
	if r.GroupIDList != nil {
		for i, g := range *r.GroupIDList {
			if g.GroupID == "" {
				return fmt.Errorf("GroupIdList[%d] has no GroupId", i)
			}
		}
	}
	return nil
}

// ListGroups returns the ids of the app's groups of type groupType (e.g.
// GroupTypeAVChatRoom; "" lists all types) with get_appid_group_list,
// every page read, de-duplicated and sorted. A page is retried like any
// call while ctx allows; one that still fails fails the listing: a partial
// list is never returned, as a caller would take the missing groups for
// gone. pace, when set, is called before every request (retries included),
// for the command's own limit of 1 call/s, much lower than the app's.
func (c *Client) ListGroups(ctx context.Context, groupType string, pace func(context.Context) error) ([]string, error) {
	req := groupListRequest{Limit: GroupListLimit, Next: "0", GroupType: groupType, Type: groupType}
	if pace != nil {
		ctx = context.WithValue(ctx, paceKey{}, pace)
	}
	seen := make(map[uint64]bool)
	var ids []string
	for page := 1; ; page++ {
		if page > c.maxPages {
			return nil, fmt.Errorf("%s: %w: more than %d pages", cmdAppGroupList, ErrPagingLoop, c.maxPages)
		}
		var resp *groupListResponse
		err := c.call(ctx, cmdAppGroupList, svcGroup, "", &req, func() response {
			resp = &groupListResponse{}
			return resp
		})
		if err != nil {
			return nil, fmt.Errorf("%s page %d: %w", cmdAppGroupList, page, err)
		}
		if resp.GroupIDList != nil {
			for _, g := range *resp.GroupIDList {
				ids = append(ids, g.GroupID)
			}
		}
		if resp.next == 0 {
			break
		}
		if seen[resp.next] {
			return nil, fmt.Errorf("%s: %w: cursor %s repeated on page %d", cmdAppGroupList, ErrPagingLoop, resp.Next, page)
		}
		seen[resp.next] = true
		req.Next = resp.Next
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// paceKey carries ListGroups' pace function to attempt.
type paceKey struct{}

// CheckMembersBatch is how many accounts one check_members call asks
// about. Tencent documents no limit; this keeps each request small.
const CheckMembersBatch = 100

type checkMembersResponse struct {
	status
	// An OK answer with Member_Account null or left out lists nobody: a
	// server encoding an empty list that way means "none of them".
	MemberAccount []string `json:"Member_Account"`
}

func (r *checkMembersResponse) validate() error { return nil }

// CheckMembers returns which of accounts are members of the group now
// (check_members). Unlike get_members it is not limited to the latest
// 1,000 members, so it tells whether a member who slid out of a capped list
// has left. Accounts are asked about in batches of CheckMembersBatch; any
// failing batch fails the call.
func (c *Client) CheckMembers(ctx context.Context, groupID string, accounts []string) ([]string, error) {
	if err := groupid.Validate(groupID); err != nil {
		return nil, fmt.Errorf("check members: %w", err)
	}
	var present []string
	for start := 0; start < len(accounts); start += CheckMembersBatch {
		batch := accounts[start:min(start+CheckMembersBatch, len(accounts))]
		var resp *checkMembersResponse
		err := c.call(ctx, cmdCheckMembers, svcAVChatRoom, groupID, struct {
			GroupID  string   `json:"GroupId"`
			Accounts []string `json:"Member_Account"`
		}{groupID, batch}, func() response {
			resp = &checkMembersResponse{}
			return resp
		})
		if err != nil {
			return nil, fmt.Errorf("check members of %s: %w", groupID, err)
		}
		present = append(present, resp.MemberAccount...)
	}
	return present, nil
}

// status is the envelope every response carries.
type status struct {
	ActionStatus string `json:"ActionStatus"`
	ErrorCode    *int   `json:"ErrorCode"`
	ErrorInfo    string `json:"ErrorInfo"`
}

func (s *status) st() *status { return s }

type response interface {
	st() *status
	// validate checks the command's fields once the envelope says OK.
	validate() error
}

// waitError: the rate limiter (or a 70050 cool-down) would hold the call
// past the caller's deadline, so it is not made at all.
type waitError struct {
	d       time.Duration
	lockout bool
}

func (e *waitError) Error() string {
	if e.lockout {
		return fmt.Sprintf("usersig lockout (70050): wait of %v exceeds the deadline", e.d.Round(time.Millisecond))
	}
	return fmt.Sprintf("rate limit wait of %v exceeds the deadline", e.d.Round(time.Millisecond))
}
func (e *waitError) Unwrap() error { return context.DeadlineExceeded }

// call performs one API call, retrying it per the error's kind, and decodes
// the successful response into the value newResp returns (a fresh one per
// attempt).
func (c *Client) call(ctx context.Context, command, service, groupID string, body any, newResp func() response) error {
	return c.callRetry(ctx, true, command, service, groupID, body, newResp)
}

// callRetry is call; without retry a failure is returned at once (the
// one-time usersig renewal on an auth code still happens).
func (c *Client) callRetry(ctx context.Context, retry bool, command, service, groupID string, body any, newResp func() response) error {
	var payload []byte
	var err error
	if a, ok := body.(interface{ appendJSON([]byte) []byte }); ok {
		payload = a.appendJSON(make([]byte, 0, 128))
	} else if payload, err = json.Marshal(body); err != nil {
		return fmt.Errorf("%s: encode request: %w", command, err)
	}
	var (
		attempt     int
		lastErr     error // the last failure Tencent or the network gave
		authRetried bool
	)
	op := func() error {
		for {
			attempt++
			err := c.attempt(ctx, command, service, payload, newResp())
			if err == nil {
				return nil
			}
			var we *waitError
			if errors.As(err, &we) || ctx.Err() != nil {
				return backoff.Permanent(err)
			}
			lastErr = err
			var ae *APIError
			if !errors.As(err, &ae) {
				return err // transport: retry
			}
			switch ae.Kind {
			case KindTransient:
				return err
			case KindRateLimited:
				if command == cmdAppGroupList && ae.Code != 70050 {
					// Its own 1 call/s, which the caller paces, is what was
					// exceeded, not the app's budget: get_members keeps
					// its rate. (70050 locks the whole app out.)
					return err
				}
				if c.slowDown(ae.Code) {
					// 70050 again after the cool-down: as for any auth code
					// that a fresh usersig did not fix, a configuration error.
					ae.Kind = KindFatalConfig
					return backoff.Permanent(ae)
				}
				return err
			case KindAuth:
				c.sig.Invalidate()
				if !authRetried {
					authRetried = true
					c.log.Warn("usersig rejected, retrying once with a fresh one",
						zap.String("group_id", groupID), zap.String("code", strconv.Itoa(ae.Code)), zap.Int("attempt", attempt))
					continue
				}
				// A fresh usersig was rejected too: the key, identifier or
				// sdkappid is wrong, which no retry fixes.
				ae.Kind = KindFatalConfig
				return backoff.Permanent(ae)
			default:
				return backoff.Permanent(err)
			}
		}
	}
	notify := func(err error, next time.Duration) {
		lvl := zap.DebugLevel
		if KindOf(err) == KindRateLimited || attempt >= 3 {
			lvl = zap.WarnLevel
		}
		c.log.Log(lvl, "api call failed, retrying",
			zap.String("command", command), zap.String("group_id", groupID),
			zap.String("code", CodeLabel(err)), zap.Int("attempt", attempt),
			zap.Duration("backoff", next), zap.Error(err))
	}
	var policy backoff.BackOff = &backoff.StopBackOff{}
	if retry {
		policy = c.newBackoff()
	}
	b := backoff.WithContext(&deadlineBackOff{BackOff: policy, ctx: ctx}, ctx)
	err = backoff.RetryNotify(op, b, notify)
	if err == nil {
		c.mu.Lock()
		c.lockedAt = time.Time{}
		c.mu.Unlock()
	}
	if err != nil && lastErr != nil && err != lastErr && !errors.Is(err, lastErr) {
		// The context or the deadline ended the retries: keep the reason
		// the call was failing, which is what an operator needs.
		err = fmt.Errorf("%w; last error: %w", err, lastErr)
	}
	return err
}

// deadlineBackOff stops retrying when the next wait would end after ctx's
// deadline, instead of sleeping until the deadline for nothing.
type deadlineBackOff struct {
	backoff.BackOff
	ctx context.Context
}

func (b *deadlineBackOff) NextBackOff() time.Duration {
	d := b.BackOff.NextBackOff()
	if dl, ok := b.ctx.Deadline(); ok && d != backoff.Stop && time.Until(dl) < d {
		return backoff.Stop
	}
	return d
}

// attempt makes one HTTP request and decodes its response into resp.
func (c *Client) attempt(ctx context.Context, command, service string, payload []byte, resp response) error {
	if pace, ok := ctx.Value(paceKey{}).(func(context.Context) error); ok {
		if err := pace(ctx); err != nil {
			return err
		}
	}
	if err := c.wait(ctx); err != nil {
		return err
	}
	sig, err := c.sig.UserSig()
	if err != nil {
		return &APIError{Command: command, Info: "get usersig: " + err.Error(), Kind: KindFatalConfig}
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	idx := c.base.Load()
	u := c.bases[idx] + "/v4/" + service + "/" + command + c.queryFor(sig) +
		"&random=" + strconv.FormatUint(uint64(rand.Uint32()), 10) +
		"&contenttype=json"
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return &APIError{Command: command, Info: redact(err, sig).Error(), Kind: KindFatalConfig}
	}
	req.Header.Set("Content-Type", "application/json")

	start := time.Now()
	res, err := c.hc.Do(req)
	if err != nil {
		c.m.call(command, "transport", time.Since(start))
		if ctx.Err() == nil && len(c.bases) > 1 {
			// Try the other domain next time; CAS so that concurrent
			// failures on the same domain flip it only once.
			c.base.CompareAndSwap(idx, 1-idx)
		}
		return fmt.Errorf("%s: %w", command, redact(err, sig))
	}
	defer res.Body.Close()
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBody {
			bodyPool.Put(buf)
		}
	}()
	_, err = buf.ReadFrom(io.LimitReader(res.Body, maxResponseBytes+1))
	raw := buf.Bytes()
	if err != nil {
		c.m.call(command, "transport", time.Since(start))
		return fmt.Errorf("%s: read response: %w", command, redact(err, sig))
	}
	d := time.Since(start)
	if res.StatusCode != http.StatusOK {
		c.m.call(command, "http_"+strconv.Itoa(res.StatusCode), d)
		kind := KindTransient
		switch res.StatusCode {
		case http.StatusTooManyRequests:
			kind = KindRateLimited
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
			// The endpoint does not serve this command: retrying will
			// not change that.
			kind = KindBadRequest
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			// The domain's gateway cannot reach the service: as for a
			// connection failure, try the backup domain next time.
			if len(c.bases) > 1 {
				c.base.CompareAndSwap(idx, 1-idx)
			}
		}
		return &APIError{Command: command, HTTPStatus: res.StatusCode, Info: http.StatusText(res.StatusCode), Kind: kind}
	}
	invalid := func(info string) error {
		c.m.call(command, "invalid_response", d)
		return &APIError{Command: command, HTTPStatus: res.StatusCode, Info: scrub(info, sig), Kind: KindTransient}
	}
	if len(raw) > maxResponseBytes {
		return invalid(fmt.Sprintf("body larger than %d bytes", maxResponseBytes))
	}
	if err := decodeResponse(raw, resp); err != nil {
		return invalid("decode JSON: " + err.Error())
	}
	st := resp.st()
	if st.ActionStatus == "" {
		return invalid("no ActionStatus")
	}
	if st.ErrorCode != nil && *st.ErrorCode != 0 {
		code := *st.ErrorCode
		c.m.call(command, strconv.Itoa(code), d)
		return &APIError{Command: command, HTTPStatus: res.StatusCode, Code: code,
			Info: scrub(st.ErrorInfo, sig), Kind: classify(code)}
	}
	if st.ActionStatus != "OK" {
		return invalid(fmt.Sprintf("ActionStatus %.20q with ErrorCode 0", st.ActionStatus))
	}
	if err := resp.validate(); err != nil {
		return invalid(err.Error())
	}
	c.m.call(command, "0", d)
	return nil
}

// decodeResponse decodes a response body into resp.
func decodeResponse(raw []byte, resp response) error {
	return json.Unmarshal(raw, resp)
}

// CodeLabel is the code an error is counted (rollcall_api_calls_total's
// code label) and logged under, always a string: Tencent's ErrorCode
// ("70009"), "http_502", "invalid_response" or "transport".
func CodeLabel(err error) string {
	var ae *APIError
	switch {
	case errors.As(err, &ae) && ae.HTTPStatus != 0 && ae.HTTPStatus != http.StatusOK:
		return "http_" + strconv.Itoa(ae.HTTPStatus)
	case errors.As(err, &ae) && ae.Code != 0:
		return strconv.Itoa(ae.Code)
	case errors.As(err, &ae):
		return "invalid_response"
	}
	return "transport"
}

// wait takes a token from the app-wide bucket, honouring a 70050
// cool-down. It fails at once, without waiting, when the wait would outlast
// ctx's deadline.
func (c *Client) wait(ctx context.Context) error {
	now := c.now()
	c.mu.Lock()
	if !c.restoreAt.IsZero() && !now.Before(c.restoreAt) {
		c.lim.SetLimitAt(now, c.baseRate)
		c.restoreAt = time.Time{}
		c.log.Info("rate limit restored", zap.Float64("calls_per_second", float64(c.baseRate)))
	}
	cool := c.coolUntil.Sub(now)
	c.mu.Unlock()

	r := c.lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	lockout := cool > d
	if lockout {
		d = cool
	}
	if d <= 0 {
		c.m.waited(0)
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		r.CancelAt(now)
		return &waitError{d: d, lockout: lockout}
	}
	err := c.sleep(ctx, d)
	c.m.waited(d)
	if err != nil {
		r.CancelAt(c.now())
		return err
	}
	return nil
}

// slowDown halves the rate for a minute after Tencent said the app calls
// too fast; repeated complaints extend the minute rather than halving
// again, so one burst cannot throttle the poller to a crawl. code 70050
// also holds every call back for a minute; it reports true when 70050
// comes again after that minute, with no call succeeding in between.
func (c *Client) slowDown(code int) (repeatedLockout bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.restoreAt.IsZero() {
		c.lim.SetLimitAt(now, c.baseRate/2)
		c.log.Warn("rate limited by tencent, halving the call rate for a minute",
			zap.String("code", strconv.Itoa(code)), zap.Float64("calls_per_second", float64(c.baseRate/2)))
	}
	c.restoreAt = now.Add(slowDownFor)
	if code != 70050 {
		return false
	}
	switch {
	case c.lockedAt.IsZero():
		c.lockedAt = now
	case !now.Before(c.lockedAt.Add(authCooldown)):
		return true
	default:
		return false // another answer from the same lockout
	}
	c.coolUntil = now.Add(authCooldown)
	c.sig.Invalidate()
	c.log.Warn("usersig lockout (70050), pausing all calls for a minute", zap.String("code", strconv.Itoa(code)))
	return false
}
