package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"gopkg.in/yaml.v3"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/poller/shard"
	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
)

// withHostname makes hostname return h for the test.
func withHostname(t *testing.T, h string) {
	t.Helper()
	old := hostname
	hostname = func() (string, error) { return h, nil }
	t.Cleanup(func() { hostname = old })
}

func TestShardDefaultsChangeNothing(t *testing.T) {
	c, err := ParseConfig([]byte(minimalConfig), env("KEY", "k"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Shard.Count != 1 || c.shard() != (shard.Shard{Count: 1}) {
		t.Errorf("shard = %+v, resolved %v", c.Shard.Config, c.shard())
	}
	if c.rateLimit() != c.Tencent.RateLimit {
		t.Errorf("rate %g, want all of tencent.rate_limit %g", c.rateLimit(), c.Tencent.RateLimit)
	}
	if got := c.ownedGroups(c.Groups.IDs); !slices.Equal(got, c.Groups.IDs) {
		t.Errorf("owned %v, want every group", got)
	}
}

// TestShardNeedsASharedState: replicas over the file or memory driver
// would each keep a state of their own.
func TestShardNeedsASharedState(t *testing.T) {
	for _, tc := range []struct{ extra, key, msg string }{
		{"shard: {count: 2}\n", "shard.count", "state.driver file"},
		{"shard: {count: 3, index: 1}\nstate: {driver: memory}\n", "shard.count", "state.driver memory"},
		{"shard: {count: 0}\n", "", ""}, // the default
		{"shard: {count: -2}\n", "shard.count", "between 1"},
		{"shard: {index: 1}\n", "shard.index", "below shard.count 1"},
		{"shard: {count: 1, index: 0, index_from_hostname: true}\n", "", ""},
		{"shard: {cont: 2}\n", "shard.cont", ""},
	} {
		withHostname(t, "rollcall-0")
		_, err := ParseConfig([]byte(minimalConfig+tc.extra), env("KEY", "k"))
		if tc.key == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.extra, err)
			}
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(ce.Msg, tc.msg) {
			t.Errorf("%q: %v, want an error at %s containing %q", tc.extra, err, tc.key, tc.msg)
		}
	}
}

// shardedConfig is minimalConfig as shard index of count over the shared
// driver; validateShard runs as ParseConfig would run it.
func shardedConfig(t *testing.T, sc shard.Config) (*Config, error) {
	t.Helper()
	c, err := ParseConfig([]byte(minimalConfig), env("KEY", "k"))
	if err != nil {
		t.Fatal(err)
	}
	// The nats driver is not known to this branch's state section; the
	// shard checks only look at the name.
	c.State.Driver = sharedStateDriver
	c.Shard.Config = sc
	c.Shard.SetDefaults()
	return c, c.validateShard()
}

