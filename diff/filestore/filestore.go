// Package filestore is the durable diff.Store: one JSON file per group in
// a directory that one rollcall process owns.
//
// A file's name is groupid.FileStem of the group id (lower-case base32,
// RFC 4648 "extended hex" alphabet, no padding) plus ".json". The encoding
// is reversible, cannot produce "/", "." or "..", and has no two names
// differing only in case, so it is collision-free on case-insensitive
// filesystems too. The group id is also stored inside the file for people
// reading it.
//
// A group's outbox (a batch being published, see diff.Store) is a second
// file, the same name with ".outbox" for ".json", present only while a
// batch is unacknowledged: the state file itself changes only on commit.
//
// Saves are atomic and durable: the file is written to a temporary file
// in the same directory, fsynced, renamed over the old file, and the
// directory is fsynced. A crash at any instant leaves the old or the new
// file, never a torn one; leftover temporary files are removed by Open.
//
// Checkpoints (diff.CheckpointSaver) do not touch the state file: they are
// appended to one log, checkpoints.log, without an fsync, and Load returns
// a group's latest checkpoint instead of its state file when it was taken
// on that very file and observed later (see ckptlog.go).
package filestore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/groupid"
)

const (
	lockName  = "LOCK"
	ext       = ".json"
	outboxExt = ".outbox"
	tmpPrefix = ".tmp-"
)

// Every valid group id gets names within the file-name limit (temporary
// files do not derive from the id): this fails to compile if a suffix
// outgrows groupid's budget.
const (
	_ = uint(groupid.MaxFileSuffixLen - len(ext))
	_ = uint(groupid.MaxFileSuffixLen - len(outboxExt))
)

// ErrLocked is returned by Open when another process holds the directory.
var ErrLocked = errors.New("state directory is locked by another process")

// Store is a diff.Store over a directory. It is safe for concurrent use.
type Store struct {
	dir  string
	log  *zap.Logger
	lock *os.File

	// fence keeps each group's revision: the store is not shared (the
	// lock), so only a caller's stale revision conflicts.
	fence diff.Fence

	// noOutbox holds the groups known to have no outbox file (a Save
	// removed it, or a Load found none), so a Save need not try to remove
	// it: one syscall less per write.
	noOutbox sync.Map

	ckpt *ckptLog

	mu     sync.RWMutex // guards closed; Close waits for in-flight calls
	closed bool
}

var (
	_ diff.Store         = (*Store)(nil)
	_ diff.Lister        = (*Store)(nil)
	_ diff.Forgetter     = (*Store)(nil)
	_ diff.HealthChecker = (*Store)(nil)
	_ io.Closer          = (*Store)(nil)
)

// Open creates dir if needed, locks it exclusively (flock on dir/LOCK, so
// two rollcall processes cannot share it; the kernel releases the lock
// when the process dies) and removes temporary files a crash left behind.
func Open(dir string, logger *zap.Logger) (*Store, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	log := logger.Named("filestore")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := flock(lock); err != nil {
		lock.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("state dir %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock state dir %s: %w", dir, err)
	}
	s := &Store{dir: dir, log: log, lock: lock, ckpt: &ckptLog{}}
	if err := s.removeTemps(); err != nil {
		s.Close()
		return nil, err
	}
	// After removeTemps: a compaction's temp file is one of them.
	if s.ckpt, err = openLog(dir, log); err != nil {
		s.ckpt = &ckptLog{}
		s.Close()
		return nil, err
	}
	return s, nil
}

// removeTemps deletes what interrupted saves left. Only the lock holder
// writes here, so no temp file belongs to a live save.
func (s *Store) removeTemps() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("read state dir: %w", err)
	}
	removed := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stray temp file: %w", err)
		}
		removed++
	}
	if removed > 0 {
		s.log.Info("removed temp files of interrupted saves", zap.Int("count", removed), zap.String("dir", s.dir))
		return syncDir(s.dir)
	}
	return nil
}

// FileName returns the name of the file holding groupID's state.
func FileName(groupID string) string {
	return groupid.FileStem(groupID) + ext
}

