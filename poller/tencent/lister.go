package tencent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/poller"
	"github.com/rollcall-dev/rollcall/schema"
)

// The caps of get_members, defined here once.
const (
	// DefaultMemberCap is the API's cap on get_members: above it only the
	// most recently joined members are listed.
	DefaultMemberCap = 1000
	// FeatureCap is what get_members lists, without an error, for apps
	// whose plan or console switch lacks the online-member-list feature.
	FeatureCap = 30
)

// codeNoPermission is get_members' "insufficient permission": a group of a
// type the API does not serve, or an identifier without the right.
const codeNoPermission = 10007

// API is what a Lister calls: a *Client.
type API interface {
	ListMembers(ctx context.Context, groupID string) ([]schema.Member, error)
	// OnlineMemberNum counts a group's online members without the list's
	// cap (get_online_member_num).
	OnlineMemberNum(ctx context.Context, groupID string) (int, error)
	// GroupExists tells whether a group exists apart from listing it
	// (get_group_info).
	GroupExists(ctx context.Context, groupID string) (bool, error)
}

// ListerOptions configure a Lister.
type ListerOptions struct {
	// MemberCap is poll.member_cap: a listing of at least this many members
	// is truncated. Zero means DefaultMemberCap.
	MemberCap int
	// Marked says the API lists with a Mark filter (groups.mark): the list
	// is then never compared with the online count, which is the whole
	// group's.
	Marked bool
	// Classify maps an API error to its kind. Default KindOf.
	Classify func(error) Kind
	// Logger receives the lister's logs, named "poller" as the scheduler's
	// whose polls they explain; nil: none.
	Logger *zap.Logger
}

// Lister is the scheduler's poller.Lister for the Tencent API: it turns a
// listing into a snapshot and applies the API's rules to it.
//
//   - Truncation: a listing of at least the member cap is truncated, and so
//     is one the online count shows was cut short of it (see truncated).
//   - Errors: the client's Kinds map to the scheduler's (see failure).
//   - 10007 on one group is that group's type: it fails each cycle, logged
//     with the likely cause. 10007 on every scheduled group is the
//     identifier: a fatal configuration error.
//   - A group get_members calls gone (10010, 10015) is written off only if
//     get_group_info does not find it, as the fact sheet recommends.
type Lister struct {
	api      API
	marked   bool
	classify func(error) Kind
	log      *zap.Logger

	mu        sync.Mutex
	memberCap int
	scheduled map[string]bool
	denied    map[string]bool // scheduled groups whose last listing got 10007
	// Groups warned about a list of exactly 30: maybe capped, and capped.
	warned30, warnedCapped map[string]bool
	// gone are groups discovery found gone (MarkGone), until unscheduled.
	gone map[string]bool
	// countUnavailable is set once get_online_member_num is found not served.
	countUnavailable atomic.Bool
}

var _ poller.Lister = (*Lister)(nil)

// NewLister returns a Lister of api.
func NewLister(api API, o ListerOptions) (*Lister, error) {
	if api == nil {
		return nil, errors.New("tencent lister: no api")
	}
	if o.MemberCap < 0 {
		return nil, fmt.Errorf("poll.member_cap %d: must be positive", o.MemberCap)
	}
	l := &Lister{api: api, marked: o.Marked, classify: o.Classify, log: o.Logger,
		scheduled: map[string]bool{}, denied: map[string]bool{}, gone: map[string]bool{},
		warned30: map[string]bool{}, warnedCapped: map[string]bool{}}
	if l.classify == nil {
		l.classify = KindOf
	}
	if l.log == nil {
		l.log = zap.NewNop()
	}
	l.log = l.log.Named("poller")
	l.SetMemberCap(o.MemberCap)
	return l, nil
}

// SetMemberCap changes poll.member_cap (zero: DefaultMemberCap) for the
// listings started from now on: a reload.
func (l *Lister) SetMemberCap(n int) {
	if n <= 0 {
		n = DefaultMemberCap
	}
	l.mu.Lock()
	l.memberCap = n
	l.mu.Unlock()
}

