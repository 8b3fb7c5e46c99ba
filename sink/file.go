package sink

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// FileOptions configures a File sink.
type FileOptions struct {
	// Dir holds the files; it is created (0o750) when missing.
	Dir string
	// Gzip compresses the files (.jsonl.gz).
	Gzip bool
	// Now picks the hourly file; nil means time.Now.
	Now func() time.Time
	// Logger reports repaired files; nil means zap.NewNop().
	Logger *zap.Logger
}

// File writes events as JSON Lines (one structured-mode CloudEvent per
// line) into hourly files named after the UTC hour at which they are
// written, not the events' time: events-2026-11-25T14.jsonl, or
// .jsonl.gz with Gzip. A new hour's file is started by the first Publish
// in that hour, so the previous one is finished then or at Close.
//
// Publish returns after the batch is fsynced. With Gzip, the compressor is
// flushed first, so every acknowledged batch can be read back even from a
// file still being written. Restarting within an hour appends to that
// hour's file: with Gzip as a new gzip member, which compress/gzip and
// gunzip read as one stream. A tail left by a crash (a partial line, an
// unterminated gzip member) is repaired before appending, and the newest
// file is repaired by the first Publish even if it belongs to an earlier
// hour; only events that were never acknowledged are dropped by a repair.
type File struct {
	dir  string
	gzip bool
	now  func() time.Time
	log  *zap.Logger

	mu     sync.Mutex
	fh     *os.File
	gz     *gzip.Writer
	path   string
	hour   time.Time
	closed bool
	// repaired is set once the newest file left by an earlier run has been
	// repaired (by the first Publish).
	repaired bool
}

var _ Sink = (*File)(nil)

// NewFile returns a File sink writing under o.Dir, creating it if needed.
func NewFile(o FileOptions) (*File, error) {
	if o.Dir == "" {
		return nil, errors.New("file sink: empty dir")
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("file sink: %w", err)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	// The newest file is repaired by the first Publish, not here: `rollcall
	// check` builds this sink next to a running daemon that may be writing
	// that very file.
	return &File{dir: o.Dir, gzip: o.Gzip, now: now, log: log.Named("file")}, nil
}

// repairNewest repairs the newest file of each kind (plain, gzip) and
// removes what an interrupted repair left: a crash can only have torn the
// file being written last, and when rollcall comes back in a later hour
// nothing would append to it, and so repair it, again.
func (f *File) repairNewest(current string) error {
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		return pathError("read", f.dir, err)
	}
	newest := map[bool]string{} // gzip? -> name; ReadDir sorts by name, and names sort by hour
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, ".repair-"), strings.HasPrefix(name, ".check-"):
			if err := os.Remove(filepath.Join(f.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return pathError("remove", filepath.Join(f.dir, name), err)
			}
		case !e.Type().IsRegular() || !strings.HasPrefix(name, "events-"):
		case strings.HasSuffix(name, ".jsonl.gz"):
			newest[true] = name
		case strings.HasSuffix(name, ".jsonl"):
			newest[false] = name
		}
	}
	for gz, name := range newest {
		path := filepath.Join(f.dir, name)
		if path == current {
			continue // repaired when it is opened
		}
		repair := f.repairPlain
		if gz {
			repair = f.repairGzip
		}
		if err := repair(path); err != nil {
			return err
		}
	}
	return nil
}

// Check verifies, for `rollcall check`, that files can be created,
// written and fsynced in the directory: it writes and removes a
// temporary file.
func (f *File) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(f.dir, ".check-*")
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write([]byte("rollcall check\n"))
	err = errors.Join(err, tmp.Sync(), tmp.Close())
	if err != nil {
		return fmt.Errorf("file sink: write in %s: %w", f.dir, err)
	}
	return nil
}

// Name implements Sink: "file:" and the directory as configured.
func (f *File) Name() string { return "file:" + f.dir }

// Publish implements Sink.
func (f *File) Publish(ctx context.Context, batch *Batch) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish to %s: %w", f.Name(), err)
	}
	if batch.Len() == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fmt.Errorf("publish to %s: %w", f.Name(), ErrClosed)
	}
	hour := f.now().UTC().Truncate(time.Hour)
	if !f.repaired {
		if err := f.repairNewest(f.fileName(hour)); err != nil {
			return fmt.Errorf("file sink: %w", err)
		}
		f.repaired = true
	}
	if f.fh != nil && !hour.Equal(f.hour) {
		if err := f.finish(); err != nil {
			return err
		}
	}
	if f.fh == nil {
		if err := f.open(hour); err != nil {
			return err
		}
	}
	if err := f.write(batch.Lines()); err != nil {
		// The file may now end in a partial line or a broken gzip block:
		// drop the handle so the next Publish reopens and repairs it.
		f.abandon()
		return err
	}
	return nil
}

func (f *File) write(buf []byte) error {
	if f.gz != nil {
		if _, err := f.gz.Write(buf); err != nil {
			return pathError("write", f.path, err)
		}
		if err := f.gz.Flush(); err != nil {
			return pathError("write", f.path, err)
		}
	} else if _, err := f.fh.Write(buf); err != nil {
		return pathError("write", f.path, err)
	}
	if err := f.fh.Sync(); err != nil {
		return pathError("sync", f.path, err)
	}
	return nil
}

