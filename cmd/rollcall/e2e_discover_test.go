package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
)

// useDiscovery rewrites e's config to watch the groups discovery finds,
// with no groups.ids, and exclude.
func (e *e2eEnv) useDiscovery(exclude ...string) {
	e.t.Helper()
	b, err := os.ReadFile(e.config)
	if err != nil {
		e.t.Fatal(err)
	}
	groups := "groups:\n  discover: {interval: 10m}\n  exclude: [" + strings.Join(quoteAll(exclude), ", ") + "]\n"
	y := strings.Replace(string(b), "groups:\n  ids: []\n", groups, 1)
	if y == string(b) {
		e.t.Fatal("no empty groups.ids to replace")
	}
	e.saveConfig(y)
}

// membersListed returns the groups get_members was called for.
func membersListed(api *tencenttest.Server) []string {
	var out []string
	for _, r := range api.Requests() {
		if r.Command == "get_members" && !slices.Contains(out, r.GroupID) {
			out = append(out, r.GroupID)
		}
	}
	slices.Sort(out)
	return out
}

// TestRunOnceDiscoversGroups: with groups.discover and no groups.ids, the
// app's AVChatRoom groups are watched: each new one baselines, an excluded
// one is never polled, and one dismissed (gone from the listing, confirmed
// by get_group_info) is reported dismissed once, after a restart too.
func TestRunOnceDiscoversGroups(t *testing.T) {
	api := newAPI(t, tencenttest.Options{GroupListPageSize: 2})
	api.AddGroup("room-a", member("alice", 1795600000), member("bob", 1795600100))
	api.AddGroup("room-b", member("carol", 1795600000))
	api.AddGroup("skip", member("dave", 1795600000))
	api.AddGroupOfType("pub", "Public")
	e := newEnv(t, api, nil, "")
	e.useDiscovery("skip")

	e.mustOnce()
	got := summary(e.events())
	slices.Sort(got)
	want := []string{"member.joined/baseline/alice", "member.joined/baseline/bob", "member.joined/baseline/carol"}
	if !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}

	api.AddGroup("room-c", member("erin", 1795600000))
	e.mustOnce()
	if got, want := summary(e.events()[3:]), []string{"member.joined/baseline/erin"}; !slices.Equal(got, want) {
		t.Fatalf("after a new group: events = %v, want %v", got, want)
	}

	// Left out of the listing but found by get_group_info: still watched,
	// nothing reported.
	api.SetListed("room-a", false)
	api.Leave("room-a", "bob")
	e.mustOnce()
	if got, want := summary(e.events()[4:]), []string{"member.left/left/bob"}; !slices.Equal(got, want) {
		t.Fatalf("with room-a unlisted: events = %v, want %v (still polled)", got, want)
	}
	api.SetListed("room-a", true)

	api.Dismiss("room-b")
	e.mustOnce()
	var dismissed []string
	for _, ev := range e.events()[5:] {
		if ev.Type == "rollcall.group.dismissed" {
			dismissed = append(dismissed, ev.Subject)
		}
	}
	if !slices.Equal(dismissed, []string{"room-b"}) {
		t.Fatalf("dismissed events for %v, want [room-b]: %v", dismissed, summary(e.events()[5:]))
	}
	n := len(e.events())
	e.mustOnce()
	if extra := summary(e.events()[n:]); len(extra) != 0 {
		t.Fatalf("a run after the dismissal emitted %v", extra)
	}
	if got, want := membersListed(api), []string{"room-a", "room-b", "room-c"}; !slices.Equal(got, want) {
		t.Fatalf("get_members called for %v, want %v (never skip or pub)", got, want)
	}
}

func TestDiscoverConfig(t *testing.T) {
	base := strings.Replace(minimalConfig, "  ids: [\"@TGS#a\", \"room-2\"]\n", "%s", 1)
	for groups, want := range map[string]string{
		"  ids: []\n": "config: groups.ids: at least one group id is required",
		"  ids: []\n  discover: {interval: 0s}\n": "config: groups.ids: at least one group id is required",
		"  discover:\n":                                      "config: groups.ids: at least one group id is required",
		"  discover: {interval: 5s}\n":                       "config: groups.discover.interval: must be at least 10s, or 0 to turn discovery off (got 5s)",
		"  discover: {}\n  exclude: [\"a\", \"a\"]\n":        `config: groups.exclude[1]: duplicate group id "a"`,
		"  discover: {}\n  exclude: [\"a\", \"\"]\n":         "config: groups.exclude[1]: empty group id",
		"  discover: {}\n":                                   "",
		"  ids: [\"x\"]\n  discover: {interval: 1h}\n":       "",
		"  ids: [\"x\", \"y\"]\n  exclude: [\"y\", \"z\"]\n": "",
	} {
		cfg, err := ParseConfig([]byte(strings.Replace(base, "%s", groups, 1)), env("KEY", "k"))
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", groups, err)
		case want != "" && (err == nil || err.Error() != want):
			t.Errorf("%q: err = %v, want %q", groups, err, want)
		case want == "" && strings.Contains(groups, "discover: {}") && cfg.Groups.discoverInterval().String() != "10m0s":
			t.Errorf("%q: interval %s, want the default 10m", groups, cfg.Groups.discoverInterval())
		}
	}
}

