package sink_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/sink"
)

// A daemon publishes each batch of events through a Fanout: it returns nil
// only once every sink has the events, retrying failing sinks meanwhile.
func ExampleFanout() {
	f := sink.NewFanout([]sink.Sink{sink.NewStdout(os.Stdout)}, sink.FanoutOptions{
		Retry:  sink.RetryOptions{InitialInterval: 500 * time.Millisecond, MaxInterval: 30 * time.Second},
		Logger: zap.NewNop(),
	})
	defer f.Close(context.Background())

	t := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	ev := schema.MemberJoined(1400000000, "@TGS#aRoom",
		schema.Member{Account: "alice", JoinTime: t.Unix()}, schema.ReasonBaseline, t, nil)
	if err := f.Publish(context.Background(), []schema.Event{ev}); err != nil {
		fmt.Println("not delivered:", err)
	}
	// Output:
	// {"specversion":"1.0","id":"fd6b48a9-4aa4-8716-9e3f-c5c9b8dc105d","source":"/tencent-im/1400000000/groups/@TGS%23aRoom","type":"rollcall.member.joined","subject":"alice","time":"2026-11-25T14:00:00Z","datacontenttype":"application/json","partitionkey":"@TGS#aRoom","data":{"sdkappid":1400000000,"group_id":"@TGS#aRoom","member_account":"alice","nick_name":"","avatar":"","join_time":1795615200,"observed_at":"2026-11-25T14:00:00Z","previous_observed_at":null,"reason":"baseline"}}
}
