package filestore

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/schema"
)

// ckState is a 20-member state of group observed n seconds after t0; its
// last-seen times say n, so states of different n differ.
func ckState(group string, n int) *diff.State {
	st := &diff.State{Version: diff.StateVersion, SDKAppID: 1, GroupID: group, ObservedAt: t0.Add(time.Duration(n) * time.Second)}
	for i := range 20 {
		st.Members = append(st.Members, diff.Tracked{Member: schema.Member{Account: fmt.Sprintf("user%05d", i),
			NickName: "nick", Avatar: "https://example.com/a.png", JoinTime: t0.Unix()}, LastSeen: diff.InstantOf(st.ObservedAt)})
	}
	return st
}

// observed opens dir with a logger whose warnings the test can read.
func observed(t *testing.T, dir string) (*Store, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.WarnLevel)
	s, err := Open(dir, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, logs
}

func checkpoint(t *testing.T, s *Store, st *diff.State) {
	t.Helper()
	ctx := context.Background()
	_, rev, err := s.Load(ctx, st.GroupID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveCheckpoint(ctx, st, rev); err != nil {
		t.Fatal(err)
	}
}

func mustSave(t *testing.T, s *Store, st *diff.State) {
	t.Helper()
	if err := save(context.Background(), s, st); err != nil {
		t.Fatal(err)
	}
}

func wantLoad(t *testing.T, s *Store, group string, want *diff.State) {
	t.Helper()
	got, _, err := s.Load(context.Background(), group)
	if err != nil {
		t.Fatalf("Load(%s): %v", group, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Load(%s) = observed %v, want %v", group, observedAt(got), observedAt(want))
	}
}

func observedAt(st *diff.State) any {
	if st == nil {
		return "no state"
	}
	return st.ObservedAt
}

func closeT(t *testing.T, s *Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// A checkpoint leaves the state file as it is, and a reopened store loads
// the checkpoint.
func TestCheckpointSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	mustSave(t, s, ckState("g", 1))
	file, _ := os.ReadFile(filepath.Join(dir, FileName("g")))
	checkpoint(t, s, ckState("g", 2))
	checkpoint(t, s, ckState("g", 3))
	if after, _ := os.ReadFile(filepath.Join(dir, FileName("g"))); string(after) != string(file) {
		t.Fatal("a checkpoint rewrote the state file")
	}
	wantLoad(t, s, "g", ckState("g", 3))
	closeT(t, s)
	s = openT(t, dir)
	wantLoad(t, s, "g", ckState("g", 3))
	if ids, err := s.List(context.Background()); err != nil || !reflect.DeepEqual(ids, []string{"g"}) {
		t.Fatalf("List = %v, %v", ids, err)
	}
}

// A commit after a checkpoint wins, also when the clock stepped back so
// that the commit observed earlier than the checkpoint.
func TestCommitAfterCheckpointWins(t *testing.T) {
	for _, commitAt := range []int{5, 2} {
		t.Run(strconv.Itoa(commitAt), func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			mustSave(t, s, ckState("g", 1))
			checkpoint(t, s, ckState("g", 3))
			commit := ckState("g", commitAt)
			commit.Members = commit.Members[:19] // a member left
			mustSave(t, s, commit)
			wantLoad(t, s, "g", commit)
			closeT(t, s)
			s = openT(t, dir)
			wantLoad(t, s, "g", commit)
		})
	}
}

// A checkpoint that observed no later than its state file is ignored.
func TestCheckpointOlderThanFileIgnored(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	mustSave(t, s, ckState("g", 5))
	checkpoint(t, s, ckState("g", 4))
	wantLoad(t, s, "g", ckState("g", 5))
	checkpoint(t, s, ckState("g", 4))
	closeT(t, s)
	s = openT(t, dir)
	wantLoad(t, s, "g", ckState("g", 5))
}

// A checkpoint never creates a group and never survives its state file:
// an operator deleting the file (to watch a dismissed group again) and a
// new baseline both leave it dead.
func TestCheckpointNeedsItsStateFile(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	mustSave(t, s, ckState("g", 1))
	checkpoint(t, s, ckState("g", 2))
	closeT(t, s)
	if err := os.Remove(filepath.Join(dir, FileName("g"))); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	wantLoad(t, s, "g", nil)
	closeT(t, s)

	s = openT(t, dir)
	baseline := ckState("g", 1) // same time as the first file, other content
	baseline.Members = baseline.Members[:3]
	mustSave(t, s, baseline)
	closeT(t, s)
	s = openT(t, dir)
	wantLoad(t, s, "g", baseline)
}

// A checkpoint of a group whose state file the store has not seen (none
// exists) is written as a state file: the log only holds records taken on
// a file.
func TestCheckpointWithoutStateFile(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	if _, err := s.SaveCheckpoint(context.Background(), ckState("g", 1), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName("g"))); err != nil {
		t.Fatalf("no state file: %v", err)
	}
	closeT(t, s)
	s = openT(t, dir)
	wantLoad(t, s, "g", ckState("g", 1))
}

