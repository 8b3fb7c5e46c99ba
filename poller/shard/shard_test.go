package shard

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/rollcall-dev/rollcall/schema/config"
)

const app = 1400000000

// ids is a fixed, deterministic set of group ids in the shapes users give
// them: Tencent's generated @TGS# ids and room names.
func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		if i%2 == 0 {
			out[i] = fmt.Sprintf("@TGS#a%08dX", i*7919)
		} else {
			out[i] = fmt.Sprintf("live-room-%d", i)
		}
	}
	return out
}

func TestEveryGroupHasExactlyOneOwner(t *testing.T) {
	groups := ids(2000)
	for count := 1; count <= 7; count++ {
		for _, g := range groups {
			owners := 0
			for i := 0; i < count; i++ {
				s, err := New(count, i)
				if err != nil {
					t.Fatal(err)
				}
				if s.Owns(app, g) {
					owners++
				}
			}
			if owners != 1 {
				t.Fatalf("count %d: group %q has %d owners", count, g, owners)
			}
		}
	}
}

// TestUniform bounds Pearson's chi-square statistic of the owners' counts.
// The input is fixed, so the test cannot flake; the bound (the 0.999
// quantile for count-1 degrees of freedom, rounded up) fails a hash that
// favours an index.
func TestUniform(t *testing.T) {
	groups := ids(30000)
	// 0.999 quantiles of chi-square with df = count-1.
	bound := map[int]float64{2: 10.9, 3: 13.9, 4: 16.3, 5: 18.5, 8: 24.4, 16: 37.7}
	for count, limit := range bound {
		got := make([]int, count)
		for _, g := range groups {
			got[Owner(count, app, g)]++
		}
		want := float64(len(groups)) / float64(count)
		chi2 := 0.0
		for _, n := range got {
			d := float64(n) - want
			chi2 += d * d / want
		}
		if chi2 > limit {
			t.Errorf("count %d: owners %v, chi-square %.1f > %.1f", count, got, chi2, limit)
		}
	}
}

// TestCountChangeMovesOnlyToTheNewIndex: going from n to n+1 shards moves
// about 1/(n+1) of the groups, each to the new index; none moves between
// the old ones. The bound on the moved share is ±5 standard deviations of
// a binomial draw over the fixed 30,000 ids.
func TestCountChangeMovesOnlyToTheNewIndex(t *testing.T) {
	groups := ids(30000)
	for n := 1; n <= 6; n++ {
		moved := 0
		for _, g := range groups {
			before, after := Owner(n, app, g), Owner(n+1, app, g)
			if before == after {
				continue
			}
			moved++
			if after != n {
				t.Fatalf("%d→%d: group %q moved from %d to %d, not to the new index", n, n+1, g, before, after)
			}
		}
		p := 1 / float64(n+1)
		mean := p * float64(len(groups))
		sd := math.Sqrt(mean * (1 - p))
		if d := float64(moved) - mean; d > 5*sd || d < -5*sd {
			t.Errorf("%d→%d: %d of %d groups moved, want %.0f ± %.0f", n, n+1, moved, len(groups), mean, 5*sd)
		}
		if n == 2 {
			t.Logf("2→3: %d of %d groups moved (%.2f%%)", moved, len(groups), 100*float64(moved)/float64(len(groups)))
		}
	}
}

// TestGolden pins the weights and owners: replicas of different builds
// and platforms must agree on them, or a group is polled twice or never.
func TestGolden(t *testing.T) {
	// XXH64 of nothing, seed 0, from the specification: the library is
	// the standard hash, not a variant.
	if h := xxhash.Sum64(nil); h != 0xef46db3751d8e999 {
		t.Fatalf("xxhash of nothing = %#x", h)
	}
	for _, c := range []struct {
		app    uint64
		group  string
		index  int
		weight uint64
		owner3 int
	}{
		{1400000000, "@TGS#aFirstGroup", 0, 0x66c6de20756c95ca, 2},
		{1400000000, "@TGS#aFirstGroup", 1, 0x6deff2501861cfc2, 2},
		{1400000000, "@TGS#aFirstGroup", 2, 0xd9e7434ba3ba502b, 2},
		{1400000000, "live-room-2", 0, 0x1c0834dcb107caae, 1},
		{1400000001, "live-room-2", 0, 0xd8da7adcdaa458df, 1},
		{1400000000, "room-1", 1, 0xb9775396b74b5f41, 0},
	} {
		if w := Weight(c.app, c.group, c.index); w != c.weight {
			t.Errorf("Weight(%d, %q, %d) = %#x, want %#x", c.app, c.group, c.index, w, c.weight)
		}
		if o := Owner(3, c.app, c.group); o != c.owner3 {
			t.Errorf("Owner(3, %d, %q) = %d, want %d", c.app, c.group, o, c.owner3)
		}
	}
}

