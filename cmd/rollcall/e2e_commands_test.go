package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/schematest"
)

// The commands besides `run`, each through the real binary.

// cmdsVector is one entry of the usersig test vectors.
type cmdsVector struct {
	SDKAppID   uint64  `json:"sdkappid"`
	Key        string  `json:"key"`
	Identifier string  `json:"identifier"`
	Expire     int64   `json:"expire"`
	Time       int64   `json:"time"`
	UserBuf    *string `json:"userbuf_base64"`
	UserSig    string  `json:"usersig"`
}

func TestCommandUserSigMatchesVectors(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../poller/tencent/usersig/testdata/usersig_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []cmdsVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 3 {
		t.Fatalf("%d vectors, want 3", len(vs))
	}
	for i, v := range vs {
		t.Run(fmt.Sprintf("%d-%s", i, v.Identifier), func(t *testing.T) {
			if v.UserBuf != nil {
				// `rollcall usersig` has no --userbuf flag: an admin usersig
				// for the REST API never carries one.
				t.Skip("vector with a userbuf; the command signs without one")
			}
			args := []string{"usersig", "--sdkappid", fmt.Sprint(v.SDKAppID), "--identifier", v.Identifier,
				"--time", fmt.Sprint(v.Time), "--expire", fmt.Sprint(v.Expire)}

			r := runCLI(t, "", []string{"ROLLCALL_E2E_SIG_KEY=" + v.Key}, append(args, "--key-env", "ROLLCALL_E2E_SIG_KEY")...)
			if r.code != 0 {
				t.Fatalf("--key-env: exit %d\n%s", r.code, r.stderr)
			}
			if r.stdout != v.UserSig+"\n" {
				t.Errorf("--key-env: usersig\n%q\nwant\n%q", r.stdout, v.UserSig+"\n")
			}
			inpNoSecret(t, r, v.Key)

			// A key file as a mounted secret, with the trailing newline
			// editors add.
			kf := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(kf, []byte(v.Key+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			r = runCLI(t, "", nil, append(args, "--key-file", kf)...)
			if r.code != 0 {
				t.Fatalf("--key-file: exit %d\n%s", r.code, r.stderr)
			}
			if r.stdout != v.UserSig+"\n" {
				t.Errorf("--key-file: usersig\n%q\nwant\n%q", r.stdout, v.UserSig+"\n")
			}
			inpNoSecret(t, r, v.Key)
		})
	}
}

func TestCommandUserSigBadFlags(t *testing.T) {
	t.Parallel()
	const key = "a-secret-key-that-must-never-be-printed-0123"
	env := []string{"ROLLCALL_E2E_SIG_KEY=" + key}
	kf := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(kf, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no sdkappid", []string{"--identifier", "admin", "--key-env", "ROLLCALL_E2E_SIG_KEY"}, "--sdkappid"},
		{"no identifier", []string{"--sdkappid", "1400000000", "--key-env", "ROLLCALL_E2E_SIG_KEY"}, "--identifier"},
		{"no key", []string{"--sdkappid", "1400000000", "--identifier", "admin"}, "--key-env"},
		{"both keys", []string{"--sdkappid", "1400000000", "--identifier", "admin", "--key-env", "ROLLCALL_E2E_SIG_KEY", "--key-file", kf}, "exactly one"},
		{"unset key env", []string{"--sdkappid", "1400000000", "--identifier", "admin", "--key-env", "ROLLCALL_E2E_NOT_SET"}, "ROLLCALL_E2E_NOT_SET"},
		{"missing key file", []string{"--sdkappid", "1400000000", "--identifier", "admin", "--key-file", "/nonexistent/key"}, "/nonexistent/key"},
		{"bad expire", []string{"--sdkappid", "1400000000", "--identifier", "admin", "--key-env", "ROLLCALL_E2E_SIG_KEY", "--expire", "0"}, "--expire"},
		{"unknown flag", []string{"--sdkappid", "1400000000", "--identifier", "admin", "--key", key}, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, "", env, append([]string{"usersig"}, tc.args...)...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d\nstderr:\n%s", r.code, exitUsage, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout not empty: %q", r.stdout)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr does not mention %q:\n%s", tc.want, r.stderr)
			}
			if tc.name != "unknown flag" { // there the user typed the key on the command line
				inpNoSecret(t, r, key)
			}
		})
	}
}

