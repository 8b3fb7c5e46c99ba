package kafka

import (
	"reflect"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/sink"
)

// oracleMessage is the per-event encoding messages replaced: keys, values
// and headers (in this order) must stay exactly these.
func oracleMessage(mode string, e schema.Event) kafka.Message {
	m := kafka.Message{Key: []byte(e.PartitionKey)}
	if mode == ModeStructured {
		m.Value, _ = e.MarshalJSON()
		m.Headers = []kafka.Header{{Key: HeaderContentType, Value: []byte(schema.ContentType)}}
		return m
	}
	m.Value, _ = e.MarshalData()
	add := func(k, v string) { m.Headers = append(m.Headers, kafka.Header{Key: k, Value: []byte(v)}) }
	add(HeaderSpecVersion, schema.SpecVersion)
	add(HeaderID, e.ID)
	add(HeaderSource, e.Source)
	add(HeaderType, e.Type)
	if e.Subject != "" {
		add(HeaderSubject, e.Subject)
	}
	add(HeaderTime, e.Time.UTC().Format(time.RFC3339Nano))
	add(HeaderPartitionKey, e.PartitionKey)
	add(HeaderContentType, schema.DataContentType)
	return m
}

func TestMessagesMatchPerEventEncoding(t *testing.T) {
	at := time.Date(2026, 11, 25, 14, 0, 0, 123456789, time.FixedZone("CST", 8*3600))
	evs := append(groupEvents("@TGS#a", 3), groupEvents("g<&>\u2028", 2)...)
	evs = append(evs, schema.GroupDismissed(testAppID, "@TGS#a", at, &at, 3), groupEvents("@TGS#a", 1)[0])
	evs[1].Subject = "" // no ce_subject header
	evs[2].Time = at
	for _, mode := range []string{ModeStructured, ModeBinary} {
		t.Run(mode, func(t *testing.T) {
			s := &Sink{o: Options{Mode: mode}}
			got := s.messages(sink.NewBatch(evs))
			if len(got) != len(evs) {
				t.Fatalf("%d messages, want %d", len(got), len(evs))
			}
			for i, e := range evs {
				if want := oracleMessage(mode, e); !reflect.DeepEqual(got[i], want) {
					t.Errorf("message %d:\n got %+v\nwant %+v", i, got[i], want)
				}
			}
		})
	}
}

// Publish reuses its message slice but must not keep the batch's bytes
// (keys, values, headers) alive until the next Publish: a quiet daemon
// would otherwise pin its last batch.
func TestPublishDoesNotKeepTheBatch(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(1, "events"))
	for _, mode := range []string{ModeStructured, ModeBinary} {
		t.Run(mode, func(t *testing.T) {
			s := newSink(t, c, Options{Topic: "events", Mode: mode})
			publish(t, s, groupEvents("@TGS#a", 3))
			if cap(s.msgs) < 3 {
				t.Fatalf("message slice of capacity %d, want it kept for reuse", cap(s.msgs))
			}
			for i, m := range s.msgs[:cap(s.msgs)] {
				if !reflect.DeepEqual(m, kafka.Message{}) {
					t.Errorf("message %d still set after Publish: %+v", i, m)
				}
			}
		})
	}
}
