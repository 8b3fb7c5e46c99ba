package diff

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/schema"
)

// FuzzAdvanceMatchesOracle checks the incremental diff against the plain
// merge it replaced (oracleDiff): the same events, ids included, and the
// same next state, for any two snapshots, caps, baselines and confirmed
// departures — through Diff (pure) and through Advance (in place).
func FuzzAdvanceMatchesOracle(f *testing.F) {
	f.Add([]byte{0x01, 0x02, 0x03}, []byte{0x02, 0x03, 0x04}, []byte{0x11}, uint8(0), uint8(0))
	f.Add([]byte{0x01, 0x11, 0x21}, []byte{0x31, 0x01}, []byte{}, uint8(2), uint8(1))
	f.Add([]byte{0x00, 0x10, 0x20, 0x30, 0x40, 0x5f}, []byte{0xf0, 0xe1, 0xd2, 0xc3}, []byte{0x20}, uint8(3), uint8(2))
	f.Add([]byte{0x05, 0x06, 0x07}, []byte{0x05, 0x06, 0x07}, []byte{0x05, 0x07}, uint8(9), uint8(3))
	f.Add([]byte{0x15, 0x26, 0x37}, []byte{0x15, 0x26}, []byte{}, uint8(2), uint8(4))
	f.Fuzz(checkAgainstOracle)
}

func checkAgainstOracle(t *testing.T, a, b, c []byte, capA, mode uint8) {
	t.Helper()
	{
		o := Options{SDKAppID: app}
		// A lister marks a list truncated at its cap (or when the online
		// count says so: mode bit 2 on the second snapshot).
		memberCap := int(capA%8) + 1
		if capA&0x80 != 0 {
			memberCap = 1 << 20
		}
		if mode&1 != 0 {
			o.Baseline = BaselineSilent
		}
		snapA := snapAt(t1, fuzzMembers(a)...)
		snapB := snapAt(t2, fuzzMembers(b)...)
		snapC := snapAt(t2.Add(30*time.Second), fuzzMembers(c)...)
		for _, s := range []*schema.Snapshot{&snapA, &snapB, &snapC} {
			s.Truncated = len(schema.NormalizeMembers(append([]schema.Member(nil), s.Members...))) >= memberCap
		}
		snapB.Truncated = snapB.Truncated || mode&2 != 0
		snapC.Dismissed = mode&4 != 0 && len(c) == 0
		if snapC.Dismissed {
			snapC.Truncated = false
		}
		var departed map[string]bool
		if mode&8 != 0 {
			departed = map[string]bool{}
			for _, m := range fuzzMembers(c) {
				departed[m.Account] = true
			}
		}
		var prevO, prevD, prevA *State
		for k, s := range []schema.Snapshot{snapA, snapB, snapB, snapC, snapC} {
			s.TakenAt = s.TakenAt.Add(time.Duration(k) * time.Second)
			wantE, wantS := oracleDiff(prevO, s, o, departed)
			gotE, gotS := DiffConfirmed(prevD, s, o, departed)
			if !reflect.DeepEqual(gotE, wantE) || !reflect.DeepEqual(gotS, wantS) {
				t.Fatalf("step %d: DiffConfirmed differs from the oracle:\n got %v\n     %+v\nwant %v\n     %+v", k, gotE, gotS, wantE, wantS)
			}
			before := prevA.Clone()
			// After the first step prevA is advance's own output: sorted.
			advE, advS, urgent, cnt := advance(prevA, s, o, departed, k > 0)
			if !reflect.DeepEqual(advE, wantE) || !reflect.DeepEqual(advS, wantS) {
				t.Fatalf("step %d: Advance differs from the oracle:\n got %v\n     %+v\nwant %v\n     %+v", k, advE, advS, wantE, wantS)
			}
			if want := countOf(advS); cnt != want {
				t.Fatalf("step %d: counted %+v on the way, the state has %+v", k, cnt, want)
			}
			if !urgent {
				// Only what a checkpoint may write later changed.
				if len(advE) != 0 || before == nil || !sameAccounts(before, advS) ||
					before.Truncated != advS.Truncated || before.Boundary != advS.Boundary {
					t.Fatalf("step %d: not urgent, but %v / %+v -> %+v", k, advE, before, advS)
				}
			}
			prevO, prevD, prevA = wantS, gotS, advS
		}
	}
}

func sameAccounts(a, b *State) bool {
	if len(a.Members) != len(b.Members) {
		return false
	}
	for i := range a.Members {
		if a.Members[i].Account != b.Members[i].Account || a.Members[i].JoinTime != b.Members[i].JoinTime {
			return false
		}
	}
	return true
}

