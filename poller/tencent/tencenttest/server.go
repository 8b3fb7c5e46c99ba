package tencenttest

import (
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
	"github.com/rollcall-dev/rollcall/schema"
)

// Defaults applied by NewServer and NewHandler to zero Options fields.
const (
	DefaultSDKAppID   uint64 = 1400000000
	DefaultKey               = "tencenttest-secret-key-not-for-production"
	DefaultAdmin             = "administrator"
	DefaultPageSize          = 250
	DefaultMemberCap         = 1000
	DefaultCursorBase uint64 = 1 << 33
	// DefaultMaxRequests is how many requests Requests keeps.
	DefaultMaxRequests = 10000
)

// maxCursors bounds the cursors remembered so a long-running simulate
// server does not grow without limit; older cursors become unknown (10004).
const maxCursors = 1 << 16

// Options configures a Server. The zero value is usable.
type Options struct {
	// SDKAppID is the app the server answers for; default DefaultSDKAppID.
	SDKAppID uint64
	// Key is the secret key usersigs are verified with; default DefaultKey.
	Key string
	// Admins are the identifiers with app administrator rights; default
	// [DefaultAdmin].
	Admins []string
	// PageSize is the number of members per get_members answer; default
	// 250 (the CN docs' threshold; the EN docs say 500).
	PageSize int
	// MemberCap is how many of the most recently joined members
	// get_members can list; default 1000. 30 simulates an app without the
	// online-member-list feature.
	MemberCap int
	// CursorBase is the smallest cursor (NextTimestamp) the server issues;
	// default 1<<33, so a client that parses cursors as 32-bit breaks.
	CursorBase uint64
	// RateLimit is the app-wide budget in calls per second, counted the
	// strict way: no sliding one-second window may hold more calls (the
	// whole part of RateLimit, at least 1); calls over it answer 60007.
	// 0 means unlimited.
	RateLimit float64
	// GroupListPageSize is the most group ids one get_appid_group_list
	// answer holds, below the request's Limit; default 10000 (the API's).
	GroupListPageSize int
	// MaxRequests is how many requests Requests keeps (the most recent);
	// default DefaultMaxRequests.
	MaxRequests int
	// Now is the server clock: usersig expiry, default join times and the
	// rate limit use it. Default time.Now.
	Now func() time.Time
	// Logger receives one debug entry per request; nil means no logging.
	Logger *zap.Logger
}

