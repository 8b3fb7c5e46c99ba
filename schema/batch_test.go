package schema_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/schema"
)

// A Batch's events are the ones a hand-built Event gives, ids included,
// and each left event keeps its own online_seconds also when there are
// more left events than the leftHint slab holds (the rest are allocated
// one by one).
func TestBatchEventsMatchHandBuiltEvents(t *testing.T) {
	const app, gid = uint64(1400000000), "@TGS#g/1"
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	prev := at.Add(-time.Minute)
	members := []schema.Member{
		{Account: "a", NickName: "A", JoinTime: at.Unix() - 10},
		{Account: "b", Avatar: "http://x/b", JoinTime: at.Unix() - 20},
		{Account: "c", JoinTime: at.Unix() + 100}, // online_seconds clamps to 0
	}
	b := schema.NewBatch(app, gid, at, &prev, 1, 2) // hints smaller than the batch
	if got := b.Events(); got != nil {
		t.Fatalf("empty batch: Events = %v, want nil", got)
	}
	b = schema.NewBatch(app, gid, at, &prev, 1, 2)
	b.Joined(members[0], schema.ReasonLeft)
	for _, m := range members {
		b.Left(m, schema.ReasonLeft, at)
	}
	b.Dismissed(3)
	if b.Len() != 5 {
		t.Fatalf("Len = %d, want 5", b.Len())
	}

	member := func(typ string, m schema.Member, online *int64) schema.Event {
		return schema.Event{
			ID: schema.EventID(app, gid, m.Account, m.JoinTime, typ), Source: schema.Source(app, gid),
			Type: typ, Subject: m.Account, Time: at, PartitionKey: gid,
			Data: schema.Data{
				SDKAppID: app, GroupID: gid, MemberAccount: m.Account, NickName: m.NickName,
				Avatar: m.Avatar, JoinTime: m.JoinTime, ObservedAt: at, PreviousObservedAt: &prev,
				Reason: schema.ReasonLeft, OnlineSeconds: online,
			},
		}
	}
	secs := func(n int64) *int64 { return &n }
	three := 3
	want := []schema.Event{
		member(schema.TypeMemberJoined, members[0], nil),
		member(schema.TypeMemberLeft, members[0], secs(10)),
		member(schema.TypeMemberLeft, members[1], secs(20)),
		member(schema.TypeMemberLeft, members[2], secs(0)),
		{
			ID:     schema.EventID(app, gid, "", 0, schema.TypeGroupDismissed),
			Source: schema.Source(app, gid), Type: schema.TypeGroupDismissed, Subject: gid, Time: at,
			PartitionKey: gid,
			Data: schema.Data{SDKAppID: app, GroupID: gid, ObservedAt: at, PreviousObservedAt: &prev,
				Reason: schema.ReasonGroupDismissed, MembersLeft: &three},
		},
	}
	got := b.Events()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Events =\n%+v\nwant\n%+v", got, want)
	}
	if got[1].Data.OnlineSeconds == got[2].Data.OnlineSeconds {
		t.Error("two left events share one online_seconds")
	}
}
