package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/sink/nats/natstest"
)

// These tests run `rollcall run` as a daemon subprocess, the way it is
// operated: HTTP endpoints, metrics, signals, reloads and fatal errors.

// opsShutdownTimeout is shutdown_timeout in the daemon configs.
const opsShutdownTimeout = 3 * time.Second

// newDaemonEnv is newEnv for groups with a daemon's config (see
// writeDaemonConfig) listing sinks after the file sink.
func newDaemonEnv(t *testing.T, api *tencenttest.Server, groups []string, sinks string) *e2eEnv {
	t.Helper()
	e := newEnv(t, api, groups, "")
	e.writeDaemonConfig(groups, sinks)
	return e
}

// writeDaemonConfig (re)writes e's config for a daemon: 1s polls, an HTTP
// server on a free port, shutdown_timeout 3s, the file sink plus sinks
// (YAML list entries). Sink retries are unbounded in the daemon, so only
// their pace is set.
func (e *e2eEnv) writeDaemonConfig(groups []string, sinks string) {
	e.t.Helper()
	e.saveConfig(e.apiYAML("500ms", groups) + fmt.Sprintf(`poll:
  interval: 1s
state:
  driver: file
  path: %s
sinks:
  - type: file
    path: %s
    retry: {initial_interval: 50ms, max_interval: 200ms}
%shttp:
  listen: 127.0.0.1:0
shutdown_timeout: %s
`, e.stateDir, e.eventDir, sinks, opsShutdownTimeout))
}

// natsDaemonSinkYAML is a JetStream sink for a daemon (retry pace only).
func natsDaemonSinkYAML(url string) string {
	return natsSinkRetryYAML(url, "{initial_interval: 50ms, max_interval: 200ms}")
}

// opsDaemon is a running `rollcall run` with its HTTP address.
type opsDaemon struct {
	*proc
	t    *testing.T
	addr string
}

// startOpsDaemon starts the daemon over e's config with key and waits for
// its HTTP server.
func startOpsDaemon(t *testing.T, e *e2eEnv, key string) *opsDaemon {
	t.Helper()
	d := &opsDaemon{proc: startProc(t, key, "run", "--config", e.config), t: t}
	entry := d.waitLog(10*time.Second, "the http server", func(l opsLog) bool { return l.msg() == "http server listening" })
	d.addr, _ = entry["addr"].(string)
	if d.addr == "" {
		t.Fatalf("no addr in %v", entry)
	}
	return d
}

// opsLog is one JSON log entry of the daemon.
type opsLog map[string]any

func (l opsLog) msg() string   { s, _ := l["msg"].(string); return s }
func (l opsLog) level() string { s, _ := l["level"].(string); return s }