func (o Options) withDefaults() Options {
	if o.SDKAppID == 0 {
		o.SDKAppID = DefaultSDKAppID
	}
	if o.Key == "" {
		o.Key = DefaultKey
	}
	if len(o.Admins) == 0 {
		o.Admins = []string{DefaultAdmin}
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.MemberCap <= 0 {
		o.MemberCap = DefaultMemberCap
	}
	if o.CursorBase == 0 {
		o.CursorBase = DefaultCursorBase
	}
	if o.GroupListPageSize <= 0 {
		o.GroupListPageSize = groupListMaxLimit
	}
	if o.MaxRequests <= 0 {
		o.MaxRequests = DefaultMaxRequests
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// Server is a fake Tencent Cloud Chat REST API. It implements http.Handler;
// all methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of a server started by NewServer, e.g.
	// "http://127.0.0.1:4567"; empty for NewHandler.
	URL string

	opts    Options
	log     *zap.Logger
	admins  map[string]bool
	limiter *window
	// listWindow is get_appid_group_list's own limit of 1 call/s.
	listWindow *window
	ts         *httptest.Server

	mu       sync.Mutex
	groups   map[string]*group
	faults   []*faultState
	requests []Request
	calls    map[string]int
	cursors  cursorTable
}

type group struct {
	typ       string // "" is AVChatRoom
	unlisted  bool   // left out of get_appid_group_list (SetListed)
	dismissed bool
	members   map[string]*entry
}

type entry struct {
	m     schema.Member
	marks map[int64]bool
}

// NewServer starts a fake API on a loopback port. Close it when done.
func NewServer(o Options) *Server {
	s := NewHandler(o)
	s.ts = httptest.NewServer(s)
	s.URL = s.ts.URL
	return s
}

// NewHandler returns a fake API that is not listening anywhere: serve it
// on a listener of your own (rollcall simulate does).
func NewHandler(o Options) *Server {
	o = o.withDefaults()
	s := &Server{
		opts:   o,
		log:    o.Logger.Named("tencenttest"),
		admins: make(map[string]bool, len(o.Admins)),
		groups: make(map[string]*group),
		calls:  make(map[string]int),

		listWindow: &window{max: 1},
	}
	s.cursors.init(o.CursorBase)
	for _, a := range o.Admins {
		s.admins[a] = true
	}
	if o.RateLimit > 0 {
		s.limiter = &window{max: max(1, int(o.RateLimit))}
	}
	return s
}

// Close shuts down a server started by NewServer and blocks until its
// requests are done. It does nothing for a NewHandler server.
func (s *Server) Close() {
	if s.ts != nil {
		s.ts.Close()
	}
}

// Client returns an HTTP client for the server: the httptest client for a
// NewServer server, http.DefaultClient otherwise.
func (s *Server) Client() *http.Client {
	if s.ts != nil {
		return s.ts.Client()
	}
	return http.DefaultClient
}

// SDKAppID returns the app id the server answers for.
func (s *Server) SDKAppID() uint64 { return s.opts.SDKAppID }

// Key returns the secret key the server verifies usersigs with.
func (s *Server) Key() string { return s.opts.Key }

// UserSig mints a usersig for identifier with the server's key, valid for a
// day from the server clock: a convenience for tests and demos.
func (s *Server) UserSig(identifier string) (string, error) {
	return usersig.Generate(s.opts.SDKAppID, identifier, s.opts.Key, 24*60*60, s.opts.Now(), nil)
}

// AddGroup creates group id with the given members, replacing any group
// with that id, a dismissed one included. A member with JoinTime 0 joins
// now; when an account is given twice the last one wins.
func (s *Server) AddGroup(id string, members ...schema.Member) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &group{members: make(map[string]*entry, len(members))}
	s.groups[id] = g
	now := s.opts.Now().Unix()
	for _, m := range members {
		g.members[m.Account] = &entry{m: withJoinTime(m, now)}
	}
}

// Join adds m to group, creating the group if it does not exist. A JoinTime
// of 0 means now. If the account is already there, its record is replaced
// and its marks are cleared, as after a leave and a join between two polls.
// Join does nothing on a dismissed group.
func (s *Server) Join(groupID string, m schema.Member) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupLocked(groupID)
	if g.dismissed {
		return
	}
	g.members[m.Account] = &entry{m: withJoinTime(m, s.opts.Now().Unix())}
}

// Leave removes account from group; its marks go with it.
func (s *Server) Leave(groupID, account string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.groups[groupID]; g != nil {
		delete(g.members, account)
	}
}

// SetMembers replaces the members of group, creating it if needed. Accounts
// that stay keep their marks. It does nothing on a dismissed group.
func (s *Server) SetMembers(groupID string, ms []schema.Member) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupLocked(groupID)
	if g.dismissed {
		return
	}
	now := s.opts.Now().Unix()
	next := make(map[string]*entry, len(ms))
	for _, m := range ms {
		e := &entry{m: withJoinTime(m, now)}
		if old := g.members[m.Account]; old != nil {
			e.marks = old.marks
		}
		next[m.Account] = e
	}
	g.members = next
}

// SetMarks replaces the marks of a member (what modify_user_info does), for
// the Mark filter of get_members. It does nothing if the account is not in
// the group: marks exist only on online members.
func (s *Server) SetMarks(groupID, account string, marks ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[groupID]
	if g == nil {
		return
	}
	e := g.members[account]
	if e == nil {
		return
	}
	e.marks = make(map[int64]bool, len(marks))
	for _, k := range marks {
		e.marks[k] = true
	}
}

// Members returns every member of group, sorted by Account: the full
// truth, not capped by MemberCap. It returns nil for an unknown or
// dismissed group.
func (s *Server) Members(groupID string) []schema.Member {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[groupID]
	if g == nil || g.dismissed {
		return nil
	}
	out := make([]schema.Member, 0, len(g.members))
	for _, e := range g.members {
		out = append(out, e.m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Account < out[j].Account })
	return out
}

// Groups returns the ids of the groups that exist and are not dismissed,
// sorted.
func (s *Server) Groups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groupIDsLocked()
}

