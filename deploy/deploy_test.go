package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite kubernetes/prometheusrule.yaml from prometheus/alerts.yaml")

// metricInfo describes one metric rollcall exports: its labels and, for
// labels with a closed set of values, those values.
type metricInfo struct {
	histogram bool
	labels    []string
	values    map[string][]string
}

// knownMetrics is rollcall's metric interface as the deployment artefacts
// see it. A metric renamed in the code but not here (or the reverse) fails
// TestMetricNames.
var knownMetrics = map[string]metricInfo{
	"rollcall_api_calls_total":              {labels: []string{"command", "code"}},
	"rollcall_api_call_duration_seconds":    {histogram: true, labels: []string{"command"}},
	"rollcall_ratelimit_wait_seconds":       {histogram: true},
	"rollcall_usersig_refreshes_total":      {labels: []string{"reason"}, values: map[string][]string{"reason": {"initial", "expiry", "invalidated"}}},
	"rollcall_polls_total":                  {labels: []string{"result"}, values: map[string][]string{"result": {"ok", "failed", "dismissed", "skipped"}}},
	"rollcall_poll_cycle_duration_seconds":  {histogram: true},
	"rollcall_poll_lag_seconds":             {},
	"rollcall_groups_polled":                {},
	"rollcall_groups_stale":                 {},
	"rollcall_last_cycle_timestamp_seconds": {},
	"rollcall_poll_interval_seconds":        {},
	"rollcall_poll_cycle_seconds":           {},
	"rollcall_snapshot_members":             {histogram: true},
	"rollcall_snapshots_truncated_total":    {},
	"rollcall_members_tracked":              {},
	"rollcall_members_out_of_view":          {},
	"rollcall_events_total": {labels: []string{"type", "reason"}, values: map[string][]string{
		"type":   {"joined", "left", "dismissed"},
		"reason": {"joined", "baseline", "rejoined", "left", "group_dismissed"},
	}},
	"rollcall_sink_publish_duration_seconds": {histogram: true, labels: []string{"sink"}},
	"rollcall_sink_publish_errors_total":     {labels: []string{"sink"}},
	"rollcall_sink_backlog_events":           {labels: []string{"sink"}},
	"rollcall_sink_events_published_total":   {labels: []string{"sink"}},
	"rollcall_state_commits_total":           {},
	"rollcall_state_commit_failures_total":   {},
	"rollcall_build_info":                    {labels: []string{"version", "commit", "goversion"}},
	"rollcall_ready":                         {},
}

// targetLabels are attached by Prometheus or the Prometheus Operator at
// scrape time, so any series may carry them.
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "container", "endpoint"}

// definedByCmd are metrics registered by cmd/rollcall rather than a library
// package; see TestMetricNamesDefinedInCode.
var definedByCmd = map[string]bool{"rollcall_build_info": true, "rollcall_ready": true}

// wantAlerts are the alerts the deployment promises (deploy/README.md).
var wantAlerts = []string{
	"RollcallGroupsStale", "RollcallAPIAuthErrors", "RollcallSinkBacklogGrowing", "RollcallCycleLag",
	"RollcallTruncatedSnapshots", "RollcallNotReady", "RollcallDown",
}

// configKeys are the keys of the configuration file (cmd/rollcall's
// loader); sink entries are checked against sinkKeys instead.
var configKeys = map[string]bool{}

func init() {
	for _, k := range []string{
		"tencent", "tencent.sdkappid", "tencent.identifier", "tencent.secret_key", "tencent.secret_key_file",
		"tencent.usersig", "tencent.usersig_file", "tencent.usersig_expire", "tencent.region", "tencent.endpoint",
		"tencent.rate_limit", "tencent.request_timeout",
		"groups", "groups.ids", "groups.mark", "groups.exclude", "groups.discover", "groups.discover.interval",
		"poll", "poll.interval", "poll.member_cap", "poll.baseline", "poll.concurrency", "poll.confirm_departures",
		"state", "state.driver", "state.path", "state.checkpoint_interval",
		"state.url", "state.bucket", "state.create", "state.replicas", "state.creds_file", "state.nkey_file",
		"state.user", "state.password", "state.password_file", "state.token", "state.token_file", "state.tls",
		"shard", "shard.count", "shard.index", "shard.index_from_hostname",
		"sinks",
		"http", "http.listen", "http.pprof",
		"log", "log.level", "log.format",
		"shutdown_timeout",
	} {
		configKeys[k] = true
	}
}

var (
	commonSinkKeys = []string{"type", "name", "retry", "retry.initial_interval", "retry.max_interval", "retry.max_elapsed_time"}
	tlsKeys        = []string{"tls", "tls.ca", "tls.cert", "tls.key", "tls.insecure_skip_verify"}
	sinkKeys       = map[string][]string{
		"stdout": nil,
		"file":   {"path", "gzip"},
		"kafka": append([]string{"brokers", "topic", "mode", "compression", "batch_size", "batch_timeout", "write_timeout",
			"sasl", "sasl.mechanism", "sasl.username", "sasl.password", "sasl.password_file",
			"create_topic", "create_topic.partitions", "create_topic.replication"}, tlsKeys...),
		"nats": append([]string{"url", "subject_prefix", "jetstream", "stream", "stream.name", "stream.create",
			"creds_file", "nkey_file", "user", "password", "password_file", "token", "token_file", "publish_timeout"}, tlsKeys...),
	}
)

