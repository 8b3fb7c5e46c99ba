package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/schema"
)

// Bad input must give a clear error and lose nothing: no API call for a
// bad configuration, no event and no state change for a bad answer.

func TestInputInvalidConfigCallsNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, old, new string
		wants          []string // each must appear in stderr
	}{
		{"unknown key", "  interval: 10s\n", "  interval: 10s\n  intervall: 5s\n", []string{"poll.intervall", "unknown key"}},
		{"missing sdkappid", "  sdkappid: ", "  # sdkappid: ", []string{"tencent.sdkappid", "required"}},
		{"bad duration", "  interval: 10s\n", "  interval: ten seconds\n", []string{"poll.interval"}},
		{"bad sink type", "  - type: file\n", "  - type: fiel\n", []string{"sinks[0].type", `"fiel"`}},
		{"missing env var", "${ROLLCALL_TEST_KEY}", "${ROLLCALL_E2E_UNSET_KEY}", []string{"tencent.secret_key", "ROLLCALL_E2E_UNSET_KEY"}},
		{"nonexistent secret_key_file", "secret_key: ${ROLLCALL_TEST_KEY}", "secret_key_file: /nonexistent/rollcall/key", []string{"tencent.secret_key_file", "/nonexistent/rollcall/key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			api := newAPI(t, tencenttest.Options{})
			api.AddGroup("g", member("a", 1795600000))
			e := newEnv(t, api, []string{"g"}, "")
			semEdit(e, tc.old, tc.new)
			r := e.once()
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d\nstderr:\n%s", r.code, exitUsage, r.stderr)
			}
			for _, w := range tc.wants {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, r.stderr)
				}
			}
			inpNoSecret(t, r, api.Key())
			if n := len(api.Requests()); n != 0 || api.Calls("get_members") != 0 {
				t.Errorf("the API received %d requests for an invalid config", n)
			}
			if _, err := os.Stat(e.stateDir); err == nil {
				t.Errorf("an invalid config created the state directory")
			}
			if evs := e.events(); len(evs) != 0 {
				t.Errorf("an invalid config emitted %v", summary(evs))
			}
		})
	}
}

// inpNoSecret fails if secret appears anywhere in r's output.
func inpNoSecret(t *testing.T, r cliResult, secret string) {
	t.Helper()
	if secret == "" {
		return
	}
	if strings.Contains(r.stdout, secret) || strings.Contains(r.stderr, secret) {
		t.Errorf("the secret %q leaked into the output\nstdout:\n%s\nstderr:\n%s", secret, r.stdout, r.stderr)
	}
}

// usersigLeakRE finds a usersig query parameter with a real value.
var usersigLeakRE = regexp.MustCompile(`usersig=([^&"\s]+)`)

// inpNoUserSig fails if a usersig value other than a redaction marker
// appears in s.
func inpNoUserSig(t *testing.T, s string) {
	t.Helper()
	for _, m := range usersigLeakRE.FindAllStringSubmatch(s, -1) {
		if v := strings.ToUpper(m[1]); !strings.Contains(v, "REDACTED") && v != "XXXXX" && v != "%3CSECRET%3E" {
			t.Errorf("a usersig leaked: %s", m[0])
		}
	}
	// A usersig starts with the base64 of a zlib header ("eJ" at level 6,
	// "eAE" at level 0) and is long; none belongs in a log line.
	if regexp.MustCompile(`eAE[A-Za-z0-9*_-]{100,}|eJ[A-Za-z0-9*_-]{100,}`).MatchString(s) {
		t.Errorf("something shaped like a usersig is in the output:\n%s", s)
	}
}

