package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rollcall-dev/rollcall/diff/natsstore"
	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/sink/nats/natstest"
)

// replicaEnv is one replica's config over a shared state bucket: its own
// file sink and HTTP port, shard index of count.
func replicaEnv(t *testing.T, api *tencenttest.Server, groups []string, url string, index, count int, create bool) *e2eEnv {
	t.Helper()
	return replicaEnvWith(t, api, groups, url, index, count, create, "127.0.0.1:0", "")
}

// replicaEnvWith is replicaEnv listening on listen, with extraSinks (YAML
// list entries) after the file sink.
func replicaEnvWith(t *testing.T, api *tencenttest.Server, groups []string, url string, index, count int, create bool, listen, extraSinks string) *e2eEnv {
	t.Helper()
	e := newEnv(t, api, groups, "")
	e.saveConfig(e.apiYAML("500ms", groups) + fmt.Sprintf(`poll:
  interval: 1s
state:
  driver: nats
  url: %s
  create: %t
shard:
  count: %d
  index: %d
sinks:
  - type: file
    path: %s
    retry: {initial_interval: 50ms, max_interval: 200ms}
%shttp:
  listen: %s
shutdown_timeout: %s
`, url, create, count, index, e.eventDir, extraSinks, listen, opsShutdownTimeout))
	return e
}

// byGroup splits events by group id.
func byGroup(evs []schema.Event) map[string][]schema.Event {
	m := map[string][]schema.Event{}
	for _, e := range evs {
		m[e.Data.GroupID] = append(m[e.Data.GroupID], e)
	}
	return m
}

// TestE2ENATSStateUnreachableAtStart: no NATS server at start → the daemon
// is alive, not ready (naming the state), polls nothing and retries; once
// the server is up it reads the bucket, becomes ready and polls.
func TestE2ENATSStateUnreachableAtStart(t *testing.T) {
	nb := natstest.New(t, nil) // its port is reserved; nothing listens yet
	api := newAPI(t, tencenttest.Options{})
	groups := []string{"@TGS#kv1"}
	api.AddGroup(groups[0], member("alice", 1795600000))
	// A fixed port: the daemon's own server takes it over from the one
	// that answers while it waits.
	e := replicaEnvWith(t, api, groups, nb.URL(), 0, 1, true, freeAddr(t), "")
	d := startOpsDaemon(t, e, api.Key())

	if code, _ := d.get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d while the state store is unreachable, want 200 (alive)", code)
	}
	code, body := d.get("/readyz")
	if code == http.StatusOK || !strings.Contains(body, "state") {
		t.Fatalf("/readyz = %d %q while the state store is unreachable, want a failure naming state", code, body)
	}
	d.waitLog(10*time.Second, "a retry", func(l opsLog) bool { return l.msg() == "the state store is still unreachable" })
	if n := api.Calls("get_members"); n != 0 {
		t.Fatalf("%d get_members calls while the state store is unreachable, want none", n)
	}

	nb.Start()
	evs := e.waitEvents(1)
	if evs[0].Data.MemberAccount != "alice" || evs[0].Data.Reason != schema.ReasonBaseline {
		t.Fatalf("first event %+v, want alice's baseline", evs[0].Data)
	}
	opsEventually(t, 30*time.Second, "/readyz 200", func() bool {
		code, _ := d.get("/readyz")
		return code == http.StatusOK
	})
	d.stop()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestE2ENATSStateStopWhileWaiting: SIGTERM while the daemon waits for
// its state store ends it at once, cleanly (exit 0), having polled
// nothing.
func TestE2ENATSStateStopWhileWaiting(t *testing.T) {
	nb := natstest.New(t, nil) // never started
	api := newAPI(t, tencenttest.Options{})
	groups := []string{"@TGS#kv1"}
	api.AddGroup(groups[0], member("alice", 1795600000))
	e := replicaEnvWith(t, api, groups, nb.URL(), 0, 1, true, freeAddr(t), "")
	d := startOpsDaemon(t, e, api.Key())
	d.waitLog(10*time.Second, "a retry", func(l opsLog) bool { return l.msg() == "the state store is still unreachable" })
	d.stop() // exit 0 within the wait, or it fails
	if n := api.Calls("get_members"); n != 0 {
		t.Fatalf("%d get_members calls, want none", n)
	}
}