func (f *File) fileName(hour time.Time) string {
	name := "events-" + hour.Format("2006-01-02T15") + ".jsonl"
	if f.gzip {
		name += ".gz"
	}
	return filepath.Join(f.dir, name)
}

// open opens (creating or repairing) the file of hour for appending.
func (f *File) open(hour time.Time) error {
	path := f.fileName(hour)
	_, statErr := os.Stat(path)
	existed := statErr == nil
	if existed {
		if err := f.repair(path); err != nil {
			return err
		}
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return pathError("open", path, err)
	}
	if !existed {
		// Make the new directory entry durable along with the data.
		if err := syncDir(f.dir); err != nil {
			fh.Close()
			return err
		}
	}
	f.fh, f.path, f.hour = fh, path, hour
	if f.gzip {
		f.gz = gzip.NewWriter(fh)
	}
	return nil
}

// finish completes the current file: the gzip trailer, fsync, close.
func (f *File) finish() error {
	fh, gz, path := f.fh, f.gz, f.path
	f.fh, f.gz, f.path = nil, nil, ""
	var errs []error
	if gz != nil {
		if err := gz.Close(); err != nil {
			errs = append(errs, pathError("finish", path, err))
		}
	}
	if err := fh.Sync(); err != nil {
		errs = append(errs, pathError("sync", path, err))
	}
	if err := fh.Close(); err != nil {
		errs = append(errs, pathError("close", path, err))
	}
	return errors.Join(errs...)
}

func (f *File) abandon() {
	if f.fh != nil {
		f.fh.Close() // the write error is what the caller needs
	}
	f.fh, f.gz, f.path = nil, nil, ""
}

// Close implements Sink: it finishes the current file.
func (f *File) Close(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	if f.fh == nil {
		return nil
	}
	return f.finish()
}

// repair makes an existing file safe to append to.
func (f *File) repair(path string) error {
	if f.gzip {
		return f.repairGzip(path)
	}
	return f.repairPlain(path)
}

// repairPlain cuts a partial last line, which only an interrupted write
// leaves behind (acknowledged batches end with a newline).
func (f *File) repairPlain(path string) error {
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return pathError("open", path, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return pathError("stat", path, err)
	}
	size := st.Size()
	keep, err := lastNewlineEnd(fh, size)
	if err != nil {
		return pathError("read", path, err)
	}
	if keep == size {
		return nil
	}
	if err := fh.Truncate(keep); err != nil {
		return pathError("truncate", path, err)
	}
	if err := fh.Sync(); err != nil {
		return pathError("sync", path, err)
	}
	f.log.Warn("dropped a partial line left by an interrupted write",
		zap.String("file", path), zap.Int64("bytes", size-keep))
	return nil
}

// lastNewlineEnd returns the offset just past the last '\n' in the first
// size bytes of r, or 0 when there is none.
func lastNewlineEnd(r io.ReaderAt, size int64) (int64, error) {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	for end := size; end > 0; {
		start := max(end-chunk, 0)
		b := buf[:end-start]
		if _, err := r.ReadAt(b, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// repairGzip checks that path decompresses to its end. When it does not
// (a crash left a member without its trailer, or a partial block), it
// rewrites the file with every complete line that can be read.
func (f *File) repairGzip(path string) error {
	err := readGzipLines(path, nil)
	if err == nil {
		return nil
	}
	f.log.Warn("rewriting a gzip file left unfinished", zap.String("file", path), zap.Error(err))
	tmp, err := os.CreateTemp(f.dir, ".repair-*")
	if err != nil {
		return fmt.Errorf("repair %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o640); err != nil {
		tmp.Close()
		return fmt.Errorf("repair %s: %w", path, err)
	}
	bw := bufio.NewWriter(tmp)
	gz := gzip.NewWriter(bw)
	// The read error is expected here: everything before it is kept.
	_ = readGzipLines(path, func(line []byte) error {
		_, err := gz.Write(line)
		return err
	})
	errs := []error{gz.Close(), bw.Flush(), tmp.Sync(), tmp.Close()}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("repair %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("repair %s: %w", path, err)
	}
	return syncDir(f.dir)
}

// readGzipLines decompresses path (all members) and calls fn, when not
// nil, with each complete line including its newline. It returns the first
// error, including one for a truncated stream or a partial last line.
func readGzipLines(path string, fn func(line []byte) error) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	zr, err := gzip.NewReader(bufio.NewReader(fh))
	if errors.Is(err, io.EOF) {
		return nil // empty file
	}
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(zr, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it whole.
			rest, err2 := br.ReadBytes('\n')
			line, err = append(append([]byte{}, line...), rest...), err2
		}
		if err == nil {
			if fn != nil {
				if err := fn(line); err != nil {
					return err
				}
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				return errors.New("partial last line")
			}
			return nil
		}
		return err
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// pathError names the file in err, unless err already does (the os
// package's *fs.PathError says "open /dir/file: ..." by itself).
func pathError(op, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}