func (s *Server) groupIDsLocked() []string {
	ids := make([]string, 0, len(s.groups))
	for id, g := range s.groups {
		if !g.dismissed {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Dismiss dissolves group: its members are gone and later calls about it
// answer 10010. AddGroup brings it back.
func (s *Server) Dismiss(groupID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[groupID] = &group{dismissed: true, members: map[string]*entry{}}
}

// Requests returns a copy of the request log, oldest first (at most
// Options.MaxRequests, the most recent). Query holds the raw usersig: use
// RedactedQuery to print it.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	reqs := s.requests[max(0, len(s.requests)-s.opts.MaxRequests):]
	out := make([]Request, len(reqs))
	for i, r := range reqs {
		out[i] = r.clone()
	}
	return out
}

// Calls returns how many requests reached command (the last path element,
// e.g. "get_members"), whatever their outcome.
func (s *Server) Calls(command string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[command]
}

// groupLocked returns group id, creating an empty one if needed.
func (s *Server) groupLocked(id string) *group {
	g := s.groups[id]
	if g == nil {
		g = &group{members: make(map[string]*entry)}
		s.groups[id] = g
	}
	return g
}

func withJoinTime(m schema.Member, now int64) schema.Member {
	if m.JoinTime == 0 {
		m.JoinTime = now
	}
	return m
}

// Request is one call the server received.
type Request struct {
	Time   time.Time
	Method string
	Path   string
	// Command is the last path element, e.g. "get_members".
	Command string
	// Query is the raw query, usersig included: never log it.
	Query url.Values
	Body  []byte
	// GroupID is the body's GroupId, if it had a string one.
	GroupID string
	// Timestamp is the body's Timestamp (the cursor), if it had a valid one.
	Timestamp uint64
	// Page is the 1-based get_members page the cursor points at: 1 for
	// Timestamp 0, 0 if unknown.
	Page int
	// HTTPStatus and ErrorCode are what the server answered; ErrorCode is 0
	// on success and for answers without a JSON body.
	HTTPStatus int
	ErrorCode  int
	// Fault is the injected fault that shaped the answer, if any.
	Fault FaultKind
}

// RedactedQuery returns the query string with the usersig replaced, safe
// to log.
func (r Request) RedactedQuery() string { return redactQuery(r.Query) }

func (r Request) clone() Request {
	r.Query = cloneValues(r.Query)
	r.Body = append([]byte(nil), r.Body...)
	return r
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func redactQuery(q url.Values) string {
	if _, ok := q["usersig"]; !ok {
		return q.Encode()
	}
	c := cloneValues(q)
	for i := range c["usersig"] {
		c["usersig"][i] = "REDACTED"
	}
	return c.Encode()
}

// cursorTable maps the cursors the server issued to listing positions.
// Cursors are sequential from base, wrapping within [base, MaxUint64];
// only the most recent maxCursors are remembered.
type cursorTable struct {
	base uint64
	seq  uint64
	byID map[uint64]cursor
	ring []uint64 // seq-indexed: ring[seq%maxCursors] = cursor id
}

type cursor struct {
	seq      uint64
	group    string
	joinTime int64
	account  string
	page     int // page this cursor leads to
}

func (t *cursorTable) init(base uint64) {
	t.base = base
	t.byID = make(map[uint64]cursor)
	t.ring = make([]uint64, 0, 1024)
}

func (t *cursorTable) issue(c cursor) uint64 {
	span := math.MaxUint64 - t.base // number of values above base
	off := t.seq
	if span != math.MaxUint64 {
		off = t.seq % (span + 1)
	}
	id := t.base + off
	c.seq = t.seq
	slot := int(t.seq % maxCursors)
	if slot < len(t.ring) {
		// Evict the cursor issued maxCursors ago, unless its id was reused since.
		if old, ok := t.byID[t.ring[slot]]; ok && old.seq+maxCursors == t.seq {
			delete(t.byID, t.ring[slot])
		}
		t.ring[slot] = id
	} else {
		t.ring = append(t.ring, id)
	}
	t.byID[id] = c
	t.seq++
	return id
}

func (t *cursorTable) lookup(id uint64) (cursor, bool) {
	c, ok := t.byID[id]
	return c, ok
}

func sortedAccounts(g *group) []string {
	out := make([]string, 0, len(g.members))
	for a := range g.members {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// window counts calls in a sliding one-second window.
type window struct {
	mu    sync.Mutex
	max   int
	calls []time.Time // accepted calls of the last second, oldest first
}

// allow records a call at now and reports whether the window had room.
func (w *window) allow(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := 0
	for i < len(w.calls) && now.Sub(w.calls[i]) >= time.Second {
		i++
	}
	w.calls = w.calls[i:]
	if len(w.calls) >= w.max {
		return false
	}
	w.calls = append(w.calls, now)
	return true
}
