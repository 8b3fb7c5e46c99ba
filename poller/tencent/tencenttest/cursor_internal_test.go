package tencenttest

import (
	"math"
	"testing"
)

func TestCursorTableEvictsOldest(t *testing.T) {
	var ct cursorTable
	ct.init(DefaultCursorBase)
	first := ct.issue(cursor{group: "g", page: 2})
	var last uint64
	for range maxCursors {
		last = ct.issue(cursor{group: "g", page: 3})
	}
	if _, ok := ct.lookup(first); ok {
		t.Fatal("the oldest cursor survived maxCursors newer ones")
	}
	if c, ok := ct.lookup(last); !ok || c.page != 3 {
		t.Fatalf("newest cursor: %+v, %v", c, ok)
	}
	if len(ct.byID) != maxCursors {
		t.Fatalf("%d cursors kept, want %d", len(ct.byID), maxCursors)
	}
}

func TestCursorTableWrapsAtMaxUint64(t *testing.T) {
	var ct cursorTable
	ct.init(math.MaxUint64 - 1)
	got := []uint64{ct.issue(cursor{page: 1}), ct.issue(cursor{page: 2}), ct.issue(cursor{page: 3})}
	want := []uint64{math.MaxUint64 - 1, math.MaxUint64, math.MaxUint64 - 1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("cursors %v, want %v", got, want)
		}
	}
	// A reused id maps to its latest position, and evicting the older
	// issue of that id must not drop it.
	for range maxCursors - 1 {
		ct.issue(cursor{page: 9})
	}
	if c, ok := ct.lookup(math.MaxUint64); !ok || c.page != 9 {
		t.Fatalf("lookup(max) = %+v, %v", c, ok)
	}
}