// groupOf reverses FileName; ok is false for names it did not produce.
func groupOf(name string) (string, bool) {
	stem, found := strings.CutSuffix(name, ext)
	if !found {
		return "", false
	}
	return groupid.ParseFileStem(stem)
}

// path returns the state file of groupID. The store takes any id it can
// name, not only valid ones: both of the group's names must fit, and the
// outbox's is the longer (an id whose outbox name did not fit could save
// its state but never its outbox).
func (s *Store) path(groupID string) (string, error) {
	if _, err := groupid.FileName(groupID, outboxExt); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, FileName(groupID)), nil
}

// Load implements diff.Store. A file that cannot be decoded is an error
// naming it, never "no state": that would re-baseline the group. The
// group's latest checkpoint replaces the file's state if it was taken on
// this file and observed later.
func (s *Store) Load(ctx context.Context, groupID string) (*diff.State, diff.Revision, error) {
	var st *diff.State
	rev, err := s.fence.Read(groupID, func() (bool, error) {
		var err error
		st, err = s.load(ctx, groupID)
		return st != nil, err
	})
	if err != nil {
		return nil, 0, err
	}
	return st, rev, nil
}

func (s *Store) load(ctx context.Context, groupID string) (*diff.State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, diff.ErrClosed
	}
	p, err := s.path(groupID)
	if err != nil {
		return nil, fmt.Errorf("load state of %q: %w", groupID, err)
	}
	var st *diff.State
	switch b, err := os.ReadFile(p); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read state: %w", err)
	default:
		st = new(diff.State)
		if err := json.Unmarshal(b, st); err != nil {
			return nil, fmt.Errorf("decode state file %s: %w", p, err)
		}
		if err := check(p, groupID, st.Version, st.GroupID); err != nil {
			return nil, err
		}
		if st, err = s.applyCheckpoint(groupID, fingerprint(b), st); err != nil {
			return nil, err
		}
	}
	if st == nil {
		s.ckpt.noFile(groupID)
	}
	ob, err := s.loadOutbox(outboxPath(p), groupID)
	if err != nil {
		return st, err
	}
	if ob == nil {
		s.noOutbox.Store(groupID, struct{}{})
		return st, nil
	}
	s.noOutbox.Delete(groupID)
	if st == nil {
		return diff.OutboxOnly(groupID, ob), nil
	}
	st.Pending = ob
	return st, nil
}

// applyCheckpoint returns the group's latest checkpoint if it applies on
// top of file, the state file's state, whose bytes have fingerprint fp;
// otherwise file.
func (s *Store) applyCheckpoint(groupID string, fp uint64, file *diff.State) (*diff.State, error) {
	rec, off, err := s.ckpt.lookup(groupID, fp, file.ObservedAt)
	if err != nil || rec == nil {
		return file, err
	}
	st, err := decodeRecord(rec, groupID)
	if err != nil {
		// The CRC matched, so this is no torn write but a bug: the state
		// file is whole and true, only older, so it is used (no events are
		// lost; last-seen times are as old as the file).
		s.log.Warn("ignoring a checkpoint that does not decode; using the state file",
			zap.String("file", s.ckpt.path), zap.Int64("offset", off), zap.String("group", groupID), zap.Error(err))
		s.ckpt.mu.Lock()
		s.ckpt.drop(groupID)
		s.ckpt.mu.Unlock()
		return file, nil
	}
	return st, nil
}

// decodeRecord decodes a whole checkpoint record of groupID.
func decodeRecord(rec []byte, groupID string) (*diff.State, error) {
	if len(rec) < recHeader || crc32.Checksum(rec[recHeader:], castagnoli) != binary.LittleEndian.Uint32(rec[4:8]) {
		return nil, errors.New("checksum mismatch")
	}
	id, _, js, ok := parseBody(rec[recHeader:])
	if !ok {
		return nil, errors.New("malformed record")
	}
	if string(id) != groupID {
		return nil, fmt.Errorf("record of group %q", id)
	}
	st := new(diff.State)
	if err := json.Unmarshal(js, st); err != nil {
		return nil, err
	}
	if st.Version != diff.StateVersion {
		return nil, fmt.Errorf("version %d, this rollcall reads %d", st.Version, diff.StateVersion)
	}
	if st.GroupID != groupID {
		return nil, fmt.Errorf("holds group %q", st.GroupID)
	}
	return st, nil
}

