package schema

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/rollcall-dev/rollcall/schema/groupid"
)

// Event types: the CloudEvents "type" attribute.
const (
	TypeMemberJoined   = "rollcall.member.joined"
	TypeMemberLeft     = "rollcall.member.left"
	TypeGroupDismissed = "rollcall.group.dismissed"
)

// Reasons carried in data.reason.
const (
	// ReasonJoined: the member appeared since the previous snapshot.
	ReasonJoined = "joined"
	// ReasonBaseline: first snapshot of a group with no stored state; the
	// member was already there when rollcall started watching.
	ReasonBaseline = "baseline"
	// ReasonRejoined: the same account came back with a new JoinTime
	// between two polls; a left and a joined event are emitted.
	ReasonRejoined = "rejoined"
	// ReasonLeft: the member is no longer online in the group.
	ReasonLeft = "left"
	// ReasonGroupDismissed: the group no longer exists.
	ReasonGroupDismissed = "group_dismissed"
)

// SpecVersion is the CloudEvents version rollcall emits.
const SpecVersion = "1.0"

// ContentType is the media type of a structured-mode CloudEvent.
const ContentType = "application/cloudevents+json"

// DataContentType is the media type of an event's data.
const DataContentType = "application/json"

// Event is one CloudEvents 1.0 event. Its JSON form (MarshalJSON) is the
// structured-mode wire format.
type Event struct {
	// ID is deterministic (see EventID): re-emitting the same change after
	// a crash yields the same ID, so consumers can drop duplicates.
	ID     string
	Source string
	Type   string
	// Subject is the member account, or the group id for group events.
	Subject string
	// Time is when the snapshot that showed the change was taken.
	Time time.Time
	// PartitionKey is the group id (CloudEvents partitioning extension).
	PartitionKey string
	Data         Data
}

// Data is the event payload. Member fields are empty on group events,
// MembersLeft is set only on group events, OnlineSeconds only on left
// events.
type Data struct {
	SDKAppID      uint64 `json:"sdkappid"`
	GroupID       string `json:"group_id"`
	MemberAccount string `json:"member_account,omitempty"`
	NickName      string `json:"nick_name,omitempty"`
	Avatar        string `json:"avatar,omitempty"`
	JoinTime      int64  `json:"join_time,omitempty"`
	// ObservedAt is when the snapshot showing the change was taken.
	ObservedAt time.Time `json:"observed_at"`
	// PreviousObservedAt is when the snapshot before it was taken; nil
	// for baseline events.
	PreviousObservedAt *time.Time `json:"previous_observed_at"`
	Reason             string     `json:"reason"`
	// OnlineSeconds, on left events: from JoinTime to the last snapshot
	// that still showed the member.
	OnlineSeconds *int64 `json:"online_seconds,omitempty"`
	// MembersLeft, on group.dismissed: how many left events preceded it.
	MembersLeft *int `json:"members_left,omitempty"`
}

// IsMemberEvent reports whether e is a joined or left event.
func (e Event) IsMemberEvent() bool {
	return e.Type == TypeMemberJoined || e.Type == TypeMemberLeft
}

// envelope is the structured-mode CloudEvent as UnmarshalJSON decodes it.
// Encoding does not use it: AppendJSON writes the same fields by hand.
type envelope struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	PartitionKey    string          `json:"partitionkey"`
	Data            json.RawMessage `json:"data"`
}

// MarshalData returns the JSON of e.Data alone, as it appears under "data"
// in structured mode and as the message value in binary mode. It never
// fails.
func (e Event) MarshalData() ([]byte, error) {
	return e.AppendData(make([]byte, 0, e.JSONSizeHint())), nil
}

// MarshalJSON encodes e as a structured-mode CloudEvent (see AppendJSON).
// It never fails.
func (e Event) MarshalJSON() ([]byte, error) {
	// Encoded on the stack, then copied into an exact-size result: one
	// allocation, a third smaller than the size hint, which is what a
	// caller encoding many events pays for in garbage collection.
	var buf [1024]byte
	b := e.AppendJSON(buf[:0])
	out := make([]byte, len(b))
	copy(out, b)
	return out, nil
}

// UnmarshalJSON decodes a structured-mode CloudEvent.
func (e *Event) UnmarshalJSON(b []byte) error {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return err
	}
	if env.SpecVersion != SpecVersion {
		return fmt.Errorf("specversion %q: want %q", env.SpecVersion, SpecVersion)
	}
	t, err := time.Parse(time.RFC3339Nano, env.Time)
	if err != nil {
		return fmt.Errorf("time: %w", err)
	}
	var d Data
	if raw := env.Data; len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &d); err != nil {
			return fmt.Errorf("data: %w", err)
		}
	}
	*e = Event{ID: env.ID, Source: env.Source, Type: env.Type, Subject: env.Subject,
		Time: t, PartitionKey: env.PartitionKey, Data: d}
	return nil
}

// EventID derives an event's id from what identifies the change: the app,
// the group, the member, the member's JoinTime and the event type. The
// same change observed twice (a re-publish after a crash, a second rollcall
// over the same state) gets the same id. The result is formatted as a UUID
// (version 8, RFC 9562) over the first 128 bits of a SHA-256.
func EventID(sdkappid uint64, groupID, account string, joinTime int64, typ string) string {
	var buf [36]byte
	return string(AppendEventID(buf[:0], sdkappid, groupID, account, joinTime, typ))
}

// Source returns the CloudEvents source of a group's events:
// /tencent-im/<sdkappid>/groups/<group id, percent-escaped>.
func Source(sdkappid uint64, groupID string) string {
	return "/tencent-im/" + strconv.FormatUint(sdkappid, 10) + "/groups/" + groupid.PathSegment(groupID)
}

// MemberJoined builds a rollcall.member.joined event. prev is the previous
// snapshot's time, nil for a baseline.
func MemberJoined(sdkappid uint64, groupID string, m Member, reason string, observed time.Time, prev *time.Time) Event {
	b := NewBatch(sdkappid, groupID, observed, prev, 0, 1)
	b.Joined(m, reason)
	return b.Events()[0]
}

// MemberLeft builds a rollcall.member.left event. lastSeen is the time of
// the last snapshot that still showed the member; online_seconds runs from
// the member's JoinTime to it (never negative).
func MemberLeft(sdkappid uint64, groupID string, m Member, reason string, observed time.Time, prev *time.Time, lastSeen time.Time) Event {
	b := NewBatch(sdkappid, groupID, observed, prev, 1, 1)
	b.Left(m, reason, lastSeen)
	return b.Events()[0]
}

// GroupDismissed builds the rollcall.group.dismissed event that follows the
// left events of a dismissed group's members.
func GroupDismissed(sdkappid uint64, groupID string, observed time.Time, prev *time.Time, membersLeft int) Event {
	b := NewBatch(sdkappid, groupID, observed, prev, 0, 1)
	b.Dismissed(membersLeft)
	return b.Events()[0]
}