// Scheduled records the scheduled groups, for the 10007 rule.
func (l *Lister) Scheduled(ids []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.scheduled = make(map[string]bool, len(ids))
	for _, id := range ids {
		l.scheduled[id] = true
	}
	for id := range l.denied {
		if !l.scheduled[id] {
			delete(l.denied, id)
		}
	}
	for id := range l.gone {
		if !l.scheduled[id] {
			delete(l.gone, id)
		}
	}
}

// errMarkedGone is the reason of a listing MarkGone answered.
var errMarkedGone = errors.New("the group left get_appid_group_list and get_group_info says it is gone")

// MarkGone has the listings of id report it gone (poller.KindGone), without
// asking the API, until it is unscheduled: discovery found it gone and
// confirmed it with get_group_info, so it takes the path of a get_members
// 10010/10015 (one dismissal, then no more polls).
func (l *Lister) MarkGone(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gone[id] = true
}

func (l *Lister) markedGone(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gone[id]
}

// List lists the group and returns its snapshot (GroupID, Members,
// Truncated), or an error that is a *poller.Error wrapping the client's.
func (l *Lister) List(ctx context.Context, groupID string) (schema.Snapshot, error) {
	if l.markedGone(groupID) {
		return schema.Snapshot{}, &poller.Error{Kind: poller.KindGone, GroupID: groupID, Err: errMarkedGone}
	}
	members, err := l.api.ListMembers(ctx, groupID)
	if err != nil {
		return schema.Snapshot{}, l.failure(ctx, groupID, err)
	}
	l.deny(groupID, false)
	return schema.Snapshot{GroupID: groupID, Members: members, Truncated: l.truncated(ctx, groupID, len(members))}, nil
}

// failure classifies a listing's error for the scheduler.
func (l *Lister) failure(ctx context.Context, id string, err error) error {
	kind := l.classify(err)
	switch kind {
	case KindFatalConfig:
		return &poller.Error{Kind: poller.KindFatal, GroupID: id, Err: err}
	case KindGroupGone:
		if ctx.Err() == nil && l.exists(ctx, id) {
			return &poller.Error{Kind: poller.KindGroupFailed, GroupID: id, Err: err,
				Msg: "get_members says the group is gone but get_group_info finds it; not writing it off, trying again next cycle"}
		}
		return &poller.Error{Kind: poller.KindGone, GroupID: id, Err: err}
	}
	var ae *APIError
	if l.deny(id, errors.As(err, &ae) && ae.Code == codeNoPermission) {
		// 10007 on one group is that group's type; on every group it is
		// the identifier: a configuration error.
		return &poller.Error{Kind: poller.KindFatal, GroupID: id, Err: fmt.Errorf("every group answers 10007: %w", err)}
	}
	pk := poller.KindTransient
	switch kind {
	case KindAuth:
		pk = poller.KindAuth
	case KindBadRequest:
		pk = poller.KindGroupFailed
	}
	return &poller.Error{Kind: pk, GroupID: id, Err: err,
		Fields: []zap.Field{zap.String("kind", kind.String()), zap.String("code", CodeLabel(err))}}
}

// exists asks get_group_info whether the group get_members called gone
// still exists. When it cannot tell, the answer is false: the listing's
// 10010/10015 stands.
func (l *Lister) exists(ctx context.Context, id string) bool {
	found, err := l.api.GroupExists(ctx, id)
	if err != nil {
		l.log.Warn("could not confirm with get_group_info that the group is gone; trusting get_members",
			zap.String("group_id", id), zap.Error(err))
		return false
	}
	return found
}

// deny records whether id's last listing was refused with 10007 and
// reports whether every scheduled group's now is.
func (l *Lister) deny(id string, denied bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !denied {
		delete(l.denied, id)
		return false
	}
	if l.scheduled[id] {
		l.denied[id] = true
	}
	if len(l.scheduled) == 0 {
		return false // no schedule to judge by (a one-off listing)
	}
	for g := range l.scheduled {
		if !l.denied[g] {
			return false
		}
	}
	return true
}

