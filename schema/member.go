package schema

import (
	"sort"
	"time"
)

// Member is one online member of an audio-video group, as get_members
// reports it.
type Member struct {
	// Account is Member_Account, the member's UserID; unique within a group.
	Account string `json:"member_account"`
	// NickName and Avatar are the member's profile at the time of the
	// snapshot; either may be empty.
	NickName string `json:"nick_name"`
	Avatar   string `json:"avatar"`
	// JoinTime is the API's JoinTime: unix seconds when the member entered
	// the group. A member who leaves and comes back gets a new JoinTime.
	JoinTime int64 `json:"join_time"`
}

// Snapshot is the complete result of listing one group once: every page
// was read, and members are de-duplicated by Account and sorted by it.
//
// A snapshot with Dismissed set carries no members: the API said the group
// no longer exists (ErrorCode 10010 or 10015).
type Snapshot struct {
	SDKAppID uint64
	GroupID  string
	// TakenAt is when the listing started (the first page's request).
	TakenAt time.Time
	Members []Member
	// Dismissed reports that the group is gone.
	Dismissed bool
	// Truncated reports that Members may miss online members: the list
	// reached the member cap (the API then lists only the latest joiners),
	// or the API is known to have cut it short of the cap (the silent
	// 30-member cap of apps without the online-member-list feature, a list
	// that shifted while it was paged). The lister decides it when the
	// snapshot is made; everything downstream only reads it.
	Truncated bool
}

// NormalizeMembers de-duplicates ms by Account and sorts the result by
// Account, in place. When an account appears more than once (a time-based
// cursor may repeat members at a page edge) the entry with the latest
// JoinTime wins, since it is the most recent view of that member.
func NormalizeMembers(ms []Member) []Member {
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].Account < ms[j].Account })
	out := ms[:0]
	for _, m := range ms {
		if n := len(out); n > 0 && out[n-1].Account == m.Account {
			if m.JoinTime > out[n-1].JoinTime {
				out[n-1] = m
			}
			continue
		}
		out = append(out, m)
	}
	return out
}