// ---- helpers ----

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// yamlDocs decodes every document of a (possibly multi-document) YAML file.
func yamlDocs(t *testing.T, name string) []map[string]any {
	t.Helper()
	docs, err := decodeAll(readFile(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return docs
}

func decodeAll(b []byte) ([]map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

func yamlDoc(t *testing.T, name string) map[string]any {
	t.Helper()
	docs := yamlDocs(t, name)
	if len(docs) != 1 {
		t.Fatalf("%s: %d YAML documents, want 1", name, len(docs))
	}
	return docs[0]
}

// get walks a decoded YAML/JSON value along a dotted path; list indexes
// are numbers ("spec.containers.0.name").
func get(v any, p string) any {
	for _, k := range strings.Split(p, ".") {
		switch c := v.(type) {
		case map[string]any:
			v = c[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// keyPaths lists the dotted key paths of a mapping, descending into
// mappings but not lists.
func keyPaths(m map[string]any, prefix string) []string {
	var out []string
	for k, v := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		out = append(out, p)
		if sub, ok := v.(map[string]any); ok {
			out = append(out, keyPaths(sub, p)...)
		}
	}
	sort.Strings(out)
	return out
}

func configMapConfig(t *testing.T) (map[string]any, string) {
	t.Helper()
	return configMapConfigAt(t, "kubernetes/base/configmap.yaml")
}

// configMapConfigAt decodes the one config file a ConfigMap holds, and
// returns it with its key.
func configMapConfigAt(t *testing.T, file string) (map[string]any, string) {
	t.Helper()
	cm := yamlDoc(t, file)
	data := mapOf(cm["data"])
	if len(data) != 1 {
		t.Fatalf("%s: data has %d keys, want exactly the config file", file, len(data))
	}
	for k, v := range data {
		var c map[string]any
		if err := yaml.Unmarshal([]byte(str(v)), &c); err != nil {
			t.Fatalf("%s data.%s: %v", file, k, err)
		}
		return c, k
	}
	panic("unreachable")
}

func durationOf(t *testing.T, v any, what string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(str(v))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return d
}

func mustLookPath(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s not on PATH", tool)
	}
	return p
}

// ---- tests ----

func TestYAMLFilesParse(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || (!strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml")) {
			return nil
		}
		n++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		docs, err := decodeAll(b)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		if len(docs) == 0 {
			t.Errorf("%s: no YAML document", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("found %d YAML files under deploy/, expected the whole set", n)
	}
}

func TestConfigFilesUseKnownKeys(t *testing.T) {
	cmCfg, _ := configMapConfig(t)
	scaledCfg, _ := configMapConfigAt(t, "kubernetes/scaled/configmap.yaml")
	configs := map[string]map[string]any{
		"rollcall.example.yaml":            yamlDoc(t, "rollcall.example.yaml"),
		"compose/rollcall.yaml":            yamlDoc(t, "compose/rollcall.yaml"),
		"compose/rollcall.scaled.yaml":     yamlDoc(t, "compose/rollcall.scaled.yaml"),
		"kubernetes/base/configmap.yaml":   cmCfg,
		"kubernetes/scaled/configmap.yaml": scaledCfg,
	}
	for name, c := range configs {
		for _, k := range keyPaths(c, "") {
			if !configKeys[k] && !strings.HasPrefix(k, "sinks.") {
				t.Errorf("%s: unknown config key %q", name, k)
			}
		}
		sinks := list(c["sinks"])
		if len(sinks) == 0 {
			t.Errorf("%s: no sinks", name)
		}
		for i, s := range sinks {
			m := mapOf(s)
			typ := str(m["type"])
			allowed, ok := sinkKeys[typ]
			if !ok {
				t.Errorf("%s: sinks[%d]: unknown type %q", name, i, typ)
				continue
			}
			set := map[string]bool{}
			for _, k := range append(append([]string{}, commonSinkKeys...), allowed...) {
				set[k] = true
			}
			for _, k := range keyPaths(m, "") {
				if !set[k] {
					t.Errorf("%s: sinks[%d] (%s): unknown key %q", name, i, typ, k)
				}
			}
		}
		if _, err := time.ParseDuration(str(get(c, "poll.interval"))); err != nil && get(c, "poll.interval") != nil {
			t.Errorf("%s: poll.interval: %v", name, err)
		}
	}

	// The example documents every key: each one of the interface is set or
	// shown in a comment.
	ex := string(readFile(t, "rollcall.example.yaml"))
	for k := range configKeys {
		leaf := k[strings.LastIndex(k, ".")+1:]
		if !regexp.MustCompile(`(?m)^[\s#-]*` + regexp.QuoteMeta(leaf) + `:`).MatchString(ex) {
			t.Errorf("rollcall.example.yaml does not show key %s", k)
		}
	}
	seenTypes := map[string]bool{}
	for _, s := range list(configs["rollcall.example.yaml"]["sinks"]) {
		seenTypes[str(mapOf(s)["type"])] = true
	}
	for typ, keys := range sinkKeys {
		if !seenTypes[typ] {
			t.Errorf("rollcall.example.yaml has no %s sink", typ)
		}
		for _, k := range keys {
			leaf := k[strings.LastIndex(k, ".")+1:]
			if !regexp.MustCompile(`(?m)^[\s#-]*` + regexp.QuoteMeta(leaf) + `:`).MatchString(ex) {
				t.Errorf("rollcall.example.yaml does not show %s sink key %s", typ, k)
			}
		}
	}
	// Container configs must listen beyond loopback.
	for _, name := range []string{"compose/rollcall.yaml", "compose/rollcall.scaled.yaml", "kubernetes/base/configmap.yaml", "kubernetes/scaled/configmap.yaml"} {
		if l := str(get(configs[name], "http.listen")); !strings.HasPrefix(l, "0.0.0.0:") {
			t.Errorf("%s: http.listen = %q, want 0.0.0.0:PORT in a container", name, l)
		}
	}
}

func TestKustomization(t *testing.T) {
	k := yamlDoc(t, "kubernetes/base/kustomization.yaml")
	if k["namespace"] != nil {
		t.Error("kustomization.yaml sets a namespace; the base must be namespace-agnostic")
	}
	res := list(k["resources"])
	if len(res) == 0 {
		t.Fatal("kustomization.yaml lists no resources")
	}
	listed := map[string]bool{}
	kinds := map[string]bool{}
	for _, r := range res {
		name := str(r)
		listed[name] = true
		p := filepath.Join("kubernetes/base", name)
		if _, err := os.Stat(p); err != nil {
			t.Errorf("resource %s: %v", name, err)
			continue
		}
		for _, d := range yamlDocs(t, p) {
			kinds[str(d["kind"])] = true
			if get(d, "metadata.namespace") != nil {
				t.Errorf("%s: %s sets metadata.namespace", name, d["kind"])
			}
			if mapOf(get(d, "metadata.labels"))["app.kubernetes.io/name"] != "rollcall" {
				t.Errorf("%s: %s lacks label app.kubernetes.io/name: rollcall", name, d["kind"])
			}
		}
	}
	for _, want := range []string{"ConfigMap", "Service", "StatefulSet", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule"} {
		if !kinds[want] {
			t.Errorf("kustomize base has no %s", want)
		}
	}
	// A placeholder Secret in the base would overwrite the real one.
	if listed["secret.example.yaml"] {
		t.Error("secret.example.yaml must not be a kustomize resource")
	}
	for _, d := range yamlDocs(t, "kubernetes/base/secret.example.yaml") {
		if d["kind"] == "Secret" && listed["secret.example.yaml"] {
			t.Error("a Secret is applied by the base")
		}
	}
	imgs := list(k["images"])
	if len(imgs) != 1 || str(get(imgs[0], "name")) != "rollcall" {
		t.Errorf("kustomization images = %v, want one entry for the container image \"rollcall\"", imgs)
	}
}

func TestStatefulSet(t *testing.T) {
	ss := yamlDoc(t, "kubernetes/base/statefulset.yaml")
	if ss["kind"] != "StatefulSet" {
		t.Fatalf("statefulset.yaml kind = %v", ss["kind"])
	}
	if r := get(ss, "spec.replicas"); r != 1 {
		t.Errorf("replicas = %v, want 1: rollcall must not run twice on one state", r)
	}
	pod := get(ss, "spec.template.spec")
	containers := list(get(pod, "containers"))
	if len(containers) != 1 {
		t.Fatalf("%d containers, want 1", len(containers))
	}
	c := containers[0]
	if str(get(c, "image")) != "rollcall" {
		t.Errorf("image = %v, want \"rollcall\" (set by kustomization images)", get(c, "image"))
	}

	// Probes on the named metrics port.
	ports := list(get(c, "ports"))
	if len(ports) != 1 || str(get(ports[0], "name")) != "metrics" || get(ports[0], "containerPort") != 9464 {
		t.Errorf("ports = %v, want one named metrics on 9464", ports)
	}
	for probe, wantPath := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := str(get(c, probe+".httpGet.path")); got != wantPath {
			t.Errorf("%s path = %q, want %q", probe, got, wantPath)
		}
		if got := str(get(c, probe+".httpGet.port")); got != "metrics" {
			t.Errorf("%s port = %q, want metrics", probe, got)
		}
	}

	// Security.
	podSC, cSC := get(pod, "securityContext"), get(c, "securityContext")
	either := func(key string) any {
		if v := get(cSC, key); v != nil {
			return v
		}
		return get(podSC, key)
	}
	checks := map[string]any{
		"runAsNonRoot":        true,
		"runAsUser":           65532,
		"seccompProfile.type": "RuntimeDefault",
	}
	for k, want := range checks {
		if got := either(k); got != want {
			t.Errorf("securityContext.%s = %v, want %v", k, got, want)
		}
	}
	if get(cSC, "readOnlyRootFilesystem") != true {
		t.Error("container securityContext.readOnlyRootFilesystem is not true")
	}
	if get(cSC, "allowPrivilegeEscalation") != false {
		t.Error("container securityContext.allowPrivilegeEscalation is not false")
	}
	if drop := list(get(cSC, "capabilities.drop")); len(drop) != 1 || drop[0] != "ALL" {
		t.Errorf("capabilities.drop = %v, want [ALL]", drop)
	}
	if get(c, "resources.requests") == nil || get(c, "resources.limits.memory") == nil {
		t.Error("resources requests and a memory limit are required")
	}

	// Config: the args point at the mounted ConfigMap key, and its values fit.
	cfg, cfgKey := configMapConfig(t)
	cm := yamlDoc(t, "kubernetes/base/configmap.yaml")
	mounts := map[string]map[string]any{} // volume name -> mount
	for _, m := range list(get(c, "volumeMounts")) {
		mounts[str(get(m, "name"))] = mapOf(m)
	}
	volumes := map[string]map[string]any{}
	for _, v := range list(get(pod, "volumes")) {
		volumes[str(get(v, "name"))] = mapOf(v)
	}
	for _, v := range list(get(ss, "spec.volumeClaimTemplates")) {
		volumes[str(get(v, "metadata.name"))] = map[string]any{"pvc": true}
	}
	for name := range mounts {
		if volumes[name] == nil {
			t.Errorf("volumeMount %s has no volume", name)
		}
	}
	var cfgVol string
	for name, v := range volumes {
		if str(get(v, "configMap.name")) == str(get(cm, "metadata.name")) {
			cfgVol = name
		}
	}
	if cfgVol == "" || mounts[cfgVol] == nil {
		t.Fatalf("the ConfigMap %v is not mounted", get(cm, "metadata.name"))
	}
	wantCfg := path.Join(str(mounts[cfgVol]["mountPath"]), cfgKey)
	args := fmt.Sprint(get(c, "args"))
	if args != fmt.Sprint([]any{"run", "--config", wantCfg}) {
		t.Errorf("args = %v, want [run --config %s]", args, wantCfg)
	}
	// mountedOn returns the volume mounted at the longest prefix of p.
	mountedOn := func(p string) (string, map[string]any) {
		best, bestName := "", ""
		for name, m := range mounts {
			mp := str(m["mountPath"])
			if (p == mp || strings.HasPrefix(p, mp+"/")) && len(mp) > len(best) {
				best, bestName = mp, name
			}
		}
		return bestName, mounts[bestName]
	}
	statePath := str(get(cfg, "state.path"))
	if name, m := mountedOn(statePath); m == nil || volumes[name]["pvc"] != true || m["readOnly"] == true {
		t.Errorf("state.path %s is not on a writable volumeClaimTemplate volume", statePath)
	}
	keyFile := str(get(cfg, "tencent.secret_key_file"))
	name, m := mountedOn(keyFile)
	if m == nil || get(volumes[name], "secret.secretName") == nil {
		t.Fatalf("tencent.secret_key_file %s is not on a Secret volume", keyFile)
	}
	secretName := str(get(volumes[name], "secret.secretName"))
	sec := yamlDoc(t, "kubernetes/base/secret.example.yaml")
	if str(get(sec, "metadata.name")) != secretName {
		t.Errorf("statefulset mounts Secret %s, secret.example.yaml documents %v", secretName, get(sec, "metadata.name"))
	}
	if _, ok := mapOf(sec["stringData"])[path.Base(keyFile)]; !ok {
		t.Errorf("secret.example.yaml has no key %s for tencent.secret_key_file", path.Base(keyFile))
	}
	_, port, err := net.SplitHostPort(str(get(cfg, "http.listen")))
	if err != nil || port != "9464" {
		t.Errorf("config http.listen %v does not serve the container port 9464", get(cfg, "http.listen"))
	}

	// Shutdown must finish before the kubelet's SIGKILL.
	grace, _ := get(pod, "terminationGracePeriodSeconds").(int)
	shutdown := durationOf(t, get(cfg, "shutdown_timeout"), "shutdown_timeout")
	if time.Duration(grace)*time.Second <= shutdown {
		t.Errorf("terminationGracePeriodSeconds %d <= shutdown_timeout %s", grace, shutdown)
	}

	// Service, PDB and ServiceMonitor select this pod.
	podLabels := mapOf(get(ss, "spec.template.metadata.labels"))
	matches := func(sel map[string]any) bool {
		if len(sel) == 0 {
			return false
		}
		for k, v := range sel {
			if podLabels[k] != v {
				return false
			}
		}
		return true
	}
	if !matches(mapOf(get(ss, "spec.selector.matchLabels"))) {
		t.Error("StatefulSet selector does not match its pod template")
	}
	svc := yamlDoc(t, "kubernetes/base/service.yaml")
	if str(get(ss, "spec.serviceName")) != str(get(svc, "metadata.name")) {
		t.Errorf("serviceName %v is not the Service %v", get(ss, "spec.serviceName"), get(svc, "metadata.name"))
	}
	if !matches(mapOf(get(svc, "spec.selector"))) {
		t.Error("Service selector does not match the pod")
	}
	if str(get(svc, "spec.ports.0.name")) != "metrics" || str(get(svc, "spec.ports.0.targetPort")) != "metrics" {
		t.Errorf("Service port = %v, want metrics -> metrics", get(svc, "spec.ports.0"))
	}
	pdb := yamlDoc(t, "kubernetes/base/poddisruptionbudget.yaml")
	if !matches(mapOf(get(pdb, "spec.selector.matchLabels"))) {
		t.Error("PodDisruptionBudget selector does not match the pod")
	}
	if get(pdb, "spec.minAvailable") != nil {
		t.Error("PodDisruptionBudget minAvailable would block every drain of a singleton")
	}
	sm := yamlDoc(t, "kubernetes/base/servicemonitor.yaml")
	for k, v := range mapOf(get(sm, "spec.selector.matchLabels")) {
		if mapOf(get(svc, "metadata.labels"))[k] != v {
			t.Errorf("ServiceMonitor selects %s=%v, the Service lacks it", k, v)
		}
	}
	if str(get(sm, "spec.endpoints.0.port")) != "metrics" || str(get(sm, "spec.endpoints.0.path")) != "/metrics" {
		t.Errorf("ServiceMonitor endpoint = %v, want port metrics path /metrics", get(sm, "spec.endpoints.0"))
	}
}

// alertRules returns the rules of a groups: document.
func alertRules(t *testing.T, doc map[string]any) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, g := range list(doc["groups"]) {
		for _, r := range list(get(g, "rules")) {
			out = append(out, mapOf(r))
		}
	}
	return out
}

func TestAlerts(t *testing.T) {
	doc := yamlDoc(t, "prometheus/alerts.yaml")
	rules := alertRules(t, doc)
	readme := string(readFile(t, "README.md"))
	got := map[string]bool{}
	for _, r := range rules {
		name := str(r["alert"])
		if name == "" {
			t.Errorf("rule without alert name: %v", r)
			continue
		}
		got[name] = true
		if strings.TrimSpace(str(r["expr"])) == "" {
			t.Errorf("%s: empty expr", name)
		}
		if sev := str(get(r, "labels.severity")); sev != "critical" && sev != "warning" {
			t.Errorf("%s: severity %q, want critical or warning", name, sev)
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if str(get(r, "annotations."+a)) == "" {
				t.Errorf("%s: no %s annotation", name, a)
			}
		}
		u, err := url.Parse(str(get(r, "annotations.runbook_url")))
		if err != nil || u.Fragment != strings.ToLower(name) || !strings.HasSuffix(u.Path, "/deploy/README.md") {
			t.Errorf("%s: runbook_url %v, want .../deploy/README.md#%s", name, get(r, "annotations.runbook_url"), strings.ToLower(name))
		}
		if !regexp.MustCompile(`(?m)^#+ ` + name + `\s*$`).MatchString(readme) {
			t.Errorf("%s: deploy/README.md has no heading %q for the runbook link", name, name)
		}
		if f := get(r, "for"); f != nil {
			durationOf(t, f, name+" for")
		}
	}
	for _, w := range wantAlerts {
		if !got[w] {
			t.Errorf("alert %s missing", w)
		}
	}
}

func TestPrometheusRuleInSync(t *testing.T) {
	alerts := yamlDoc(t, "prometheus/alerts.yaml")
	const file = "kubernetes/base/prometheusrule.yaml"
	if *update {
		var b bytes.Buffer
		b.WriteString("# GENERATED from deploy/prometheus/alerts.yaml by `go test ./deploy -update`.\n" +
			"# Edit alerts.yaml, not this file. Needs the Prometheus Operator CRDs.\n")
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		// The node form keeps the block style of the expressions readable.
		var groups yaml.Node
		var src yaml.Node
		if err := yaml.Unmarshal(readFile(t, "prometheus/alerts.yaml"), &src); err != nil {
			t.Fatal(err)
		}
		root := src.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "groups" {
				groups = *root.Content[i+1]
			}
		}
		groups.HeadComment, groups.LineComment, groups.FootComment = "", "", ""
		doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
			scalar("apiVersion"), scalar("monitoring.coreos.com/v1"),
			scalar("kind"), scalar("PrometheusRule"),
			scalar("metadata"), {Kind: yaml.MappingNode, Content: []*yaml.Node{
				scalar("name"), scalar("rollcall"),
				scalar("labels"), {Kind: yaml.MappingNode, Content: []*yaml.Node{
					scalar("app.kubernetes.io/name"), scalar("rollcall"),
					scalar("app.kubernetes.io/component"), scalar("poller"),
				}},
			}},
			scalar("spec"), {Kind: yaml.MappingNode, Content: []*yaml.Node{scalar("groups"), &groups}},
		}}
		if err := enc.Encode(doc); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pr := yamlDoc(t, file)
	if pr["kind"] != "PrometheusRule" || pr["apiVersion"] != "monitoring.coreos.com/v1" {
		t.Fatalf("%s is %v %v", file, pr["apiVersion"], pr["kind"])
	}
	if !reflect.DeepEqual(get(pr, "spec.groups"), alerts["groups"]) {
		t.Errorf("%s differs from prometheus/alerts.yaml: run go test ./deploy -update", file)
	}
}

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }

type dashboard struct {
	SchemaVersion int `json:"schemaVersion"`
	UID           string
	Title         string
	Panels        []panel
	Templating    struct {
		List []struct {
			Name  string
			Type  string
			Query any
		}
	}
}

type panel struct {
	ID         int
	Type       string
	Title      string
	Datasource *struct{ Type, UID string }
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		Expr       string
		Datasource *struct{ Type, UID string }
	}
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(readFile(t, "grafana/rollcall-dashboard.json")))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("rollcall-dashboard.json: %v", err)
	}
	return d
}

