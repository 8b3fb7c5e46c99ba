package filestore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/diff/difftest"
	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/groupid"
)

// crashDirEnv makes the test binary run saveLoop instead of the tests: the
// crash test re-executes itself with it and kills the child with SIGKILL.
const crashDirEnv = "ROLLCALL_FILESTORE_CRASH_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		saveLoop(dir)
		os.Exit(0)
	}
	if dir := os.Getenv(ckptDirEnv); dir != "" {
		checkpointLoop(dir)
	}
	goleak.VerifyTestMain(m)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const crashGroup = "@TGS#crash/../group"

// crashState is the n-th state of the crash loop. Every member's JoinTime
// and the ObservedAt encode n, so a torn or mixed file is detectable.
func crashState(n int) *diff.State {
	st := &diff.State{Version: diff.StateVersion, SDKAppID: 1, GroupID: crashGroup,
		ObservedAt: t0.Add(time.Duration(n) * time.Second)}
	for i := range 500 + n%700 {
		st.Members = append(st.Members, diff.Tracked{Member: schema.Member{
			Account: fmt.Sprintf("user%05d", i), NickName: strings.Repeat("x", 40), JoinTime: int64(n)},
			LastSeen: diff.InstantOf(st.ObservedAt)})
	}
	return st
}

// saveLoop saves crashState(1), crashState(2), ... and prints each n once
// its Save returned, until it is killed.
func saveLoop(dir string) {
	s, err := Open(dir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	start := 1
	if prev, _, err := s.Load(context.Background(), crashGroup); err == nil && prev != nil {
		start = int(prev.ObservedAt.Sub(t0)/time.Second) + 1
	}
	for n := start; ; n++ {
		if err := save(context.Background(), s, crashState(n)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(n)
	}
}

// A process killed with SIGKILL at an arbitrary point of a tight save
// loop leaves a state that opens and loads, and is the last acknowledged
// save or a later one.
func TestCrashDuringSaveLeavesValidState(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	for round := range 6 {
		cmd, out, stderr := spawnWriter(t, crashDirEnv, dir)
		// Kill after a varying number of acknowledged saves, so the kill
		// lands at different points of the write-sync-rename sequence.
		sc := bufio.NewScanner(out)
		acked, seen := 0, 0
		for seen < 5+round*7 && sc.Scan() {
			n, err := strconv.Atoi(sc.Text())
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			acked = n
			seen++
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait() // "signal: killed"
		if seen == 0 {
			t.Fatalf("round %d: child saved nothing; stderr: %s", round, stderr.String())
		}

		s, err := Open(dir, zaptest.NewLogger(t))
		if err != nil {
			t.Fatalf("round %d: open after kill: %v", round, err)
		}
		st, _, err := s.Load(context.Background(), crashGroup)
		if err != nil {
			t.Fatalf("round %d: load after kill: %v", round, err)
		}
		n := int(st.ObservedAt.Sub(t0) / time.Second)
		if n < acked {
			t.Fatalf("round %d: loaded save %d, but save %d was acknowledged", round, n, acked)
		}
		if want := crashState(n); !reflect.DeepEqual(st, want) {
			t.Fatalf("round %d: state %d is not what was saved (%d members)", round, n, len(st.Members))
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), tmpPrefix) {
				t.Errorf("round %d: temp file %s left after Open", round, e.Name())
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func openT(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestDetectorWithFileStore(t *testing.T) {
	difftest.RunDetectorSuite(t, func(t *testing.T) (diff.Store, func() diff.Store) {
		dir := t.TempDir()
		s := openT(t, dir)
		return s, func() diff.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openT(t, dir)
			return s
		}
	})
}

func TestGroupIDsAreSafeFileNames(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	ids := []string{"@TGS#2abc", "a/b", "..", ".", "../../etc/passwd", "Ab", "ab", "AB", "群组-直播#1",
		"with space", "semi;colon", "%2F", "a\x00b", strings.Repeat("z", 100)}
	for i, id := range ids {
		st := &diff.State{Version: diff.StateVersion, GroupID: id, ObservedAt: t0.Add(time.Duration(i) * time.Second)}
		if err := save(ctx, s, st); err != nil {
			t.Fatalf("save %q: %v", id, err)
		}
	}
	for i, id := range ids {
		got, _, err := s.Load(ctx, id)
		if err != nil || got == nil || got.GroupID != id || !got.ObservedAt.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("load %q = %+v, %v", id, got, err)
		}
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string(nil), ids...)
	slices.Sort(want)
	if !reflect.DeepEqual(list, want) {
		t.Fatalf("List = %q, want %q", list, want)
	}
	// Everything stays in dir, one plain file per group, and no two names
	// differ only in case.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	folded := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("directory %s created", e.Name())
		}
		if folded[strings.ToLower(e.Name())] {
			t.Errorf("%s collides case-insensitively", e.Name())
		}
		folded[strings.ToLower(e.Name())] = true
	}
	if len(entries) != len(ids)+1 { // + LOCK
		t.Errorf("%d files in dir, want %d", len(entries), len(ids)+1)
	}
	if _, _, err := s.Load(ctx, ""); err == nil {
		t.Error("empty group id accepted")
	}
	if err := save(ctx, s, &diff.State{Version: 1, GroupID: strings.Repeat("x", 200)}); err == nil {
		t.Error("group id too long for a file name accepted")
	}
}

func TestLoadMissingIsNoState(t *testing.T) {
	s := openT(t, t.TempDir())
	st, _, err := s.Load(context.Background(), "nobody")
	if st != nil || err != nil {
		t.Fatalf("Load = %+v, %v; want nil, nil", st, err)
	}
}

func TestUnreadableStateIsAnErrorNamingTheFile(t *testing.T) {
	ctx := context.Background()
	for name, content := range map[string]string{
		"empty":         "",
		"torn":          `{"Version":1,"GroupID":"g","Members":[{"member_acc`,
		"not json":      "\x00\x01garbage",
		"other version": `{"Version":2,"GroupID":"g"}`,
		"other group":   `{"Version":1,"GroupID":"h"}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			p := filepath.Join(dir, FileName("g"))
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			st, _, err := s.Load(ctx, "g")
			if err == nil || st != nil {
				t.Fatalf("Load = %+v, %v; want an error", st, err)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name %s", err, p)
			}
		})
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, nil); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Open = %v, want ErrLocked naming %s", err, dir)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}

func TestOpenRemovesTempFilesAndListIgnoresStrangers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := save(ctx, s, &diff.State{Version: 1, GroupID: "g"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, f := range []string{".tmp-123", "README", "NOTBASE32!.json", FileName("g") + ".bak"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = openT(t, dir)
	if _, err := os.Stat(filepath.Join(dir, ".tmp-123")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp file survived Open: %v", err)
	}
	if ids, err := s.List(ctx); err != nil || !reflect.DeepEqual(ids, []string{"g"}) {
		t.Errorf("List = %q, %v", ids, err)
	}
}

func TestSaveReplacesAndLeavesNoTempFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	for n := 1; n <= 3; n++ {
		if err := save(ctx, s, crashState(n)); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := s.Load(ctx, crashGroup)
	if err != nil || !reflect.DeepEqual(got, crashState(3)) {
		t.Fatalf("Load after saves = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("files after saves: %v", entries)
	}
	if fi, _ := os.Stat(filepath.Join(dir, FileName(crashGroup))); fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("state file mode %v is readable by others", fi.Mode())
	}
}

func TestClosedStore(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, err := s.Load(ctx, "g"); !errors.Is(err, diff.ErrClosed) {
		t.Errorf("Load after Close: %v", err)
	}
	if err := save(ctx, s, &diff.State{Version: 1, GroupID: "g"}); !errors.Is(err, diff.ErrClosed) {
		t.Errorf("Save after Close: %v", err)
	}
	if _, err := s.List(ctx); !errors.Is(err, diff.ErrClosed) {
		t.Errorf("List after Close: %v", err)
	}
}

func BenchmarkFileStoreSave(b *testing.B) {
	s, err := Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	st := crashState(1)
	st.Members = st.Members[:0]
	for i := range 1000 {
		st.Members = append(st.Members, diff.Tracked{Member: schema.Member{Account: fmt.Sprintf("user%05d", i),
			NickName: "nick", Avatar: "https://example.com/a.png", JoinTime: t0.Unix()}, LastSeen: diff.InstantOf(t0)})
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := save(ctx, s, st); err != nil {
			b.Fatal(err)
		}
	}
}

// A state file written by this version (testdata/state_v1.json) stays
// readable: renaming a JSON field would make every group re-baseline.
func TestReadsVersion1StateFile(t *testing.T) {
	b, err := os.ReadFile("testdata/state_v1.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const group = "@TGS#1/x"
	if err := os.WriteFile(filepath.Join(dir, FileName(group)), b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openT(t, dir)
	got, _, err := s.Load(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	at := func(sec int) time.Time { return time.Date(2026, 3, 1, 12, 0, sec, 0, time.UTC) }
	want := &diff.State{Version: 1, SDKAppID: 1400000001, GroupID: group, ObservedAt: at(30),
		Truncated: true, Boundary: 1772366100, Members: []diff.Tracked{
			{Member: schema.Member{Account: "alice", NickName: "Alice", Avatar: "https://a/x.png", JoinTime: 1772366000}, LastSeen: diff.InstantOf(at(0)), OutOfView: true},
			{Member: schema.Member{Account: "bob", JoinTime: 1772366100}, LastSeen: diff.InstantOf(at(30))},
			{Member: schema.Member{Account: "carol", JoinTime: 1772366200}, LastSeen: diff.InstantOf(at(30))},
			{Member: schema.Member{Account: "dave", JoinTime: 1772366350}, LastSeen: diff.InstantOf(at(30))},
		}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded\n%+v\nwant\n%+v", got, want)
	}
}

// TestOutboxBesideTheState: SaveOutbox leaves the state file's bytes as
// they are, Load returns the outbox with the state, and Save (the commit)
// removes the outbox file.
func TestOutboxBesideTheState(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	committed := &diff.State{Version: diff.StateVersion, SDKAppID: 1, GroupID: "g", ObservedAt: t0}
	if err := save(ctx, s, committed); err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(dir, FileName("g"))
	before, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	m := schema.Member{Account: "alice", JoinTime: t0.Unix()}
	next := &diff.State{Version: diff.StateVersion, SDKAppID: 1, GroupID: "g", ObservedAt: t0.Add(time.Minute),
		Members: []diff.Tracked{{Member: m, LastSeen: diff.InstantOf(t0.Add(time.Minute))}}}
	pend := &diff.Pending{Events: []schema.Event{schema.MemberJoined(1, "g", m, schema.ReasonJoined, t0.Add(time.Minute), &t0)}, Next: next}
	if err := saveOutbox(ctx, s, "g", pend); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(statePath); string(after) != string(before) {
		t.Fatalf("SaveOutbox changed the state file:\n%s\n%s", before, after)
	}
	got, _, err := s.Load(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if !got.ObservedAt.Equal(t0) || len(got.Members) != 0 || got.Pending == nil ||
		got.Pending.Events[0].ID != pend.Events[0].ID || !reflect.DeepEqual(got.Pending.Next, next) {
		t.Fatalf("Load = %+v (outbox %+v)", got, got.Pending)
	}
	if ids, _ := s.List(ctx); !reflect.DeepEqual(ids, []string{"g"}) {
		t.Fatalf("List = %v: the outbox file is not a group", ids)
	}
	if err := save(ctx, s, next); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(strings.TrimSuffix(statePath, ".json") + ".outbox"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("outbox file after the commit: %v", err)
	}
	if got, _, err := s.Load(ctx, "g"); err != nil || got.Pending != nil || len(got.Members) != 1 {
		t.Fatalf("Load after commit = %+v, %v", got, err)
	}
	// An unreadable outbox is an error naming its file, like a state file.
	bad := strings.TrimSuffix(statePath, ".json") + ".outbox"
	if err := os.WriteFile(bad, []byte(`{"version":1,"group_id":"g","events":[`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(ctx, "g"); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("Load with a torn outbox = %v, want an error naming %s", err, bad)
	}
	if err := saveOutbox(ctx, s, "g", &diff.Pending{Next: next}); err == nil {
		t.Fatal("SaveOutbox accepted an outbox without events")
	}
}

// TestEveryNameOfAGroupFits: the longest valid group id stores its state
// and its outbox; an id whose outbox name would pass the 255-byte limit
// (156 bytes: a 255-byte state name, a 257-byte outbox name) is refused
// before anything is written, where it used to leave a state file it
// could not load (the outbox's name was never checked).
func TestEveryNameOfAGroupFits(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	m := schema.Member{Account: "alice", JoinTime: t0.Unix()}
	for _, id := range []string{strings.Repeat("直", groupid.MaxLen/3), strings.Repeat("x", 155)} {
		next := &diff.State{Version: diff.StateVersion, SDKAppID: 1, GroupID: id, ObservedAt: t0}
		pend := &diff.Pending{Events: []schema.Event{schema.MemberJoined(1, id, m, schema.ReasonJoined, t0, nil)}, Next: next}
		if err := saveOutbox(ctx, s, id, pend); err != nil {
			t.Fatalf("SaveOutbox of a %d-byte id: %v", len(id), err)
		}
		if st, _, err := s.Load(ctx, id); err != nil || st == nil || st.Pending == nil {
			t.Fatalf("Load of a %d-byte id with an outbox = %+v, %v", len(id), st, err)
		}
		if err := save(ctx, s, next); err != nil {
			t.Fatalf("Save of a %d-byte id: %v", len(id), err)
		}
		if st, _, err := s.Load(ctx, id); err != nil || st == nil || st.Pending != nil {
			t.Fatalf("Load of a %d-byte id = %+v, %v", len(id), st, err)
		}
	}

	long := strings.Repeat("x", 156)
	next := &diff.State{Version: diff.StateVersion, SDKAppID: 1, GroupID: long, ObservedAt: t0}
	pend := &diff.Pending{Events: []schema.Event{schema.MemberJoined(1, long, m, schema.ReasonJoined, t0, nil)}, Next: next}
	const want = "group id of 156 bytes is too long for a file name"
	for name, err := range map[string]error{
		"Save":       save(ctx, s, next),
		"SaveOutbox": saveOutbox(ctx, s, long, pend),
		"Load":       func() error { _, _, err := s.Load(ctx, long); return err }(),
	} {
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("%s of a 156-byte id = %v, want an error ending %q", name, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, FileName(long))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file of the refused id: %v", err)
	}
}

// save and saveOutbox write at the store's current revision, for tests that
// are not about revisions.
func save(ctx context.Context, s *Store, st *diff.State) error {
	var rev diff.Revision
	if st != nil {
		_, rev, _ = s.Load(ctx, st.GroupID)
	}
	_, err := s.Save(ctx, st, rev)
	return err
}

func saveOutbox(ctx context.Context, s *Store, groupID string, p *diff.Pending) error {
	_, rev, _ := s.Load(ctx, groupID)
	_, err := s.SaveOutbox(ctx, groupID, p, rev)
	return err
}

// TestSaveCheckpoint: a checkpoint is a Save (same file, same revision
// rules) that skips the directory sync; Close syncs it.
func TestSaveCheckpoint(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	st := &diff.State{Version: diff.StateVersion, SDKAppID: 1, GroupID: "g", ObservedAt: t0,
		Members: []diff.Tracked{{Member: schema.Member{Account: "alice", JoinTime: t0.Unix()}, LastSeen: diff.InstantOf(t0)}}}
	rev, err := s.Save(ctx, st, 0)
	if err != nil {
		t.Fatal(err)
	}
	later := st.Clone()
	later.ObservedAt = t0.Add(time.Minute)
	later.Members[0].LastSeen = diff.InstantOf(later.ObservedAt)
	var ce *diff.ConflictError
	if _, err := s.SaveCheckpoint(ctx, later, rev-1); !errors.As(err, &ce) {
		t.Fatalf("SaveCheckpoint on a stale revision = %v, want a conflict", err)
	}
	rev2, err := s.SaveCheckpoint(ctx, later, rev)
	if err != nil || rev2 == rev {
		t.Fatalf("SaveCheckpoint = %d, %v", rev2, err)
	}
	got, rev3, err := s.Load(ctx, "g")
	if err != nil || rev3 != rev2 || !reflect.DeepEqual(got, later) {
		t.Fatalf("Load after a checkpoint = %+v at %d, %v; want %+v at %d", got, rev3, err, later, rev2)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveCheckpoint(ctx, later, rev2); !errors.Is(err, diff.ErrClosed) {
		t.Fatalf("SaveCheckpoint after Close = %v", err)
	}
}

// TestForgetRemovesBothFiles: Forget takes the state file and the outbox
// beside it, and nothing else in the directory; an outbox alone (an
// interrupted baseline) goes too; an id the store cannot name is an error.
func TestForgetRemovesBothFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, dir)
	m := schema.Member{Account: "alice", JoinTime: t0.Unix()}
	for _, id := range []string{"g", "other"} {
		if err := save(ctx, s, &diff.State{Version: diff.StateVersion, SDKAppID: 1, GroupID: id, ObservedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	next := &diff.State{Version: diff.StateVersion, SDKAppID: 1, GroupID: "g", ObservedAt: t0.Add(time.Minute)}
	pend := &diff.Pending{Events: []schema.Event{schema.MemberJoined(1, "g", m, schema.ReasonJoined, t0.Add(time.Minute), &t0)}, Next: next}
	if err := saveOutbox(ctx, s, "g", pend); err != nil {
		t.Fatal(err)
	}
	nextOnly := &diff.State{Version: diff.StateVersion, SDKAppID: 1, GroupID: "only-outbox", ObservedAt: t0}
	if err := saveOutbox(ctx, s, "only-outbox", &diff.Pending{Events: pend.Events, Next: nextOnly}); err != nil {
		t.Fatal(err)
	}
	stranger := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(stranger, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"g", "only-outbox"} {
		if err := s.Forget(ctx, id); err != nil {
			t.Fatalf("Forget(%s) = %v", id, err)
		}
		if got, rev, err := s.Load(ctx, id); err != nil || got != nil || rev != 0 {
			t.Fatalf("Load(%s) after Forget = %+v at %d, %v", id, got, rev, err)
		}
	}
	var names []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{FileName("other"), lockName, "notes.txt"}
	slices.Sort(want)
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("directory after Forget: %v, want %v", names, want)
	}
	if err := s.Forget(ctx, strings.Repeat("x", 200)); err == nil {
		t.Fatal("Forget of an id the store cannot name succeeded")
	}
	s.Close()
	if err := s.Forget(ctx, "other"); !errors.Is(err, diff.ErrClosed) {
		t.Fatalf("Forget on a closed store = %v, want ErrClosed", err)
	}
}

// spawnWriter starts this test binary as a child that writes into dir
// (envKey selects which writer, see TestMain) and returns it with its
// stdout (one acknowledged count per line) and its stderr.
func spawnWriter(t *testing.T, envKey, dir string) (*exec.Cmd, io.Reader, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envKey+"="+dir)
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out, stderr
}