func TestShardFromHostname(t *testing.T) {
	withHostname(t, "rollcall-2")
	c, err := shardedConfig(t, shard.Config{Count: 3, IndexFromHostname: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.shard() != (shard.Shard{Count: 3, Index: 2}) {
		t.Errorf("shard %v, want 2/3", c.shard())
	}
	if r := c.rateLimit(); r != c.Tencent.RateLimit/3 {
		t.Errorf("rate %g, want a third of %g", r, c.Tencent.RateLimit)
	}

	for _, host := range []string{"rollcall-3", "rollcall", "worker-7.example"} {
		withHostname(t, host)
		_, err := shardedConfig(t, shard.Config{Count: 3, IndexFromHostname: true})
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != "shard.index_from_hostname" || !strings.Contains(ce.Msg, `"`+host+`"`) {
			t.Errorf("hostname %s: %v, want an error at shard.index_from_hostname naming it", host, err)
		}
	}
	withHostname(t, "rollcall-0")
	_, err = shardedConfig(t, shard.Config{Count: 3, Index: 1, IndexFromHostname: true})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "shard.index" {
		t.Errorf("index and index_from_hostname: %v", err)
	}
	// 0.2 calls/s over 3 replicas is below tencent's minimum per replica.
	c, _ = shardedConfig(t, shard.Config{Count: 1})
	c.Tencent.RateLimit = 0.2
	c.Shard.Config = shard.Config{Count: 3, Index: 1}
	if err := c.validateShard(); !errors.As(err, &ce) || ce.Key != "shard.count" {
		t.Errorf("rate split below the minimum: %v", err)
	}
}

// TestShardedConfigParses: a whole sharded configuration through
// ParseConfig. It needs the nats state driver; on a branch without it the
// state section refuses the configuration and the test skips.
func TestShardedConfigParses(t *testing.T) {
	withHostname(t, "rollcall-1")
	y := minimalConfig + "state:\n  driver: nats\n  url: nats://127.0.0.1:4222\nshard:\n  count: 3\n  index_from_hostname: true\n"
	c, err := ParseConfig([]byte(y), env("KEY", "k"))
	var ce *ConfigError
	if errors.As(err, &ce) && strings.HasPrefix(ce.Key, "state") {
		t.Skipf("the nats state driver is not known here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.shard() != (shard.Shard{Count: 3, Index: 1}) {
		t.Errorf("shard %v, want 1/3", c.shard())
	}
}

// TestPipelinePollsOnlyOwnedGroups: three replicas' schedulers, over one
// configuration, split the groups between them, each group to one; a
// reload's added groups are split the same way.
func TestPipelinePollsOnlyOwnedGroups(t *testing.T) {
	api := newAPI(t, tencenttest.Options{})
	var groups []string
	for i := range 30 {
		g := "room-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		groups = append(groups, g)
		api.AddGroup(g)
	}
	e := newEnv(t, api, groups[:20], "")
	t.Setenv("ROLLCALL_TEST_KEY", api.Key())
	ctx := context.Background()
	owner := map[string]int{}
	for idx := range 3 {
		cfg, err := LoadConfig(e.config)
		if err != nil {
			t.Fatal(err)
		}
		// As validateShard resolves it for shard.count 3 on the nats driver.
		cfg.Shard.Count, cfg.Shard.Index = 3, idx
		cfg.Shard.resolved = shard.Shard{Count: 3, Index: idx}
		p, err := newPipeline(ctx, cfg, zap.NewNop(), pipelineOptions{stdout: io.Discard, store: diff.NewMemoryStore()})
		if err != nil {
			t.Fatal(err)
		}
		d := &daemon{cfg: cfg, path: e.config, logger: zap.NewNop()}
		// A reload adds the other ten groups.
		all := append([]string(nil), groups...)
		e.writeConfig(all, "", "")
		d.reload(ctx, p)
		e.writeConfig(groups[:20], "", "") // for the next replica
		for _, g := range p.sched.Groups() {
			if prev, dup := owner[g]; dup {
				t.Errorf("group %s polled by replicas %d and %d", g, prev, idx)
			}
			owner[g] = idx
			if shard.Owner(3, cfg.Tencent.SDKAppID, g) != idx {
				t.Errorf("replica %d polls %s, owned by %d", idx, g, shard.Owner(3, cfg.Tencent.SDKAppID, g))
			}
		}
		if n := len(p.sched.Groups()); n < 4 || n > 16 {
			t.Errorf("replica %d polls %d of 30 groups", idx, n)
		}
		if err := p.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(owner) != len(groups) {
		t.Errorf("%d of %d groups polled by some replica", len(owner), len(groups))
	}
}

// TestCheckShowsTheShard: rollcall check --offline reports the shard
// without calling anything. The file driver refuses a count above 1, so
// this needs the nats driver and skips without it, like
// TestShardedConfigParses.
func TestCheckShowsTheShard(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "rollcall.yaml")
	y := strings.Replace(minimalConfig, "${KEY}", "k", 1) +
		"state:\n  driver: nats\n  url: nats://127.0.0.1:4222\nshard:\n  count: 2\n  index: 1\n"
	if err := os.WriteFile(p, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err := cmdCheck(context.Background(), []string{"--config", p, "--offline"}, &out, io.Discard)
	if err != nil && strings.Contains(out.String(), "FAIL  config") && strings.Contains(out.String(), "state") {
		t.Skipf("the nats state driver is not known here:\n%s", out.String())
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "PASS  shard 1 of 2 (owns ") {
		t.Errorf("check does not show the shard:\n%s", out.String())
	}
}

// TestDeployConfigsParse loads the configurations the deployments ship
// with rollcall's own loader: the Kubernetes base and scaled overlay (as
// pod rollcall-1, with the mounted secret file at a temporary path) and
// the compose files. The scaled ones need the nats state driver and skip
// on a branch without it.
func TestDeployConfigsParse(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "secret_key")
	if err := os.WriteFile(keyFile, []byte("k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withHostname(t, "rollcall-1")
	for _, tc := range []struct {
		file      string
		configMap bool
		count     int
	}{
		{"kubernetes/base/configmap.yaml", true, 1},
		{"kubernetes/scaled/configmap.yaml", true, 3},
		{"compose/rollcall.yaml", false, 1},
		{"compose/rollcall.scaled.yaml", false, 2},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("../../deploy", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if tc.configMap {
				var cm struct{ Data map[string]string }
				if err := yaml.Unmarshal(b, &cm); err != nil || len(cm.Data) != 1 {
					t.Fatalf("not a ConfigMap with one file: %v", err)
				}
				for _, v := range cm.Data {
					b = []byte(v)
				}
			}
			b = []byte(strings.ReplaceAll(string(b), "/var/run/secrets/rollcall/secret_key", keyFile))
			c, err := ParseConfig(b, env("TENCENT_SECRET_KEY", "k"))
			var ce *ConfigError
			if tc.count > 1 && errors.As(err, &ce) && strings.HasPrefix(ce.Key, "state") {
				t.Skipf("the nats state driver is not known here: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := c.shard(); s.Count != tc.count || (tc.count > 1 && s.Index != 1) {
				t.Errorf("shard %v, want 1 of %d (or 0 of 1)", s, tc.count)
			}
		})
	}
}

// TestShardLoggedAtStart: a sharded replica states its part once; an
// unsharded one logs nothing new.
func TestShardLoggedAtStart(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	c, err := ParseConfig([]byte(minimalConfig), env("KEY", "k"))
	if err != nil {
		t.Fatal(err)
	}
	logShard(zap.New(core), c)
	if logs.Len() != 0 {
		t.Fatalf("an unsharded replica logged %v", logs.All())
	}
	c.Shard.resolved = shard.Shard{Count: 4, Index: 3}
	logShard(zap.New(core), c)
	if logs.Len() != 1 {
		t.Fatalf("%d log lines, want 1", logs.Len())
	}
	f := logs.All()[0].ContextMap()
	if f["shard_index"] != int64(3) || f["shard_count"] != int64(4) || f["rate_limit"] != c.Tencent.RateLimit/4 ||
		f["groups_configured"] != int64(2) || f["groups_owned"] != int64(len(c.ownedGroups(c.Groups.IDs))) {
		t.Errorf("fields %v", f)
	}
}

// TestReloadReportsAShardChange: the shard applies from the start; a
// reload that changes it says it needs a restart.
func TestReloadReportsAShardChange(t *testing.T) {
	a, err := ParseConfig([]byte(minimalConfig), env("KEY", "k"))
	if err != nil {
		t.Fatal(err)
	}
	b := *a
	b.Shard.resolved = shard.Shard{Count: 2, Index: 1}
	if got := changedSections(a, &b); !slices.Equal(got, []string{"shard"}) {
		t.Errorf("changed sections %v, want [shard]", got)
	}
}