// TestAppIsPartOfTheKey: equal group ids of two apps are placed apart,
// so many apps' groups spread over the shards independently.
func TestAppIsPartOfTheKey(t *testing.T) {
	differ := 0
	for _, g := range ids(1000) {
		if Owner(4, 1400000000, g) != Owner(4, 1400000001, g) {
			differ++
		}
	}
	// Independent placements differ 3 times in 4.
	if differ < 650 || differ > 850 {
		t.Errorf("%d of 1000 equal ids land on different shards in two apps, want ~750", differ)
	}
}

func TestLongGroupIDs(t *testing.T) {
	long := strings.Repeat("x", 200) // beyond the stack buffer
	if Owner(5, app, long) != Owner(5, app, long) || Weight(app, long, 3) != Weight(app, long, 3) {
		t.Error("a long id is not placed deterministically")
	}
	if Weight(app, long, 3) == Weight(app, long[:199], 3) {
		t.Error("the id's last byte is not hashed")
	}
}

func TestConfig(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.Count != 1 || c.Validate() != nil {
		t.Fatalf("defaults: %+v, %v", c, c.Validate())
	}
	s, err := c.Resolve("anything")
	if err != nil || s != (Shard{Count: 1, Index: 0}) {
		t.Errorf("default Resolve = %v, %v", s, err)
	}
	if !s.Owns(app, "any") {
		t.Error("a single shard does not own everything")
	}

	for _, tc := range []struct {
		c    Config
		path string
	}{
		{Config{Count: -1}, "count"},
		{Config{Count: MaxCount + 1}, "count"},
		{Config{Count: 3, Index: 3}, "index"},
		{Config{Count: 3, Index: -1}, "index"},
		{Config{Count: 3, Index: 1, IndexFromHostname: true}, "index"},
	} {
		var fe *config.FieldError
		if err := tc.c.Validate(); !errors.As(err, &fe) || fe.Path != tc.path {
			t.Errorf("%+v: %v, want an error at %s", tc.c, err, tc.path)
		}
	}
	if err := (Config{Count: 3, Index: 2}).Validate(); err != nil {
		t.Error(err)
	}
	if s, err := (Config{Count: 3, Index: 2}).Resolve("rollcall-0"); err != nil || s.Index != 2 {
		t.Errorf("an explicit index ignores the hostname: %v, %v", s, err)
	}
}

func TestResolveHostname(t *testing.T) {
	c := Config{Count: 3, IndexFromHostname: true}
	for host, want := range map[string]int{"rollcall-0": 0, "rollcall-2": 2, "my-app-rollcall-1": 1, "-1": 1} {
		s, err := c.Resolve(host)
		if err != nil || s.Index != want || s.Count != 3 {
			t.Errorf("Resolve(%q) = %v, %v; want index %d", host, s, err, want)
		}
	}
	for _, host := range []string{"rollcall", "rollcall-", "rollcall-3", "rollcall-12", "rollcall-+1", "rollcall-1a", "", "rollcall-99999999999999999999"} {
		_, err := c.Resolve(host)
		var fe *config.FieldError
		if !errors.As(err, &fe) || fe.Path != "index_from_hostname" || !strings.Contains(fe.Msg, fmt.Sprintf("%q", host)) {
			t.Errorf("Resolve(%q) = %v; want an error at index_from_hostname naming the hostname", host, err)
		}
	}
}

func TestNew(t *testing.T) {
	for _, c := range [][2]int{{0, 0}, {2, 2}, {2, -1}, {MaxCount + 1, 0}} {
		if _, err := New(c[0], c[1]); err == nil {
			t.Errorf("New(%d, %d) accepted", c[0], c[1])
		}
	}
	if s, _ := New(3, 1); s.String() != "1/3" {
		t.Errorf("String = %q", s)
	}
}

var sink bool

// BenchmarkOwns is one replica's ownership test of a group, 3 shards;
// BenchmarkOwnsBaseline hashes the same id once, the floor of any
// hash-based placement.
func BenchmarkOwns(b *testing.B) {
	for _, count := range []int{3, 10} {
		b.Run(fmt.Sprintf("count=%d", count), func(b *testing.B) {
			s, _ := New(count, 1)
			groups := ids(1024)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				sink = s.Owns(app, groups[i&1023])
			}
		})
	}
}

func BenchmarkOwnsBaseline(b *testing.B) {
	groups := ids(1024)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sink = xxhash.Sum64String(groups[i&1023])&1 == 0
	}
}
