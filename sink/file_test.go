package sink_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/schema/schematest/testclock"
	"github.com/rollcall-dev/rollcall/sink"
	"github.com/rollcall-dev/rollcall/sink/sinktest"
)

// readFileBytes returns a file's content, decompressed when it is gzip.
// A gzip stream still being written ends without a trailer; what precedes
// it must decode, which is what readers of a live file get.
func readFileBytes(t *testing.T, path string, live bool) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, ".gz") {
		return raw
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil && !(live && errors.Is(err, io.ErrUnexpectedEOF)) {
		t.Fatalf("%s: %v", path, err)
	}
	return data
}

// readDir returns the event files of dir in name order, which is time order.
func readDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func fileHarness(gz bool) sinktest.Harness {
	var dir string
	return sinktest.Harness{
		New: func(t *testing.T) sink.Sink {
			dir = filepath.Join(t.TempDir(), "events")
			s, err := sink.NewFile(sink.FileOptions{Dir: dir, Gzip: gz})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Read: func(t *testing.T) []sinktest.Received {
			var all []byte
			for _, name := range readDir(t, dir) {
				all = append(all, readFileBytes(t, filepath.Join(dir, name), true)...)
			}
			return parseLines(t, all)
		},
	}
}

func TestFileConformance(t *testing.T) {
	t.Run("plain", func(t *testing.T) { sinktest.Run(t, fileHarness(false)) })
	t.Run("gzip", func(t *testing.T) { sinktest.Run(t, fileHarness(true)) })
}

var hour14 = time.Date(2026, 11, 25, 14, 59, 59, 0, time.UTC)

func TestFileRotatesOnTheUTCHour(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "gzip"}[gz], func(t *testing.T) {
			dir := t.TempDir()
			clk := testclock.New(hour14.In(time.FixedZone("CST", 8*3600)))
			s, err := sink.NewFile(sink.FileOptions{Dir: dir, Gzip: gz, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := s.Publish(ctx, sink.NewBatch(sinktest.Batch(0, 1))); err != nil {
				t.Fatal(err)
			}
			clk.Set(hour14.Add(time.Second))
			if err := s.Publish(ctx, sink.NewBatch(sinktest.Batch(1, 2))); err != nil {
				t.Fatal(err)
			}
			ext := ".jsonl"
			if gz {
				ext += ".gz"
			}
			want := []string{"events-2026-11-25T14" + ext, "events-2026-11-25T15" + ext}
			if got := readDir(t, dir); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("files %v, want %v", got, want)
			}
			// The finished hour must be complete: a proper gzip trailer.
			if got := len(parseLines(t, readFileBytes(t, filepath.Join(dir, want[0]), false))); got != 3 {
				t.Errorf("%s: %d lines, want 3", want[0], got)
			}
			if got := len(parseLines(t, readFileBytes(t, filepath.Join(dir, want[1]), true))); got != 6 {
				t.Errorf("%s: %d lines, want 6", want[1], got)
			}
			if err := s.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got := len(parseLines(t, readFileBytes(t, filepath.Join(dir, want[1]), false))); got != 6 {
				t.Errorf("%s after Close: %d lines, want 6", want[1], got)
			}
		})
	}
}

func TestFileGzipAppendAfterRestartIsReadable(t *testing.T) {
	dir := t.TempDir()
	clk := testclock.New(hour14)
	ctx := context.Background()
	var sent int
	for run := range 3 {
		s, err := sink.NewFile(sink.FileOptions{Dir: dir, Gzip: true, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		for b := range 2 {
			batch := sinktest.Batch(run*100+b*10, 3)
			if err := s.Publish(ctx, sink.NewBatch(batch)); err != nil {
				t.Fatal(err)
			}
			sent += len(batch)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	names := readDir(t, dir)
	if len(names) != 1 {
		t.Fatalf("files %v, want one", names)
	}
	// gzip.Reader reads all members (multistream) and checks each trailer.
	if got := len(parseLines(t, readFileBytes(t, filepath.Join(dir, names[0]), false))); got != sent {
		t.Fatalf("read %d lines, want %d", got, sent)
	}
}

// TestFileRepairsCrashLeftovers simulates a crash mid-write: the tail of
// the hour's file is an unacknowledged partial line (plain) or an
// unterminated gzip member with a partial line. A restarted sink keeps the
// acknowledged lines and leaves a file every reader can read.
func TestFileRepairsCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	acked := sinktest.Batch(0, 2)
	var ackedLines []byte
	for _, ev := range acked {
		b, _ := ev.MarshalJSON()
		ackedLines = append(append(ackedLines, b...), '\n')
	}
	partial := []byte(`{"specversion":"1.0","id":"tor`)

	t.Run("plain", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "events-2026-11-25T14.jsonl")
		if err := os.WriteFile(path, append(bytes.Clone(ackedLines), partial...), 0o640); err != nil {
			t.Fatal(err)
		}
		restartAndCheck(t, ctx, dir, path, false, len(acked))
	})
	t.Run("gzip", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "events-2026-11-25T14.jsonl.gz")
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(ackedLines)
		zw.Flush()
		zw.Write(partial)
		zw.Flush() // no Close: the crash left no trailer
		if err := os.WriteFile(path, buf.Bytes(), 0o640); err != nil {
			t.Fatal(err)
		}
		restartAndCheck(t, ctx, dir, path, true, len(acked))
	})
}