// TestE2ENATSStateBucketMissing: without state.create a missing bucket is
// exit 1 naming it, before any API call.
func TestE2ENATSStateBucketMissing(t *testing.T) {
	nb := natstest.Start(t, nil)
	api := newAPI(t, tencenttest.Options{})
	groups := []string{"@TGS#kv1"}
	api.AddGroup(groups[0], member("alice", 1795600000))
	e := replicaEnv(t, api, groups, nb.URL(), 0, 1, false)
	r := runCLI(t, api.Key(), nil, "run", "--config", e.config, "--once")
	if r.code != 1 || !strings.Contains(r.stderr, natsstore.DefaultBucket) {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 naming the bucket %s", r.code, r.stderr, natsstore.DefaultBucket)
	}
	if n := api.Calls("get_members"); n != 0 {
		t.Fatalf("%d get_members calls, want none", n)
	}
}

// TestE2ENATSStateReplicasReshard: two replicas over one bucket poll each
// group exactly once between them; then the count goes 2 → 3 while
// members leave: every leave is reported once, nobody re-baselines, and
// no event is false.
func TestE2ENATSStateReplicasReshard(t *testing.T) {
	nb := natstest.Start(t, nil)
	api := newAPI(t, tencenttest.Options{})
	var groups []string
	for i := range 12 {
		g := fmt.Sprintf("@TGS#shard%02d", i)
		groups = append(groups, g)
		api.AddGroup(g, member("stay-"+g, 1795600000), member("goes-"+g, 1795600001))
	}
	var envs []*e2eEnv
	var ds []*opsDaemon
	for i := range 2 {
		e := replicaEnv(t, api, groups, nb.URL(), i, 2, true)
		envs = append(envs, e)
		ds = append(ds, startOpsDaemon(t, e, api.Key()))
	}
	all := func() []schema.Event {
		var evs []schema.Event
		for _, e := range envs {
			evs = append(evs, e.events()...)
		}
		return evs
	}
	opsEventually(t, 30*time.Second, "every group's baseline", func() bool { return len(all()) >= 2*len(groups) })
	// Each group was baselined by exactly one replica.
	owner := map[string]int{}
	for i, e := range envs {
		for g := range byGroup(e.events()) {
			if prev, dup := owner[g]; dup {
				t.Fatalf("group %s polled by replicas %d and %d", g, prev, i)
			}
			owner[g] = i
		}
	}
	if len(owner) != len(groups) {
		t.Fatalf("%d of %d groups have events", len(owner), len(groups))
	}
	for _, d := range ds {
		d.stop()
	}

	// Three replicas now; meanwhile every "goes-" member leaves.
	for _, g := range groups {
		api.Leave(g, "goes-"+g)
	}
	ds = nil
	for i := range 3 {
		e := replicaEnv(t, api, groups, nb.URL(), i, 3, true)
		envs = append(envs, e)
		ds = append(ds, startOpsDaemon(t, e, api.Key()))
	}
	opsEventually(t, 30*time.Second, "every leave", func() bool {
		n := 0
		for _, e := range all() {
			if e.Type == schema.TypeMemberLeft {
				n++
			}
		}
		return n >= len(groups)
	})
	time.Sleep(2 * time.Second) // a few more cycles: nothing else may come
	for _, d := range ds {
		d.stop()
	}
	evs := all()
	seen := map[string]bool{}
	for _, ev := range evs {
		key := ev.Type + " " + ev.Data.Reason + " " + ev.Data.MemberAccount
		if seen[key] {
			t.Errorf("reported twice: %s", key)
		}
		seen[key] = true
	}
	for _, g := range groups {
		for _, want := range []string{
			schema.TypeMemberJoined + " " + schema.ReasonBaseline + " stay-" + g,
			schema.TypeMemberJoined + " " + schema.ReasonBaseline + " goes-" + g,
			schema.TypeMemberLeft + " " + schema.ReasonLeft + " goes-" + g,
		} {
			if !seen[want] {
				t.Errorf("missing: %s", want)
			}
		}
	}
	if len(evs) != 3*len(groups) {
		t.Errorf("%d events, want %d (a baseline of each member and each leave, once)", len(evs), 3*len(groups))
	}

	// The operators' view of the shared bucket: every group, one line each,
	// from any replica's configuration.
	r := runCLI(t, api.Key(), nil, "state", "list", "--json", "--config", envs[0].config)
	if r.code != 0 {
		t.Fatalf("state list: exit %d\n%s", r.code, r.stderr)
	}
	if n := strings.Count(strings.TrimSpace(r.stdout), "\n") + 1; n != len(groups) {
		t.Errorf("state list --json printed %d lines, want %d:\n%s", n, len(groups), r.stdout)
	}
}