func TestCommandSnapshot(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{PageSize: 250})
	base := time.Now().Unix() - 7200
	api.AddGroup("@TGS#big", members(600, "u%03d", base)...)
	e := newEnv(t, api, []string{"@TGS#big"}, "")

	r := runCLI(t, api.Key(), nil, "snapshot", "--config", e.config, "--group", "@TGS#big", "--format", "json")
	if r.code != 0 {
		t.Fatalf("json: exit %d\n%s", r.code, r.stderr)
	}
	var snap struct {
		SDKAppID  uint64          `json:"sdkappid"`
		GroupID   string          `json:"group_id"`
		TakenAt   time.Time       `json:"taken_at"`
		Count     int             `json:"count"`
		Truncated bool            `json:"truncated"`
		Members   []schema.Member `json:"members"`
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&snap); err != nil {
		t.Fatalf("json output does not parse: %v\n%.500s", err, r.stdout)
	}
	if snap.Count != 600 || len(snap.Members) != 600 || snap.GroupID != "@TGS#big" || snap.SDKAppID != api.SDKAppID() || snap.Truncated {
		t.Errorf("snapshot count=%d members=%d group=%q sdkappid=%d truncated=%v", snap.Count, len(snap.Members), snap.GroupID, snap.SDKAppID, snap.Truncated)
	}
	seen := map[string]bool{}
	for _, m := range snap.Members {
		seen[m.Account] = true
	}
	if len(seen) != 600 || !seen["u000"] || !seen["u599"] {
		t.Errorf("%d distinct accounts", len(seen))
	}
	if pages := api.Calls("get_members"); pages != 3 {
		t.Errorf("%d get_members calls for 600 members at 250 a page, want 3", pages)
	}

	r = runCLI(t, api.Key(), nil, "snapshot", "--config", e.config, "--group", "@TGS#big", "--format", "table")
	if r.code != 0 {
		t.Fatalf("table: exit %d\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 602 {
		t.Fatalf("table has %d lines, want header + 600 + summary", len(lines))
	}
	if !strings.HasPrefix(lines[0], "MEMBER_ACCOUNT") || lines[601] != "600 members in @TGS#big" {
		t.Errorf("table header %q, summary %q", lines[0], lines[601])
	}
	if f := strings.Fields(lines[1]); len(f) < 3 || !strings.HasPrefix(f[0], "u") || f[2] != "nick-"+f[0] {
		t.Errorf("table row %q", lines[1])
	}
	inpNoSecret(t, r, api.Key())

	r = runCLI(t, api.Key(), nil, "snapshot", "--config", e.config, "--group", "no-such-group")
	if r.code == 0 {
		t.Errorf("unknown group: exit 0\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "no-such-group") {
		t.Errorf("unknown group: stderr does not name it:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "list members of no-such-group: list members of") {
		t.Errorf("unknown group: the error repeats itself:\n%s", r.stderr)
	}
	const wrong = "wrong-key-for-snapshot-0123456789"
	r = runCLI(t, wrong, nil, "snapshot", "--config", e.config, "--group", "@TGS#big")
	if r.code != exitFatal || !strings.Contains(r.stderr, "secret key") {
		t.Errorf("wrong key: exit %d, want %d naming the secret key\n%s", r.code, exitFatal, r.stderr)
	}
	inpNoSecret(t, r, wrong)
	inpNoUserSig(t, r.stdout+r.stderr)
	r = runCLI(t, api.Key(), nil, "snapshot", "--config", e.config, "--group", "@TGS#big", "--format", "yaml")
	if r.code != exitUsage {
		t.Errorf("--format yaml: exit %d, want %d", r.code, exitUsage)
	}
}

func TestCommandCheck(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{})
	api.AddGroup("g", member("a", time.Now().Unix()-60), member("b", time.Now().Unix()-30))

	t.Run("good", func(t *testing.T) {
		e := newEnv(t, api, []string{"g"}, "")
		r := runCLI(t, api.Key(), nil, "check", "--config", e.config)
		if r.code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		if lines[len(lines)-1] != "all checks passed" {
			t.Errorf("last line %q", lines[len(lines)-1])
		}
		var items []string
		for _, l := range lines[:len(lines)-1] {
			if !strings.HasPrefix(l, "PASS  ") {
				t.Errorf("not a PASS line: %q", l)
			}
			items = append(items, strings.Fields(l)[1])
		}
		for _, want := range []string{"config", "usersig", "api", "sink", "state"} {
			if !strings.Contains(strings.Join(items, " "), want) {
				t.Errorf("no check for %s in %q", want, items)
			}
		}
		if !strings.Contains(r.stdout, "2 members in g") {
			t.Errorf("the api line does not report the group's size:\n%s", r.stdout)
		}
		inpNoSecret(t, r, api.Key())
	})

	t.Run("offline", func(t *testing.T) {
		fresh := newAPI(t, tencenttest.Options{})
		e := newEnv(t, fresh, []string{"g"}, "")
		r := runCLI(t, fresh.Key(), nil, "check", "--offline", "--config", e.config)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "PASS  config\n") || !strings.Contains(r.stdout, "nothing was called") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if n := len(fresh.Requests()); n != 0 {
			t.Errorf("check --offline made %d API calls", n)
		}
		if _, err := os.Stat(e.stateDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("check --offline touched the state dir: %v", err)
		}
		semEdit(e, "  interval:", "  intervall:")
		if r := runCLI(t, fresh.Key(), nil, "check", "--offline", "--config", e.config); r.code != exitUsage || !strings.Contains(r.stdout+r.stderr, "intervall") {
			t.Errorf("invalid config: exit %d, want %d naming the key\n%s%s", r.code, exitUsage, r.stdout, r.stderr)
		}
	})

	t.Run("wrong key", func(t *testing.T) {
		e := newEnv(t, api, []string{"g"}, "")
		const wrong = "wrong-key-for-check-0123456789"
		r := runCLI(t, wrong, nil, "check", "--config", e.config)
		if r.code == 0 {
			t.Fatalf("exit 0 with a wrong key\n%s", r.stdout)
		}
		if !regexp.MustCompile(`(?m)^FAIL +api get_members .*secret key`).MatchString(r.stdout) {
			t.Errorf("no FAIL line for the api naming the key:\n%s", r.stdout)
		}
		if !regexp.MustCompile(`(?m)^PASS +config$`).MatchString(r.stdout) {
			t.Errorf("config should still pass:\n%s", r.stdout)
		}
		inpNoSecret(t, r, wrong)
		inpNoUserSig(t, r.stdout+r.stderr)
	})

	t.Run("unwritable state", func(t *testing.T) {
		e := newEnv(t, api, []string{"g"}, "")
		file := filepath.Join(e.dir, "regular-file")
		if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		semEdit(e, "  path: "+e.stateDir+"\n", "  path: "+filepath.Join(file, "state")+"\n")
		r := runCLI(t, api.Key(), nil, "check", "--config", e.config)
		if r.code == 0 {
			t.Fatalf("exit 0 with an unusable state path\n%s", r.stdout)
		}
		if !regexp.MustCompile(`(?m)^FAIL +state `).MatchString(r.stdout) {
			t.Errorf("no FAIL state line:\n%s", r.stdout)
		}
		if !regexp.MustCompile(`(?m)^PASS +api get_members`).MatchString(r.stdout) {
			t.Errorf("the api should still pass:\n%s", r.stdout)
		}
	})

	t.Run("invalid config", func(t *testing.T) {
		e := newEnv(t, api, []string{"g"}, "")
		semEdit(e, "  interval: 10s\n", "  interval: 10s\n  bogus: 1\n")
		before := len(api.Requests())
		r := runCLI(t, api.Key(), nil, "check", "--config", e.config)
		if r.code != exitUsage {
			t.Errorf("exit %d, want %d", r.code, exitUsage)
		}
		if !regexp.MustCompile(`(?m)^FAIL +config .*poll.bogus`).MatchString(r.stdout) {
			t.Errorf("no FAIL config line naming the key:\n%s", r.stdout)
		}
		if n := len(api.Requests()) - before; n != 0 {
			t.Errorf("%d API calls with an invalid config", n)
		}
	})
}

