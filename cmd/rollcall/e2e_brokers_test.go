package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/schematest"
	"github.com/rollcall-dev/rollcall/sink/nats/natstest"
)

// These tests run the real binary against brokers started in the test
// process: a kfake Kafka cluster and an embedded nats-server with
// JetStream. What reaches a broker is read back with an ordinary consumer.

const (
	brokerTopic  = "rollcall.members"
	brokerStream = "ROLLCALL"
)

// fastRetry is the retry block of the broker sinks: short, so a --once run
// against a stopped broker gives up after about a second.
const fastRetry = "{initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 1s}"

func kafkaSinkYAML(addr, mode string) string {
	return fmt.Sprintf(`  - type: kafka
    brokers: [%q]
    topic: %s
    mode: %s
    write_timeout: 1s
    create_topic: {partitions: 3, replication: 1}
    retry: %s
`, addr, brokerTopic, mode, fastRetry)
}

func natsSinkYAML(url string) string { return natsSinkRetryYAML(url, fastRetry) }

// natsSinkRetryYAML is a JetStream sink with the given retry block.
func natsSinkRetryYAML(url, retry string) string {
	return fmt.Sprintf(`  - type: nats
    url: [%q]
    jetstream: true
    stream: {name: %s, create: true}
    publish_timeout: 1s
    retry: %s
`, url, brokerStream, retry)
}

// startKfake starts a one-broker kfake cluster that persists to dir, so it
// can be stopped and started again in place; port 0 picks a free port.
func startKfake(t *testing.T, dir string, port int) *kfake.Cluster {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DataDir(dir)}
	if port != 0 {
		opts = append(opts, kfake.Ports(port))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func addrPort(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// readStream reads the whole stream on rollcall.> with an ordered consumer
// and requires exactly n messages.
func readStream(t *testing.T, js jetstream.JetStream, n int) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, brokerStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"rollcall.>"}})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for len(out) < n {
		batch, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
		}
		if ctx.Err() != nil {
			t.Fatalf("read stream: got %d of %d messages", len(out), n)
		}
	}
	if got := natstest.StreamMsgs(t, js, brokerStream); got != uint64(n) {
		t.Fatalf("stream holds %d messages, want %d", got, n)
	}
	return out
}

// kafkaCounts returns the topic's partition count and how many records it
// holds over all partitions.
func kafkaCounts(t *testing.T, addr string) (partitions int, records int64) {
	t.Helper()
	conn, err := kafkago.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(brokerTopic)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range parts {
		pc, err := kafkago.DialLeader(ctx, "tcp", addr, brokerTopic, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		first, last, err := pc.ReadOffsets()
		pc.Close()
		if err != nil {
			t.Fatal(err)
		}
		records += last - first
	}
	return len(parts), records
}

// consumeKafka reads n records of the topic as a member of consumer group
// group, committing each, and closes the reader (leaving the group).
func consumeKafka(t *testing.T, addr, group string, n int) []kafkago.Message {
	t.Helper()
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: []string{addr}, GroupID: group, Topic: brokerTopic,
		StartOffset: kafkago.FirstOffset, MaxWait: 200 * time.Millisecond,
		HeartbeatInterval: 500 * time.Millisecond,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var out []kafkago.Message
	for len(out) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("consume %s as %s: got %d of %d records: %v", brokerTopic, group, len(out), n, err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit offset %d: %v", m.Offset, err)
		}
		out = append(out, m)
	}
	return out
}

// received is an event as a broker delivered it, reduced to what the tests
// compare.
type received struct {
	group, id, typ, subject string
}