func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.SchemaVersion < 36 || d.UID == "" || d.Title == "" {
		t.Errorf("schemaVersion %d, uid %q, title %q", d.SchemaVersion, d.UID, d.Title)
	}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		t.Error("no ${datasource} variable of type datasource over prometheus")
	}
	ids := map[int]bool{}
	type cell struct{ x, y int }
	used := map[cell]string{}
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := used[cell{x, y}]; ok {
					t.Errorf("panel %q overlaps %q", p.Title, other)
					x, y = g.X+g.W, g.Y+g.H
					continue
				}
				used[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource is not ${datasource}", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: a target's datasource is not ${datasource}", p.Title)
			}
			if !strings.Contains(tg.Expr, `job=~"$job"`) {
				t.Errorf("panel %q: query ignores the $job variable: %s", p.Title, tg.Expr)
			}
		}
	}
	if queries < 20 {
		t.Errorf("only %d queries", queries)
	}
}

var (
	metricRE    = regexp.MustCompile(`\brollcall_[a-zA-Z0-9_]+`)
	selectorRE  = regexp.MustCompile(`\b(rollcall_[a-zA-Z0-9_]+)\{([^}]*)\}`)
	matcherRE   = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	groupingRE  = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	histSuffixs = []string{"_bucket", "_sum", "_count"}
)

