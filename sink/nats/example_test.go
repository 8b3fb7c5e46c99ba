package nats_test

import (
	"fmt"
	"time"

	"github.com/rollcall-dev/rollcall/schema"
	natssink "github.com/rollcall-dev/rollcall/sink/nats"
)

// Group ids become a single subject token, so consumers can subscribe to
// one app, one group or one kind of change with wildcards.
func ExampleSubject() {
	observed := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	alice := schema.Member{Account: "alice", JoinTime: 1795600000}
	e := schema.MemberJoined(1400000000, "@TGS#aRoom.1", alice, schema.ReasonJoined, observed, nil)
	fmt.Println(natssink.Subject("rollcall", e))
	fmt.Println(natssink.GroupToken("直播 room"))
	// Output:
	// rollcall.1400000000.%40TGS%23aRoom%2E1.joined
	// %E7%9B%B4%E6%92%AD%20room
}
