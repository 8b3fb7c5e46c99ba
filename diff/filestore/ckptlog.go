package filestore

// The checkpoint log: SaveCheckpoint appends a framed record to
// checkpoints.log instead of rewriting the group's state file, so a
// checkpoint costs one write(2) into the page cache — no temp file, no
// fsync, no rename.
//
// A record is
//
//	[4] body length, little endian
//	[4] CRC-32C (Castagnoli) of the body
//	body: [1] kind (1: checkpoint; other values are reserved)
//	      [8] base: fingerprint of the state file the checkpoint was taken on
//	      [8] observed_at of the checkpoint, Unix nanoseconds
//	      [2] length of the group id, then the group id
//	      the state's JSON, as a state file holds it
//
// Durability is that of the page cache: a kill -9 keeps every record, a
// power loss may lose the latest ones or tear the tail, which the CRC
// detects. Open replays the log, keeps each group's latest record's place
// in memory (not its bytes) and truncates the log at the first record that
// is not whole: after it, nothing can be trusted to be in order, so the
// rest is dropped with a warning. A dropped record is a checkpoint undone;
// the group's state file, which a checkpoint never touches, is whole.
//
// A record applies only on top of the exact state file it was taken on
// (its base, the length and CRC-32C of the file's bytes) and only if it
// observed later than that file: a commit, an operator deleting the file,
// or a new baseline all change the file, so an old checkpoint can never
// come back over them, whatever the clock did. A record with a valid CRC
// whose JSON does not decode into this group's state (a bug, not a torn
// write) is logged as a warning and ignored: the state file is whole and
// true, only older, so this is not a re-baseline.
//
// The log is compacted — rewritten with only each group's latest record
// that can still apply (temp file, fsync, rename, directory fsync) — when
// it outgrows max(compactMin, 4× its live records), at Open and after an
// append.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"
)

const (
	logName = "checkpoints.log"

	recHeader     = 8             // length + CRC
	recFixed      = 1 + 8 + 8 + 2 // kind, base, observed_at, id length
	recCheckpoint = 1             // kind of a checkpoint record
	maxRecBody    = 1 << 30       // a larger length is a torn header
	compactFactor = 4             // the log is not compacted below this many times its live records
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// compactMin is the size below which the log is never compacted (a
// variable for tests).
var compactMin int64 = 16 << 20

// fingerprint identifies a state file's content: its length and CRC-32C.
func fingerprint(b []byte) uint64 {
	return uint64(uint32(len(b)))<<32 | uint64(crc32.Checksum(b, castagnoli))
}

// ckptEntry is where a group's latest checkpoint record is in the log.
type ckptEntry struct {
	off      int64
	n        int64 // whole record, header included
	base     uint64
	observed int64 // Unix nanoseconds
}

// ckptLog is the log and its index. mu guards everything, and is held
// for every use of f (appends, reads, compaction, which swaps f).
type ckptLog struct {
	mu    sync.Mutex
	path  string
	f     *os.File // nil until the first append (or an existing log)
	size  int64    // end of the last whole record; appends go there
	live  int64    // bytes of the records in index
	index map[string]ckptEntry
	// bases holds the fingerprint of each group's state file as this
	// process last read or wrote it; a checkpoint is taken on it.
	bases map[string]uint64
}

// openLog replays dir's checkpoint log, if any.
func openLog(dir string, log *zap.Logger) (*ckptLog, error) {
	l := &ckptLog{path: filepath.Join(dir, logName), index: make(map[string]ckptEntry), bases: make(map[string]uint64)}
	f, err := os.OpenFile(l.path, os.O_RDWR, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open checkpoint log: %w", err)
	}
	l.f = f
	if err := l.replay(log); err != nil {
		f.Close()
		return nil, err
	}
	if err := l.maybeCompact(dir); err != nil {
		l.f.Close()
		return nil, err
	}
	return l, nil
}

// replay builds the index and truncates the log after its last whole
// record.
func (l *ckptLog) replay(log *zap.Logger) error {
	fi, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("checkpoint log: %w", err)
	}
	r := bufio.NewReaderSize(io.NewSectionReader(l.f, 0, fi.Size()), 1<<16)
	var off int64
	var hdr [recHeader]byte
	var body []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return fmt.Errorf("read checkpoint log %s: %w", l.path, err)
		}
		n := binary.LittleEndian.Uint32(hdr[0:4])
		if n < recFixed || n > maxRecBody || int64(n) > fi.Size()-off-recHeader {
			break
		}
		if cap(body) < int(n) {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return fmt.Errorf("read checkpoint log %s: %w", l.path, err)
		}
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(hdr[4:8]) {
			break
		}
		id, e, _, ok := parseBody(body)
		if !ok {
			break
		}
		e.off, e.n = off, recHeader+int64(n)
		l.put(string(id), e)
		off += e.n
	}
	l.size = off
	if dropped := fi.Size() - off; dropped > 0 {
		// A power loss tore the tail (or scrambled it): the checkpoints
		// from here on are undone, the state files they were taken on stay.
		log.Warn("checkpoint log has a torn tail; dropping it (those checkpoints are undone)",
			zap.String("file", l.path), zap.Int64("offset", off), zap.Int64("bytes_dropped", dropped))
		if err := l.f.Truncate(off); err != nil {
			return fmt.Errorf("truncate checkpoint log %s: %w", l.path, err)
		}
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("sync checkpoint log %s: %w", l.path, err)
		}
	}
	return nil
}