func TestAdvanceQuietPollAllocatesNothing(t *testing.T) {
	prev, _, o := benchGroup(1000, 0)
	snap := snapAt(t2, schemaMembers(prev)...)
	allocs := testing.AllocsPerRun(20, func() {
		events, next, urgent := Advance(prev, snap, o, nil)
		if len(events) != 0 || urgent || next != prev {
			t.Fatalf("quiet poll: %d events, urgent %v", len(events), urgent)
		}
	})
	if allocs != 0 {
		t.Fatalf("a quiet poll allocates %v times", allocs)
	}
	if !prev.ObservedAt.Equal(t2) || !prev.Members[999].LastSeen.Equal(t2) {
		t.Fatalf("the state was not brought forward: %v %v", prev.ObservedAt, prev.Members[999].LastSeen)
	}
}

func TestAdvanceChurnAllocatesPerBatchNotPerMember(t *testing.T) {
	prev, snap, back, o := churnPair(1000, 10)
	flip := false
	allocs := testing.AllocsPerRun(20, func() {
		s := snap
		if flip {
			s = back
		}
		flip = !flip
		if events, _, _ := Advance(prev, s, o, nil); len(events) != 20 {
			t.Fatalf("%d events", len(events))
		}
	})
	// The new state's member list, the batch and its ids: a constant, at
	// most one allocation per changed member.
	if allocs > 20 {
		t.Fatalf("a poll with 20 changed members allocates %v times", allocs)
	}
}

func schemaMembers(s *State) []schema.Member {
	out := make([]schema.Member, len(s.Members))
	for i, t := range s.Members {
		out[i] = t.Member
	}
	return out
}

// BenchmarkMapLookupBaseline is the floor the diff is measured against: one
// lookup per member in a map[string]int64 keyed by the same accounts.
func BenchmarkMapLookupBaseline(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			prev, snap, _ := benchGroup(n, n/100)
			idx := make(map[string]int64, n)
			for _, t := range prev.Members {
				idx[t.Account] = t.JoinTime
			}
			b.ReportAllocs()
			var sum int64
			for b.Loop() {
				for _, m := range snap.Members {
					sum += idx[m.Account]
				}
			}
			_ = sum
		})
	}
}

// churnPair returns a kept state of n members, a snapshot in which churn
// of them left and churn others joined, and a snapshot that goes back:
// applying them in turn to the kept state repeats the same 1% churn.
func churnPair(n, churn int) (prev *State, snap, back schema.Snapshot, o Options) {
	prev, snap, o = benchGroup(n, churn)
	back = snapAt(t1, schemaMembers(prev)...)
	return prev, snap, back, o
}

func benchAdvance(b *testing.B, n, churn int) {
	prev, snap, back, o := churnPair(n, churn)
	b.ReportAllocs()
	flip := false
	for b.Loop() {
		s := snap
		if flip {
			s = back
		}
		flip = !flip
		if events, _, _, _ := advance(prev, s, o, nil, true); len(events) != 2*churn {
			b.Fatalf("%d events", len(events))
		}
	}
}

func BenchmarkAdvanceQuiet1000(b *testing.B) {
	prev, _, o := benchGroup(1000, 0)
	snap := snapAt(t2, schemaMembers(prev)...)
	b.ReportAllocs()
	for b.Loop() {
		if events, _, _, _ := advance(prev, snap, o, nil, true); len(events) != 0 {
			b.Fatal(len(events))
		}
	}
}

// BenchmarkMemoryPerMember reports the heap a tracked member costs in a
// group's kept state: 100,000 members with 12-byte accounts, 8-byte nick
// names and 40-byte avatar URLs, each string allocated on its own as a
// decoded page gives them. The goal is at most twice the bytes of the
// strings plus 48 B (B/member-goal).
func BenchmarkMemoryPerMember(b *testing.B) {
	const n = 100_000
	const strBytes = 12 + 8 + 40
	var perMember float64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		ms := make([]schema.Member, n)
		for i := range ms {
			ms[i] = schema.Member{
				Account:  strings.Clone(fmt.Sprintf("acct%08d", i)),
				NickName: strings.Clone(fmt.Sprintf("nick%04d", i%10000)),
				Avatar:   strings.Clone(fmt.Sprintf("https://cdn.example.com/avatars/%08d.png", i)),
				JoinTime: j0 + int64(i),
			}
		}
		_, st := Diff(nil, snapAt(t1, ms...), Options{Baseline: BaselineSilent})
		ms = nil
		runtime.GC()
		runtime.ReadMemStats(&after)
		perMember = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(st)
	}
	b.ReportMetric(perMember, "B/member")
	b.ReportMetric(2*strBytes+48, "B/member-goal")
}

// TestAdvanceMatchesOracleRandom runs the fuzz target's comparison over
// seeded random inputs, so every `go test` covers many cases.
func TestAdvanceMatchesOracleRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	bytes := func() []byte {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	for range 3000 {
		a, b, c := bytes(), bytes(), bytes()
		capA, mode := uint8(rng.IntN(256)), uint8(rng.IntN(256))
		checkAgainstOracle(t, a, b, c, capA, mode)
	}
}