func check(path, groupID string, version int, fileGroup string) error {
	if version != diff.StateVersion {
		return fmt.Errorf("state file %s: version %d, this rollcall reads %d", path, version, diff.StateVersion)
	}
	if fileGroup != groupID {
		return fmt.Errorf("state file %s: holds group %q, not %q", path, fileGroup, groupID)
	}
	return nil
}

// outboxFile is the JSON of a group's outbox file.
type outboxFile struct {
	Version int            `json:"version"`
	GroupID string         `json:"group_id"`
	Events  []schema.Event `json:"events"`
	Next    *diff.State    `json:"next"`
}

func (s *Store) loadOutbox(p, groupID string) (*diff.Pending, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	var f outboxFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("decode outbox file %s: %w", p, err)
	}
	if err := check(p, groupID, f.Version, f.GroupID); err != nil {
		return nil, err
	}
	pend := &diff.Pending{Events: f.Events, Next: f.Next}
	if err := pend.Check(groupID); err != nil {
		return nil, fmt.Errorf("outbox file %s: %w", p, err)
	}
	return pend, nil
}

// Save implements diff.Store: write the state to a temp file, fsync,
// rename, then remove the outbox and fsync the directory.
func (s *Store) Save(ctx context.Context, st *diff.State, base diff.Revision) (diff.Revision, error) {
	if st == nil {
		return 0, errors.New("save state: nil state")
	}
	return s.fenced(st.GroupID, base, func() error { return s.save(ctx, st, true) })
}

// SaveCheckpoint implements diff.CheckpointSaver: the state is appended
// to the checkpoint log with one write and no fsync, and the state file
// is left alone. A kill -9 keeps the record (the page cache); a power
// loss may lose it or tear it, which Open detects: the group's state
// file is found instead, whole. A group whose state file this store has
// not read or written since Open (none exists, say) is saved as a state
// file, without the directory sync.
func (s *Store) SaveCheckpoint(ctx context.Context, st *diff.State, base diff.Revision) (diff.Revision, error) {
	if st == nil {
		return 0, errors.New("save state: nil state")
	}
	return s.fenced(st.GroupID, base, func() error { return s.saveCheckpoint(ctx, st) })
}

func (s *Store) saveCheckpoint(ctx context.Context, st *diff.State) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return diff.ErrClosed
	}
	fp, ok := s.ckpt.base(st.GroupID)
	if !ok {
		s.mu.RUnlock()
		return s.save(ctx, st, false)
	}
	defer s.mu.RUnlock()
	if _, err := s.path(st.GroupID); err != nil {
		return fmt.Errorf("save state of %q: %w", st.GroupID, err)
	}
	b, err := json.Marshal(st) // Pending is not encoded
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return s.ckpt.appendRecord(s.dir, st.GroupID, fp, st.ObservedAt, record(st.GroupID, fp, st.ObservedAt, b))
}

// fenced runs write under the group's fence. A closed store says so
// whatever the revision, rather than reporting a conflict.
func (s *Store) fenced(groupID string, base diff.Revision, write func() error) (diff.Revision, error) {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return 0, diff.ErrClosed
	}
	return s.fence.Write(groupID, base, write)
}

func (s *Store) save(ctx context.Context, st *diff.State, durable bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if st == nil {
		return errors.New("save state: nil state")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return diff.ErrClosed
	}
	p, err := s.path(st.GroupID)
	if err != nil {
		return fmt.Errorf("save state of %q: %w", st.GroupID, err)
	}
	b, err := json.Marshal(st) // Pending is not encoded
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := s.write(p, b); err != nil {
		return err
	}
	// The file is newer than any checkpoint of the group; and a later
	// checkpoint is taken on this file.
	s.ckpt.committed(st.GroupID, fingerprint(b))
	if _, none := s.noOutbox.Load(st.GroupID); !none {
		if err := os.Remove(outboxPath(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove outbox: %w", err)
		}
	}
	if durable {
		// Without this the rename itself may not survive a power loss.
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("sync state dir: %w", err)
		}
	}
	s.noOutbox.Store(st.GroupID, struct{}{})
	return nil
}