// parseBody splits a record body whose CRC matched.
func parseBody(body []byte) (id []byte, e ckptEntry, state []byte, ok bool) {
	if len(body) < recFixed || body[0] != recCheckpoint {
		return nil, e, nil, false
	}
	e.base = binary.LittleEndian.Uint64(body[1:9])
	e.observed = int64(binary.LittleEndian.Uint64(body[9:17]))
	idLen := int(binary.LittleEndian.Uint16(body[17:19]))
	if len(body) < recFixed+idLen {
		return nil, e, nil, false
	}
	return body[recFixed : recFixed+idLen], e, body[recFixed+idLen:], true
}

// record frames a checkpoint of groupID taken on base.
func record(groupID string, base uint64, observedAt time.Time, state []byte) []byte {
	n := recFixed + len(groupID) + len(state)
	b := make([]byte, recHeader+n)
	body := b[recHeader:]
	body[0] = recCheckpoint
	binary.LittleEndian.PutUint64(body[1:9], base)
	binary.LittleEndian.PutUint64(body[9:17], uint64(observedAt.UnixNano()))
	binary.LittleEndian.PutUint16(body[17:19], uint16(len(groupID)))
	copy(body[recFixed:], groupID)
	copy(body[recFixed+len(groupID):], state)
	binary.LittleEndian.PutUint32(b[0:4], uint32(n))
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(body, castagnoli))
	return b
}

// put makes e groupID's latest record. l.mu is held (or l is not shared yet).
func (l *ckptLog) put(groupID string, e ckptEntry) {
	if old, ok := l.index[groupID]; ok {
		l.live -= old.n
	}
	l.index[groupID] = e
	l.live += e.n
}

// drop forgets groupID's record: it can no longer apply. l.mu is held.
func (l *ckptLog) drop(groupID string) {
	if old, ok := l.index[groupID]; ok {
		l.live -= old.n
		delete(l.index, groupID)
	}
}

// committed records that groupID's state file now has fingerprint fp
// (a Save wrote it): its checkpoint, taken on an older file, is dead.
func (l *ckptLog) committed(groupID string, fp uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bases[groupID] = fp
	l.drop(groupID)
}

// base returns the fingerprint of groupID's state file, if this process
// knows it.
func (l *ckptLog) base(groupID string) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fp, ok := l.bases[groupID]
	return fp, ok
}

// appendRecord writes rec, groupID's checkpoint, with one pwrite at the
// end of the last whole record, and compacts the log if it is due.
func (l *ckptLog) appendRecord(dir, groupID string, base uint64, observed time.Time, rec []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		// Created without a directory sync: after a power loss the log
		// may be missing, which only undoes checkpoints.
		f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("open checkpoint log: %w", err)
		}
		l.f = f
	}
	if _, err := l.f.WriteAt(rec, l.size); err != nil {
		// A partial record is overwritten by the next append; if not (a
		// crash first), replay drops it as a torn tail.
		_ = l.f.Truncate(l.size)
		return fmt.Errorf("append to checkpoint log %s: %w", l.path, err)
	}
	l.put(groupID, ckptEntry{off: l.size, n: int64(len(rec)), base: base, observed: observed.UnixNano()})
	l.size += int64(len(rec))
	return l.maybeCompact(dir)
}

// lookup returns groupID's record if it may apply on top of a state file
// with fingerprint fp observed at fileObserved, and notes fp as the
// group's base. A record that can no longer apply is forgotten.
func (l *ckptLog) lookup(groupID string, fp uint64, fileObserved time.Time) (rec []byte, off int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bases[groupID] = fp
	e, ok := l.index[groupID]
	if !ok {
		return nil, 0, nil
	}
	if e.base != fp || e.observed <= fileObserved.UnixNano() {
		l.drop(groupID)
		return nil, 0, nil
	}
	rec = make([]byte, e.n)
	if _, err := l.f.ReadAt(rec, e.off); err != nil {
		return nil, e.off, fmt.Errorf("read checkpoint log %s at offset %d: %w", l.path, e.off, err)
	}
	return rec, e.off, nil
}

// noFile records that groupID has no state file: a record cannot apply.
func (l *ckptLog) noFile(groupID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.bases, groupID)
	l.drop(groupID)
}

// maybeCompact rewrites the log with only the indexed records when it has
// outgrown them. l.mu is held (or l is not shared yet).
func (l *ckptLog) maybeCompact(dir string) error {
	if l.f == nil || l.size <= max(compactMin, compactFactor*l.live) {
		return nil
	}
	return l.compact(dir)
}

func (l *ckptLog) compact(dir string) error {
	tmp, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("compact checkpoint log: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<16)
	next := make(map[string]ckptEntry, len(l.index))
	var off int64
	var buf []byte
	for id, e := range l.index {
		if cap(buf) < int(e.n) {
			buf = make([]byte, e.n)
		}
		buf = buf[:e.n]
		if _, err := l.f.ReadAt(buf, e.off); err != nil {
			return fmt.Errorf("compact checkpoint log: read %s at offset %d: %w", l.path, e.off, err)
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("compact checkpoint log: %w", err)
		}
		e.off = off
		next[id] = e
		off += e.n
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("compact checkpoint log: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("compact checkpoint log: %w", err)
	}
	if err := os.Rename(tmp.Name(), l.path); err != nil {
		return fmt.Errorf("compact checkpoint log: %w", err)
	}
	ok = true
	// Whatever happens next, the new log is in place: use it.
	l.f.Close()
	l.f, l.size, l.live, l.index = tmp, off, off, next
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("compact checkpoint log: sync state dir: %w", err)
	}
	return nil
}

// close syncs and closes the log.
func (l *ckptLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("checkpoint log %s: %w", l.path, err)
	}
	return nil
}
