package deploy

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/rollcall-dev/rollcall/poller/shard"
)

// The scaled deployments (kubernetes/scaled, compose/docker-compose.scaled.yaml)
// run several replicas over one shared state. The whole configuration is
// decoded with rollcall's own loader in cmd/rollcall (TestDeployConfigsParse);
// here the shard section is decoded into the shard package's type.

// shardOf decodes a config's shard section strictly into shard.Config,
// defaulted and validated.
func shardOf(t *testing.T, name string, cfg map[string]any) shard.Config {
	t.Helper()
	b, err := yaml.Marshal(cfg["shard"])
	if err != nil {
		t.Fatal(err)
	}
	var sc shard.Config
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&sc); err != nil {
		t.Fatalf("%s: shard: %v", name, err)
	}
	sc.SetDefaults()
	if err := sc.Validate(); err != nil {
		t.Fatalf("%s: shard: %v", name, err)
	}
	return sc
}

// checkSharedState: a sharded config keeps its state in NATS KV, on no
// volume of its own.
func checkSharedState(t *testing.T, name string, cfg map[string]any) {
	t.Helper()
	if str(get(cfg, "state.driver")) != "nats" {
		t.Errorf("%s: state.driver %v, want nats (shard.count > 1 needs a shared state)", name, get(cfg, "state.driver"))
	}
	if get(cfg, "state.path") != nil {
		t.Errorf("%s: state.path is set; the nats driver has no directory", name)
	}
	if b := str(get(cfg, "state.bucket")); b != "rollcall_state" {
		t.Errorf("%s: state.bucket %q, want rollcall_state", name, b)
	}
	urls := strs(get(cfg, "state.url"))
	if len(urls) == 0 {
		t.Errorf("%s: no state.url", name)
	}
	for _, s := range urls {
		if u, err := url.Parse(s); err != nil || u.Scheme != "nats" || u.Hostname() != "nats" {
			t.Errorf("%s: state.url %s is not nats://nats:PORT", name, s)
		}
	}
}

func TestKustomizeRoot(t *testing.T) {
	k := yamlDoc(t, "kubernetes/kustomization.yaml")
	if got := strs(k["resources"]); !slices.Equal(got, []string{"base"}) {
		t.Errorf("kubernetes/kustomization.yaml resources %v, want [base]: `kubectl apply -k deploy/kubernetes` applies the base", got)
	}
}

// baseObjects is every object of the base, by "Kind/name".
func baseObjects(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, r := range strs(yamlDoc(t, "kubernetes/base/kustomization.yaml")["resources"]) {
		for _, d := range yamlDocs(t, filepath.Join("kubernetes/base", r)) {
			out[str(d["kind"])+"/"+str(get(d, "metadata.name"))] = d
		}
	}
	return out
}