func TestCommandVersion(t *testing.T) {
	t.Parallel()
	r := runCLI(t, "", nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "rollcall ") || !strings.Contains(r.stdout, runtime.Version()) {
		t.Errorf("version: exit %d, %q; want \"rollcall \" and %s", r.code, r.stdout, runtime.Version())
	}

	bin := filepath.Join(t.TempDir(), "rollcall")
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version=v9.9.9 -X main.commit=abc123", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build with -ldflags: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "rollcall v9.9.9 (commit abc123, "+runtime.Version()) {
		t.Errorf("version with -ldflags = %q", out)
	}
}

func TestCommandDemo(t *testing.T) {
	t.Parallel()
	r := runCLI(t, "", nil, "demo", "--duration", "6s", "--interval", "1s", "--churn", "500ms")
	if r.code != 0 {
		t.Fatalf("demo exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	var baseline, joined, left int
	changed := map[string]bool{} // groups past their baseline
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		schematest.Validate(t, line) // a log line on stdout fails here
		var ev schema.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatal(err)
		}
		g := ev.Data.GroupID
		switch {
		case ev.Data.Reason == schema.ReasonBaseline:
			if changed[g] {
				t.Errorf("baseline event for %s after its changes: %s", g, line)
			}
			baseline++
		case ev.Type == schema.TypeMemberJoined:
			changed[g] = true
			joined++
		case ev.Type == schema.TypeMemberLeft:
			changed[g] = true
			left++
		}
	}
	if baseline < 1 || joined < 1 || left < 1 {
		t.Errorf("demo emitted %d baseline, %d joined, %d left events; want at least one of each\nstdout:\n%.2000s", baseline, joined, left, r.stdout)
	}
	if !strings.Contains(r.stderr, "demo") {
		t.Errorf("the demo's logs are not on stderr:\n%.1000s", r.stderr)
	}
}

func TestCommandSimulateThenRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sim := exec.CommandContext(ctx, binPath, "simulate", "--listen", "127.0.0.1:0", "--members", "4", "--churn", "0")
	var out, errb lockedBuffer
	sim.Stdout, sim.Stderr = &out, &errb
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = sim.Process.Signal(syscall.SIGTERM)
		if err := sim.Wait(); err != nil {
			t.Errorf("simulate did not stop cleanly on SIGTERM: %v\nstderr:\n%s", err, errb.String())
		}
	}
	defer stop()

	urlRE := regexp.MustCompile(`http://127\.0\.0\.1:\d+`)
	var url string
	for deadline := time.Now().Add(20 * time.Second); url == ""; {
		url = urlRE.FindString(out.String())
		if url == "" {
			if time.Now().After(deadline) {
				t.Fatalf("simulate printed no URL\nstdout:\n%s\nstderr:\n%s", out.String(), errb.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "rollcall.yaml")
	y := fmt.Sprintf(`tencent:
  sdkappid: %d
  identifier: %s
  secret_key: %s
  endpoint: %s
groups:
  ids: ["room-1", "room-2", "room-3"]
state:
  path: %s
sinks:
  - type: file
    path: %s
http:
  listen: ""
`, tencenttest.DefaultSDKAppID, tencenttest.DefaultAdmin, tencenttest.DefaultKey, url, filepath.Join(dir, "state"), filepath.Join(dir, "events"))
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "", nil, "run", "--config", cfg, "--once")
	if r.code != 0 {
		t.Fatalf("run --once against simulate: exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	evs := readEventDir(t, filepath.Join(dir, "events"))
	got := semByGroup(evs)
	for g := 1; g <= 3; g++ {
		id := fmt.Sprintf("room-%d", g)
		var want []string
		for i := 1; i <= 4; i++ {
			want = append(want, fmt.Sprintf("member.joined/baseline/user-%d-%03d", g, i))
		}
		if s := summary(got[id]); strings.Join(s, ",") != strings.Join(want, ",") {
			t.Errorf("%s: %v, want %v", id, s, want)
		}
	}
	if len(got) != 3 {
		t.Errorf("events for %d groups, want 3", len(got))
	}
	inpNoSecret(t, r, tencenttest.DefaultKey)
	stop()
}

func TestCommandUsage(t *testing.T) {
	t.Parallel()
	r := runCLI(t, "", nil)
	if r.code != exitUsage || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("no args: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, "", nil, "frobnicate")
	if r.code != exitUsage || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, "", nil, "run")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--config") {
		t.Errorf("run without --config: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runCLI(t, "", nil, "help")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
		t.Errorf("help: exit %d, stdout %q", r.code, r.stdout)
	}
}

// TestCommandDemoInterrupt: Ctrl-C stops the demo promptly with exit 0,
// after the events it printed (the churn must not keep it alive).
func TestCommandDemoInterrupt(t *testing.T) {
	t.Parallel()
	p := startProc(t, "", "demo", "--interval", "200ms", "--churn", "100ms", "--log-format", "json")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.stdout.String(), `"rollcall.member.joined"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no event from the demo; stderr:\n%s", p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("demo exit %d after Ctrl-C; stderr:\n%s", code, p.stderr.String())
	}
}

func TestCommandDemoBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--duration", "-1s"}, {"--groups", "0"}, {"--interval", "1ms"}} {
		r := runCLI(t, "", nil, append([]string{"demo"}, args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, strings.TrimPrefix(args[0], "--")) {
			t.Errorf("demo %v: exit %d, want %d naming the flag\n%s", args, r.code, exitUsage, r.stderr)
		}
	}
}
