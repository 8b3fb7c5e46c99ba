package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/diff/difftest"
	"github.com/rollcall-dev/rollcall/diff/filestore"
	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/schema"
)

const stApp = 1400000042

var stT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func stSnap(group string, n int, accounts ...string) schema.Snapshot {
	ms := make([]schema.Member, 0, len(accounts))
	for _, a := range accounts {
		ms = append(ms, schema.Member{Account: a, NickName: "nick " + a, JoinTime: stT0.Unix() - 600})
	}
	return schema.Snapshot{SDKAppID: stApp, GroupID: group, TakenAt: stT0.Add(time.Duration(n) * 30 * time.Second),
		Members: schema.NormalizeMembers(ms)}
}

func stConfig() *Config {
	cfg := &Config{}
	cfg.Tencent.SDKAppID = stApp
	cfg.State.Driver = filestore.DriverFile
	return cfg
}

func stOpen(t *testing.T, dir string) *filestore.Store {
	t.Helper()
	s, err := filestore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// stContinue runs the same later polls on a fresh detector over st and
// returns what it published, encoded, and its errors.
func stContinue(t *testing.T, st diff.Store) (published []byte, errs []string) {
	t.Helper()
	ctx := context.Background()
	pub := &difftest.Publisher{}
	d, err := diff.NewDetector(diff.DetectorOptions{Store: st, Publisher: pub, Diff: diff.Options{SDKAppID: stApp}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []schema.Snapshot{
		stSnap("g1", 3, "alice", "bob", "dave"), // carol left
		stSnap("g2", 3, "x", "y"),               // its outbox (y joined) goes out first
		stSnap("g3", 3, "z"),                    // stored as dismissed
		stSnap("g1", 4, "alice", "bob", "dave"),
	} {
		if err := d.HandleSnapshot(ctx, s); err != nil {
			errs = append(errs, s.GroupID)
		}
	}
	for _, b := range pub.Batches() {
		for _, ev := range b {
			j, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			published = append(append(published, j...), '\n')
		}
	}
	return published, errs
}

// TestStateExportImportContinuesWithoutBaseline: the point of export and
// import. A store's records exported and imported into another store (the
// memory one, another directory) let a detector there go on exactly as one
// on the original store: byte-equal events, no baseline, the leave
// reported, the unacknowledged batch published again with its ids, the
// dismissed group still dismissed.
func TestStateExportImportContinuesWithoutBaseline(t *testing.T) {
	ctx := context.Background()
	cfg := stConfig()
	dirA := t.TempDir()
	a := stOpen(t, dirA)
	pub := &difftest.Publisher{}
	d, err := diff.NewDetector(diff.DetectorOptions{Store: a, Publisher: pub, Diff: diff.Options{SDKAppID: stApp}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []schema.Snapshot{
		stSnap("g1", 0, "alice", "bob", "carol"),
		stSnap("g1", 1, "alice", "bob", "carol", "dave"),
		stSnap("g2", 0, "x"),
		stSnap("g3", 0, "z"),
		{SDKAppID: stApp, GroupID: "g3", TakenAt: stT0.Add(time.Minute), Dismissed: true},
	} {
		if err := d.HandleSnapshot(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	pub.Fail(errors.New("broker down"))
	if err := d.HandleSnapshot(ctx, stSnap("g2", 1, "x", "y")); err == nil {
		t.Fatal("the publish did not fail")
	}
	attempts := pub.Attempts()
	unacked := attempts[len(attempts)-1]

	var export bytes.Buffer
	if n, err := exportState(ctx, a, stateApps(cfg), &export); err != nil || n != 3 {
		t.Fatalf("export = %d, %v; want 3 groups", n, err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	mem := diff.NewMemoryStore()
	dirB := t.TempDir()
	b := stOpen(t, dirB)
	for name, st := range map[string]stateStore{"memory": mem, "file": b} {
		res, err := importState(ctx, st, cfg, bytes.NewReader(export.Bytes()), false)
		if err != nil || res != (importResult{created: 3}) {
			t.Fatalf("import into %s = %+v, %v", name, res, err)
		}
	}
	// What the file store keeps round-trips: the new directory exports
	// the same lines as the old one (both opened anew: same revisions).
	b.Close()
	var exports [2]bytes.Buffer
	for i, dir := range []string{dirA, dirB} {
		st := stOpen(t, dir)
		if _, err := exportState(ctx, st, stateApps(cfg), &exports[i]); err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	if exports[0].String() != exports[1].String() {
		t.Fatalf("export of the imported directory:\n%s\nwant\n%s", exports[1].String(), exports[0].String())
	}
	b = stOpen(t, dirB)

	want, wantErrs := stContinue(t, stOpen(t, dirA))
	if !reflect.DeepEqual(wantErrs, []string{"g3"}) {
		t.Fatalf("on the original store, polls of %v failed; want g3 (dismissed) only", wantErrs)
	}
	var evs []schema.Event
	for _, line := range bytes.Split(bytes.TrimSpace(want), []byte("\n")) {
		var ev schema.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if got := summary(evs); !reflect.DeepEqual(got, []string{"member.left/left/carol", "member.joined/joined/y"}) {
		t.Fatalf("events after the move %v: want carol's leave and the replayed join of y", got)
	}
	if evs[1].ID != unacked[0].ID {
		t.Errorf("replayed join id %s, the unacknowledged batch had %s", evs[1].ID, unacked[0].ID)
	}
	for name, st := range map[string]diff.Store{"memory": mem, "file": b} {
		got, errs := stContinue(t, st)
		if !bytes.Equal(got, want) || !reflect.DeepEqual(errs, wantErrs) {
			t.Errorf("%s store after import published\n%s(failed %v)\nwant\n%s", name, got, errs, want)
		}
	}
}

// TestStateImportChecksEverythingFirst: a bad line or a group that has a
// record stops the import before anything is written; --overwrite
// replaces, an outbox alone included.
func TestStateImportChecksEverythingFirst(t *testing.T) {
	ctx := context.Background()
	cfg := stConfig()
	src := diff.NewMemoryStore()
	_, s1 := diff.Diff(nil, stSnap("g1", 0, "alice"), diff.Options{SDKAppID: stApp})
	if _, err := src.Save(ctx, s1, 0); err != nil {
		t.Fatal(err)
	}
	evs, next := diff.Diff(nil, stSnap("g2", 0, "x"), diff.Options{SDKAppID: stApp})
	if _, err := src.SaveOutbox(ctx, "g2", &diff.Pending{Events: evs, Next: next}, 0); err != nil {
		t.Fatal(err)
	}
	// List shows groups with state; an outbox alone is exported by
	// whoever lists it, so build that line by hand.
	s2, rev2, _ := src.Load(ctx, "g2")
	var good bytes.Buffer
	if _, err := exportState(ctx, src, stateApps(cfg), &good); err != nil {
		t.Fatal(err)
	}
	line2, _ := json.Marshal(recordOf(stateApps(cfg)[0], "g2", s2, rev2))
	good.Write(append(line2, '\n'))
	if !strings.Contains(string(line2), `"state":null`) {
		t.Fatalf("an outbox alone exports a state: %s", line2)
	}

	lines := strings.Split(strings.TrimSpace(good.String()), "\n")
	for _, tc := range []struct {
		name, input, want string
	}{
		{"not json", lines[0] + "\n{oops\n", "line 2: not a state record"},
		{"unknown field", strings.Replace(lines[0], `"format":1`, `"format":1,"extra":true`, 1), `line 1: not a state record: json: unknown field "extra"`},
		{"other format", strings.Replace(lines[0], `"format":1`, `"format":2`, 1), "line 1: format 2; this rollcall reads format 1"},
		{"other app", strings.Replace(lines[0], `"app":1400000042`, `"app":7`, 1), "line 1: group g1: app 7 is not configured"},
		{"state of another group", strings.Replace(lines[0], `"group_id":"g1","revision"`, `"group_id":"g9","revision"`, 1), `line 1: group g9: state: holds group "g1"`},
		{"empty record", `{"format":1,"app":1400000042,"group_id":"g1","state":null,"outbox":null}`, "line 1: group g1: neither state nor outbox"},
		{"duplicate", lines[0] + "\n\n" + lines[0], "line 3: group g1 again (first on line 1)"},
		{"invalid group id", strings.ReplaceAll(lines[0], `"g1"`, `"g\u0001"`), "line 1: group_id"},
		{"two values", lines[0] + " {}", "line 1: not a state record: more than one JSON value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := diff.NewMemoryStore()
			_, err := importState(ctx, dst, cfg, strings.NewReader(tc.input), false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("import = %v, want an error with %q", err, tc.want)
			}
			if ids, _ := dst.List(ctx); len(ids) != 0 {
				t.Fatalf("groups %v written before the bad line was found", ids)
			}
		})
	}

	dst := diff.NewMemoryStore()
	_, other := diff.Diff(nil, stSnap("g2", 0, "other"), diff.Options{SDKAppID: stApp})
	if _, err := dst.Save(ctx, other, 0); err != nil {
		t.Fatal(err)
	}
	_, err := importState(ctx, dst, cfg, bytes.NewReader(good.Bytes()), false)
	if err == nil || !strings.Contains(err.Error(), "g2 (line 2)") || !strings.Contains(err.Error(), "nothing was imported") {
		t.Fatalf("import over a stored group = %v, want it refused naming g2", err)
	}
	if s, _, _ := dst.Load(ctx, "g1"); s != nil {
		t.Fatal("g1 was written although the import was refused")
	}
	res, err := importState(ctx, dst, cfg, bytes.NewReader(good.Bytes()), true)
	if err != nil || res != (importResult{created: 1, replaced: 1}) {
		t.Fatalf("import --overwrite = %+v, %v", res, err)
	}
	for _, id := range []string{"g1", "g2"} {
		want, _, _ := src.Load(ctx, id)
		if got, _, _ := dst.Load(ctx, id); !reflect.DeepEqual(got, want) {
			t.Errorf("%s after --overwrite: %+v, want %+v", id, got, want)
		}
	}
}

// The commands through the binary.

// stFiles returns the state and outbox files in dir (none when dir does
// not exist).
func stFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{"*.json", "*.outbox"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	return out
}

func TestCommandStateListShowExportImport(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{})
	base := time.Now().Unix() - 600
	api.AddGroup("g1", members(3, "u%d", base)...)
	api.AddGroup("@TGS#2", members(2, "v%d", base)...)
	e := newEnv(t, api, []string{"g1", "@TGS#2"}, "")
	e.mustOnce()

	r := runCLI(t, api.Key(), nil, "state", "list", "--config", e.config)
	if r.code != 0 {
		t.Fatalf("list: exit %d\n%s", r.code, r.stderr)
	}
	if !regexp.MustCompile(`(?m)^@TGS#2 +\d+ +\S+Z +2 +0 +no +-$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^g1 +\d+ +\S+Z +3 +0 +no +-$`).MatchString(r.stdout) ||
		!strings.HasPrefix(r.stdout, "GROUP_ID ") {
		t.Errorf("list:\n%s", r.stdout)
	}
	r = runCLI(t, api.Key(), nil, "state", "list", "--config", e.config, "--json")
	var rows []stateRow
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var row stateRow
		if err := json.Unmarshal([]byte(l), &row); err != nil {
			t.Fatalf("list --json line %q: %v", l, err)
		}
		rows = append(rows, row)
	}
	if r.code != 0 || len(rows) != 2 || rows[0].GroupID != "@TGS#2" || rows[1].Members != 3 || rows[1].App != api.SDKAppID() || rows[1].ObservedAt.IsZero() {
		t.Errorf("list --json: exit %d, %+v", r.code, rows)
	}

	r = runCLI(t, api.Key(), nil, "state", "show", "--config", e.config, "--group", "g1")
	var rec stateRecord
	if err := json.Unmarshal([]byte(r.stdout), &rec); err != nil || r.code != 0 {
		t.Fatalf("show: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if rec.Format != 1 || rec.GroupID != "g1" || rec.State == nil || len(rec.State.Members) != 3 || rec.Outbox != nil || !strings.Contains(r.stdout, "\n  \"state\": {") {
		t.Errorf("show: %s", r.stdout)
	}
	for _, app := range []string{"default", "1400000000"} {
		if r := runCLI(t, api.Key(), nil, "state", "show", "--config", e.config, "--group", "g1", "--app", app); r.code != 0 {
			t.Errorf("show --app %s: exit %d\n%s", app, r.code, r.stderr)
		}
	}
	r = runCLI(t, api.Key(), nil, "state", "show", "--config", e.config, "--group", "nope")
	if r.code != exitFailure || !strings.Contains(r.stderr, "no state stored for group nope") || r.stdout != "" {
		t.Errorf("show of an unknown group: exit %d\n%s", r.code, r.stderr)
	}

	out := filepath.Join(e.dir, "export.jsonl")
	r = runCLI(t, api.Key(), nil, "state", "export", "--config", e.config, "--out", out)
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "exported 2 groups to "+out) {
		t.Fatalf("export: exit %d\nstdout %q\nstderr %s", r.code, r.stdout, r.stderr)
	}
	exported, _ := os.ReadFile(out)
	r = runCLI(t, api.Key(), nil, "state", "export", "--config", e.config)
	if r.code != 0 || r.stdout != string(exported) {
		t.Errorf("export to stdout differs from --out:\n%s\n%s", r.stdout, exported)
	}

	// Another installation takes the records and goes on: a leave, no
	// baseline.
	e2 := newEnv(t, api, []string{"g1", "@TGS#2"}, "")
	r = runCLI(t, api.Key(), nil, "state", "import", "--config", e2.config, "--in", out)
	if r.code != 0 || r.stdout != "imported 2 groups (2 new, 0 replaced)\n" {
		t.Fatalf("import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	before := readStateDir(t, e2.stateDir)
	r = runCLI(t, api.Key(), nil, "state", "import", "--config", e2.config, "--in", out)
	if r.code != exitFailure || !strings.Contains(r.stderr, "@TGS#2 (line 1), g1 (line 2)") || !strings.Contains(r.stderr, "nothing was imported") {
		t.Errorf("second import: exit %d, want %d naming both groups\n%s", r.code, exitFailure, r.stderr)
	}
	if after := readStateDir(t, e2.stateDir); !reflect.DeepEqual(after, before) {
		t.Error("a refused import changed the state directory")
	}
	r = runCLI(t, api.Key(), nil, "state", "import", "--config", e2.config, "--in", out, "--overwrite")
	if r.code != 0 || r.stdout != "imported 2 groups (0 new, 2 replaced)\n" {
		t.Errorf("import --overwrite: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	api.Leave("g1", "u1")
	e2.mustOnce()
	if got := summary(e2.events()); !reflect.DeepEqual(got, []string{"member.left/left/u1"}) {
		t.Errorf("events after the import: %v, want u1's leave alone", got)
	}
}

func TestCommandStateForgetWatchesADismissedGroupAgain(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{})
	base := time.Now().Unix() - 600
	api.AddGroup("g", members(2, "u%d", base)...)
	e := newEnv(t, api, []string{"g"}, "")
	e.mustOnce()
	api.Dismiss("g")
	e.mustOnce()
	r := runCLI(t, api.Key(), nil, "state", "list", "--config", e.config)
	if !regexp.MustCompile(`(?m)^g +\d+ +\S+ +0 +0 +yes +-$`).MatchString(r.stdout) {
		t.Fatalf("list after the dismissal:\n%s%s", r.stdout, r.stderr)
	}
	api.AddGroup("g", members(1, "w%d", base)...) // the id used again
	n := len(e.events())
	e.mustOnce()
	if got := len(e.events()); got != n {
		t.Fatalf("a group stored as dismissed was polled: %d events", got-n)
	}

	r = runCLI(t, api.Key(), nil, "state", "forget", "--config", e.config, "--group", "g")
	if r.code != 0 || !regexp.MustCompile(`^forgot group g \(sdkappid \d+\): state observed at \S+, 0 members, dismissed\n$`).MatchString(r.stdout) {
		t.Fatalf("forget: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if files := stFiles(t, e.stateDir); len(files) != 0 {
		t.Errorf("state files after forget: %v", files)
	}
	r = runCLI(t, api.Key(), nil, "state", "forget", "--config", e.config, "--group", "g")
	if r.code != 0 || !strings.Contains(r.stdout, "nothing to forget") {
		t.Errorf("forget again: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.mustOnce()
	if got := summary(e.events()[n:]); !reflect.DeepEqual(got, []string{"member.joined/baseline/w0"}) {
		t.Errorf("events after forget: %v, want a baseline of the group", got)
	}
}

func TestCommandStateErrors(t *testing.T) {
	t.Parallel()
	api := newAPI(t, tencenttest.Options{})
	api.AddGroup("g", member("a", time.Now().Unix()-60))
	e := newEnv(t, api, []string{"g"}, "")
	e.mustOnce()

	t.Run("usage", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{nil, "a subcommand is required"},
			{[]string{"frob"}, `unknown subcommand "frob"`},
			{[]string{"list"}, "--config is required"},
			{[]string{"list", "--config", e.config, "--bogus"}, "flag provided but not defined: -bogus"},
			{[]string{"list", "--config", e.config, "extra"}, `unexpected argument "extra"`},
			{[]string{"show", "--config", e.config}, "--config and --group are required"},
			{[]string{"forget", "--config", e.config, "--group", "g\x01"}, "--group"},
			{[]string{"show", "--config", e.config, "--group", "g", "--app", "other"}, `--app "other": no such app; configured: default (sdkappid 1400000000)`},
			{[]string{"forget", "--config", e.config, "--group", "g", "--app", "1400000001"}, `no such app`},
			{[]string{"export"}, "--config is required"},
			{[]string{"import", "--in"}, "flag needs an argument"},
		} {
			r := runCLI(t, api.Key(), nil, append([]string{"state"}, tc.args...)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Errorf("state %q: exit %d, want %d with %q\nstdout %q\nstderr %s", tc.args, r.code, exitUsage, tc.want, r.stdout, r.stderr)
			}
		}
		if _, err := os.Stat(filepath.Join(e.stateDir, filestore.FileName("g"))); err != nil {
			t.Errorf("the state is gone after usage errors: %v", err)
		}
		r := runCLI(t, api.Key(), nil, "state", "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "rollcall state import") {
			t.Errorf("state --help: exit %d\n%s", r.code, r.stdout)
		}
		r = runCLI(t, "", nil, "--help")
		if !strings.Contains(r.stdout, "rollcall state ") {
			t.Errorf("rollcall --help does not mention state:\n%s", r.stdout)
		}
	})

	t.Run("invalid config", func(t *testing.T) {
		bad := newEnv(t, api, []string{"g"}, "  bogus: 1\n")
		for _, sub := range [][]string{{"list"}, {"show", "--group", "g"}, {"forget", "--group", "g"}, {"export"}, {"import"}} {
			r := runCLI(t, api.Key(), nil, append(append([]string{"state"}, sub...), "--config", bad.config)...)
			if r.code != exitUsage || !strings.Contains(r.stderr, "poll.bogus") {
				t.Errorf("state %s with an invalid config: exit %d, want %d naming poll.bogus\n%s", sub[0], r.code, exitUsage, r.stderr)
			}
		}
		if _, err := os.Stat(bad.stateDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("an invalid config opened the store: %v", err)
		}
	})

	t.Run("locked by a daemon", func(t *testing.T) {
		held, err := filestore.Open(e.stateDir, nil) // this process holds the lock as a daemon would
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		r := runCLI(t, api.Key(), nil, "state", "forget", "--config", e.config, "--group", "g", "--app", "other")
		if r.code != exitUsage {
			t.Errorf("a bad --app on a locked directory: exit %d, want %d (flags are checked first)\n%s", r.code, exitUsage, r.stderr)
		}
		for _, sub := range [][]string{{"list"}, {"forget", "--group", "g"}, {"import", "--in", os.DevNull}} {
			r := runCLI(t, api.Key(), nil, append(append([]string{"state"}, sub...), "--config", e.config)...)
			if r.code != exitFailure || !strings.Contains(r.stderr, "locked by another process") || !strings.Contains(r.stderr, "Stop it first") {
				t.Errorf("state %s on a locked directory: exit %d, want %d saying a daemon holds it\n%s", sub[0], r.code, exitFailure, r.stderr)
			}
		}
	})

	t.Run("corrupt state file", func(t *testing.T) {
		c := newEnv(t, api, []string{"g", "h"}, "")
		api.AddGroup("h", member("b", time.Now().Unix()-60))
		c.mustOnce()
		file := filepath.Join(c.stateDir, filestore.FileName("g"))
		if err := os.WriteFile(file, []byte(`{"version":1,"group_id":"g","mem`), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCLI(t, api.Key(), nil, "state", "list", "--config", c.config)
		if r.code != exitFailure || !strings.Contains(r.stderr, file) || !regexp.MustCompile(`(?m)^h +`).MatchString(r.stdout) {
			t.Errorf("list: exit %d, want %d naming %s and listing h\nstdout:\n%s\nstderr:\n%s", r.code, exitFailure, file, r.stdout, r.stderr)
		}
		r = runCLI(t, api.Key(), nil, "state", "show", "--config", c.config, "--group", "g")
		if r.code != exitFailure || !strings.Contains(r.stderr, file) {
			t.Errorf("show: exit %d, want %d naming %s\n%s", r.code, exitFailure, file, r.stderr)
		}
		out := filepath.Join(c.dir, "export.jsonl")
		r = runCLI(t, api.Key(), nil, "state", "export", "--config", c.config, "--out", out)
		if r.code != exitFailure || !strings.Contains(r.stderr, file) {
			t.Errorf("export: exit %d, want %d naming %s\n%s", r.code, exitFailure, file, r.stderr)
		}
		if left, _ := filepath.Glob(filepath.Join(c.dir, "*export*")); len(left) != 0 {
			t.Errorf("a failed export left %v", left)
		}
		// Forget is the way out of a corrupt record.
		r = runCLI(t, api.Key(), nil, "state", "forget", "--config", c.config, "--group", "g")
		if r.code != 0 || !strings.Contains(r.stdout, "forgot group g") || !strings.Contains(r.stdout, "unreadable") {
			t.Errorf("forget of a corrupt record: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r := runCLI(t, api.Key(), nil, "state", "list", "--config", c.config); r.code != 0 {
			t.Errorf("list after forget: exit %d\n%s", r.code, r.stderr)
		}
	})

	t.Run("memory driver", func(t *testing.T) {
		m := newEnv(t, api, []string{"g"}, "")
		semEdit(m, "  driver: file\n", "  driver: memory\n")
		r := runCLI(t, api.Key(), nil, "state", "list", "--config", m.config)
		if r.code != 0 || !strings.Contains(r.stderr, "state.driver is memory") || r.stdout != "GROUP_ID  SDKAPPID  OBSERVED_AT  MEMBERS  OUT_OF_VIEW  DISMISSED  OUTBOX\n" {
			t.Errorf("list on the memory driver: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("bad import line", func(t *testing.T) {
		c := newEnv(t, api, []string{"g"}, "")
		in := filepath.Join(c.dir, "in.jsonl")
		line := `{"format":1,"app":1400000000,"group_id":"g","state":{"version":1,"sdkappid":1400000000,"group_id":"g","observed_at":"2026-03-01T12:00:00Z","truncated":false,"dismissed":false,"members":[]},"outbox":null}`
		if err := os.WriteFile(in, []byte(line+"\n"+`{"format":1,"app":1400000000,"group_id":"h"`+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCLI(t, api.Key(), nil, "state", "import", "--config", c.config, "--in", in)
		if r.code != exitFailure || !strings.Contains(r.stderr, "line 2: not a state record") {
			t.Errorf("import: exit %d, want %d naming line 2\n%s", r.code, exitFailure, r.stderr)
		}
		if files := stFiles(t, c.stateDir); len(files) != 0 {
			t.Errorf("imported before the bad line: %v", files)
		}
		if err := os.WriteFile(in, []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r = runCLI(t, api.Key(), nil, "state", "import", "--config", c.config, "--in", in)
		if r.code != 0 || r.stdout != "imported 1 group (1 new, 0 replaced)\n" {
			t.Errorf("import: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}
