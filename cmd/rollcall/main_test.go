package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/schematest"
)

// binPath is the rollcall binary built once for the end-to-end tests, which
// run it as users do: a separate process, flags, exit codes, signals.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rollcall-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "rollcall")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build rollcall:", err)
		os.Exit(1)
	}
	// No goroutine may outlive the tests, with no exception: the
	// in-process daemon tests join everything they start (lifecycle_test.go).
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// newAPI starts the fake Tencent API with the given groups.
func newAPI(t *testing.T, o tencenttest.Options) *tencenttest.Server {
	t.Helper()
	s := tencenttest.NewServer(o)
	t.Cleanup(s.Close)
	return s
}

// member builds a member who joined at unix second jt.
func member(account string, jt int64) schema.Member {
	return schema.Member{Account: account, NickName: "nick-" + account, JoinTime: jt}
}

// members returns n members named by format and their index (e.g. "m%02d"),
// who joined one second apart from base.
func members(n int, format string, base int64) []schema.Member {
	ms := make([]schema.Member, 0, n)
	for i := range n {
		ms = append(ms, member(fmt.Sprintf(format, i), base+int64(i)))
	}
	return ms
}

// e2eEnv is one rollcall installation: a config file, a state directory
// and a file sink directory.
type e2eEnv struct {
	t        *testing.T
	api      *tencenttest.Server
	dir      string
	config   string
	stateDir string
	eventDir string
}

// newEnv writes a config pointing at api with one file sink. extra is
// appended to the poll section (e.g. "  member_cap: 5\n"); groups are
// quoted for YAML.
func newEnv(t *testing.T, api *tencenttest.Server, groups []string, extraPoll string) *e2eEnv {
	t.Helper()
	dir := t.TempDir()
	e := &e2eEnv{t: t, api: api, dir: dir, stateDir: filepath.Join(dir, "state"), eventDir: filepath.Join(dir, "events")}
	e.config = filepath.Join(dir, "rollcall.yaml")
	e.writeConfig(groups, extraPoll, "")
	return e
}

// writeConfig (re)writes the config; extraSinks is appended to the sinks list.
func (e *e2eEnv) writeConfig(groups []string, extraPoll, extraSinks string) {
	e.t.Helper()
	e.saveConfig(e.apiYAML("2s", groups) + fmt.Sprintf(`poll:
  interval: 10s
%sstate:
  driver: file
  path: %s
sinks:
  - type: file
    path: %s
    retry: {initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 2s}
%shttp:
  listen: ""
`, extraPoll, e.stateDir, e.eventDir, extraSinks))
}

// apiYAML is the tencent block, pointed at the fake API with the key from
// $ROLLCALL_TEST_KEY, and the groups block.
func (e *e2eEnv) apiYAML(requestTimeout string, groups []string) string {
	return fmt.Sprintf(`tencent:
  sdkappid: %d
  identifier: %s
  secret_key: ${ROLLCALL_TEST_KEY}
  endpoint: %s
  request_timeout: %s
groups:
  ids: [%s]
`, e.api.SDKAppID(), tencenttest.DefaultAdmin, e.api.URL, requestTimeout, strings.Join(quoteAll(groups), ", "))
}

// saveConfig (re)writes e's config file.
func (e *e2eEnv) saveConfig(y string) {
	e.t.Helper()
	if err := os.WriteFile(e.config, []byte(y), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// cliResult is what one rollcall process did.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs the binary to completion with ROLLCALL_TEST_KEY set to the
// fake API's key (plus env), failing the test after a minute.
func runCLI(t *testing.T, key string, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(append(os.Environ(), "ROLLCALL_TEST_KEY="+key), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run rollcall %v: %v", args, err)
	}
	return cliResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// once runs `rollcall run --once` over the env's config.
func (e *e2eEnv) once() cliResult {
	e.t.Helper()
	return runCLI(e.t, e.api.Key(), nil, "run", "--config", e.config, "--once")
}

// mustOnce runs --once and requires exit 0.
func (e *e2eEnv) mustOnce() {
	e.t.Helper()
	if r := e.once(); r.code != 0 {
		e.t.Fatalf("run --once exited %d\nstderr:\n%s", r.code, r.stderr)
	}
}

// events reads every event the file sink wrote, in file order, checking
// each line against the JSON Schema.
func (e *e2eEnv) events() []schema.Event {
	e.t.Helper()
	return readEventDir(e.t, e.eventDir)
}

func readEventDir(t *testing.T, dir string) []schema.Event {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "events-*"))
	sort.Strings(files)
	var out []schema.Event
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = fh
		if strings.HasSuffix(f, ".gz") {
			zr, err := gzip.NewReader(fh)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			schematest.Validate(t, line)
			var ev schema.Event
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, ev)
		}
		fh.Close()
	}
	return out
}

// summary renders events compactly for comparisons: "type/reason/account".
func summary(evs []schema.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = strings.TrimPrefix(ev.Type, "rollcall.") + "/" + ev.Data.Reason + "/" + ev.Subject
	}
	return out
}
