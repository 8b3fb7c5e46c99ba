package poller_test

import (
	"context"
	"fmt"

	"github.com/rollcall-dev/rollcall/poller"
	"github.com/rollcall-dev/rollcall/schema"
)

func ExampleScheduler_RunOnce() {
	lister := poller.ListerFunc(func(ctx context.Context, groupID string) (schema.Snapshot, error) {
		return schema.Snapshot{Members: []schema.Member{{Account: "alice", JoinTime: 1700000000}}}, nil
	})
	handler := poller.HandlerFunc(func(ctx context.Context, snap schema.Snapshot) error {
		fmt.Println(snap.GroupID, len(snap.Members), "member(s)")
		return nil
	})
	s, err := poller.New(lister, handler, poller.Options{
		SDKAppID:    1400000000,
		Groups:      []string{"@TGS#aRoom"},
		Concurrency: 1,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Run(ctx) does the same once per interval until ctx ends; set
	// Options.DrainTimeout to let in-flight snapshots finish publishing
	// after a shutdown signal.
	if err := s.RunOnce(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output: @TGS#aRoom 1 member(s)
}