// TestE2ENATSStateUndecodableValue: a group whose value cannot be decoded
// stops with an error naming its key; the other groups go on.
func TestE2ENATSStateUndecodableValue(t *testing.T) {
	nb := natstest.Start(t, nil)
	api := newAPI(t, tencenttest.Options{})
	groups := []string{"@TGS#bad", "@TGS#good"}
	api.AddGroup(groups[0], member("alice", 1795600000))
	api.AddGroup(groups[1], member("bob", 1795600000))
	ctx := context.Background()
	js := nb.JetStream(t)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: natsstore.DefaultBucket})
	if err != nil {
		t.Fatal(err)
	}
	badKey := natsstore.Key(api.SDKAppID(), groups[0])
	if _, err := kv.Put(ctx, badKey, []byte("not a state")); err != nil {
		t.Fatal(err)
	}
	e := replicaEnv(t, api, groups, nb.URL(), 0, 1, false)
	d := startOpsDaemon(t, e, api.Key())
	evs := e.waitEvents(1)
	d.waitLog(20*time.Second, "an error naming the key", func(l opsLog) bool {
		return strings.Contains(fmt.Sprint(l), badKey)
	})
	api.Join(groups[1], member("carol", 1795600100))
	evs = e.waitEvents(2)
	d.stop()
	for _, ev := range evs {
		if ev.Data.GroupID == groups[0] {
			t.Errorf("event of the undecodable group: %+v", ev.Data)
		}
	}
	if got := evs[len(evs)-1].Data; got.MemberAccount != "carol" || got.Reason != schema.ReasonJoined {
		t.Errorf("last event %+v, want carol's join", got)
	}
	if v, err := kv.Get(ctx, badKey); err != nil || string(v.Value()) != "not a state" {
		t.Errorf("the undecodable value changed: %v %v", v, err)
	}
}

func idSet(evs []schema.Event) map[string]bool {
	m := map[string]bool{}
	for _, e := range evs {
		m[e.ID] = true
	}
	return m
}

// TestE2ENATSStateZombie: a replica paused (SIGSTOP), replaced by another
// with the same shard, and resumed publishes nothing its replacement did
// not: its writes from what it held before the pause are refused.
func TestE2ENATSStateZombie(t *testing.T) {
	nb := natstest.Start(t, nil)
	api := newAPI(t, tencenttest.Options{})
	groups := []string{"@TGS#z1", "@TGS#z2"}
	for _, g := range groups {
		api.AddGroup(g, member("u1-"+g, 1795600000), member("u2-"+g, 1795600001))
	}
	ea := replicaEnv(t, api, groups, nb.URL(), 0, 1, true)
	a := startOpsDaemon(t, ea, api.Key())
	before := idSet(ea.waitEvents(4))
	a.signal(syscall.SIGSTOP)
	t.Cleanup(func() { _ = a.cmd.Process.Signal(syscall.SIGCONT) })

	eb := replicaEnv(t, api, groups, nb.URL(), 0, 1, true)
	b := startOpsDaemon(t, eb, api.Key())
	for _, g := range groups {
		api.Leave(g, "u1-"+g)
		api.Join(g, member("u3-"+g, 1795600100))
	}
	bEvents := eb.waitEvents(4) // a leave and a join per group
	a.signal(syscall.SIGCONT)
	opsEventually(t, 30*time.Second, "the resumed replica to poll again", func() bool {
		return a.metric("rollcall_polls_total", "result", "ok") > 2
	})
	time.Sleep(2 * time.Second)
	refused := a.metric("rollcall_state_conflicts_total") + a.metric("rollcall_stale_listings_total")
	a.stop()
	b.stop()

	owner := idSet(eb.events())
	for _, ev := range ea.events() {
		if !before[ev.ID] && !owner[ev.ID] {
			t.Errorf("the resumed replica published %s %s %s, which its replacement did not", ev.Type, ev.Data.Reason, ev.Data.MemberAccount)
		}
	}
	for _, ev := range bEvents {
		if ev.Data.Reason == schema.ReasonBaseline {
			t.Errorf("the replacement re-baselined: %+v", ev.Data)
		}
	}
	if refused == 0 {
		t.Error("the resumed replica counted no conflict nor stale listing: it cannot have noticed its replacement")
	}
}

