package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
	"github.com/rollcall-dev/rollcall/schema/config"
)

const minimalConfig = `
tencent:
  sdkappid: 1400000000
  identifier: administrator
  secret_key: ${KEY}
  endpoint: http://127.0.0.1:1
groups:
  ids: ["@TGS#a", "room-2"]
sinks:
  - type: stdout
`

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(minimalConfig), env("KEY", "s3cr3t-key"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tencent.SecretKey != "s3cr3t-key" {
		t.Errorf("secret_key not expanded from env: %q", c.Tencent.SecretKey)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"rate_limit", c.Tencent.RateLimit, float64(200)},
		{"request_timeout", c.Tencent.RequestTimeout, 5 * time.Second},
		{"interval", c.Poll.Interval, 10 * time.Second},
		{"member_cap", c.Poll.MemberCap, 1000},
		{"baseline", c.Poll.Baseline, "emit"},
		{"concurrency", c.Poll.Concurrency, 8},
		{"state.driver", c.State.Driver, "file"},
		{"state.path", c.State.Path, "state"},
		{"state.checkpoint_interval", c.State.Interval(), time.Minute},
		{"http.pprof", c.HTTP.PProf, false},
		{"http.listen", *c.HTTP.Listen, "127.0.0.1:9464"},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "json"},
		{"shutdown_timeout", c.ShutdownTimeout, 30 * time.Second},
		{"retry.max_elapsed_time", c.Sinks[0].Retry.MaxElapsedTime, 30 * time.Second},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	// state.checkpoint_interval: 0 (every poll, as before it existed)
	// differs from unset.
	every, err := ParseConfig([]byte(minimalConfig+"state: {checkpoint_interval: 0s}\n"), env("KEY", "k"))
	if err != nil || every.State.Interval() != 0 {
		t.Errorf("checkpoint_interval 0 = %v, %v; want 0", every.State.Interval(), err)
	}
	// Left unset, the request timeout fits a short interval: a call and a
	// retry within one cycle.
	short, err := ParseConfig([]byte(minimalConfig+"poll: {interval: 2s}\n"), env("KEY", "k"))
	if err != nil {
		t.Fatalf("interval 2s without request_timeout: %v", err)
	}
	if got := short.Tencent.RequestTimeout; got != time.Second {
		t.Errorf("request_timeout with a 2s interval = %v, want 1s", got)
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c.Tencent, c.Tencent); strings.Contains(s, "s3cr3t") {
		t.Errorf("secret printed: %s", s)
	}
}

