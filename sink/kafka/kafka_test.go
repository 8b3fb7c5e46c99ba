package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/schematest"
	"github.com/rollcall-dev/rollcall/sink"
)

func publish(t testing.TB, s *Sink, evs []schema.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Publish(ctx, sink.NewBatch(evs)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func TestName(t *testing.T) {
	s, err := New(context.Background(), Options{Brokers: []string{"127.0.0.1:9"}, Topic: "rollcall.events"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if got, want := s.Name(), "kafka:rollcall.events"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
}

func TestStructuredMode(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "events"))
	s := newSink(t, c, Options{Topic: "events"})
	evs := append(groupEvents("@TGS#a", 3), schema.GroupDismissed(testAppID, "@TGS#a", time.Unix(1772366400, 0), nil, 1))
	publish(t, s, evs)

	recs := readRecords(t, c.ListenAddrs(), "events", len(evs))
	for i, r := range recs {
		want := map[string]string{"content-type": "application/cloudevents+json"}
		if got := headerMap(t, r); !reflect.DeepEqual(got, want) {
			t.Errorf("record %d headers = %v, want %v", i, got, want)
		}
		if string(r.Key) != "@TGS#a" {
			t.Errorf("record %d key = %q, want the group id", i, r.Key)
		}
		schematest.Validate(t, r.Value)
		wantJSON, _ := json.Marshal(evs[i])
		if string(r.Value) != string(wantJSON) {
			t.Errorf("record %d value:\n got %s\nwant %s", i, r.Value, wantJSON)
		}
	}
}

func TestBinaryMode(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "events"))
	s := newSink(t, c, Options{Topic: "events", Mode: ModeBinary})
	evs := append(groupEvents("@TGS#b", 3), schema.GroupDismissed(testAppID, "@TGS#b", time.Unix(1772366400, 5e8), nil, 1))
	publish(t, s, evs)

	recs := readRecords(t, c.ListenAddrs(), "events", len(evs))
	for i, r := range recs {
		e := evs[i]
		want := map[string]string{
			"ce_specversion":  "1.0",
			"ce_id":           e.ID,
			"ce_source":       e.Source,
			"ce_type":         e.Type,
			"ce_subject":      e.Subject,
			"ce_time":         e.Time.UTC().Format(time.RFC3339Nano),
			"ce_partitionkey": "@TGS#b",
			"content-type":    "application/json",
		}
		h := headerMap(t, r)
		if !reflect.DeepEqual(h, want) {
			t.Errorf("record %d headers = %v, want %v", i, h, want)
		}
		if string(r.Key) != "@TGS#b" {
			t.Errorf("record %d key = %q, want the group id", i, r.Key)
		}
		data, _ := e.MarshalData()
		if string(r.Value) != string(data) {
			t.Errorf("record %d value:\n got %s\nwant %s", i, r.Value, data)
		}
		// Rebuild the structured form from headers and value as a binary
		// mode consumer would, and check it against the schema and the
		// original event.
		env := map[string]any{
			"specversion": h["ce_specversion"], "id": h["ce_id"], "source": h["ce_source"],
			"type": h["ce_type"], "subject": h["ce_subject"], "time": h["ce_time"],
			"partitionkey": h["ce_partitionkey"], "datacontenttype": h["content-type"],
			"data": json.RawMessage(r.Value),
		}
		raw, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		schematest.Validate(t, raw)
		var back schema.Event
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("decode rebuilt event: %v", err)
		}
		b1, _ := json.Marshal(back)
		b2, _ := json.Marshal(e)
		if string(b1) != string(b2) {
			t.Errorf("record %d does not round-trip:\n got %s\nwant %s", i, b1, b2)
		}
	}
}