// TestE2ENATSStateSuccessorRepublishes: a replica killed between its
// outbox and its commit (one of its sinks is down, so the batch is never
// acknowledged) leaves the batch in the bucket; its successor publishes
// it again first, with the same ids.
func TestE2ENATSStateSuccessorRepublishes(t *testing.T) {
	state := natstest.Start(t, nil)
	broker := natstest.New(t, nil) // the NATS sink's server: down at first
	api := newAPI(t, tencenttest.Options{})
	groups := []string{"@TGS#k1"}
	api.AddGroup(groups[0], member("alice", 1795600000))
	mk := func() *e2eEnv {
		return replicaEnvWith(t, api, groups, state.URL(), 0, 1, true, "127.0.0.1:0", natsDaemonSinkYAML(broker.URL()))
	}
	e1 := mk()
	d1 := startProc(t, api.Key(), "run", "--config", e1.config)
	first := e1.waitEvents(1) // the file sink took the baseline; the NATS sink cannot
	time.Sleep(500 * time.Millisecond)
	_ = d1.cmd.Process.Kill()
	d1.wait(t, 10*time.Second)

	broker.Start()
	e2 := mk()
	d2 := startOpsDaemon(t, e2, api.Key())
	again := e2.waitEvents(1)
	d2.stop()
	if again[0].ID != first[0].ID || again[0].Data.Reason != schema.ReasonBaseline {
		t.Fatalf("the successor published %s (%s), want the batch again with id %s", again[0].ID, again[0].Data.Reason, first[0].ID)
	}
	js := broker.JetStream(t)
	if n := natstest.StreamMsgs(t, js, "ROLLCALL"); n != 1 {
		t.Errorf("the NATS sink holds %d events, want the one batch", n)
	}
}

// TestE2EStateMoveFileToNATS: export from the file driver, import into the
// bucket, and the nats driver continues each group: a leave is reported,
// nobody is re-baselined.
func TestE2EStateMoveFileToNATS(t *testing.T) {
	nb := natstest.Start(t, nil)
	api := newAPI(t, tencenttest.Options{})
	groups := []string{"@TGS#mv1", "@TGS#mv2"}
	for _, g := range groups {
		api.AddGroup(g, member("stay-"+g, 1795600000), member("goes-"+g, 1795600001))
	}
	fileEnv := newEnv(t, api, groups, "")
	fileEnv.mustOnce()
	if n := len(fileEnv.events()); n != 4 {
		t.Fatalf("%d baseline events on the file driver, want 4", n)
	}
	export := filepath.Join(t.TempDir(), "state.jsonl")
	if r := runCLI(t, api.Key(), nil, "state", "export", "--config", fileEnv.config, "--out", export); r.code != 0 {
		t.Fatalf("state export: exit %d\n%s", r.code, r.stderr)
	}

	natsEnv := replicaEnv(t, api, groups, nb.URL(), 0, 1, true)
	// Import opens the bucket as the daemon does (state.create: true).
	if r := runCLI(t, api.Key(), nil, "state", "import", "--config", natsEnv.config, "--in", export); r.code != 0 {
		t.Fatalf("state import: exit %d\n%s", r.code, r.stderr)
	}
	for _, g := range groups {
		api.Leave(g, "goes-"+g)
	}
	d := startOpsDaemon(t, natsEnv, api.Key())
	evs := natsEnv.waitEvents(2)
	time.Sleep(1500 * time.Millisecond) // another cycle: nothing else may come
	d.stop()
	evs = natsEnv.events()
	if len(evs) != 2 {
		t.Fatalf("%d events after the move, want the 2 leaves: %+v", len(evs), evs)
	}
	for _, ev := range evs {
		if ev.Type != schema.TypeMemberLeft || !strings.HasPrefix(ev.Data.MemberAccount, "goes-") {
			t.Errorf("after the move: %s %s %s, want only the leaves", ev.Type, ev.Data.Reason, ev.Data.MemberAccount)
		}
	}
}