func TestParseConfigFull(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(keyFile, []byte("from-file\n"), 0o600)
	os.WriteFile(pwFile, []byte("kafka-pw\n"), 0o600)
	y := fmt.Sprintf(`
tencent:
  sdkappid: 1400000000
  identifier: administrator
  secret_key_file: %s
  region: singapore
  rate_limit: ${RATE}
  request_timeout: 2s
groups:
  ids: [a]
  mark: 1000
poll: {interval: 20s, member_cap: 30, baseline: silent, concurrency: 2}
state: {driver: memory}
sinks:
  - type: file
    path: %s
    gzip: true
  - type: kafka
    brokers: ["127.0.0.1:9092"]
    topic: t
    mode: binary
    compression: zstd
    sasl: {mechanism: scram-sha-512, username: u, password_file: %s}
    retry: {initial_interval: 1s, max_interval: 2s, max_elapsed_time: 5s}
  - type: nats
    url: nats://127.0.0.1:4222
    jetstream: true
    stream: {create: true}
http: {listen: ""}
log: {level: debug, format: console}
shutdown_timeout: 5s
`, keyFile, dir, pwFile)
	c, err := ParseConfig([]byte(y), env("RATE", "50"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Tencent.SecretKey != "from-file" || c.Tencent.RateLimit != 50 || *c.Groups.Mark != 1000 {
		t.Errorf("tencent/groups wrong: %+v mark=%v", c.Tencent, c.Groups.Mark)
	}
	if c.Sinks[1].Kafka.SASL.Password != "kafka-pw" || c.Sinks[1].Retry.MaxElapsedTime != 5*time.Second {
		t.Errorf("kafka sink wrong: %+v", c.Sinks[1])
	}
	if got := c.Sinks[2].NATS; got.URL[0] != "nats://127.0.0.1:4222" || got.SubjectPrefix != "rollcall" || got.Stream.Name != "ROLLCALL" {
		t.Errorf("nats sink wrong: %+v", got)
	}
	if *c.HTTP.Listen != "" {
		t.Errorf("explicit empty http.listen should disable the server, got %q", *c.HTTP.Listen)
	}
}

func TestParseConfigErrorsNameTheKey(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func(mut string) string { return strings.Replace(minimalConfig, "  - type: stdout\n", mut, 1) }
	cases := []struct {
		name, yaml, key string
	}{
		{"unknown top key", minimalConfig + "pol: {}\n", "pol"},
		{"unknown nested key", strings.Replace(minimalConfig, "  endpoint:", "  endpont: x\n  endpoint:", 1), "tencent.endpont"},
		{"no sdkappid", strings.Replace(minimalConfig, "  sdkappid: 1400000000\n", "", 1), "tencent.sdkappid"},
		{"sdkappid not a number", strings.Replace(minimalConfig, "1400000000", "abc", 1), "tencent.sdkappid"},
		{"two secrets", strings.Replace(minimalConfig, "  secret_key:", "  usersig: x\n  secret_key:", 1), "tencent.secret_key"},
		{"bad region", strings.Replace(minimalConfig, "  endpoint: http://127.0.0.1:1", "  region: mars", 1), "tencent.region"},
		{"bad endpoint", strings.Replace(minimalConfig, "http://127.0.0.1:1", "ftp://x", 1), "tencent.endpoint"},
		{"no groups", strings.Replace(minimalConfig, `["@TGS#a", "room-2"]`, "[]", 1), "groups.ids"},
		{"dup group", strings.Replace(minimalConfig, `"room-2"`, `"@TGS#a"`, 1), "groups.ids[1]"},
		{"bad baseline", minimalConfig + "poll: {baseline: loud}\n", "poll.baseline"},
		{"bad interval", minimalConfig + "poll: {interval: 10ms}\n", "poll.interval"},
		{"negative checkpoint interval", minimalConfig + "state: {checkpoint_interval: -1s}\n", "state.checkpoint_interval"},
		{"pprof not a bool", minimalConfig + "http: {pprof: maybe}\n", "http.pprof"},
		{"interval not a duration", minimalConfig + "poll: {interval: often}\n", "poll.interval"},
		{"timeout above interval", strings.Replace(minimalConfig, "  endpoint:", "  request_timeout: 3s\n  endpoint:", 1) + "poll: {interval: 2s}\n", "tencent.request_timeout"},
		{"rate limit NaN", strings.Replace(minimalConfig, "  endpoint:", "  rate_limit: .nan\n  endpoint:", 1), "tencent.rate_limit"},
		{"rate limit infinite", strings.Replace(minimalConfig, "  endpoint:", "  rate_limit: .inf\n  endpoint:", 1), "tencent.rate_limit"},
		{"rate limit tiny", strings.Replace(minimalConfig, "  endpoint:", "  rate_limit: 0.001\n  endpoint:", 1), "tencent.rate_limit"},
		{"kafka negative write_timeout", base("  - type: kafka\n    brokers: [\"h:1\"]\n    topic: t\n    write_timeout: -1s\n"), "sinks[0].write_timeout"},
		{"nats negative publish_timeout", base("  - type: nats\n    url: [\"nats://h:1\"]\n    publish_timeout: -1s\n"), "sinks[0].publish_timeout"},
		{"nats two auth kinds", base("  - type: nats\n    url: [\"nats://h:1\"]\n    user: u\n    password: p\n    token: t\n"), "sinks[0].token"},
		{"kafka topic with a space", base("  - type: kafka\n    brokers: [\"h:1\"]\n    topic: \"bad topic\"\n"), "sinks[0].topic"},
		{"kafka replication too high", base("  - type: kafka\n    brokers: [\"h:1\"]\n    topic: t\n    create_topic: {replication: 40000}\n"), "sinks[0].create_topic.replication"},
		{"nats stream name with a dot", base("  - type: nats\n    url: [\"nats://h:1\"]\n    jetstream: true\n    stream: {name: A.B}\n"), "sinks[0].stream.name"},
		{"nats user without password", base("  - type: nats\n    url: [\"nats://h:1\"]\n    user: bob\n"), "sinks[0].password"},
		{"nats two URLs in one entry", base("  - type: nats\n    url: \"nats://a:1,nats://b:2\"\n"), "sinks[0].url[0]"},
		{"nats URL with a bad scheme", base("  - type: nats\n    url: [\"http://u:secretpw@h:1\"]\n"), "sinks[0].url[0]"},
		{"tls ca not PEM", base("  - type: nats\n    url: [\"nats://h:1\"]\n    tls: {ca: " + notPEM + "}\n"), "sinks[0].tls.ca"},
		{"bad driver", minimalConfig + "state: {driver: redis}\n", "state.driver"},
		{"no sinks", strings.Replace(minimalConfig, "sinks:\n  - type: stdout\n", "", 1), "sinks"},
		{"bad sink type", base("  - type: carrier-pigeon\n"), "sinks[0].type"},
		{"key of another sink type", base("  - type: stdout\n    topic: x\n"), "sinks[0].topic"},
		{"file without path", base("  - type: file\n"), "sinks[0].path"},
		{"kafka no brokers", base("  - type: kafka\n    topic: t\n"), "sinks[0].brokers"},
		{"kafka bad compression", base("  - type: kafka\n    brokers: [\"h:1\"]\n    topic: t\n    compression: brotli\n"), "sinks[0].compression"},
		{"kafka bad sasl", base("  - type: kafka\n    brokers: [\"h:1\"]\n    topic: t\n    sasl: {mechanism: gssapi}\n"), "sinks[0].sasl.mechanism"},
		{"nats bad prefix", base("  - type: nats\n    url: [\"nats://h:1\"]\n    subject_prefix: \"a.*\"\n"), "sinks[0].subject_prefix"},
		{"nats create without js", base("  - type: nats\n    url: [\"nats://h:1\"]\n    stream: {create: true}\n"), "sinks[0].stream.create"},
		{"dup sink names", base("  - type: stdout\n  - type: stdout\n"), "sinks[1].name"},
		{"bad listen", minimalConfig + "http: {listen: nope}\n", "http.listen"},
		{"bad log level", minimalConfig + "log: {level: loud}\n", "log.level"},
		{"missing env", strings.Replace(minimalConfig, "${KEY}", "${NOPE}", 1), "tencent.secret_key"},
		{"missing secret file", strings.Replace(minimalConfig, "secret_key: ${KEY}", "secret_key_file: /nonexistent/key", 1), "tencent.secret_key_file"},
		{"list for a mapping", minimalConfig + "poll: [1]\n", "poll"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), env("KEY", "k"))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if ce.Key != tc.key {
				t.Errorf("error names key %q, want %q (%v)", ce.Key, tc.key, err)
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Errorf("the error quotes a password: %v", err)
			}
		})
	}
}