// threeCheckpoints saves groups a, b, c at 1 and checkpoints them at 2, in
// that order, and returns the offset of each record in the closed log.
func threeCheckpoints(t *testing.T, dir string) []int64 {
	t.Helper()
	s := openT(t, dir)
	for _, g := range []string{"a", "b", "c"} {
		mustSave(t, s, ckState(g, 1))
	}
	var offs []int64
	for _, g := range []string{"a", "b", "c"} {
		offs = append(offs, s.ckpt.size)
		checkpoint(t, s, ckState(g, 2))
	}
	closeT(t, s)
	return append(offs, logSize(t, dir))
}

func logSize(t *testing.T, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, logName))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func wantWarning(t *testing.T, logs *observer.ObservedLogs, msg string, dropped int64) {
	t.Helper()
	for _, e := range logs.FilterMessageSnippet(msg).All() {
		if got, ok := e.ContextMap()["bytes_dropped"]; dropped < 0 || ok && got == dropped {
			return
		}
	}
	t.Fatalf("no warning %q (bytes_dropped %d) in %v", msg, dropped, logs.All())
}

// A torn tail — a record cut short, or garbage after the last record — is
// dropped with a warning: the records before it stay, the log is cut back
// to them, and the torn record's group loads its state file.
func TestTornTailIsDropped(t *testing.T) {
	t.Run("cut", func(t *testing.T) {
		dir := t.TempDir()
		offs := threeCheckpoints(t, dir)
		cut := offs[2] + (offs[3]-offs[2])/2
		if err := os.Truncate(filepath.Join(dir, logName), cut); err != nil {
			t.Fatal(err)
		}
		s, logs := observed(t, dir)
		wantWarning(t, logs, "torn tail", cut-offs[2])
		if got := logSize(t, dir); got != offs[2] {
			t.Fatalf("log is %d bytes after Open, want %d", got, offs[2])
		}
		wantLoad(t, s, "a", ckState("a", 2))
		wantLoad(t, s, "b", ckState("b", 2))
		wantLoad(t, s, "c", ckState("c", 1))
		// Appends go after the last whole record and survive a reopen.
		checkpoint(t, s, ckState("c", 3))
		closeT(t, s)
		s = openT(t, dir)
		wantLoad(t, s, "c", ckState("c", 3))
		wantLoad(t, s, "a", ckState("a", 2))
	})
	t.Run("garbage", func(t *testing.T) {
		dir := t.TempDir()
		offs := threeCheckpoints(t, dir)
		f, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		garbage := []byte("\x10\x00\x00\x00garbage that is no record")
		if _, err := f.Write(garbage); err != nil {
			t.Fatal(err)
		}
		f.Close()
		s, logs := observed(t, dir)
		wantWarning(t, logs, "torn tail", int64(len(garbage)))
		if got := logSize(t, dir); got != offs[3] {
			t.Fatalf("log is %d bytes after Open, want %d", got, offs[3])
		}
		for _, g := range []string{"a", "b", "c"} {
			wantLoad(t, s, g, ckState(g, 2))
		}
	})
}

// A record whose checksum fails in the middle of the log ends the replay
// there (after a power loss, pages need not have reached the disk in
// order): it and every later record are dropped with a warning, and their
// groups load their state files.
func TestCorruptRecordInTheMiddle(t *testing.T) {
	dir := t.TempDir()
	offs := threeCheckpoints(t, dir)
	p := filepath.Join(dir, logName)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[offs[1]+(offs[2]-offs[1])/2] ^= 0x20
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, logs := observed(t, dir)
	wantWarning(t, logs, "torn tail", offs[3]-offs[1])
	if got := logSize(t, dir); got != offs[1] {
		t.Fatalf("log is %d bytes after Open, want %d", got, offs[1])
	}
	wantLoad(t, s, "a", ckState("a", 2))
	wantLoad(t, s, "b", ckState("b", 1))
	wantLoad(t, s, "c", ckState("c", 1))
}