// TestPerGroupOrder checks the partitioning promise on a 3-partition
// topic: every event of a group lands on one partition, the one the Java
// client's murmur2 partitioner picks for the group id, in publish order,
// also when a Publish spans several chunks.
func TestPerGroupOrder(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(3, "events"))
	s := newSink(t, c, Options{Topic: "events", BatchSize: 7})

	groups := []string{"@TGS#1", "@TGS#2", "@TGS#3", "@TGS#4", "@TGS#5", "@TGS#6"}
	perGroup := make(map[string][]schema.Event)
	for _, g := range groups {
		perGroup[g] = groupEvents(g, 20)
	}
	// Interleave the groups, then publish in two calls.
	var all []schema.Event
	for i := range 20 {
		for _, g := range groups {
			all = append(all, perGroup[g][i])
		}
	}
	publish(t, s, all[:50])
	publish(t, s, all[50:])

	recs := readRecords(t, c.ListenAddrs(), "events", len(all))
	javaPartitioner := kgo.StickyKeyPartitioner(nil).ForTopic("events")
	got := make(map[string][]string)
	partitions := make(map[string]map[int32]bool)
	used := make(map[int32]bool)
	for _, r := range recs {
		var e schema.Event
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatal(err)
		}
		g := string(r.Key)
		got[g] = append(got[g], e.ID)
		if partitions[g] == nil {
			partitions[g] = make(map[int32]bool)
		}
		partitions[g][r.Partition] = true
		used[r.Partition] = true
		if want := int32(javaPartitioner.Partition(&kgo.Record{Key: r.Key}, 3)); r.Partition != want {
			t.Errorf("group %s on partition %d, the murmur2 partitioner picks %d", g, r.Partition, want)
		}
	}
	for _, g := range groups {
		if len(partitions[g]) != 1 {
			t.Errorf("group %s spread over partitions %v", g, partitions[g])
		}
		var want []string
		for _, e := range perGroup[g] {
			want = append(want, e.ID)
		}
		if !reflect.DeepEqual(got[g], want) {
			t.Errorf("group %s: events out of order or missing:\n got %v\nwant %v", g, got[g], want)
		}
	}
	if len(used) < 2 {
		t.Errorf("all groups on one partition (%v); the test does not exercise partitioning", used)
	}
}

func TestCompressionCodecs(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "none", "gzip", "snappy", "lz4", "zstd"))
	// Attribute codes of the Kafka record batch format.
	codes := map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
	for codec, code := range codes {
		t.Run(codec, func(t *testing.T) {
			s := newSink(t, c, Options{Topic: codec, Compression: codec})
			evs := groupEvents("@TGS#"+codec, 25)
			publish(t, s, evs)
			recs := readRecords(t, c.ListenAddrs(), codec, len(evs))
			for i, r := range recs {
				if got := r.Attrs.CompressionType(); got != code {
					t.Errorf("record %d compression = %d, want %d", i, got, code)
				}
				want, _ := json.Marshal(evs[i])
				if string(r.Value) != string(want) {
					t.Errorf("record %d value = %s, want %s", i, r.Value, want)
				}
			}
		})
	}
}

func TestCreateTopic(t *testing.T) {
	c := newCluster(t)
	s := newSink(t, c, Options{Topic: "fresh", CreateTopic: &CreateTopicOptions{Partitions: 3, ReplicationFactor: 1}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check after create: %v", err)
	}
	if n := partitions(ctx, t, s); n != 3 {
		t.Errorf("created %d partitions, want 3", n)
	}
	// A second sink finds the topic there: no error.
	newSink(t, c, Options{Topic: "fresh", CreateTopic: &CreateTopicOptions{}})
	evs := groupEvents("@TGS#c", 4)
	publish(t, s, evs)
	readRecords(t, c.ListenAddrs(), "fresh", len(evs))
}

// TestNoAutoCreate checks that without CreateTopic a missing topic stays
// missing, even on a broker that would auto-create it.
func TestNoAutoCreate(t *testing.T) {
	c := newCluster(t, kfake.AllowAutoTopicCreation())
	s := newSink(t, c, Options{Topic: "missing", WriteTimeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Check(ctx); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("Check = %v, want ErrTopicNotFound", err)
	}
	if err := s.Healthy(ctx); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("Healthy = %v, want ErrTopicNotFound", err)
	}
	err := s.Publish(ctx, sink.NewBatch(groupEvents("@TGS#x", 2)))
	if err == nil {
		t.Fatal("Publish to a missing topic succeeded")
	}
	if !strings.Contains(err.Error(), "kafka:missing") {
		t.Errorf("error %q does not name the sink", err)
	}
	if err := s.Check(ctx); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("after Publish, Check = %v: the topic was auto-created", err)
	}
}