func TestParseConfigNotYAML(t *testing.T) {
	for _, in := range []string{"", "tencent: [", "- a\n- b\n"} {
		if _, err := ParseConfig([]byte(in), env()); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := config.Secret("hunter2")
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s %#v", s, s, s)} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret printed: %s", out)
		}
	}
}

// TestStaticUserSigChecked: a configured usersig the API would refuse
// whatever happens is a config error naming the key, before any call.
func TestStaticUserSigChecked(t *testing.T) {
	now := time.Now()
	mint := func(app uint64, id string, at time.Time, expire int64) string {
		s, err := usersig.Generate(app, id, "k", expire, at, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cfg := func(sig string) string {
		return strings.Replace(minimalConfig, "secret_key: ${KEY}", "usersig: "+sig, 1)
	}
	good := mint(1400000000, "administrator", now, 86400)
	c, err := ParseConfig([]byte(cfg(good)), env())
	if err != nil || string(c.Tencent.UserSig) != good {
		t.Fatalf("a valid static usersig: %v", err)
	}
	for name, sig := range map[string]string{
		"expired":          mint(1400000000, "administrator", now.Add(-48*time.Hour), 86400),
		"other app":        mint(1400000001, "administrator", now, 86400),
		"other identifier": mint(1400000000, "someone", now, 86400),
		"garbage":          "not-a-usersig",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseConfig([]byte(cfg(sig)), env())
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Key != "tencent.usersig" {
				t.Fatalf("err = %v, want a tencent.usersig error", err)
			}
			if strings.Contains(err.Error(), sig) {
				t.Fatalf("the usersig is in the error: %v", err)
			}
		})
	}
}

func TestStaticUserSigExpiryWarning(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		life      time.Duration
		wantLevel zapcore.Level
	}{{48 * time.Hour, zapcore.WarnLevel}, {30 * 24 * time.Hour, zapcore.InfoLevel}} {
		sig, err := usersig.Generate(1400000000, "administrator", "k", int64(tc.life/time.Second), now, nil)
		if err != nil {
			t.Fatal(err)
		}
		core, logs := observer.New(zapcore.InfoLevel)
		warnStaticUserSig(sig, now, zap.New(core))
		all := logs.All()
		if len(all) != 1 || all[0].Level != tc.wantLevel || !strings.Contains(all[0].Message, "cannot renew") {
			t.Fatalf("usersig valid for %s: logs %v, want one %v entry", tc.life, all, tc.wantLevel)
		}
		if strings.Contains(fmt.Sprint(all[0].ContextMap()), sig) {
			t.Fatal("the usersig is in the log")
		}
	}
}

// TestNATSURLWithoutScheme: host:port is a NATS URL, as nats.go reads it.
func TestNATSURLWithoutScheme(t *testing.T) {
	y := strings.Replace(minimalConfig, "  - type: stdout\n", "  - type: nats\n    url: [\"127.0.0.1:4222\"]\n", 1)
	if _, err := ParseConfig([]byte(y), env("KEY", "k")); err != nil {
		t.Fatal(err)
	}
}

// TestChangedSectionsIgnoresDerivedDefaults: changing poll.interval alone
// does not report the tencent section as changed because the default
// request_timeout, derived from the interval, moved with it.
func TestChangedSectionsIgnoresDerivedDefaults(t *testing.T) {
	parse := func(extra string) *Config {
		c, err := ParseConfig([]byte(minimalConfig+extra), env("KEY", "k"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := parse("poll: {interval: 10s}\n"), parse("poll: {interval: 4s}\n")
	if a.Tencent.RequestTimeout == b.Tencent.RequestTimeout {
		t.Fatal("test setup: the derived request timeouts should differ")
	}
	if got := changedSections(a, b); len(got) != 0 {
		t.Errorf("changed sections %v, want none", got)
	}
	c := parse("poll: {interval: 4s}\n")
	c.Tencent.RateLimit = 50
	if got := changedSections(a, c); !slices.Equal(got, []string{"tencent"}) {
		t.Errorf("changed sections %v, want [tencent]", got)
	}
}