// truncated reports whether a listing of n members may miss online
// members. At the member cap it does: the API lists only the latest
// joiners. Below it, the length alone cannot tell, and the online count
// is asked (never for a Mark-filtered list) in two cases:
//   - the silent 30-member cap (no online-member-list feature): exactly 30
//     listed while the online count says more;
//   - the 1,000 cap with a list that shifted while it was paged (members
//     joining between page requests push the oldest out of the window, so
//     fewer than the cap come back): a listing just under the cap while the
//     online count is at or above it.
//
// When the count fails it answers true: a truncated snapshot only keeps
// unlisted members out of view (their leave waits for a later snapshot),
// while taking a cut list at face value would report them all as left.
func (l *Lister) truncated(ctx context.Context, id string, n int) bool {
	l.mu.Lock()
	memberCap := l.memberCap
	l.mu.Unlock()
	if n >= memberCap {
		return true
	}
	// Exactly 30 under a larger cap is the silent 30-member cap's signature.
	thirty := n == FeatureCap && memberCap > FeatureCap
	capped := !l.marked && l.capped(ctx, id, n, memberCap, thirty)
	if !capped && thirty {
		if l.firstFor(l.warned30, id) {
			l.log.Warn("snapshot lists exactly 30 members: the app may lack the online-member-list feature (plan and console switch) and the list may be capped at 30; if so set poll.member_cap: 30",
				zap.String("group_id", id))
		}
	}
	return capped
}

// capped is truncated's online-count check of a listing of n < memberCap;
// thirty is truncated's verdict that n is the silent cap's 30.
func (l *Lister) capped(ctx context.Context, id string, n, memberCap int, thirty bool) bool {
	nearCap := memberCap > FeatureCap && n >= memberCap-capSlack(memberCap) // a paged list
	if !thirty && !nearCap {
		return false
	}
	online, err := l.api.OnlineMemberNum(ctx, id)
	if err != nil {
		if k := l.classify(err); k == KindBadRequest || k == KindFatalConfig {
			// The API does not serve the count (unknown command, no
			// permission). Exactly 30 is the silent cap's signature: in
			// doubt, capped (unlisted members wait out of view rather than
			// all being reported gone). A list a little under 1,000 only
			// shifts if members join while it is paged: taken as it is.
			lvl := zap.DebugLevel
			if l.countUnavailable.CompareAndSwap(false, true) {
				lvl = zap.WarnLevel // once: it is the API's answer for every group
			}
			l.log.Log(lvl, "get_online_member_num is not available: a list of exactly 30 is treated as possibly capped (set poll.member_cap: 30 if the app lacks the online-member-list feature), others are taken as they are",
				zap.String("group_id", id), zap.Int("listed", n), zap.Error(err))
			return thirty
		}
		l.log.Warn("online member count unavailable for a list near a cap; treating the list as possibly capped",
			zap.String("group_id", id), zap.Int("listed", n), zap.Error(err))
		return true
	}
	if nearCap && online >= memberCap {
		l.log.Debug("listing shifted under the member cap while paged; treating it as capped",
			zap.String("group_id", id), zap.Int("listed", n), zap.Int("online", online))
		return true
	}
	if !thirty || online <= n {
		return false
	}
	if l.firstFor(l.warnedCapped, id) {
		l.log.Warn("get_members lists 30 members while more are online: the app lacks the online-member-list feature (plan and console switch); treating the list as capped, set poll.member_cap: 30",
			zap.String("group_id", id), zap.Int("listed", n), zap.Int("online", online))
	}
	return true
}

// capSlack is how far under the member cap a listing may fall because the
// list shifted while it was paged: a tenth of the cap (100 of 1,000).
func capSlack(memberCap int) int { return max(memberCap/10, 1) }

// firstFor reports whether id is not yet in warned, and adds it: each of
// these warnings is logged once per group.
func (l *Lister) firstFor(warned map[string]bool, id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := !warned[id]
	warned[id] = true
	return first
}