func TestScaledOverlay(t *testing.T) {
	const dir = "kubernetes/scaled"
	k := yamlDoc(t, dir+"/kustomization.yaml")
	if k["namespace"] != nil {
		t.Error("the scaled overlay sets a namespace; leave it to the user's overlay or kubectl -n")
	}
	if got := strs(k["resources"]); !slices.Equal(got, []string{"../base"}) {
		t.Fatalf("scaled resources %v, want [../base]", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "../base/kustomization.yaml")); err != nil {
		t.Fatal(err)
	}
	base := baseObjects(t)

	// Every patch exists and patches an object of the base.
	patched := map[string]map[string]any{}
	removesVCT := false
	for i, p := range list(k["patches"]) {
		if file := str(get(p, "path")); file != "" {
			d := yamlDoc(t, filepath.Join(dir, file))
			key := str(d["kind"]) + "/" + str(get(d, "metadata.name"))
			if base[key] == nil {
				t.Errorf("patch %s: the base has no %s", file, key)
			}
			patched[key] = d
			continue
		}
		key := str(get(p, "target.kind")) + "/" + str(get(p, "target.name"))
		if base[key] == nil {
			t.Errorf("patches[%d]: the base has no %s", i, key)
		}
		var ops []map[string]any
		if err := yaml.Unmarshal([]byte(str(get(p, "patch"))), &ops); err != nil {
			t.Fatalf("patches[%d]: %v", i, err)
		}
		for _, op := range ops {
			if key == "StatefulSet/rollcall" && op["op"] == "remove" && op["path"] == "/spec/volumeClaimTemplates" {
				removesVCT = true
			}
		}
	}
	if !removesVCT {
		t.Error("the overlay does not remove the base's volumeClaimTemplates: replicas on NATS KV need no volume")
	}

	ss := patched["StatefulSet/rollcall"]
	if ss == nil {
		t.Fatal("the overlay does not patch the StatefulSet")
	}
	if get(ss, "spec.podManagementPolicy") != "Parallel" {
		t.Errorf("podManagementPolicy %v, want Parallel: each replica's groups wait for it", get(ss, "spec.podManagementPolicy"))
	}
	// The base's state mount goes with its volume.
	var stateMount string
	for _, m := range list(get(base["StatefulSet/rollcall"], "spec.template.spec.containers.0.volumeMounts")) {
		if str(get(m, "name")) == str(get(base["StatefulSet/rollcall"], "spec.volumeClaimTemplates.0.metadata.name")) {
			stateMount = str(get(m, "mountPath"))
		}
	}
	deleted := false
	for _, m := range list(get(ss, "spec.template.spec.containers.0.volumeMounts")) {
		if str(get(m, "mountPath")) == stateMount && get(m, "$patch") == "delete" {
			deleted = true
		}
	}
	if stateMount == "" || !deleted {
		t.Errorf("the overlay does not delete the state volume's mount (%q)", stateMount)
	}
	if get(ss, "spec.template.spec.containers.0.readinessProbe") != nil {
		t.Error("the overlay replaces the base's readiness probe on /readyz")
	}
	if got := str(get(base["StatefulSet/rollcall"], "spec.template.spec.containers.0.readinessProbe.httpGet.path")); got != "/readyz" {
		t.Errorf("readiness path %q, want /readyz (fails while the KV is unreachable)", got)
	}

	pdb := patched["PodDisruptionBudget/rollcall"]
	if get(pdb, "spec.maxUnavailable") != 1 || get(pdb, "spec.minAvailable") != nil {
		t.Errorf("PodDisruptionBudget %v, want maxUnavailable 1", get(pdb, "spec"))
	}

	// The configuration: one for every replica, its count the replicas'.
	cfg, key := configMapConfigAt(t, dir+"/configmap.yaml")
	if _, baseKey := configMapConfig(t); key != baseKey {
		t.Errorf("the overlay's config is data.%s, the base mounts data.%s", key, baseKey)
	}
	sc := shardOf(t, dir, cfg)
	replicas, _ := get(ss, "spec.replicas").(int)
	if replicas < 2 || sc.Count != replicas {
		t.Errorf("spec.replicas %d, shard.count %d: want equal, above 1", replicas, sc.Count)
	}
	if !sc.IndexFromHostname || get(cfg, "shard.index") != nil {
		t.Error("the overlay must take each pod's index from its name (shard.index_from_hostname), not shard.index")
	}
	// The pods rollcall-0 .. rollcall-N-1 get the indexes 0 .. N-1.
	for i := 0; i <= replicas; i++ {
		host := fmt.Sprintf("%s-%d", get(base["StatefulSet/rollcall"], "metadata.name"), i)
		s, err := sc.Resolve(host)
		if i < replicas && (err != nil || s.Index != i) {
			t.Errorf("pod %s: shard %v, %v", host, s, err)
		}
		if i == replicas && err == nil {
			t.Errorf("pod %s (beyond the replicas) resolved", host)
		}
	}
	checkSharedState(t, dir, cfg)
	if get(cfg, "state.create") != false {
		t.Errorf("state.create %v, want false: production buckets are created beforehand", get(cfg, "state.create"))
	}
	text := string(readFile(t, dir+"/configmap.yaml"))
	if !strings.Contains(text, "rate_limit / shard.count") {
		t.Error("the overlay's config does not explain the rate split (rate_limit / shard.count)")
	}
	// Apart from state and shard, the overlay's config is the base's.
	baseCfg, _ := configMapConfig(t)
	for _, section := range []string{"tencent", "groups", "poll", "sinks", "http", "log", "shutdown_timeout"} {
		if !reflect.DeepEqual(cfg[section], baseCfg[section]) {
			t.Errorf("section %s differs from the base's config: keep them in step", section)
		}
	}
}

// TestKustomizeBuildScaled renders the overlay when kubectl is installed.
func TestKustomizeBuildScaled(t *testing.T) {
	kubectl := mustLookPath(t, "kubectl")
	render := func(dir string) []map[string]any {
		out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
		}
		docs, err := decodeAll(out)
		if err != nil {
			t.Fatal(err)
		}
		return docs
	}
	if root, base := render("kubernetes"), render("kubernetes/base"); !reflect.DeepEqual(root, base) {
		t.Error("kubernetes/ does not render the same objects as kubernetes/base/")
	}
	var kinds []string
	var ss, pdb, cm map[string]any
	for _, d := range render("kubernetes/scaled") {
		kinds = append(kinds, str(d["kind"]))
		switch d["kind"] {
		case "StatefulSet":
			ss = d
		case "PodDisruptionBudget":
			pdb = d
		case "ConfigMap":
			cm = d
		}
	}
	sort.Strings(kinds)
	if want := []string{"ConfigMap", "PodDisruptionBudget", "PrometheusRule", "Service", "ServiceMonitor", "StatefulSet"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("rendered kinds %v, want %v", kinds, want)
	}
	if get(ss, "spec.volumeClaimTemplates") != nil {
		t.Error("rendered StatefulSet still claims a volume")
	}
	volumes := map[string]bool{}
	for _, v := range list(get(ss, "spec.template.spec.volumes")) {
		volumes[str(get(v, "name"))] = true
	}
	for _, m := range list(get(ss, "spec.template.spec.containers.0.volumeMounts")) {
		if !volumes[str(get(m, "name"))] {
			t.Errorf("volumeMount %s has no volume", get(m, "name"))
		}
	}
	if got := str(get(ss, "spec.template.spec.containers.0.readinessProbe.httpGet.path")); got != "/readyz" {
		t.Errorf("readiness path %q", got)
	}
	if get(pdb, "spec.maxUnavailable") != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", get(pdb, "spec.maxUnavailable"))
	}
	var cfg map[string]any
	for _, v := range mapOf(cm["data"]) {
		if err := yaml.Unmarshal([]byte(str(v)), &cfg); err != nil {
			t.Fatal(err)
		}
	}
	if n := shardOf(t, "rendered ConfigMap", cfg).Count; get(ss, "spec.replicas") != n {
		t.Errorf("rendered replicas %v, shard.count %d", get(ss, "spec.replicas"), n)
	}
}

