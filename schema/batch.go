package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// appendIDField appends f to b length-prefixed ("<len>:<f>;"), so no two
// inputs of EventID collide by concatenation.
func appendIDField[T string | []byte](b []byte, f T) []byte {
	b = strconv.AppendInt(b, int64(len(f)), 10)
	b = append(b, ':')
	b = append(b, f...)
	return append(b, ';')
}

// AppendEventID appends EventID's result to dst without allocating when dst
// has room (36 bytes) and the fields fit the stack buffer.
func AppendEventID(dst []byte, sdkappid uint64, groupID, account string, joinTime int64, typ string) []byte {
	var stack [256]byte
	in := stack[:0]
	in = appendIDField(in, "rollcall.v1")
	var num [20]byte
	in = appendIDField(in, strconv.AppendUint(num[:0], sdkappid, 10))
	in = appendIDField(in, groupID)
	in = appendIDField(in, account)
	in = appendIDField(in, strconv.AppendInt(num[:0], joinTime, 10))
	in = appendIDField(in, typ)
	u := sha256.Sum256(in)
	u[6] = (u[6] & 0x0f) | 0x80 // version 8
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 9562 variant
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], u[10:16])
	return append(dst, buf[:]...)
}

// Batch builds the events of one group's snapshot. What they share (the
// source, the times) is computed once, and the ids of all events are
// formatted into one string when the batch is taken (Events), so a batch
// costs a handful of allocations whatever its size. The events equal those
// of MemberJoined, MemberLeft and GroupDismissed, which are built here.
type Batch struct {
	app      uint64
	groupID  string
	source   string
	observed time.Time
	prev     *time.Time
	events   []Event
	online   []int64 // backing store of left events' OnlineSeconds
	left     int     // events in online
}

// NewBatch starts a batch of size events at most (a capacity hint) for the
// snapshot of groupID taken at observed; prev is the previous snapshot's
// time (nil for a baseline) and must not change afterwards.
func NewBatch(sdkappid uint64, groupID string, observed time.Time, prev *time.Time, leftHint, size int) Batch {
	return Batch{app: sdkappid, groupID: groupID, source: Source(sdkappid, groupID), observed: observed, prev: prev,
		events: make([]Event, 0, size), online: make([]int64, 0, leftHint)}
}

func (b *Batch) member(typ string, m Member, reason string, online *int64) {
	b.events = append(b.events, Event{
		Source:       b.source,
		Type:         typ,
		Subject:      m.Account,
		Time:         b.observed,
		PartitionKey: b.groupID,
		Data: Data{
			SDKAppID: b.app, GroupID: b.groupID, MemberAccount: m.Account,
			NickName: m.NickName, Avatar: m.Avatar, JoinTime: m.JoinTime,
			ObservedAt: b.observed, PreviousObservedAt: b.prev, Reason: reason,
			OnlineSeconds: online,
		},
	})
}

// Joined adds a rollcall.member.joined event (see MemberJoined).
func (b *Batch) Joined(m Member, reason string) { b.member(TypeMemberJoined, m, reason, nil) }

// Left adds a rollcall.member.left event (see MemberLeft).
func (b *Batch) Left(m Member, reason string, lastSeen time.Time) {
	secs := max(lastSeen.Unix()-m.JoinTime, 0)
	var p *int64
	if len(b.online) < cap(b.online) {
		// Pointers into the slab stay valid: it never grows past its capacity.
		b.online = append(b.online, secs)
		p = &b.online[len(b.online)-1]
	} else {
		p = new(int64)
		*p = secs
	}
	b.member(TypeMemberLeft, m, reason, p)
}

// Dismissed adds the rollcall.group.dismissed event (see GroupDismissed).
func (b *Batch) Dismissed(membersLeft int) {
	b.events = append(b.events, Event{
		Source:       b.source,
		Type:         TypeGroupDismissed,
		Subject:      b.groupID,
		Time:         b.observed,
		PartitionKey: b.groupID,
		Data: Data{
			SDKAppID: b.app, GroupID: b.groupID, ObservedAt: b.observed,
			PreviousObservedAt: b.prev, Reason: ReasonGroupDismissed, MembersLeft: &membersLeft,
		},
	})
}

// Len is the number of events added.
func (b *Batch) Len() int { return len(b.events) }

// Events returns the events added, in order, with their ids; nil when
// there are none. The Batch must not be used afterwards.
func (b *Batch) Events() []Event {
	if len(b.events) == 0 {
		return nil
	}
	// One allocation for every id: the builder's buffer becomes the string.
	var ids strings.Builder
	ids.Grow(36 * len(b.events))
	var buf [36]byte
	for i := range b.events {
		e := &b.events[i]
		ids.Write(AppendEventID(buf[:0], b.app, b.groupID, e.Data.MemberAccount, e.Data.JoinTime, e.Type))
	}
	all := ids.String()
	for i := range b.events {
		b.events[i].ID = all[36*i : 36*(i+1)]
	}
	return b.events
}