// baseMetric maps a series name to the metric it belongs to.
// notMetrics are rollcall_ names in the texts that are not metrics.
var notMetrics = map[string]bool{
	"rollcall_state": true, // the state.bucket default of the nats driver
}

func baseMetric(name string) (string, bool) {
	if _, ok := knownMetrics[name]; ok {
		return name, true
	}
	for _, s := range histSuffixs {
		if b, ok := strings.CutSuffix(name, s); ok && knownMetrics[b].histogram {
			return b, true
		}
	}
	return "", false
}

// metricTexts are the artefacts that name metrics, with their text.
func metricTexts(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range []string{"prometheus/alerts.yaml", "prometheus/alerts_test.yaml", "kubernetes/base/prometheusrule.yaml",
		"grafana/rollcall-dashboard.json", "README.md"} {
		out[f] = string(readFile(t, f))
	}
	return out
}

func TestMetricNames(t *testing.T) {
	allLabels := map[string]bool{"le": true}
	for _, l := range targetLabels {
		allLabels[l] = true
	}
	for _, m := range knownMetrics {
		for _, l := range m.labels {
			allLabels[l] = true
		}
	}
	for file, text := range metricTexts(t) {
		// JSON escapes quotes inside expressions.
		text = strings.ReplaceAll(text, `\"`, `"`)
		for _, name := range metricRE.FindAllString(text, -1) {
			if _, ok := baseMetric(name); !ok && !notMetrics[name] {
				t.Errorf("%s: unknown metric %s", file, name)
			}
		}
		for _, m := range selectorRE.FindAllStringSubmatch(text, -1) {
			base, ok := baseMetric(m[1])
			if !ok {
				continue
			}
			info := knownMetrics[base]
			ok2 := map[string]bool{}
			for _, l := range append(append([]string{}, info.labels...), targetLabels...) {
				ok2[l] = true
			}
			if info.histogram && strings.HasSuffix(m[1], "_bucket") {
				ok2["le"] = true
			}
			for _, mm := range matcherRE.FindAllStringSubmatch(m[2], -1) {
				label, op, val := mm[1], mm[2], mm[3]
				if !ok2[label] {
					t.Errorf("%s: %s has no label %q", file, m[1], label)
					continue
				}
				if vals, closed := info.values[label]; closed && op == "=" && !contains(vals, val) {
					t.Errorf("%s: %s{%s=%q}: value not one of %v", file, m[1], label, val, vals)
				}
			}
		}
		if file == "README.md" {
			continue
		}
		for _, g := range groupingRE.FindAllStringSubmatch(text, -1) {
			for _, l := range strings.Split(g[1], ",") {
				if l = strings.TrimSpace(l); l != "" && !allLabels[l] {
					t.Errorf("%s: grouping by unknown label %q", file, l)
				}
			}
		}
	}

	// Every metric is on the dashboard.
	dash := string(readFile(t, "grafana/rollcall-dashboard.json"))
	for name := range knownMetrics {
		if !regexp.MustCompile(`\b` + name + `(_bucket)?\b`).MatchString(dash) {
			t.Errorf("dashboard shows no panel for %s", name)
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// TestMetricNamesDefinedInCode cross-checks knownMetrics against the
// metric names registered in the module's Go code, so that a rename on
// either side is caught. build_info and ready are registered by
// cmd/rollcall; they are checked once cmd/rollcall registers any metric.
func TestMetricNamesDefinedInCode(t *testing.T) {
	defined := map[string]bool{}
	cmdHasMetrics := false
	nameRE := regexp.MustCompile(`"(rollcall_[a-z0-9_]+)"`)
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != ".." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "deploy" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range nameRE.FindAllStringSubmatch(string(b), -1) {
			defined[m[1]] = true
			if strings.HasPrefix(filepath.ToSlash(p), "../cmd/") {
				cmdHasMetrics = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range knownMetrics {
		if defined[name] {
			continue
		}
		if definedByCmd[name] && !cmdHasMetrics {
			t.Logf("%s: not registered yet (cmd/rollcall registers no metric)", name)
			continue
		}
		t.Errorf("%s is used by the deployment artefacts but registered nowhere in the Go code", name)
	}
}

func TestDockerfile(t *testing.T) {
	df := string(readFile(t, "../Dockerfile"))
	gomod := string(readFile(t, "../go.mod"))
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("no go directive in go.mod")
	}
	lines := strings.Split(df, "\n")
	idx := func(re string) int {
		r := regexp.MustCompile(re)
		for i, l := range lines {
			if r.MatchString(l) {
				return i
			}
		}
		return -1
	}
	must := map[string]string{
		"the Go version of go.mod":   `^ARG GO_VERSION=` + regexp.QuoteMeta(goVersion[1]) + `$`,
		"a bookworm Go builder":      `^FROM .*golang:\$\{GO_VERSION\}-bookworm AS build$`,
		"the distroless final stage": `^FROM gcr\.io/distroless/static-debian12:nonroot$`,
		"a static build":             `CGO_ENABLED=0`,
		"-trimpath":                  `go build -trimpath`,
		"version ldflags":            `-X main\.version=\$\{VERSION\} -X main\.commit=\$\{COMMIT\}`,
		"the cmd/rollcall build":     `-o /out/rollcall \./cmd/rollcall`,
		"USER nonroot":               `^USER (65532(:65532)?|nonroot(:nonroot)?)$`,
		"ENTRYPOINT":                 `^ENTRYPOINT \["/rollcall"\]$`,
		"CMD run --config":           `^CMD \["run", "--config", "/etc/rollcall/rollcall\.yaml"\]$`,
		"EXPOSE 9464":                `^EXPOSE 9464$`,
		"go.mod copied first":        `^COPY go\.mod go\.sum \./$`,
		"module download":            `go mod download`,
	}
	for what, re := range must {
		if idx(re) < 0 {
			t.Errorf("Dockerfile lacks %s (/%s/)", what, re)
		}
	}
	if idx(`^COPY \. `) >= 0 {
		t.Error("Dockerfile copies the whole work tree: local state and secrets could enter the image")
	}
	for _, dir := range []string{"cmd", "poller", "diff", "sink", "schema"} {
		at := idx(`^COPY ` + dir + ` \./` + dir + `$`)
		if at < 0 {
			t.Errorf("Dockerfile does not copy the %s package tree", dir)
		}
		if !(idx(`^COPY go\.mod go\.sum`) < idx(`go mod download`) && idx(`go mod download`) < at) {
			t.Error("Dockerfile must copy go.mod/go.sum and download modules before copying the source")
		}
	}
	for _, l := range []string{"title", "description", "source", "licenses", "version", "revision"} {
		if !strings.Contains(df, "org.opencontainers.image."+l+"=") {
			t.Errorf("Dockerfile lacks label org.opencontainers.image.%s", l)
		}
	}
	if strings.Count(df, "\nFROM ") != 2 {
		t.Errorf("Dockerfile has %d stages, want builder + final", strings.Count(df, "\nFROM "))
	}
	// The image's default command matches the StatefulSet's.
	ss := yamlDoc(t, "kubernetes/base/statefulset.yaml")
	args, _ := json.Marshal(get(ss, "spec.template.spec.containers.0.args"))
	if !strings.Contains(df, "CMD "+strings.ReplaceAll(string(args), `","`, `", "`)) {
		t.Errorf("StatefulSet args %s differ from the image CMD", args)
	}

	// -X main.version and main.commit only work if cmd/rollcall declares them.
	vars := packageVars(t, "../cmd/rollcall")
	for _, v := range []string{"version", "commit"} {
		if !vars[v] {
			t.Errorf("cmd/rollcall declares no package variable %q for -X main.%s", v, v)
		}
	}

}

func TestCompose(t *testing.T) {
	c := yamlDoc(t, "compose/docker-compose.yaml")
	svcs := mapOf(c["services"])
	for _, s := range []string{"kafka", "nats", "simulator", "rollcall"} {
		if svcs[s] == nil {
			t.Fatalf("compose has no %s service", s)
		}
	}
	if img := str(get(svcs, "kafka.image")); !strings.HasPrefix(img, "apache/kafka:") {
		t.Errorf("kafka image %q, want the official apache/kafka", img)
	}
	env := mapOf(get(svcs, "kafka.environment"))
	if !strings.Contains(str(env["KAFKA_PROCESS_ROLES"]), "controller") {
		t.Error("kafka is not in KRaft combined mode (KAFKA_PROCESS_ROLES)")
	}
	if img := str(get(svcs, "nats.image")); !strings.HasPrefix(img, "nats:2.10") {
		t.Errorf("nats image %q, want nats:2.10", img)
	}
	if !contains(strs(get(svcs, "nats.command")), "-js") {
		t.Error("nats does not run with -js")
	}
	for _, s := range []string{"kafka", "nats"} {
		if get(svcs, s+".healthcheck.test") == nil {
			t.Errorf("%s has no healthcheck", s)
		}
		if str(get(svcs, "rollcall.depends_on."+s+".condition")) != "service_healthy" {
			t.Errorf("rollcall does not wait for %s to be healthy", s)
		}
	}

	sim := strs(get(svcs, "simulator.command"))
	flagVal := func(args []string, f string) string {
		for i, a := range args {
			if a == f && i+1 < len(args) {
				return args[i+1]
			}
		}
		return ""
	}
	if len(sim) == 0 || sim[0] != "simulate" || flagVal(sim, "--listen") != "0.0.0.0:8080" || flagVal(sim, "--groups") != "5" {
		t.Errorf("simulator command = %v, want simulate --listen 0.0.0.0:8080 --groups 5", sim)
	}
	for _, s := range []string{"simulator", "rollcall"} {
		if get(svcs, s+".build.dockerfile") != "Dockerfile" {
			t.Errorf("%s is not built from the repository's Dockerfile", s)
		}
	}
	if _, err := os.Stat(filepath.Join("compose", str(get(svcs, "rollcall.build.context")), "Dockerfile")); err != nil {
		t.Errorf("rollcall build context: %v", err)
	}

	// rollcall's config file is mounted where --config points.
	run := strs(get(svcs, "rollcall.command"))
	cfgPath := flagVal(run, "--config")
	var cfgFile, stateVol string
	for _, v := range strs(get(svcs, "rollcall.volumes")) {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == cfgPath {
			cfgFile = parts[0]
		}
		if len(parts) >= 2 && parts[1] == "/var/lib/rollcall" {
			stateVol = parts[0]
		}
	}
	if cfgFile == "" {
		t.Fatalf("nothing mounted at --config %s", cfgPath)
	}
	if stateVol == "" || mapOf(c["volumes"]) == nil || !hasKey(mapOf(c["volumes"]), stateVol) {
		t.Errorf("/var/lib/rollcall is not a named volume (got %q)", stateVol)
	}
	cfg := yamlDoc(t, filepath.Join("compose", cfgFile))

	// The config points at the compose services.
	u, err := url.Parse(str(get(cfg, "tencent.endpoint")))
	_, simPort, _ := net.SplitHostPort(flagVal(sim, "--listen"))
	if err != nil || u.Hostname() != "simulator" || u.Port() != simPort {
		t.Errorf("tencent.endpoint %v does not reach the simulator on port %s", get(cfg, "tencent.endpoint"), simPort)
	}
	if got := str(get(cfg, "tencent.sdkappid")); flagVal(sim, "--sdkappid") != got {
		t.Errorf("config sdkappid %s, simulator --sdkappid %s", got, flagVal(sim, "--sdkappid"))
	}
	keyEnv := flagVal(sim, "--key-env")
	if str(get(cfg, "tencent.secret_key")) != "${"+keyEnv+"}" {
		t.Errorf("tencent.secret_key = %v, want ${%s} (the simulator's --key-env)", get(cfg, "tencent.secret_key"), keyEnv)
	}
	if a, b := str(get(svcs, "simulator.environment."+keyEnv)), str(get(svcs, "rollcall.environment."+keyEnv)); a == "" || a != b {
		t.Errorf("%s differs between simulator (%q) and rollcall (%q)", keyEnv, a, b)
	}
	// `rollcall simulate --groups N` serves room-1 ... room-N.
	n, _ := strconv.Atoi(flagVal(sim, "--groups"))
	var wantIDs []string
	for i := 1; i <= n; i++ {
		wantIDs = append(wantIDs, fmt.Sprintf("room-%d", i))
	}
	if got := strs(get(cfg, "groups.ids")); !reflect.DeepEqual(got, wantIDs) {
		t.Errorf("compose config watches groups %v, the simulator serves %v", got, wantIDs)
	}
	var kafka, nats map[string]any
	for _, s := range list(cfg["sinks"]) {
		switch str(get(s, "type")) {
		case "kafka":
			kafka = mapOf(s)
		case "nats":
			nats = mapOf(s)
		}
	}
	if kafka == nil || nats == nil {
		t.Fatal("compose config does not publish to both kafka and nats")
	}
	for _, b := range strs(kafka["brokers"]) {
		if !strings.Contains(str(env["KAFKA_ADVERTISED_LISTENERS"]), "://"+b) {
			t.Errorf("broker %s is not an advertised listener of the kafka service", b)
		}
	}
	for _, s := range strs(nats["url"]) {
		if u, err := url.Parse(s); err != nil || u.Hostname() != "nats" {
			t.Errorf("nats url %s is not the nats service", s)
		}
	}
	if get(nats, "jetstream") != true || get(nats, "stream.create") != true {
		t.Error("compose nats sink should use JetStream and create the stream")
	}
	if !strings.HasPrefix(str(get(cfg, "state.path")), "/var/lib/rollcall/") {
		t.Errorf("state.path %v is not on the state volume", get(cfg, "state.path"))
	}
	// The watch commands in the comments name the real topic and stream.
	text := string(readFile(t, "compose/docker-compose.yaml"))
	for _, want := range []string{"kcat", "-t " + str(kafka["topic"]), "nats ", "stream info " + str(get(nats, "stream.name"))} {
		if !strings.Contains(text, want) {
			t.Errorf("docker-compose.yaml comments lack %q", want)
		}
	}
}

// packageVars returns the package-level variable names of the non-test Go
// files in dir.
func packageVars(t *testing.T, dir string) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", e.Name(), err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, n := range spec.(*ast.ValueSpec).Names {
					vars[n.Name] = true
				}
			}
		}
	}
	return vars
}