func TestInputAPIRejectsConfiguration(t *testing.T) {
	t.Parallel()
	const wrongKey = "this-is-the-wrong-secret-key-0123456789abcdef"
	for _, tc := range []struct {
		name  string
		opts  tencenttest.Options
		key   func(api *tencenttest.Server) string
		edit  func(e *e2eEnv)
		wants []string // one of them must appear in stderr (lowercased)
	}{
		{
			name:  "wrong secret key",
			key:   func(*tencenttest.Server) string { return wrongKey },
			wants: []string{"secret key", "secret_key", "usersig"},
		},
		{
			name:  "identifier not an admin",
			opts:  tencenttest.Options{Admins: []string{"someone-else"}},
			wants: []string{"admin"},
		},
		{
			name: "wrong sdkappid",
			edit: func(e *e2eEnv) {
				semEdit(e, fmt.Sprintf("sdkappid: %d", e.api.SDKAppID()), "sdkappid: 1400999999")
			},
			wants: []string{"sdkappid"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			api := newAPI(t, tc.opts)
			api.AddGroup("g", member("a", 1795600000))
			e := newEnv(t, api, []string{"g"}, "")
			if tc.edit != nil {
				tc.edit(e)
			}
			key := api.Key()
			if tc.key != nil {
				key = tc.key(api)
			}
			r := runCLI(t, key, nil, "run", "--config", e.config, "--once")
			if r.code != exitFatal {
				t.Errorf("exit %d, want %d\nstderr:\n%s", r.code, exitFatal, r.stderr)
			}
			low := strings.ToLower(r.stderr)
			if !slices.ContainsFunc(tc.wants, func(w string) bool { return strings.Contains(low, w) }) {
				t.Errorf("stderr names none of %q:\n%s", tc.wants, r.stderr)
			}
			inpNoSecret(t, r, key)
			inpNoUserSig(t, r.stderr+r.stdout)
			if evs := e.events(); len(evs) != 0 {
				t.Errorf("a rejected configuration emitted %v", summary(evs))
			}
			if b := semStateBytes(e, "g"); b != nil {
				t.Errorf("a rejected configuration stored state: %s", b)
			}
		})
	}
}

func TestInputMalformedAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		kind  tencenttest.FaultKind
		wants []string // one must appear in stderr
	}{
		{"invalid json", tencenttest.FaultInvalidJSON, []string{"invalid", "decode JSON", "unexpected end"}},
		{"missing account", tencenttest.FaultMissingAccount, []string{"Member_Account"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			api := newAPI(t, tencenttest.Options{})
			base := time.Now().Unix() - 3600
			api.AddGroup("bad", member("b1", base))
			api.AddGroup("good", member("g1", base))
			e := newEnv(t, api, []string{"bad", "good"}, "")
			semFast(e)
			e.mustOnce()
			n := len(e.events())
			stateBefore := semStateBytes(e, "bad")

			api.Join("bad", member("b2", base+10))
			api.Join("good", member("g2", base+10))
			api.InjectFault(tencenttest.Fault{Group: "bad", Kind: tc.kind})
			r := e.once()
			if r.code == 0 {
				t.Fatalf("exit 0 with a group answering garbage\nstderr:\n%s", r.stderr)
			}
			semExpect(t, semNew(e, n), map[string][]string{"good": {"member.joined/joined/g2"}})
			if got := semStateBytes(e, "bad"); !bytes.Equal(got, stateBefore) {
				t.Errorf("state of bad changed:\nbefore %s\nafter  %s", stateBefore, got)
			}
			if !slices.ContainsFunc(tc.wants, func(w string) bool { return strings.Contains(r.stderr, w) }) {
				t.Errorf("stderr names none of %q:\n%s", tc.wants, r.stderr)
			}
			inpNoUserSig(t, r.stderr+r.stdout)
			inpNoSecret(t, r, api.Key())
		})
	}
}

func TestInputTransientFaultsAreRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault tencenttest.Fault
	}{
		{"502 twice on page 1", tencenttest.Fault{Group: "g", Page: 1, Kind: tencenttest.FaultHTTP502, Times: 2}},
		{"10002 once", tencenttest.Fault{Group: "g", Kind: tencenttest.FaultErrorCode, Code: 10002, Times: 1}},
		{"slow answer within the timeout", tencenttest.Fault{Group: "g", Kind: tencenttest.FaultSlow, Delay: 300 * time.Millisecond, Times: 1}},
		{"hang-up once", tencenttest.Fault{Group: "g", Page: 2, Kind: tencenttest.FaultHangup, Times: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			api := newAPI(t, tencenttest.Options{PageSize: 2})
			base := time.Now().Unix() - 3600
			api.AddGroup("g", member("a", base), member("b", base+1), member("c", base+2))
			e := newEnv(t, api, []string{"g"}, "")
			api.InjectFault(tc.fault)
			r := e.once()
			if r.code != 0 {
				t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
			}
			semExpect(t, e.events(), map[string][]string{"g": {
				"member.joined/baseline/a", "member.joined/baseline/b", "member.joined/baseline/c"}})
			faulted := 0
			for _, rq := range api.Requests() {
				if rq.Fault != tencenttest.FaultNone {
					faulted++
				}
			}
			if want := max(tc.fault.Times, 1); faulted != want {
				t.Errorf("%d faulted requests, want %d: the fault did not fire as planned", faulted, want)
			}
		})
	}
}

