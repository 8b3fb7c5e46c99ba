package kafka

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap/zaptest"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/sink"
	"github.com/rollcall-dev/rollcall/sink/sinktest"
)

const conformancePartitions = 3

// kfakeHarness runs sinktest's suite against a one-broker kfake cluster
// per subtest, persisted to a temporary directory so that an outage can
// restart it on the same port with its data.
type kfakeHarness struct {
	mode    string
	dir     string
	port    int
	cluster *kfake.Cluster
}

func (h *kfakeHarness) start(t *testing.T) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DataDir(h.dir), kfake.SeedTopics(conformancePartitions, "conformance")}
	if h.port != 0 {
		opts = append(opts, kfake.Ports(h.port))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	addr := c.ListenAddrs()[0]
	h.port, _ = strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	h.cluster = c
	t.Cleanup(c.Close)
}

func (h *kfakeHarness) harness() sinktest.Harness {
	return sinktest.Harness{
		New: func(t *testing.T) sink.Sink {
			h.dir, h.port = t.TempDir(), 0
			h.start(t)
			s, err := New(context.Background(), Options{
				Brokers: h.cluster.ListenAddrs(), Topic: "conformance", Mode: h.mode,
				WriteTimeout: time.Second, Logger: zaptest.NewLogger(t),
			})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Read: h.read,
		Outage: &sinktest.Outage{
			Stop:  func(*testing.T) { h.cluster.Close() },
			Start: h.start,
		},
		CheckMessage: func(t *testing.T, ev schema.Event, r sinktest.Received) {
			if r.Key != ev.PartitionKey {
				t.Errorf("event %s: key %q, want %q", ev.ID, r.Key, ev.PartitionKey)
			}
			want := map[string]string{HeaderContentType: schema.ContentType}
			if h.mode == ModeBinary {
				want = map[string]string{
					HeaderSpecVersion: schema.SpecVersion, HeaderID: ev.ID, HeaderSource: ev.Source,
					HeaderType: ev.Type, HeaderSubject: ev.Subject,
					HeaderTime:         ev.Time.UTC().Format(time.RFC3339Nano),
					HeaderPartitionKey: ev.PartitionKey, HeaderContentType: schema.DataContentType,
				}
			}
			if !reflect.DeepEqual(r.Headers, want) {
				t.Errorf("event %s: headers %v, want %v", ev.ID, r.Headers, want)
			}
		},
	}
}

// read consumes the topic up to the end offsets it has when read starts.
func (h *kfakeHarness) read(t *testing.T) []sinktest.Received {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.cluster.ListenAddrs()...),
		kgo.ConsumeTopics("conformance"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "conformance"
	for p := range conformancePartitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = int32(p)
		rp.Timestamp = -1 // latest
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	remaining := 0
	end := make(map[int32]int64)
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			end[rp.Partition] = rp.Offset
			remaining += int(rp.Offset)
		}
	}
	byPartition := make(map[int32][]sinktest.Received)
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read: %d records missing: %v", remaining, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end[r.Partition] {
				return
			}
			remaining--
			byPartition[r.Partition] = append(byPartition[r.Partition], h.received(t, r))
		})
	}
	var out []sinktest.Received
	for p := range conformancePartitions {
		out = append(out, byPartition[int32(p)]...)
	}
	return out
}

// received decodes a record; in binary mode it rebuilds the structured
// form from the ce_ headers, as a binary-mode consumer would.
func (h *kfakeHarness) received(t *testing.T, r *kgo.Record) sinktest.Received {
	t.Helper()
	rec := sinktest.Received{Key: string(r.Key), Headers: make(map[string]string), Raw: r.Value}
	for _, hd := range r.Headers {
		rec.Headers[hd.Key] = string(hd.Value)
	}
	if h.mode == ModeBinary {
		hd := rec.Headers
		raw, err := json.Marshal(map[string]any{
			"specversion": hd[HeaderSpecVersion], "id": hd[HeaderID], "source": hd[HeaderSource],
			"type": hd[HeaderType], "subject": hd[HeaderSubject], "time": hd[HeaderTime],
			"partitionkey": hd[HeaderPartitionKey], "datacontenttype": hd[HeaderContentType],
			"data": json.RawMessage(r.Value),
		})
		if err != nil {
			t.Fatal(err)
		}
		rec.Raw = raw
	}
	if err := json.Unmarshal(rec.Raw, &rec.Event); err != nil {
		t.Errorf("decode record %d/%d: %v", r.Partition, r.Offset, err)
	}
	return rec
}

func TestConformance(t *testing.T) {
	for _, mode := range []string{ModeStructured, ModeBinary} {
		t.Run(mode, func(t *testing.T) {
			h := &kfakeHarness{mode: mode}
			sinktest.Run(t, h.harness())
		})
	}
}