func TestComposeScaled(t *testing.T) {
	const file = "compose/docker-compose.scaled.yaml"
	c := yamlDoc(t, file)
	svcs := mapOf(c["services"])
	if !contains(strs(get(svcs, "nats.command")), "-js") || get(svcs, "nats.healthcheck.test") == nil {
		t.Error("the nats service must run JetStream (-js) and have a healthcheck")
	}
	sim := strs(get(svcs, "simulator.command"))
	flagVal := func(args []string, f string) string {
		if i := slices.Index(args, f); i >= 0 && i+1 < len(args) {
			return args[i+1]
		}
		return ""
	}
	var replicas []string
	for name := range svcs {
		if strings.HasPrefix(name, "rollcall-") {
			replicas = append(replicas, name)
		}
	}
	sort.Strings(replicas)
	if len(replicas) < 2 {
		t.Fatalf("%d rollcall replicas, want at least 2", len(replicas))
	}
	var cfgFile string
	ports := map[string]bool{}
	for i, name := range replicas {
		s := get(svcs, name)
		if h := str(get(s, "hostname")); h != fmt.Sprintf("rollcall-%d", i) {
			t.Errorf("%s: hostname %q, want rollcall-%d (its shard index)", name, h, i)
		}
		if get(s, "build.dockerfile") != "Dockerfile" {
			t.Errorf("%s is not built from the repository's Dockerfile", name)
		}
		at := flagVal(strs(get(s, "command")), "--config")
		for _, v := range strs(get(s, "volumes")) {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 && parts[1] == at {
				if cfgFile != "" && cfgFile != parts[0] {
					t.Errorf("%s reads %s, another replica %s: replicas must share one config", name, parts[0], cfgFile)
				}
				cfgFile = parts[0]
			}
			if len(parts) >= 2 && parts[1] == "/var/lib/rollcall" {
				t.Errorf("%s mounts a state volume; the state is in NATS KV", name)
			}
		}
		if str(get(s, "depends_on.nats.condition")) != "service_healthy" {
			t.Errorf("%s does not wait for nats", name)
		}
		for _, p := range strs(get(s, "ports")) {
			host := strings.Split(p, ":")[0]
			if ports[host] {
				t.Errorf("host port %s published twice", host)
			}
			ports[host] = true
		}
	}
	if cfgFile == "" {
		t.Fatal("no config mounted at --config")
	}
	cfg := yamlDoc(t, filepath.Join("compose", cfgFile))
	sc := shardOf(t, cfgFile, cfg)
	if sc.Count != len(replicas) || !sc.IndexFromHostname {
		t.Errorf("shard.count %d for %d replicas (index_from_hostname %v)", sc.Count, len(replicas), sc.IndexFromHostname)
	}
	checkSharedState(t, cfgFile, cfg)
	if u, err := url.Parse(str(get(cfg, "tencent.endpoint"))); err != nil || u.Hostname() != "simulator" {
		t.Errorf("tencent.endpoint %v is not the simulator", get(cfg, "tencent.endpoint"))
	}
	var want []string
	n := 0
	fmt.Sscan(flagVal(sim, "--groups"), &n)
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprintf("room-%d", i))
	}
	if got := strs(get(cfg, "groups.ids")); !reflect.DeepEqual(got, want) {
		t.Errorf("groups %v, the simulator serves %v", got, want)
	}
	// Every replica owns some of the demo's groups.
	owned := map[int]int{}
	for _, g := range want {
		owned[shard.Owner(sc.Count, uint64(get(cfg, "tencent.sdkappid").(int)), g)]++
	}
	if len(owned) != sc.Count {
		t.Errorf("the demo's groups fall on %d of %d shards: %v", len(owned), sc.Count, owned)
	}
	if str(get(cfg, "tencent.sdkappid")) != flagVal(sim, "--sdkappid") {
		t.Errorf("config sdkappid %v, simulator %s", get(cfg, "tencent.sdkappid"), flagVal(sim, "--sdkappid"))
	}
	text := string(readFile(t, file))
	if !strings.Contains(text, "kv ls "+str(get(cfg, "state.bucket"))) {
		t.Error("the compose comments do not show how to list the state bucket")
	}
}