// SaveOutbox implements diff.Store: the outbox goes to its own file beside
// the state's (".outbox" for ".json"), written like the state, so the
// state file changes only when a batch is acknowledged.
func (s *Store) SaveOutbox(ctx context.Context, groupID string, pend *diff.Pending, base diff.Revision) (diff.Revision, error) {
	return s.fenced(groupID, base, func() error { return s.saveOutbox(ctx, groupID, pend) })
}

func (s *Store) saveOutbox(ctx context.Context, groupID string, pend *diff.Pending) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := pend.Check(groupID); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return diff.ErrClosed
	}
	p, err := s.path(groupID)
	if err != nil {
		return fmt.Errorf("save outbox of %q: %w", groupID, err)
	}
	s.noOutbox.Delete(groupID) // from now on, until a Save removes it
	// Next's own Pending is never encoded (json:"-").
	b, err := json.Marshal(outboxFile{Version: diff.StateVersion, GroupID: groupID, Events: pend.Events, Next: pend.Next})
	if err != nil {
		return fmt.Errorf("encode outbox: %w", err)
	}
	if err := s.write(outboxPath(p), b); err != nil {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("sync state dir: %w", err)
	}
	return nil
}

// outboxPath is the outbox file beside the state file p.
func outboxPath(p string) string { return strings.TrimSuffix(p, ext) + outboxExt }

// write replaces p with b atomically: a temp file in the same directory,
// fsynced, renamed over p. The caller fsyncs the directory.
func (s *Store) write(p string, b []byte) error {
	tmp, err := os.CreateTemp(s.dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("write temp file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync temp file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close temp file: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("rename %s: %w", filepath.Base(p), err)
	}
	committed = true
	return nil
}

// List implements diff.Lister. Files that are not state files are ignored.
func (s *Store) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, diff.ErrClosed
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read state dir: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if id, ok := groupOf(e.Name()); ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Forget implements diff.Forgetter: it removes the group's outbox file,
// then its state file, then fsyncs the directory. The outbox goes first so
// that an interrupted Forget leaves at worst the committed state without
// its outbox — never an outbox whose batch would bring the state back —
// and running it again finishes the job.
func (s *Store) Forget(ctx context.Context, groupID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.path(groupID)
	if err != nil {
		return fmt.Errorf("forget %q: %w", groupID, err)
	}
	// The fence's lock first, then mu, as Load and Save take them.
	return s.fence.Remove(groupID, func() error {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if s.closed {
			return diff.ErrClosed
		}
		for _, f := range []string{outboxPath(p), p} {
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("forget %s: %w", groupID, err)
			}
		}
		// Without this a removal may not survive a power loss.
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("sync state dir: %w", err)
		}
		s.noOutbox.Store(groupID, struct{}{})
		// A checkpoint never applies without its state file; this only
		// frees its place in the index.
		s.ckpt.noFile(groupID)
		return nil
	})
}

// Healthy implements diff.HealthChecker without touching the disk (it
// runs on every readiness probe): only a closed store is unhealthy. Disk
// trouble shows in the errors of Load and Save.
func (s *Store) Healthy(context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return diff.ErrClosed
	}
	return nil
}

// Close implements io.Closer: it releases the directory lock. It waits for calls in progress;
// later calls fail with diff.ErrClosed. Closing twice is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	// Checkpoints since the last durable write were appended, or renamed
	// files, without a sync: make them durable before letting go.
	syncErr := errors.Join(s.ckpt.close(), syncDir(s.dir))
	// Closing the descriptor releases the flock.
	if err := s.lock.Close(); err != nil {
		return fmt.Errorf("release state dir lock: %w", err)
	}
	if syncErr != nil {
		return fmt.Errorf("sync state dir: %w", syncErr)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
