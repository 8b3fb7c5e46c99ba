package diff_test

import (
	"fmt"
	"time"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/schema"
)

func ExampleDiff() {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	first := schema.Snapshot{SDKAppID: 1400000001, GroupID: "@TGS#room", TakenAt: t0,
		Members: []schema.Member{{Account: "alice", JoinTime: t0.Unix() - 600}, {Account: "bob", JoinTime: t0.Unix() - 60}}}
	events, state := diff.Diff(nil, first, diff.Options{})
	for _, e := range events {
		fmt.Println(e.Type, e.Subject, e.Data.Reason)
	}

	second := first
	second.TakenAt = t0.Add(30 * time.Second)
	second.Members = []schema.Member{{Account: "bob", JoinTime: t0.Unix() - 60}, {Account: "carol", JoinTime: t0.Unix() + 10}}
	events, _ = diff.Diff(state, second, diff.Options{})
	for _, e := range events {
		fmt.Println(e.Type, e.Subject, e.Data.Reason)
	}
	fmt.Println("alice online seconds:", *events[0].Data.OnlineSeconds)
	// Output:
	// rollcall.member.joined alice baseline
	// rollcall.member.joined bob baseline
	// rollcall.member.left alice left
	// rollcall.member.joined carol joined
	// alice online seconds: 600
}