func strs(v any) []string {
	var out []string
	for _, x := range list(v) {
		out = append(out, str(x))
	}
	return out
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}

// TestPromtool runs promtool's own checks when it is installed: rule
// syntax, the alert unit tests, and the syntax of every dashboard query
// (checked as recording rules).
func TestPromtool(t *testing.T) {
	promtool := mustLookPath(t, "promtool")
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("check", "rules", "prometheus/alerts.yaml")
	run("test", "rules", "prometheus/alerts_test.yaml")

	d := loadDashboard(t)
	var rules []map[string]string
	vars := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*", "$instance", ".*")
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			rules = append(rules, map[string]string{
				"record": fmt.Sprintf("dashboard:panel_%d:%d", p.ID, len(rules)),
				"expr":   vars.Replace(tg.Expr),
			})
		}
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	run("check", "rules", f)
}

// TestKustomizeBuild renders the base when kubectl is installed.
func TestKustomizeBuild(t *testing.T) {
	kubectl := mustLookPath(t, "kubectl")
	out, err := exec.Command(kubectl, "kustomize", "kubernetes").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	docs, err := decodeAll(out)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, d := range docs {
		kinds = append(kinds, str(d["kind"]))
		if mapOf(get(d, "metadata.labels"))["app.kubernetes.io/part-of"] != "rollcall" {
			t.Errorf("%s lacks the part-of label added by kustomize", d["kind"])
		}
		if d["kind"] == "StatefulSet" {
			img := str(get(d, "spec.template.spec.containers.0.image"))
			if !strings.HasPrefix(img, "ghcr.io/rollcall-dev/rollcall:") {
				t.Errorf("rendered image %q", img)
			}
			if mapOf(get(d, "spec.selector.matchLabels"))["app.kubernetes.io/part-of"] != nil {
				t.Error("kustomize changed the StatefulSet selector")
			}
		}
	}
	sort.Strings(kinds)
	want := []string{"ConfigMap", "PodDisruptionBudget", "PrometheusRule", "Service", "ServiceMonitor", "StatefulSet"}
	if !reflect.DeepEqual(kinds, want) {
		t.Errorf("rendered kinds %v, want %v", kinds, want)
	}
}