// A record that is whole (its checksum holds) but does not decode into
// the group's state is a bug, not a torn write: Load warns, naming the log
// and the offset, and returns the state file's state, which is whole and
// true — never no state.
func TestUndecodableCheckpointFallsBackToTheFile(t *testing.T) {
	for name, js := range map[string]string{
		"json":    `{"version":`,
		"version": `{"version":99,"group_id":"g"}`,
		"group":   `{"version":` + strconv.Itoa(diff.StateVersion) + `,"group_id":"h"}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			mustSave(t, s, ckState("g", 1))
			closeT(t, s)
			file, err := os.ReadFile(filepath.Join(dir, FileName("g")))
			if err != nil {
				t.Fatal(err)
			}
			rec := record("g", fingerprint(file), t0.Add(time.Hour), []byte(js))
			if err := os.WriteFile(filepath.Join(dir, logName), rec, 0o600); err != nil {
				t.Fatal(err)
			}
			s, logs := observed(t, dir)
			wantLoad(t, s, "g", ckState("g", 1))
			w := logs.FilterMessageSnippet("does not decode").All()
			if len(w) != 1 || w[0].ContextMap()["offset"] != int64(0) || w[0].ContextMap()["file"] != filepath.Join(dir, logName) {
				t.Fatalf("warnings: %v", logs.All())
			}
			// Once is enough.
			wantLoad(t, s, "g", ckState("g", 1))
			if n := logs.FilterMessageSnippet("does not decode").Len(); n != 1 {
				t.Fatalf("%d warnings after a second Load", n)
			}
		})
	}
}

// Compaction keeps each group's latest live record only, and Load returns
// what it returned before.
func TestCompactionKeepsLiveRecords(t *testing.T) {
	defer func(n int64) { compactMin = n }(compactMin)
	compactMin = 64 << 10
	dir := t.TempDir()
	s := openT(t, dir)
	groups := []string{"a", "b", "c", "d"}
	for _, g := range groups {
		mustSave(t, s, ckState(g, 1))
	}
	mustSave(t, s, ckState("e", 1)) // committed after its checkpoints: none live
	for n := 2; n < 200; n++ {
		for _, g := range append(groups, "e") {
			checkpoint(t, s, ckState(g, n))
		}
	}
	mustSave(t, s, ckState("e", 300))
	rec := int64(len(record("a", 0, t0, mustJSON(t, ckState("a", 199)))))
	// Compaction runs once the log passes compactMin: it never holds more
	// than that plus one record.
	if got := logSize(t, dir); got > compactMin+rec {
		t.Fatalf("log is %d bytes, over %d", got, compactMin+rec)
	}
	for _, g := range groups {
		wantLoad(t, s, g, ckState(g, 199))
	}
	s.ckpt.mu.Lock()
	err := s.ckpt.compact(dir)
	s.ckpt.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if got := logSize(t, dir); got != 4*rec {
		t.Fatalf("compacted log is %d bytes, want the 4 live records, %d", got, 4*rec)
	}
	for _, g := range groups {
		wantLoad(t, s, g, ckState(g, 199))
	}
	wantLoad(t, s, "e", ckState("e", 300))
	closeT(t, s)
	s = openT(t, dir)
	for _, g := range groups {
		wantLoad(t, s, g, ckState(g, 199))
	}
	wantLoad(t, s, "e", ckState("e", 300))
	if entries, _ := os.ReadDir(dir); len(entries) != 2+len(groups)+1 {
		t.Fatalf("files: %v", entries)
	}
}

// Open compacts a log that replays to few live records.
func TestOpenCompacts(t *testing.T) {
	defer func(n int64) { compactMin = n }(compactMin)
	compactMin = 16 << 10
	dir := t.TempDir()
	s := openT(t, dir)
	mustSave(t, s, ckState("a", 1))
	compactMin = 1 << 30
	for n := 2; n < 100; n++ {
		checkpoint(t, s, ckState("a", n))
	}
	closeT(t, s)
	compactMin = 16 << 10
	if logSize(t, dir) <= compactMin {
		t.Fatal("log too small for the test")
	}
	s = openT(t, dir)
	if got, want := logSize(t, dir), int64(len(record("a", 0, t0, mustJSON(t, ckState("a", 99))))); got != want {
		t.Fatalf("log is %d bytes after Open, want one record, %d", got, want)
	}
	wantLoad(t, s, "a", ckState("a", 99))
}

func mustJSON(t *testing.T, st *diff.State) []byte {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ckptDirEnv makes the test binary run checkpointLoop instead of the tests.
const ckptDirEnv = "ROLLCALL_FILESTORE_CKPT_DIR"

// checkpointLoop checkpoints ckState(g, n) for n = 2, 3, ... over a state
// file at 1, and prints each n once its SaveCheckpoint returned, until it
// is killed.
func checkpointLoop(dir string) {
	ctx := context.Background()
	s, err := Open(dir, nil)
	if err == nil {
		err = save(ctx, s, ckState("g", 1))
	}
	for n := 2; err == nil; n++ {
		var rev diff.Revision
		_, rev, err = s.Load(ctx, "g")
		if err == nil {
			_, err = s.SaveCheckpoint(ctx, ckState("g", n), rev)
		}
		if err == nil {
			fmt.Println(n)
		}
	}
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}

// A process killed with SIGKILL while it checkpoints (never closing the
// store, so the log is never synced) leaves a log that opens, and Load
// returns the last acknowledged checkpoint or a later one, whole.
func TestCrashDuringCheckpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for round := range 4 {
		dir := t.TempDir()
		cmd, out, stderr := spawnWriter(t, ckptDirEnv, dir)
		sc := bufio.NewScanner(out)
		acked, seen := 0, 0
		for seen < 3+round*50 && sc.Scan() {
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
		_ = cmd.Wait()
		if seen == 0 {
			t.Fatalf("round %d: child checkpointed nothing; stderr: %s", round, stderr.String())
		}
		s := openT(t, dir)
		st, _, err := s.Load(context.Background(), "g")
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		n := int(st.ObservedAt.Sub(t0) / time.Second)
		if n < acked {
			t.Fatalf("round %d: loaded checkpoint %d, but %d was acknowledged", round, n, acked)
		}
		if !reflect.DeepEqual(st, ckState("g", n)) {
			t.Fatalf("round %d: checkpoint %d is not what was saved", round, n)
		}
		closeT(t, s)
	}
}

// Groups saved, checkpointed and loaded concurrently, with compactions
// among them (run with -race).
func TestConcurrentCheckpoints(t *testing.T) {
	defer func(n int64) { compactMin = n }(compactMin)
	compactMin = 32 << 10
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := context.Background()
	const groups, rounds = 8, 60
	var wg sync.WaitGroup
	errs := make(chan error, groups)
	for i := range groups {
		g := "g" + strconv.Itoa(i)
		wg.Go(func() {
			_, rev, err := s.Load(ctx, g)
			if err == nil {
				rev, err = s.Save(ctx, ckState(g, 1), rev)
			}
			for n := 2; n < rounds && err == nil; n++ {
				var got *diff.State
				if n%10 == 0 {
					rev, err = s.Save(ctx, ckState(g, n), rev)
				} else {
					rev, err = s.SaveCheckpoint(ctx, ckState(g, n), rev)
				}
				if err == nil && n%3 == 0 {
					got, rev, err = s.Load(ctx, g)
					if err == nil && !reflect.DeepEqual(got, ckState(g, n)) {
						err = fmt.Errorf("%s: loaded %v after writing %d", g, got.ObservedAt, n)
					}
				}
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	closeT(t, s)
	s = openT(t, dir)
	for i := range groups {
		g := "g" + strconv.Itoa(i)
		wantLoad(t, s, g, ckState(g, rounds-1))
	}
}

// BenchmarkSave and BenchmarkSaveCheckpoint write the same 20-member
// group: a commit (the state file, fsynced, renamed, directory fsynced)
// and a checkpoint (one append to the log). Compare them as a ratio.
func BenchmarkSave(b *testing.B) {
	benchWrite(b, func(s *Store, st *diff.State, rev diff.Revision) (diff.Revision, error) {
		return s.Save(context.Background(), st, rev)
	})
}

func BenchmarkSaveCheckpoint(b *testing.B) {
	benchWrite(b, func(s *Store, st *diff.State, rev diff.Revision) (diff.Revision, error) {
		return s.SaveCheckpoint(context.Background(), st, rev)
	})
}

func benchWrite(b *testing.B, write func(*Store, *diff.State, diff.Revision) (diff.Revision, error)) {
	s, err := Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	st := ckState("@TGS#bench", 1)
	rev, err := s.Save(context.Background(), st, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if rev, err = write(s, st, rev); err != nil {
			b.Fatal(err)
		}
	}
}