func restartAndCheck(t *testing.T, ctx context.Context, dir, path string, gz bool, acked int) {
	t.Helper()
	s, err := sink.NewFile(sink.FileOptions{Dir: dir, Gzip: gz, Now: func() time.Time { return hour14 }})
	if err != nil {
		t.Fatal(err)
	}
	more := sinktest.Batch(50, 1)
	if err := s.Publish(ctx, sink.NewBatch(more)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := parseLines(t, readFileBytes(t, path, false))
	if len(got) != acked+len(more) {
		t.Fatalf("read %d events, want %d", len(got), acked+len(more))
	}
	if got[len(got)-1].Event.ID != more[len(more)-1].ID {
		t.Errorf("last event is %s, want %s", got[len(got)-1].Event.ID, more[len(more)-1].ID)
	}
	if names := readDir(t, dir); len(names) != 1 {
		t.Errorf("files %v: the repair left something behind", names)
	}
}

func TestFilePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := sink.NewFile(sink.FileOptions{Dir: dir, Now: func() time.Time { return hour14 }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.Publish(context.Background(), sink.NewBatch(sinktest.Batch(0, 1))); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm&^0o750 != 0 {
		t.Errorf("dir mode %o, want at most 0750", perm)
	}
	st, err = os.Stat(filepath.Join(dir, "events-2026-11-25T14.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm&^0o640 != 0 {
		t.Errorf("file mode %o, want at most 0640", perm)
	}
	if got, want := s.Name(), "file:"+dir; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
}

func TestFileErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	// A directory where the hour's file should be makes the open fail.
	path := filepath.Join(dir, "events-2026-11-25T14.jsonl")
	if err := os.Mkdir(path, 0o750); err != nil {
		t.Fatal(err)
	}
	s, err := sink.NewFile(sink.FileOptions{Dir: dir, Now: func() time.Time { return hour14 }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	err = s.Publish(context.Background(), sink.NewBatch(sinktest.Batch(0, 1)))
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Publish = %v, want an error naming %s", err, path)
	}

	// A regular file as Dir.
	notDir := filepath.Join(dir, "plainfile")
	if err := os.WriteFile(notDir, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := sink.NewFile(sink.FileOptions{Dir: notDir}); err == nil || !strings.Contains(err.Error(), notDir) {
		t.Fatalf("NewFile on a regular file = %v, want an error naming it", err)
	}
}

func BenchmarkFilePublish(b *testing.B) {
	for _, gz := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "gzip"}[gz], func(b *testing.B) {
			s, err := sink.NewFile(sink.FileOptions{Dir: b.TempDir(), Gzip: gz})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(context.Background())
			benchPublish(b, s, sinktest.Batch(0, 34)[:100])
		})
	}
}

// TestFileRepairsAnEarlierHourAtStart: a crash at the end of one hour and
// a restart in a later one leaves nothing appending to the torn file; the
// sink's first Publish repairs it and removes a half-done repair. Building
// the sink and checking it (`rollcall check`, perhaps next to a running
// daemon writing that file) touch nothing.
func TestFileRepairsAnEarlierHourAtStart(t *testing.T) {
	acked := sinktest.Batch(0, 2)
	var ackedLines []byte
	for _, ev := range acked {
		b, _ := ev.MarshalJSON()
		ackedLines = append(append(ackedLines, b...), '\n')
	}
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			dir := t.TempDir()
			older := filepath.Join(dir, "events-2026-11-25T12.jsonl")
			torn := filepath.Join(dir, "events-2026-11-25T13.jsonl")
			content := append(bytes.Clone(ackedLines), `{"specversion":"1.0","id":"tor`...)
			if gz {
				older, torn = older+".gz", torn+".gz"
				var buf bytes.Buffer
				zw := gzip.NewWriter(&buf)
				zw.Write(content[:len(ackedLines)])
				zw.Flush()
				zw.Write(content[len(ackedLines):])
				zw.Flush() // no trailer
				content = buf.Bytes()
			}
			if err := os.WriteFile(torn, content, 0o640); err != nil {
				t.Fatal(err)
			}
			// An older, complete file is left as it is.
			if err := os.WriteFile(older, nil, 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, ".repair-123"), []byte("x"), 0o640); err != nil {
				t.Fatal(err)
			}
			s, err := sink.NewFile(sink.FileOptions{Dir: dir, Gzip: gz, Now: func() time.Time { return hour14.Add(time.Hour) }})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			if now, _ := os.ReadFile(torn); !bytes.Equal(now, content) {
				t.Fatal("building and checking the sink changed the newest file")
			}
			if err := s.Publish(context.Background(), sink.NewBatch(sinktest.Batch(50, 1))); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := parseLines(t, readFileBytes(t, torn, false)); len(got) != len(acked) {
				t.Fatalf("%s holds %d whole events after the first publish, want %d", torn, len(got), len(acked))
			}
			if names := readDir(t, dir); len(names) != 3 {
				t.Errorf("files %v, want the two event files and the new hour's only", names)
			}
		})
	}
}

// TestFileCheck: Check writes in the directory, so an unwritable one
// fails it (as `rollcall check` must report), and it leaves nothing behind.
func TestFileCheck(t *testing.T) {
	dir := t.TempDir()
	s, err := sink.NewFile(sink.FileOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check on a writable dir: %v", err)
	}
	if names := readDir(t, dir); len(names) != 0 {
		t.Fatalf("Check left %v", names)
	}
	if os.Geteuid() == 0 {
		t.Log("running as root: permission bits do not stop root; checking a removed directory instead")
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	} else {
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
	}
	if err := s.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "file sink") {
		t.Fatalf("Check on an unwritable dir = %v", err)
	}
}