func TestCancelledContext(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "events"))
	s := newSink(t, c, Options{Topic: "events"})

	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Publish(ctx, sink.NewBatch(groupEvents("@TGS#x", 3))); !errors.Is(err, context.Canceled) {
			t.Fatalf("Publish = %v, want context.Canceled", err)
		}
	})

	t.Run("during", func(t *testing.T) {
		publish(t, s, groupEvents("@TGS#warm", 1)) // metadata and connections ready

		// Hold the next produce request at the broker until the test is done
		// with it: Publish can then only return because of its ctx.
		entered := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
			c.DropControl()
			once.Do(func() {
				close(entered)
				c.SleepControl(func() { <-release })
			})
			return nil, nil, false
		})
		defer close(release)

		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- s.Publish(ctx, sink.NewBatch(groupEvents("@TGS#y", 3))) }()
		select {
		case <-entered:
		case <-time.After(30 * time.Second):
			t.Fatal("produce request never reached the broker")
		}
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Publish = %v, want context.Canceled", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Publish did not return after its ctx was cancelled while the broker held the request")
		}
	})
}

// TestCloseFlushes: a Publish cut short by its ctx leaves messages in
// kafka-go's partial batch; Close sends them.
func TestCloseFlushes(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "events"))
	s, err := New(context.Background(), Options{
		Brokers: c.ListenAddrs(), Topic: "events",
		BatchTimeout: time.Hour, // nothing but Close sends a partial batch
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	evs := groupEvents("@TGS#f", 5)
	if err := s.Publish(ctx, sink.NewBatch(evs)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish = %v, want a deadline error (batch held back)", err)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	if err := s.Close(cctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	recs := readRecords(t, c.ListenAddrs(), "events", len(evs))
	for i, r := range recs {
		var e schema.Event
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatal(err)
		}
		if e.ID != evs[i].ID {
			t.Errorf("record %d = %s, want %s", i, e.ID, evs[i].ID)
		}
	}
	// Close is idempotent.
	if err := s.Close(cctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestBrokerOutage stops the broker, checks that nothing is acknowledged
// while it is down, restarts it on the same port (state kept on disk) and
// checks that publishing resumes without losing acknowledged events.
func TestBrokerOutage(t *testing.T) {
	dir := t.TempDir()
	c1, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir), kfake.SeedTopics(1, "events"))
	if err != nil {
		t.Fatal(err)
	}
	addrs := c1.ListenAddrs()
	var port int
	if _, err := fmt.Sscanf(addrs[0][strings.LastIndex(addrs[0], ":")+1:], "%d", &port); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	s := newSink(t, c1, Options{Topic: "events", WriteTimeout: time.Second, Metrics: m})

	before := groupEvents("@TGS#before", 5)
	publish(t, s, before)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Healthy(ctx); err != nil {
		t.Fatalf("Healthy while up: %v", err)
	}

	c1.Close()

	if err := s.Healthy(ctx); err == nil {
		t.Error("Healthy while the broker is down = nil")
	}
	down := groupEvents("@TGS#down", 5)
	publishWhileDown(t, s, down)
	acked := testutil.ToFloat64(m.messages.WithLabelValues("events", resultAcked))
	if acked != float64(len(before)) {
		t.Errorf("acked messages = %v after the outage publish, want %d", acked, len(before))
	}
	if failed := testutil.ToFloat64(m.messages.WithLabelValues("events", resultFailed)); failed != float64(len(down)) {
		t.Errorf("failed messages = %v after the outage publish, want %d", failed, len(down))
	}

	c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir), kfake.Ports(port))
	if err != nil {
		t.Fatalf("restart on port %d: %v", port, err)
	}
	t.Cleanup(c2.Close)

	// The caller (sink.Fanout) retries with backoff; do the same.
	after := groupEvents("@TGS#after", 5)
	deadline := time.Now().Add(40 * time.Second)
	for {
		pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.Publish(pctx, sink.NewBatch(after))
		pcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Publish after restart still failing: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := s.Healthy(ctx); err != nil {
		t.Errorf("Healthy after restart: %v", err)
	}

	// Events published during the outage may or may not be there (kafka-go
	// may still have been retrying them when the broker came back); those
	// acknowledged before and after must be.
	want := make(map[string]bool)
	for _, e := range append(before, after...) {
		want[e.ID] = true
	}
	recs := readRecords(t, c2.ListenAddrs(), "events", len(before)+len(after))
	for _, r := range recs {
		var e schema.Event
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatal(err)
		}
		delete(want, e.ID)
	}
	if len(want) != 0 {
		t.Errorf("%d acknowledged events missing after the restart", len(want))
	}
}