// decodeKafka checks one record against the CloudEvents Kafka binding in
// mode and the event the file sink holds under the same id.
func decodeKafka(t *testing.T, mode string, m kafkago.Message) received {
	t.Helper()
	h := map[string]string{}
	for _, kv := range m.Headers {
		if _, dup := h[kv.Key]; dup {
			t.Errorf("header %s repeated", kv.Key)
		}
		h[kv.Key] = string(kv.Value)
	}
	key := string(m.Key)
	if mode == "structured" {
		schematest.Validate(t, m.Value)
		if ct := h["content-type"]; ct != schema.ContentType {
			t.Errorf("content-type = %q, want %q", ct, schema.ContentType)
		}
		var ev schema.Event
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.PartitionKey != key || ev.Data.GroupID != key {
			t.Errorf("event %s: key %q, partition key %q, group %q", ev.ID, key, ev.PartitionKey, ev.Data.GroupID)
		}
		return received{group: key, id: ev.ID, typ: ev.Type, subject: ev.Subject}
	}
	var d schema.Data
	if err := json.Unmarshal(m.Value, &d); err != nil {
		t.Fatalf("binary value is not event data: %v", err)
	}
	if d.GroupID != key || h["ce_partitionkey"] != key {
		t.Errorf("key %q, data.group_id %q, ce_partitionkey %q", key, d.GroupID, h["ce_partitionkey"])
	}
	if h["ce_specversion"] != "1.0" || h["content-type"] != schema.DataContentType {
		t.Errorf("ce_specversion %q, content-type %q", h["ce_specversion"], h["content-type"])
	}
	if want := schema.Source(d.SDKAppID, key); h["ce_source"] != want {
		t.Errorf("ce_source = %q, want %q", h["ce_source"], want)
	}
	if _, err := time.Parse(time.RFC3339Nano, h["ce_time"]); err != nil {
		t.Errorf("ce_time %q: %v", h["ce_time"], err)
	}
	if h["ce_id"] == "" || h["ce_type"] == "" {
		t.Errorf("ce_id %q, ce_type %q: want both set", h["ce_id"], h["ce_type"])
	}
	return received{group: key, id: h["ce_id"], typ: h["ce_type"], subject: h["ce_subject"]}
}

// decodeNATS checks one JetStream message: subject layout, Nats-Msg-Id and
// a body that validates.
func decodeNATS(t *testing.T, sdkappid uint64, tokens map[string]string, m jetstream.Msg) received {
	t.Helper()
	schematest.Validate(t, m.Data())
	var ev schema.Event
	if err := json.Unmarshal(m.Data(), &ev); err != nil {
		t.Fatal(err)
	}
	tok, ok := tokens[ev.Data.GroupID]
	if !ok {
		t.Fatalf("event %s of unexpected group %q", ev.ID, ev.Data.GroupID)
	}
	kind := ev.Type[strings.LastIndexByte(ev.Type, '.')+1:]
	if want := fmt.Sprintf("rollcall.%d.%s.%s", sdkappid, tok, kind); m.Subject() != want {
		t.Errorf("subject = %q, want %q", m.Subject(), want)
	}
	if id := m.Headers().Get(natsgo.MsgIdHdr); id != ev.ID {
		t.Errorf("Nats-Msg-Id = %q, want the event id %q", id, ev.ID)
	}
	return received{group: ev.Data.GroupID, id: ev.ID, typ: ev.Type, subject: ev.Subject}
}

// sameDelivery requires got to hold every event of want exactly once with
// the same type and subject, and each group's events in emitted order
// (groups publish concurrently, so only per-group order is defined).
func sameDelivery(t *testing.T, sinkName string, got []received, want []schema.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d events, want %d", sinkName, len(got), len(want))
	}
	byID := map[string]schema.Event{}
	wantOrder := map[string][]string{}
	for _, ev := range want {
		byID[ev.ID] = ev
		wantOrder[ev.Data.GroupID] = append(wantOrder[ev.Data.GroupID], ev.ID)
	}
	seen := map[string]bool{}
	gotOrder := map[string][]string{}
	for _, r := range got {
		ev, ok := byID[r.id]
		switch {
		case !ok:
			t.Errorf("%s: unexpected event %s (%s %s)", sinkName, r.id, r.typ, r.subject)
			continue
		case seen[r.id]:
			t.Errorf("%s: event %s delivered twice", sinkName, r.id)
		case r.typ != ev.Type || r.subject != ev.Subject || r.group != ev.Data.GroupID:
			t.Errorf("%s: event %s is %s/%s/%s, want %s/%s/%s", sinkName, r.id, r.group, r.typ, r.subject, ev.Data.GroupID, ev.Type, ev.Subject)
		}
		seen[r.id] = true
		gotOrder[r.group] = append(gotOrder[r.group], r.id)
	}
	for g, ids := range wantOrder {
		if !slices.Equal(gotOrder[g], ids) {
			t.Errorf("%s: group %s order = %v, want %v", sinkName, g, gotOrder[g], ids)
		}
	}
}