// inpBlockEventFiles makes the file sink's current (and next) hourly file
// a directory, so opening it fails at publish time.
func inpBlockEventFiles(t *testing.T, dir string) {
	t.Helper()
	now := time.Now().UTC()
	for _, h := range []time.Time{now, now.Add(time.Hour)} {
		p := filepath.Join(dir, "events-"+h.Truncate(time.Hour).Format("2006-01-02T15")+".jsonl")
		if err := os.MkdirAll(filepath.Join(p, "blocker"), 0o750); err != nil {
			t.Fatal(err)
		}
	}
}

func TestInputUnwritableSinkCommitsNothing(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{})
	base := time.Now().Unix() - 3600
	api.AddGroup("g", member("a", base), member("b", base+1))
	e := newEnv(t, api, []string{"g"}, "")
	e.mustOnce()
	stateBefore := semStateBytes(e, "g")
	api.Leave("g", "a")
	api.Join("g", member("c", base+5))

	// The file sink fails at publish time; a stdout sink beside it shows
	// what the failed run tried to deliver.
	blocked := filepath.Join(e.dir, "blocked")
	inpBlockEventFiles(t, blocked)
	e.writeConfig([]string{"g"}, "", "  - type: stdout\n")
	semEdit(e, "    path: "+e.eventDir+"\n", "    path: "+blocked+"\n")
	start := time.Now()
	r := e.once()
	elapsed := time.Since(start)
	if r.code == 0 {
		t.Fatalf("run --once with an unwritable sink exited 0\nstderr:\n%s", r.stderr)
	}
	if elapsed > 20*time.Second {
		// Not a timing assertion on speed: max_elapsed_time is 2s, and a
		// run that ignores it would go on for the 30s default or for ever.
		t.Errorf("run --once took %s with retry.max_elapsed_time 2s", elapsed)
	}
	if got := semStateBytes(e, "g"); !bytes.Equal(got, stateBefore) {
		t.Fatalf("state committed although a sink failed:\nbefore %s\nafter  %s", stateBefore, got)
	}
	var tried []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if line == "" {
			continue
		}
		var ev schema.Event
		if err := ev.UnmarshalJSON([]byte(line)); err != nil {
			t.Fatalf("stdout line %q: %v", line, err)
		}
		tried = append(tried, ev.ID)
	}

	// With the sink repaired the next run emits the same change, same ids.
	e.writeConfig([]string{"g"}, "", "")
	r = e.once()
	if r.code != 0 {
		t.Fatalf("exit %d after repairing the sink\nstderr:\n%s", r.code, r.stderr)
	}
	evs := semNew(e, 2)
	if got, want := summary(evs), []string{"member.left/left/a", "member.joined/joined/c"}; !slices.Equal(got, want) {
		t.Fatalf("events after repair = %v, want %v", got, want)
	}
	var ids []string
	for _, ev := range evs {
		ids = append(ids, ev.ID)
	}
	if len(tried) > 0 && !slices.Equal(tried, ids) {
		t.Errorf("ids changed between the failed and the repaired run: %v vs %v", tried, ids)
	}
	if want := schema.EventID(api.SDKAppID(), "g", "a", base, schema.TypeMemberLeft); ids[0] != want {
		t.Errorf("left id %s, want %s", ids[0], want)
	}
}

func TestInputSinkUnusableAtStart(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{})
	api.AddGroup("g", member("a", time.Now().Unix()-60))
	e := newEnv(t, api, []string{"g"}, "")
	file := filepath.Join(e.dir, "regular-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	semEdit(e, "    path: "+e.eventDir+"\n", "    path: "+filepath.Join(file, "events")+"\n")
	r := e.once()
	if r.code == 0 {
		t.Fatalf("exit 0 with a sink under a regular file\nstderr:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "sinks[0]") {
		t.Errorf("stderr does not name the sink:\n%s", r.stderr)
	}
	if b := semStateBytes(e, "g"); b != nil {
		t.Errorf("state stored although no sink could take events: %s", b)
	}
	if n := api.Calls("get_members"); n != 0 {
		t.Errorf("%d API calls although the sink could not be opened", n)
	}
}