func (l opsLog) strings(key string) []string {
	v, _ := l[key].([]any)
	out := make([]string, 0, len(v))
	for _, x := range v {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// logs parses the daemon's stderr so far; non-JSON lines are skipped.
func (d *opsDaemon) logs() []opsLog {
	var out []opsLog
	sc := bufio.NewScanner(strings.NewReader(d.stderr.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l opsLog
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

// waitLog waits for a log entry matching pred and returns it.
func (d *opsDaemon) waitLog(timeout time.Duration, what string, pred func(opsLog) bool) opsLog {
	d.t.Helper()
	var found opsLog
	opsEventually(d.t, timeout, what+" in the log", func() bool {
		for _, l := range d.logs() {
			if pred(l) {
				found = l
				return true
			}
		}
		select {
		case <-d.done:
			d.t.Fatalf("rollcall exited %d while waiting for %s; stderr:\n%s", d.code, what, d.stderr.String())
		default:
		}
		return false
	})
	return found
}

// get fetches path from the daemon's HTTP server.
func (d *opsDaemon) get(path string) (int, string) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.addr+path, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func (d *opsDaemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("send %s: %v", sig, err)
	}
}

// stop sends SIGTERM and requires a clean exit.
func (d *opsDaemon) stop() {
	d.t.Helper()
	d.signal(syscall.SIGTERM)
	if code := d.wait(d.t, 30*time.Second); code != 0 {
		d.t.Fatalf("rollcall exited %d after SIGTERM; stderr:\n%s", code, d.stderr.String())
	}
}

// opsEventually polls cond every 50ms until it holds, failing t after timeout.
func opsEventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// opsSample is one sample of the text exposition format.
type opsSample struct {
	name   string
	labels map[string]string
	value  float64
}

var opsLabelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// scrape returns /metrics as the declared families and the samples.
func (d *opsDaemon) scrape() (families map[string]string, samples []opsSample) {
	d.t.Helper()
	code, body := d.get("/metrics")
	if code != http.StatusOK {
		d.t.Fatalf("/metrics: HTTP %d", code)
	}
	families = map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(f, " ")
			families[name] = typ
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			d.t.Fatalf("metrics line %q: %v", line, err)
		}
		s := opsSample{name: line[:i], labels: map[string]string{}, value: v}
		if j := strings.IndexByte(s.name, '{'); j >= 0 {
			for _, m := range opsLabelRE.FindAllStringSubmatch(s.name[j:], -1) {
				s.labels[m[1]] = m[2]
			}
			s.name = s.name[:j]
		}
		samples = append(samples, s)
	}
	return families, samples
}

// metric returns the value of the sample name with the given labels, -1
// when there is none.
func (d *opsDaemon) metric(name string, labels ...string) float64 {
	d.t.Helper()
	_, samples := d.scrape()
	for _, s := range samples {
		if s.name != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if match {
			return s.value
		}
	}
	return -1
}

// requestsFor counts the fake API's get_members calls about group.
func requestsFor(api *tencenttest.Server, group string) int {
	n := 0
	for _, r := range api.Requests() {
		if r.Command == "get_members" && r.GroupID == group {
			n++
		}
	}
	return n
}

// waitEvents waits until the file sink holds at least n events.
func (e *e2eEnv) waitEvents(n int) []schema.Event {
	e.t.Helper()
	var evs []schema.Event
	opsEventually(e.t, 20*time.Second, fmt.Sprintf("%d events in the file sink", n), func() bool {
		evs = e.events()
		return len(evs) >= n
	})
	return evs
}

// opsMetricFamilies are the families the README documents; each must be
// on /metrics once a cycle has run.
var opsMetricFamilies = []string{
	"rollcall_api_calls_total", "rollcall_api_call_duration_seconds", "rollcall_ratelimit_wait_seconds",
	"rollcall_usersig_refreshes_total", "rollcall_polls_total", "rollcall_poll_cycle_duration_seconds",
	"rollcall_poll_lag_seconds", "rollcall_poll_interval_seconds", "rollcall_poll_cycle_seconds", "rollcall_groups_polled", "rollcall_groups_stale",
	"rollcall_last_cycle_timestamp_seconds", "rollcall_snapshot_members", "rollcall_snapshots_truncated_total",
	"rollcall_members_tracked", "rollcall_members_out_of_view", "rollcall_events_total", "rollcall_sink_publish_duration_seconds",
	"rollcall_sink_publish_errors_total", "rollcall_sink_backlog_events", "rollcall_sink_events_published_total",
	"rollcall_state_commits_total", "rollcall_state_commit_failures_total", "rollcall_build_info", "rollcall_ready",
	// The broker sinks' own families.
	"rollcall_kafka_messages_total", "rollcall_kafka_message_bytes_total", "rollcall_kafka_write_duration_seconds",
	"rollcall_nats_connected", "rollcall_nats_disconnects_total", "rollcall_nats_reconnects_total",
	"rollcall_nats_duplicate_acks_total",
}

// TestE2EOpsHealthAndMetrics checks /healthz, /readyz and that /metrics
// has every documented family after the first cycle, with no group id or
// member account (or the key) anywhere in it.
func TestE2EOpsHealthAndMetrics(t *testing.T) {
	kc := startKfake(t, t.TempDir(), 0)
	nb := natstest.Start(t, nil)
	api := newAPI(t, tencenttest.Options{})
	groups := []string{"@TGS#ops1", "@TGS#ops2"}
	api.AddGroup(groups[0], member("alice", 1795600000), member("bob", 1795600010))
	api.AddGroup(groups[1], member("carol", 1795600020))
	e := newDaemonEnv(t, api, groups, kafkaSinkYAML(kc.ListenAddrs()[0], "structured")+natsDaemonSinkYAML(nb.URL()))
	d := startOpsDaemon(t, e, api.Key())

	if code, body := d.get("/healthz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	e.waitEvents(3)
	opsEventually(t, 20*time.Second, `rollcall_polls_total{result="ok"} >= 2`, func() bool {
		return d.metric("rollcall_polls_total", "result", "ok") >= 2
	})
	opsEventually(t, 20*time.Second, "/readyz 200", func() bool {
		code, _ := d.get("/readyz")
		return code == http.StatusOK
	})

	families, samples := d.scrape()
	for _, f := range opsMetricFamilies {
		if _, ok := families[f]; !ok {
			t.Errorf("/metrics has no family %s", f)
		}
	}
	forbidden := []string{"alice", "bob", "carol"}
	for _, s := range samples {
		for k, v := range s.labels {
			if slices.Contains(forbidden, v) || strings.Contains(v, "@TGS#") || strings.Contains(v, api.Key()) {
				t.Errorf("%s has label %s=%q: a member account, group id or secret", s.name, k, v)
			}
		}
	}
	if v := d.metric("rollcall_events_total", "type", "joined", "reason", "baseline"); v != 3 {
		t.Errorf(`rollcall_events_total{type="joined",reason="baseline"} = %v, want 3`, v)
	}
	if v := d.metric("rollcall_sink_events_published_total", "sink", "nats"); v != 3 {
		t.Errorf(`rollcall_sink_events_published_total{sink="nats"} = %v, want 3`, v)
	}
	if v := d.metric("rollcall_nats_connected", "sink", "nats"); v != 1 {
		t.Errorf(`rollcall_nats_connected{sink="nats"} = %v, want 1`, v)
	}
	if v := d.metric("rollcall_groups_polled"); v != 2 {
		t.Errorf("rollcall_groups_polled = %v, want 2", v)
	}
	d.stop()
	if strings.Contains(d.stderr.String(), api.Key()) {
		t.Error("the secret key appears in the log")
	}
}

// TestE2EOpsReadyzFollowsNATS stops and restarts the NATS server under a
// running daemon: /readyz fails naming the sink, polling pauses instead of
// piling up API calls, and nothing produced during the outage is lost.
func TestE2EOpsReadyzFollowsNATS(t *testing.T) {
	nb := natstest.Start(t, nil)
	api := newAPI(t, tencenttest.Options{})
	groups := []string{"@TGS#r1", "@TGS#r2"}
	api.AddGroup(groups[0], member("alice", 1795600000))
	api.AddGroup(groups[1], member("bob", 1795600010))
	e := newDaemonEnv(t, api, groups, natsDaemonSinkYAML(nb.URL()))
	d := startOpsDaemon(t, e, api.Key())

	e.waitEvents(2)
	opsEventually(t, 20*time.Second, "/readyz 200 with NATS up", func() bool {
		code, _ := d.get("/readyz")
		return code == http.StatusOK
	})

	nb.Stop()
	var body string
	opsEventually(t, 20*time.Second, "/readyz 503 with NATS down", func() bool {
		var code int
		code, body = d.get("/readyz")
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(body, "sink nats") {
		t.Errorf("/readyz body does not name the nats sink:\n%s", body)
	}

	// Changes while NATS is down: the next poll of each group lists them,
	// the file sink takes them, and the publish to NATS keeps retrying.
	api.Join(groups[0], member("carol", 1795600100))
	api.Leave(groups[1], "bob")
	during := e.waitEvents(4)
	if got, want := summary(during[2:]), []string{"member.joined/joined/carol", "member.left/left/bob"}; !slices.Equal(sortedCopy(got), sortedCopy(want)) {
		t.Fatalf("changes during the outage = %v, want %v", got, want)
	}
	callsBefore := map[string]int{}
	for _, g := range groups {
		callsBefore[g] = requestsFor(api, g)
	}
	// A few cycles in which both groups' polls are still in flight.
	skipped := d.metric("rollcall_polls_total", "result", "skipped")
	opsEventually(t, 20*time.Second, "three more skipped polls per group", func() bool {
		return d.metric("rollcall_polls_total", "result", "skipped") >= skipped+6
	})
	for _, g := range groups {
		if extra := requestsFor(api, g) - callsBefore[g]; extra > 1 {
			t.Errorf("group %s: %d more get_members calls while its publish was blocked, want at most 1", g, extra)
		}
	}
	opsEventually(t, 20*time.Second, "rollcall_ready 0", func() bool { return d.metric("rollcall_ready") == 0 })

	nb.Start()
	opsEventually(t, 30*time.Second, "/readyz 200 after NATS is back", func() bool {
		code, _ := d.get("/readyz")
		return code == http.StatusOK
	})
	want := e.events()
	tokens := map[string]string{groups[0]: "%40TGS%23r1", groups[1]: "%40TGS%23r2"}
	js := nb.JetStream(t)
	opsEventually(t, 20*time.Second, "every event in the stream", func() bool {
		return natstest.StreamMsgs(t, js, brokerStream) >= uint64(len(want))
	})
	var got []received
	for _, m := range readStream(t, js, len(want)) {
		got = append(got, decodeNATS(t, api.SDKAppID(), tokens, m))
	}
	sameDelivery(t, "nats", got, want)
	d.stop()
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// blockedPublish starts a daemon over a NATS sink, lets it commit a
// baseline, stops NATS and changes the group, and returns once the change
// was listed and the publish to NATS is retrying.
func blockedPublish(t *testing.T) (*e2eEnv, *natstest.Server, *opsDaemon, map[string]string) {
	t.Helper()
	nb := natstest.Start(t, nil)
	api := newAPI(t, tencenttest.Options{})
	groups := []string{"@TGS#sig"}
	api.AddGroup(groups[0], member("alice", 1795600000))
	e := newDaemonEnv(t, api, groups, natsDaemonSinkYAML(nb.URL()))
	d := startOpsDaemon(t, e, api.Key())
	e.waitEvents(1)
	opsEventually(t, 20*time.Second, "the baseline committed", func() bool {
		return d.metric("rollcall_state_commits_total") >= 1
	})
	state := readStateDir(t, e.stateDir)

	nb.Stop()
	api.Leave(groups[0], "alice")
	api.Join(groups[0], member("bob", 1795600100))
	e.waitEvents(3)
	opsEventually(t, 20*time.Second, "a failed publish to nats", func() bool {
		return d.metric("rollcall_sink_publish_errors_total", "sink", "nats") >= 1
	})
	return e, nb, d, state
}

// TestE2EOpsSIGHUPThenSIGTERMDuringBlockedPublish: a reload while a
// publish is stuck behind a down sink is applied, and does not stop the
// daemon from seeing the SIGTERM that follows.
func TestE2EOpsSIGHUPThenSIGTERMDuringBlockedPublish(t *testing.T) {
	e, nb, d, _ := blockedPublish(t)
	e.api.AddGroup("@TGS#new", member("carol", 1795600200))
	e.writeDaemonConfig([]string{"@TGS#sig", "@TGS#new"}, natsDaemonSinkYAML(nb.URL()))
	d.signal(syscall.SIGHUP)
	d.waitLog(10*time.Second, "the reload", func(l opsLog) bool {
		return l.msg() == "configuration reloaded" && slices.Equal(l.strings("groups_added"), []string{"@TGS#new"})
	})
	d.signal(syscall.SIGTERM)
	if code := d.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGHUP then SIGTERM, want 0; stderr:\n%s", code, d.stderr.String())
	}
}

// TestE2EOpsSIGTERMDuringBlockedPublish sends SIGTERM while a publish to
// NATS is retrying: the daemon exits 0 after shutdown_timeout without
// committing the unacknowledged snapshot, and a restart delivers it.
func TestE2EOpsSIGTERMDuringBlockedPublish(t *testing.T) {
	e, nb, d, state := blockedPublish(t)

	start := time.Now()
	d.signal(syscall.SIGTERM)
	code := d.wait(t, 30*time.Second)
	t.Logf("exit %d %s after SIGTERM (shutdown_timeout %s)", code, time.Since(start).Round(100*time.Millisecond), opsShutdownTimeout)
	if code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0; stderr:\n%s", code, d.stderr.String())
	}
	if now := readStateDir(t, e.stateDir); !maps.Equal(now, state) {
		t.Errorf("state changed although NATS never acknowledged the changes")
	}

	nb.Start()
	d2 := startOpsDaemon(t, e, e.api.Key())
	// The restart lists the same change and publishes it with the same ids.
	all := e.waitEvents(5)
	want := uniqueByID(all)
	if len(want) != 3 {
		t.Fatalf("file sink: %v, want the baseline and one change, the change written twice", summary(all))
	}
	js := nb.JetStream(t)
	opsEventually(t, 20*time.Second, "every event in the stream", func() bool {
		return natstest.StreamMsgs(t, js, brokerStream) >= uint64(len(want))
	})
	var got []received
	for _, m := range readStream(t, js, len(want)) {
		got = append(got, decodeNATS(t, e.api.SDKAppID(), map[string]string{"@TGS#sig": "%40TGS%23sig"}, m))
	}
	sameDelivery(t, "nats", got, want)
	d2.stop()
}

// TestE2EOpsSecondSignal: a second SIGTERM while draining exits 130 at once.
func TestE2EOpsSecondSignal(t *testing.T) {
	e, _, d, state := blockedPublish(t)
	d.signal(syscall.SIGTERM)
	d.waitLog(10*time.Second, "the first signal", func(l opsLog) bool {
		return strings.HasPrefix(l.msg(), "signal received")
	})
	d.signal(syscall.SIGTERM)
	if code := d.wait(t, 30*time.Second); code != exitAbort {
		t.Fatalf("exit code %d after a second SIGTERM, want %d; stderr:\n%s", code, exitAbort, d.stderr.String())
	}
	if !strings.Contains(d.stderr.String(), "second signal") {
		t.Errorf("no second-signal log line:\n%s", d.stderr.String())
	}
	if now := readStateDir(t, e.stateDir); !maps.Equal(now, state) {
		t.Errorf("state changed although NATS never acknowledged the changes")
	}
}

// uniqueByID drops later events whose id was seen before.
func uniqueByID(evs []schema.Event) []schema.Event {
	seen := map[string]bool{}
	var out []schema.Event
	for _, ev := range evs {
		if !seen[ev.ID] {
			seen[ev.ID] = true
			out = append(out, ev)
		}
	}
	return out
}

// TestE2EOpsSIGHUPReload adds and removes a group with SIGHUP, then sends a
// SIGHUP over an invalid file, which is logged and ignored.
func TestE2EOpsSIGHUPReload(t *testing.T) {
	api := newAPI(t, tencenttest.Options{})
	keep, drop, add := "@TGS#h1", "@TGS#h2", "@TGS#h3"
	api.AddGroup(keep, member("alice", 1795600000))
	api.AddGroup(drop, member("bob", 1795600010))
	api.AddGroup(add, member("carol", 1795600020), member("dave", 1795600030))
	e := newEnv(t, api, []string{keep, drop}, "")
	e.writeDaemonConfig([]string{keep, drop}, "")
	d := startOpsDaemon(t, e, api.Key())
	e.waitEvents(2)

	e.writeDaemonConfig([]string{keep, add}, "")
	d.signal(syscall.SIGHUP)
	l := d.waitLog(10*time.Second, "configuration reloaded", func(l opsLog) bool { return l.msg() == "configuration reloaded" })
	if got := l.strings("groups_added"); !slices.Equal(got, []string{add}) {
		t.Errorf("groups_added = %v, want [%s]", got, add)
	}
	if got := l.strings("groups_removed"); !slices.Equal(got, []string{drop}) {
		t.Errorf("groups_removed = %v, want [%s]", got, drop)
	}
	evs := e.waitEvents(4)
	var added []string
	for _, ev := range evs[2:] {
		if ev.Data.GroupID == add {
			added = append(added, strings.TrimPrefix(ev.Type, "rollcall.")+"/"+ev.Data.Reason+"/"+ev.Subject)
		}
	}
	if want := []string{"member.joined/baseline/carol", "member.joined/baseline/dave"}; !slices.Equal(added, want) {
		t.Errorf("added group's events = %v, want %v", added, want)
	}

	// The removed group is not polled again (one poll may have been in
	// flight) while the kept one is polled three more times.
	dropCalls, keepCalls := requestsFor(api, drop), requestsFor(api, keep)
	opsEventually(t, 20*time.Second, "three more polls of the kept group", func() bool {
		return requestsFor(api, keep) >= keepCalls+3
	})
	if extra := requestsFor(api, drop) - dropCalls; extra > 1 {
		t.Errorf("removed group polled %d more times after the reload", extra)
	}

	if err := os.WriteFile(e.config, []byte("poll:\n  interval: 10ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.signal(syscall.SIGHUP)
	bad := d.waitLog(10*time.Second, "the reload error", func(l opsLog) bool {
		return l.level() == "error" && strings.Contains(l.msg(), "configuration invalid")
	})
	if s := fmt.Sprint(bad); !strings.Contains(s, "tencent.sdkappid") && !strings.Contains(s, "poll.interval") {
		t.Errorf("reload error does not name the bad key: %v", bad)
	}
	keepCalls, addCalls := requestsFor(api, keep), requestsFor(api, add)
	opsEventually(t, 20*time.Second, "polls of both groups after the bad reload", func() bool {
		return requestsFor(api, keep) >= keepCalls+2 && requestsFor(api, add) >= addCalls+2
	})
	if code, _ := d.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d after the bad reload", code)
	}
	d.stop()
}

// TestE2EOpsFatalWrongKey: the API rejects the usersig, so the daemon
// exits 3 with a message that never contains the key or the usersig.
func TestE2EOpsFatalWrongKey(t *testing.T) {
	api := newAPI(t, tencenttest.Options{})
	api.AddGroup("@TGS#fatal", member("alice", 1795600000))
	e := newDaemonEnv(t, api, []string{"@TGS#fatal"}, "")
	const wrongKey = "wrong-key-0123456789abcdef-do-not-log"
	p := startProc(t, wrongKey, "run", "--config", e.config)
	if code := p.wait(t, 30*time.Second); code != exitFatal {
		t.Fatalf("exit code %d with a wrong key, want %d; stderr:\n%s", code, exitFatal, p.stderr.String())
	}
	stderr := p.stderr.String()
	if !strings.Contains(stderr, "the API rejected the configuration") {
		t.Errorf("no explanation on stderr:\n%s", stderr)
	}
	secrets := []string{wrongKey}
	for _, r := range api.Requests() {
		if sig := r.Query.Get("usersig"); sig != "" {
			secrets = append(secrets, sig)
		}
	}
	if len(secrets) < 2 {
		t.Fatal("the daemon made no authenticated call")
	}
	for _, s := range secrets {
		if strings.Contains(stderr, s) {
			t.Errorf("stderr contains a secret (%d bytes)", len(s))
		}
	}
	if len(readEventDir(t, e.eventDir)) != 0 {
		t.Error("events were published although every call was rejected")
	}
}

// opsEnvFailingWith is a daemon config over two groups whose every
// get_members call fails with the ErrorCode code.
func opsEnvFailingWith(t *testing.T, code int) (*tencenttest.Server, *e2eEnv) {
	t.Helper()
	api := newAPI(t, tencenttest.Options{})
	groups := []string{"@TGS#f1", "@TGS#f2"}
	api.AddGroup(groups[0], member("alice", 1795600000))
	api.AddGroup(groups[1], member("bob", 1795600010))
	api.InjectFault(tencenttest.Fault{Command: "get_members", Kind: tencenttest.FaultErrorCode, Code: code})
	e := newDaemonEnv(t, api, groups, "")
	return api, e
}

// TestE2EOpsReadyzWhenEveryGroupFails: an API that fails every listing
// (10002, transient) keeps the daemon alive but not ready; readiness
// returns once listings succeed again.
func TestE2EOpsReadyzWhenEveryGroupFails(t *testing.T) {
	api, e := opsEnvFailingWith(t, 10002)
	d := startOpsDaemon(t, e, api.Key())
	opsEventually(t, 20*time.Second, "/readyz 503 naming the failing listings", func() bool {
		code, body := d.get("/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "no group listed successfully")
	})
	d.waitLog(20*time.Second, "a not ready line from the http logger", func(l opsLog) bool {
		reason, _ := l["reason"].(string)
		return l.msg() == "not ready" && l["logger"] == "http" && strings.Contains(reason, "no group listed successfully")
	})
	api.ClearFaults()
	opsEventually(t, 20*time.Second, "/readyz 200 once listings succeed", func() bool {
		code, _ := d.get("/readyz")
		return code == http.StatusOK
	})
	d.waitLog(20*time.Second, "a ready line after recovery", func(l opsLog) bool { return l.msg() == "ready" && l["logger"] == "http" })
	if n := strings.Count(d.stderr.String(), `"msg":"not ready"`); n > 3 {
		t.Errorf("%d not-ready lines: readiness should be logged on changes only", n)
	}
	d.stop()
}

// TestE2EOpsNoPermissionOnEveryGroup: 10007 on every group is the
// identifier's permission, a configuration error: exit 3 naming it.
func TestE2EOpsNoPermissionOnEveryGroup(t *testing.T) {
	api, e := opsEnvFailingWith(t, 10007)
	p := startProc(t, api.Key(), "run", "--config", e.config)
	if code := p.wait(t, 30*time.Second); code != exitFatal {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFatal, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "10007") || !strings.Contains(p.stderr.String(), "admin") {
		t.Errorf("stderr does not name 10007 and its likely cause:\n%s", p.stderr.String())
	}
}

// TestE2EOpsCheckNextToRunningDaemon: `rollcall check` over a running
// daemon's config touches none of its event files (it used to rewrite the
// gzip file the daemon was appending to, losing what came after).
func TestE2EOpsCheckNextToRunningDaemon(t *testing.T) {
	api := newAPI(t, tencenttest.Options{})
	g := "@TGS#chk"
	api.AddGroup(g, member("alice", 1795600000))
	e := newEnv(t, api, []string{g}, "")
	gzDir := filepath.Join(t.TempDir(), "gz")
	e.writeDaemonConfig([]string{g}, "  - type: file\n    name: gz\n    path: "+gzDir+"\n    gzip: true\n")
	d := startOpsDaemon(t, e, api.Key())
	e.waitEvents(1)
	opsEventually(t, 20*time.Second, "the baseline committed", func() bool {
		return d.metric("rollcall_state_commits_total") >= 1
	})
	// check fails on the state lock the daemon holds; what matters is
	// that it leaves the daemon's files alone.
	runCLI(t, api.Key(), nil, "check", "--config", e.config)

	api.Join(g, member("bob", 1795600100))
	api.Join(g, member("carol", 1795600200))
	e.waitEvents(3)
	d.stop()
	var lines int
	files, _ := filepath.Glob(filepath.Join(gzDir, "events-*.jsonl.gz"))
	for _, p := range files {
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(fh)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(zr)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		lines += strings.Count(string(b), "\n")
	}
	if lines != 3 {
		t.Errorf("the gzip sink holds %d events, want 3 like the plain one", lines)
	}
}

// TestE2EOpsSIGHUPKeepsDismissedGroupsOut: a group stored as dismissed is
// skipped at start, and a reload that leaves it in groups.ids does not
// schedule it again.
func TestE2EOpsSIGHUPKeepsDismissedGroupsOut(t *testing.T) {
	api := newAPI(t, tencenttest.Options{})
	live, gone := "@TGS#live", "@TGS#gone"
	api.AddGroup(live, member("alice", 1795600000))
	api.AddGroup(gone, member("bob", 1795600010))
	e := newEnv(t, api, []string{live, gone}, "")
	e.writeDaemonConfig([]string{live, gone}, "")
	d := startOpsDaemon(t, e, api.Key())
	e.waitEvents(2)
	api.Dismiss(gone)
	e.waitEvents(4) // bob left (group_dismissed), group.dismissed
	d.stop()

	d2 := startOpsDaemon(t, e, api.Key())
	before := requestsFor(api, gone)
	d2.signal(syscall.SIGHUP) // groups unchanged
	d2.waitLog(10*time.Second, "the reload", func(l opsLog) bool { return l.msg() == "configuration reloaded" })
	liveCalls := requestsFor(api, live)
	opsEventually(t, 20*time.Second, "two more polls of the live group", func() bool {
		return requestsFor(api, live) >= liveCalls+2
	})
	if extra := requestsFor(api, gone) - before; extra > 0 {
		t.Errorf("the group stored as dismissed was polled %d times after the reload", extra)
	}
	d2.stop()
}

// TestE2EOpsSIGHUPIntervalBelowRunningTimeout: a reload to a poll.interval
// no longer than the running request timeout (derived from the old
// interval, and changed only by a restart) applies the interval, warns,
// and does not report the tencent section as changed.
func TestE2EOpsSIGHUPIntervalBelowRunningTimeout(t *testing.T) {
	api := newAPI(t, tencenttest.Options{})
	api.AddGroup("@TGS#rt", member("alice", 1795600000))
	e := newDaemonEnv(t, api, []string{"@TGS#rt"}, "")
	semEdit(e, "  request_timeout: 500ms\n", "")
	semEdit(e, "  interval: 1s\n", "  interval: 20s\n") // request_timeout defaults to 5s
	d := startOpsDaemon(t, e, api.Key())
	e.waitEvents(1)
	semEdit(e, "  interval: 20s\n", "  interval: 4s\n")
	d.signal(syscall.SIGHUP)
	w := d.waitLog(10*time.Second, "the timeout warning", func(l opsLog) bool {
		return strings.Contains(l.msg(), "running tencent.request_timeout")
	})
	if w["running_request_timeout"] != "5s" && w["running_request_timeout"] != 5.0 {
		t.Errorf("warning fields %v, want the running 5s timeout", w)
	}
	d.waitLog(10*time.Second, "the reload", func(l opsLog) bool { return l.msg() == "configuration reloaded" })
	for _, l := range d.logs() {
		if l.msg() == "reload: this section changed but takes effect only after a restart" {
			t.Errorf("reload reported a section changed: %v", l)
		}
	}
	d.stop()
}