func eventIDs(evs []schema.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// threeGroups fills api with three groups and returns their ids.
func threeGroups(api *tencenttest.Server) []string {
	groups := []string{"@TGS#k1", "@TGS#k2", "@TGS#k3"}
	api.AddGroup(groups[0], member("alice", 1795600000), member("bob", 1795600010))
	api.AddGroup(groups[1], member("carol", 1795600020))
	api.AddGroup(groups[2], member("dave", 1795600030), member("erin", 1795600040), member("frank", 1795600050))
	return groups
}

// churnThree changes every group of threeGroups.
func churnThree(api *tencenttest.Server, groups []string) {
	api.Leave(groups[0], "alice")
	api.Join(groups[0], member("gina", 1795600100))
	api.Join(groups[1], member("hank", 1795600110))
	api.Leave(groups[2], "dave")
}

// TestE2EKafka runs --once twice over three groups into a 3-partition
// topic the sink creates, and reads the records back in a consumer group.
func TestE2EKafka(t *testing.T) {
	for _, mode := range []string{"structured", "binary"} {
		t.Run(mode, func(t *testing.T) {
			c := startKfake(t, t.TempDir(), 0)
			addr := c.ListenAddrs()[0]
			api := newAPI(t, tencenttest.Options{})
			groups := threeGroups(api)
			e := newEnv(t, api, groups, "")
			e.writeConfig(groups, "", kafkaSinkYAML(addr, mode))

			e.mustOnce()
			churnThree(api, groups)
			e.mustOnce()
			want := e.events()
			if len(want) != 10 {
				t.Fatalf("file sink holds %d events, want 6 baseline + 4 changes: %v", len(want), summary(want))
			}
			parts, records := kafkaCounts(t, addr)
			if parts != 3 || records != int64(len(want)) {
				t.Fatalf("topic has %d partitions and %d records, want 3 and %d", parts, records, len(want))
			}

			group := "e2e-" + mode
			msgs := consumeKafka(t, addr, group, len(want))
			got := make([]received, len(msgs))
			partOf := map[string]int{}
			for i, m := range msgs {
				got[i] = decodeKafka(t, mode, m)
				if p, ok := partOf[got[i].group]; ok && p != m.Partition {
					t.Errorf("group %s on partitions %d and %d", got[i].group, p, m.Partition)
				}
				partOf[got[i].group] = m.Partition
			}
			sameDelivery(t, "kafka", got, want)

			// The group committed its offsets: after one more change the
			// same consumer group reads only the new event.
			api.Join(groups[2], member("ivan", 1795600200))
			e.mustOnce()
			more := e.events()[len(want):]
			if len(more) != 1 {
				t.Fatalf("third run emitted %v, want one join", summary(more))
			}
			msgs = consumeKafka(t, addr, group, 1)
			sameDelivery(t, "kafka (after commit)", []received{decodeKafka(t, mode, msgs[0])}, more)
			if _, records := kafkaCounts(t, addr); records != int64(len(want)+1) {
				t.Errorf("topic holds %d records, want %d", records, len(want)+1)
			}
		})
	}
}

// TestE2ENATSJetStream checks subjects (with a group id that needs
// escaping), Nats-Msg-Id, and JetStream de-duplication of a re-publish
// after the state is lost.
func TestE2ENATSJetStream(t *testing.T) {
	nb := natstest.Start(t, nil)
	api := newAPI(t, tencenttest.Options{})
	const odd, plain = "@TGS#a.b*c", "@TGS#plain"
	api.AddGroup(odd, member("alice", 1795600000), member("bob", 1795600010))
	api.AddGroup(plain, member("carol", 1795600020))
	groups := []string{odd, plain}
	e := newEnv(t, api, groups, "")
	e.writeConfig(groups, "", natsSinkYAML(nb.URL()))

	e.mustOnce()
	api.Leave(odd, "alice")
	api.Join(plain, member("dave", 1795600100))
	e.mustOnce()
	want := e.events()
	if len(want) != 5 {
		t.Fatalf("file sink holds %v, want 3 baseline + 2 changes", summary(want))
	}

	// Tokens spelled out rather than computed with nats.GroupToken, so a
	// change of the escaping shows here.
	tokens := map[string]string{odd: "%40TGS%23a%2Eb%2Ac", plain: "%40TGS%23plain"}
	js := nb.JetStream(t)
	msgs := readStream(t, js, len(want))
	got := make([]received, len(msgs))
	for i, m := range msgs {
		got[i] = decodeNATS(t, api.SDKAppID(), tokens, m)
	}
	sameDelivery(t, "nats", got, want)

	// Losing the state re-emits the current members as a baseline with the
	// ids they had; the stream drops them as duplicates.
	if err := os.RemoveAll(e.stateDir); err != nil {
		t.Fatal(err)
	}
	e.mustOnce()
	again := e.events()[len(want):]
	if got, wantN := summary(again), 3; len(got) != wantN {
		t.Fatalf("after a state reset the run emitted %v, want a baseline of bob, carol, dave", got)
	}
	for _, id := range eventIDs(again) {
		if !slices.Contains(eventIDs(want), id) {
			t.Errorf("re-published event %s has an id not published before", id)
		}
	}
	if n := natstest.StreamMsgs(t, js, brokerStream); n != uint64(len(want)) {
		t.Errorf("stream grew to %d messages after the re-publish, want %d (dedup by Nats-Msg-Id)", n, len(want))
	}
}

// TestE2EAllSinks publishes to Kafka, NATS JetStream and a file in one
// run: all three get the same events.
func TestE2EAllSinks(t *testing.T) {
	c := startKfake(t, t.TempDir(), 0)
	kaddr := c.ListenAddrs()[0]
	nb := natstest.Start(t, nil)
	api := newAPI(t, tencenttest.Options{})
	groups := threeGroups(api)
	e := newEnv(t, api, groups, "")
	e.writeConfig(groups, "", kafkaSinkYAML(kaddr, "structured")+natsSinkYAML(nb.URL()))

	e.mustOnce()
	churnThree(api, groups)
	e.mustOnce()
	want := e.events()
	if len(want) != 10 {
		t.Fatalf("file sink holds %v, want 10 events", summary(want))
	}

	var fromKafka []received
	for _, m := range consumeKafka(t, kaddr, "e2e-all", len(want)) {
		fromKafka = append(fromKafka, decodeKafka(t, "structured", m))
	}
	sameDelivery(t, "kafka", fromKafka, want)

	tokens := map[string]string{}
	for _, g := range groups {
		tokens[g] = "%40TGS%23" + strings.TrimPrefix(g, "@TGS#")
	}
	var fromNATS []received
	for _, m := range readStream(t, nb.JetStream(t), len(want)) {
		fromNATS = append(fromNATS, decodeNATS(t, api.SDKAppID(), tokens, m))
	}
	sameDelivery(t, "nats", fromNATS, want)
}

// apiGate puts the fake API behind a handler that can hold one get_members
// call until the test releases it: a way to act (stop a broker) at a known
// point of a poll without sleeping.
type apiGate struct {
	api *tencenttest.Server
	mu  sync.Mutex
	// arrived is closed when the held call arrives; nil when not armed.
	arrived chan struct{}
	release chan struct{}
}

// newGatedAPI serves a fake API through an apiGate; api.URL points at it.
func newGatedAPI(t *testing.T, o tencenttest.Options) (*tencenttest.Server, *apiGate) {
	t.Helper()
	g := &apiGate{api: tencenttest.NewHandler(o)}
	srv := httptest.NewServer(g)
	g.api.URL = srv.URL
	t.Cleanup(srv.Close)
	// Registered after srv.Close, so it runs first: a held call must end
	// before Close can return.
	t.Cleanup(g.open)
	return g.api, g
}

func (g *apiGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	arrived, release := g.arrived, g.release
	if arrived != nil && strings.HasSuffix(r.URL.Path, "/get_members") {
		g.arrived = nil
		close(arrived)
	} else {
		release = nil
	}
	g.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	g.api.ServeHTTP(w, r)
}

// hold arms the gate: the next get_members call waits until open. The
// returned channel is closed when that call has arrived.
func (g *apiGate) hold() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.arrived, g.release = make(chan struct{}), make(chan struct{})
	return g.arrived
}

