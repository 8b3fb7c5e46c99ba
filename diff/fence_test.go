package diff

import (
	"errors"
	"testing"
)

// TestFenceFollowsWhatWasRead: a write on the revision read succeeds, one on
// an older revision conflicts, and a record found gone (removed behind the
// store's back) starts again at 0 rather than conflicting for ever.
func TestFenceFollowsWhatWasRead(t *testing.T) {
	var f Fence
	exists := true
	read := func() (bool, error) { return exists, nil }
	noop := func() error { return nil }
	rev, err := f.Read("g", read)
	if err != nil || rev != 1 {
		t.Fatalf("Read of a record written before = %d, %v; want 1", rev, err)
	}
	rev2, err := f.Write("g", rev, noop)
	if err != nil || rev2 != 2 {
		t.Fatalf("Write = %d, %v; want 2", rev2, err)
	}
	var ce *ConflictError
	if _, err := f.Write("g", rev, noop); !errors.As(err, &ce) || ce.Current != 2 || ce.Base != 1 {
		t.Fatalf("Write on a stale revision = %v, want a conflict at 2 based on 1", err)
	}
	boom := errors.New("disk")
	if _, err := f.Write("g", rev2, func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("failed write = %v", err)
	}
	if rev3, err := f.Write("g", rev2, noop); err != nil || rev3 != 3 {
		t.Fatalf("Write after a failed one = %d, %v; want 3 (a failed write moves nothing)", rev3, err)
	}
	exists = false
	if rev, err := f.Read("g", read); err != nil || rev != 0 {
		t.Fatalf("Read of a removed record = %d, %v; want 0", rev, err)
	}
	if rev, err := f.Write("g", 0, noop); err != nil || rev != 1 {
		t.Fatalf("Write after the record was removed = %d, %v; want 1", rev, err)
	}
}

// TestFenceRemove: a removal resets the revision to 0, so a write based on
// the revision before it conflicts and a write on 0 starts the record
// anew; a failed removal moves nothing.
func TestFenceRemove(t *testing.T) {
	var f Fence
	noop := func() error { return nil }
	rev, err := f.Write("g", 0, noop)
	if err != nil || rev != 1 {
		t.Fatalf("Write = %d, %v", rev, err)
	}
	boom := errors.New("disk")
	if err := f.Remove("g", func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("failed Remove = %v", err)
	}
	if rev2, err := f.Write("g", rev, noop); err != nil || rev2 != 2 {
		t.Fatalf("Write after a failed Remove = %d, %v; want 2", rev2, err)
	}
	if err := f.Remove("g", noop); err != nil {
		t.Fatal(err)
	}
	var ce *ConflictError
	if _, err := f.Write("g", 2, noop); !errors.As(err, &ce) || ce.Current != 0 {
		t.Fatalf("Write on the revision before Remove = %v, want a conflict at 0", err)
	}
	if rev, err := f.Write("g", 0, noop); err != nil || rev != 1 {
		t.Fatalf("Write on 0 after Remove = %d, %v; want 1", rev, err)
	}
}
