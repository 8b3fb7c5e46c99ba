package diff

import (
	"fmt"
	"testing"

	"github.com/rollcall-dev/rollcall/schema"
)

// benchGroup returns a committed state of n members and a snapshot in which
// churn of them left and churn others joined. The snapshot is complete
// (not Truncated: the detector's worst case, every tracked member is
// compared).
func benchGroup(n, churn int) (*State, schema.Snapshot, Options) {
	o := Options{SDKAppID: app}
	ms := make([]schema.Member, n)
	for i := range ms {
		ms[i] = schema.Member{Account: fmt.Sprintf("user%06d", i), NickName: "nick", Avatar: "https://example.com/a.png", JoinTime: j0 + int64(i)}
	}
	_, prev := Diff(nil, snapAt(t0, ms...), o)
	next := append([]schema.Member(nil), ms[churn:]...)
	for i := range churn {
		next = append(next, schema.Member{Account: fmt.Sprintf("zuser%06d", i), JoinTime: t0.Unix() + int64(i)})
	}
	return prev, snapAt(t1, next...), o
}

// The diff as the detector runs it: Advance on the state it keeps, one
// poll after another (alternating snapshots, so every poll sees the same
// 1% churn). Compare with BenchmarkMapLookupBaseline: one map lookup per
// member.

func BenchmarkDiff1000Churn1pct(b *testing.B) { benchAdvance(b, 1000, 10) }

func BenchmarkDiff10000(b *testing.B) { benchAdvance(b, 10000, 100) }

// BenchmarkDiffPure1000Churn1pct is Diff, which copies the state first
// (tests and tools; not the poll path).
func BenchmarkDiffPure1000Churn1pct(b *testing.B) {
	prev, snap, o := benchGroup(1000, 10)
	b.ReportAllocs()
	for b.Loop() {
		events, _ := Diff(prev, snap, o)
		if len(events) != 20 {
			b.Fatalf("%d events", len(events))
		}
	}
}