func TestMetrics(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "events"))
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	s := newSink(t, c, Options{Topic: "events", Metrics: m})

	// Series exist from the start.
	if n, err := testutil.GatherAndCount(reg, "rollcall_kafka_messages_total"); err != nil || n != 2 {
		t.Fatalf("rollcall_kafka_messages_total series = %d (%v), want 2", n, err)
	}
	evs := groupEvents("@TGS#m", 12)
	publish(t, s, evs)
	if got := testutil.ToFloat64(m.messages.WithLabelValues("events", resultAcked)); got != 12 {
		t.Errorf("acked = %v, want 12", got)
	}
	var size int
	for _, e := range evs {
		b, _ := json.Marshal(e)
		size += len(b) + len(e.PartitionKey)
	}
	if got := testutil.ToFloat64(m.bytes.WithLabelValues("events")); got != float64(size) {
		t.Errorf("bytes = %v, want %d", got, size)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.Publish(ctx, sink.NewBatch(evs))
	if got := testutil.ToFloat64(m.messages.WithLabelValues("events", resultFailed)); got != 0 {
		// A ctx already done stops Publish before any write.
		t.Errorf("failed = %v, want 0", got)
	}

	// A nil *Metrics records nothing and does not panic.
	newSink(t, c, Options{Topic: "events"}).Publish(context.Background(), sink.NewBatch(evs[:1]))
}

// TestChunking pins chunkEnd: chunks never exceed BatchSize messages or
// batchBytes, and always make progress.
func TestChunking(t *testing.T) {
	s := &Sink{o: Options{BatchSize: 4}}
	small := make([]kafkaMessage, 10)
	if got := chunks(s, small); !reflect.DeepEqual(got, []int{4, 4, 2}) {
		t.Errorf("small messages chunked %v, want [4 4 2]", got)
	}
	big := make([]kafkaMessage, 3)
	for i := range big {
		big[i].Value = make([]byte, batchBytes/2)
	}
	if got := chunks(s, big); !reflect.DeepEqual(got, []int{1, 1, 1}) {
		t.Errorf("half-MiB messages chunked %v, want [1 1 1]", got)
	}
	huge := []kafkaMessage{{Value: make([]byte, 2*batchBytes)}}
	if got := chunks(s, huge); !reflect.DeepEqual(got, []int{1}) {
		t.Errorf("oversized message chunked %v, want [1]", got)
	}
}

func chunks(s *Sink, msgs []kafkaMessage) []int {
	var out []int
	for start := 0; start < len(msgs); {
		end := s.chunkEnd(msgs, start)
		out = append(out, end-start)
		start = end
	}
	return out
}

// TestCreateTopicWhileBrokerDown: with create_topic and no broker
// answering, New still succeeds; once the broker is up, Publish creates
// the topic (with the configured partitions) and writes.
func TestCreateTopicWhileBrokerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s, err := New(context.Background(), Options{Brokers: []string{fmt.Sprintf("127.0.0.1:%d", port)}, Topic: "later",
		WriteTimeout: time.Second, CreateTopic: &CreateTopicOptions{Partitions: 2, ReplicationFactor: 1}, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("New with the broker down: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	evs := groupEvents("@TGS#later", 3)
	publishWhileDown(t, s, evs)

	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
	if err != nil {
		t.Fatalf("start kfake on %d: %v", port, err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Publish(ctx, sink.NewBatch(evs)); err != nil {
		t.Fatalf("Publish once the broker is up: %v", err)
	}
	if n := partitions(ctx, t, s); n != 2 {
		t.Errorf("created %d partitions, want 2", n)
	}
	readRecords(t, c.ListenAddrs(), "later", len(evs))
}

// TestCreateTopicRefused: a broker refusing the topic (more replicas than
// brokers) is a configuration error at New.
func TestCreateTopicRefused(t *testing.T) {
	c := newCluster(t)
	_, err := New(context.Background(), Options{Brokers: c.ListenAddrs(), Topic: "t", WriteTimeout: 2 * time.Second,
		CreateTopic: &CreateTopicOptions{Partitions: 1, ReplicationFactor: 3}, Logger: zaptest.NewLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "create topic t") {
		t.Fatalf("New = %v, want the broker's refusal", err)
	}
}

// partitions is how many partitions the broker reports for s's topic.
func partitions(ctx context.Context, t *testing.T, s *Sink) int {
	t.Helper()
	topic, err := s.topicMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return len(topic.Partitions)
}

// publishWhileDown requires a Publish of evs, given 3s, to fail: the
// broker is down.
func publishWhileDown(t *testing.T, s *Sink, evs []schema.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.Publish(ctx, sink.NewBatch(evs)); err == nil {
		t.Fatal("Publish while the broker is down reported success")
	}
}