// open releases a held call (if any) and disarms the gate.
func (g *apiGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.release != nil {
		close(g.release)
	}
	g.arrived, g.release = nil, nil
}

// waitClosed fails t when ch is not closed within d.
func waitClosed(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

// lockedBuffer collects a process's output while tests read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a rollcall process running in the background.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *lockedBuffer
	done           chan struct{}
	code           int
}

// startProc starts the binary with ROLLCALL_TEST_KEY=key; it is killed at
// cleanup if still running.
func startProc(t *testing.T, key string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binPath, args...), stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "ROLLCALL_TEST_KEY="+key)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		err := p.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Logf("killed rollcall at cleanup; stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// wait returns the exit code, failing t when the process runs longer than d.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		t.Fatalf("rollcall still running after %s; stderr:\n%s", d, p.stderr.String())
		return 0
	}
}

// readStateDir returns every committed state file under dir (not the
// outboxes of batches in flight) with its content.
func readStateDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".outbox") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[path] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestE2ESinkOutageOnce stops the broker while a --once run is listing: the
// run fails after the sink's retry budget without committing, and the next
// run, with the broker back, publishes the same event ids.
func TestE2ESinkOutageOnce(t *testing.T) {
	type broker struct {
		yaml    string
		stop    func()
		restart func()
		// read returns everything the broker holds, n records in all.
		read func(n int) []received
	}
	for name, setup := range map[string]func(t *testing.T, sdkappid uint64, groups []string) broker{
		"kafka": func(t *testing.T, _ uint64, _ []string) broker {
			dir := t.TempDir()
			c := startKfake(t, dir, 0)
			addr := c.ListenAddrs()[0]
			n := 0
			return broker{
				yaml:    kafkaSinkYAML(addr, "structured"),
				stop:    c.Close,
				restart: func() { startKfake(t, dir, addrPort(t, addr)) },
				read: func(want int) []received {
					n++
					var out []received
					for _, m := range consumeKafka(t, addr, fmt.Sprintf("outage-%d", n), want) {
						out = append(out, decodeKafka(t, "structured", m))
					}
					if _, records := kafkaCounts(t, addr); records != int64(want) {
						t.Errorf("topic holds %d records, want %d", records, want)
					}
					return out
				},
			}
		},
		"nats": func(t *testing.T, sdkappid uint64, groups []string) broker {
			nb := natstest.Start(t, nil)
			tokens := map[string]string{}
			for _, g := range groups {
				tokens[g] = "%40TGS%23" + strings.TrimPrefix(g, "@TGS#")
			}
			return broker{
				yaml: natsSinkYAML(nb.URL()), stop: nb.Stop, restart: nb.Start,
				read: func(n int) []received {
					var out []received
					for _, m := range readStream(t, nb.JetStream(t), n) {
						out = append(out, decodeNATS(t, sdkappid, tokens, m))
					}
					return out
				},
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			api, gate := newGatedAPI(t, tencenttest.Options{})
			groups := []string{"@TGS#out"}
			api.AddGroup(groups[0], member("alice", 1795600000), member("bob", 1795600010))
			b := setup(t, api.SDKAppID(), groups)
			e := newEnv(t, api, groups, "")
			e.writeConfig(groups, "", b.yaml)

			e.mustOnce()
			baseline := e.events()
			state := readStateDir(t, e.stateDir)
			if len(state) == 0 {
				t.Fatal("no state committed after the first run")
			}

			api.Leave(groups[0], "alice")
			api.Join(groups[0], member("carol", 1795600100))
			arrived := gate.hold()
			p := startProc(t, api.Key(), "run", "--config", e.config, "--once")
			waitClosed(t, arrived, 30*time.Second, "the run's get_members call")
			b.stop()
			gate.open()
			if code := p.wait(t, 30*time.Second); code != exitFailure {
				t.Fatalf("run --once with the broker down exited %d, want %d; stderr:\n%s", code, exitFailure, p.stderr.String())
			}
			if !strings.Contains(p.stderr.String(), "publish to "+name) {
				t.Errorf("stderr does not name the failing sink %q:\n%s", name, p.stderr.String())
			}
			if now := readStateDir(t, e.stateDir); !maps.Equal(now, state) {
				t.Errorf("state changed although the broker never acknowledged:\nbefore %v\nafter  %v", state, now)
			}
			if ob, _ := filepath.Glob(filepath.Join(e.stateDir, "*.outbox")); len(ob) != 1 {
				t.Errorf("outbox files after the failed run: %v, want the group's", ob)
			}
			// The file sink acknowledged the changes before the run failed.
			changes := e.events()[len(baseline):]
			if got, want := summary(changes), []string{"member.left/left/alice", "member.joined/joined/carol"}; !slices.Equal(got, want) {
				t.Fatalf("outage run wrote %v to the file sink, want %v", got, want)
			}

			b.restart()
			e.mustOnce()
			retried := e.events()[len(baseline)+len(changes):]
			if !slices.Equal(eventIDs(retried), eventIDs(changes)) {
				t.Errorf("the retry run published %v, want the same ids as the failed run %v", summary(retried), summary(changes))
			}
			sameDelivery(t, name, b.read(len(baseline)+len(changes)), append(slices.Clone(baseline), changes...))
			if ob, _ := filepath.Glob(filepath.Join(e.stateDir, "*.outbox")); len(ob) != 0 {
				t.Errorf("outbox files after the batch was acknowledged: %v", ob)
			}
		})
	}
}