// TestE2EOpsDiscoveryDaemon: a daemon with discovery only picks up a group
// created while it runs (baseline) and reports one dismissed while it runs,
// and counts its listings.
func TestE2EOpsDiscoveryDaemon(t *testing.T) {
	api := newAPI(t, tencenttest.Options{})
	api.AddGroup("room-a", member("alice", 1795600000))
	api.AddGroup("room-b", member("bob", 1795600000))
	e := newDaemonEnv(t, api, nil, "")
	b, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	// The shortest interval, so that the test sees a second listing.
	e.saveConfig(strings.Replace(string(b), "groups:\n  ids: []\n", "groups:\n  discover: {interval: 10s}\n", 1))
	d := startOpsDaemon(t, e, api.Key())
	e.waitEvents(2)

	api.AddGroup("room-c", member("carol", 1795600000))
	api.Dismiss("room-b")
	var evs []string
	opsEventually(t, 30*time.Second, "carol's baseline and room-b's dismissal", func() bool {
		evs = summary(e.events())
		return slices.Contains(evs, "member.joined/baseline/carol") && slices.ContainsFunc(evs, func(s string) bool {
			return strings.HasPrefix(s, "group.dismissed/")
		})
	})
	if v := d.metric("rollcall_discovery_runs_total", "result", "ok"); v < 2 {
		t.Fatalf("rollcall_discovery_runs_total{result=ok} = %v, want >= 2", v)
	}
	if v := d.metric("rollcall_discovered_groups"); v != 2 {
		t.Fatalf("rollcall_discovered_groups = %v, want 2", v)
	}
	d.stop()
}

// TestDiscoveryWrongKeyIsFatal: with discovery alone nothing is polled, so
// the listing is what finds that the API rejects the key: as a poll would,
// it stops rollcall with the fatal exit code, daemon and --once alike,
// never quoting the key.
func TestDiscoveryWrongKeyIsFatal(t *testing.T) {
	api := newAPI(t, tencenttest.Options{})
	api.AddGroup("room-a", member("alice", 1795600000))
	e := newDaemonEnv(t, api, nil, "")
	b, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	e.saveConfig(strings.Replace(string(b), "groups:\n  ids: []\n", "groups:\n  discover: {interval: 10s}\n", 1))
	const wrongKey = "wrong-key-for-discovery-0123456789"
	p := startProc(t, wrongKey, "run", "--config", e.config)
	if code := p.wait(t, 30*time.Second); code != exitFatal {
		t.Fatalf("daemon: exit %d, want %d; stderr:\n%s", code, exitFatal, p.stderr.String())
	}
	if s := p.stderr.String(); !strings.Contains(s, "group discovery") || strings.Contains(s, wrongKey) {
		t.Errorf("daemon stderr does not name discovery, or quotes the key:\n%s", s)
	}
	r := runCLI(t, wrongKey, nil, "run", "--config", e.config, "--once")
	if r.code != exitFatal || strings.Contains(r.stderr, wrongKey) {
		t.Fatalf("--once: exit %d, want %d, without the key; stderr:\n%s", r.code, exitFatal, r.stderr)
	}
}

// TestCheckWithDiscoveryOnly: `rollcall check` with discovery and no
// groups.ids lists the groups instead of reading a group that is not there.
func TestCheckWithDiscoveryOnly(t *testing.T) {
	api := newAPI(t, tencenttest.Options{})
	api.AddGroup("room-a", member("alice", 1795600000))
	api.AddGroup("room-b")
	e := newEnv(t, api, nil, "")
	e.useDiscovery()
	r := runCLI(t, api.Key(), nil, "check", "--config", e.config)
	if r.code != 0 || !strings.Contains(r.stdout, "PASS  api get_appid_group_list (2 AVChatRoom groups)") ||
		!strings.Contains(r.stdout, "PASS  api get_members (skipped: no groups.ids)") {
		t.Fatalf("check exited %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}
