package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"

	"github.com/rollcall-dev/rollcall/schema"
)

const testAppID = 1400000001

// newCluster starts a one-broker kfake cluster, closed at cleanup.
func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// newSink builds a sink for o, filling brokers and a test logger when
// unset, and closes it at cleanup.
func newSink(t testing.TB, c *kfake.Cluster, o Options) *Sink {
	t.Helper()
	if o.Brokers == nil {
		o.Brokers = c.ListenAddrs()
	}
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t)
	}
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// groupEvents returns n events of one group: joined and left events of
// distinct members, in a stable order.
func groupEvents(group string, n int) []schema.Event {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	prev := base.Add(-40 * time.Second)
	evs := make([]schema.Event, 0, n)
	for i := range n {
		m := schema.Member{
			Account:  fmt.Sprintf("%s-user-%04d", group, i),
			NickName: fmt.Sprintf("User %d", i),
			Avatar:   "https://example.com/a.png",
			JoinTime: base.Unix() - int64(100+i),
		}
		if i%3 == 2 {
			evs = append(evs, schema.MemberLeft(testAppID, group, m, schema.ReasonLeft, base, &prev, prev))
		} else {
			evs = append(evs, schema.MemberJoined(testAppID, group, m, schema.ReasonJoined, base, &prev))
		}
	}
	return evs
}

// readRecords reads n records from the start of topic, failing t when they
// do not arrive within 30s.
func readRecords(t testing.TB, addrs []string, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addrs...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: got %d of %d records: %v", topic, len(recs), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Logf("fetch %s/%d: %v", topic, p, err)
		})
		recs = append(recs, fs.Records()...)
	}
	if len(recs) > n {
		t.Fatalf("read %s: got %d records, want %d", topic, len(recs), n)
	}
	return recs
}

func headerMap(t testing.TB, r *kgo.Record) map[string]string {
	t.Helper()
	m := make(map[string]string, len(r.Headers))
	for _, h := range r.Headers {
		if _, dup := m[h.Key]; dup {
			t.Errorf("header %s repeated", h.Key)
		}
		m[h.Key] = string(h.Value)
	}
	return m
}
