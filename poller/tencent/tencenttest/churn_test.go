package tencenttest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/schema"
)

// churned runs steps Steps of a seeded churn on a fresh server and returns
// the membership after each step.
func churned(t *testing.T, seed int64, steps int, o tencenttest.ChurnOptions) [][]schema.Member {
	t.Helper()
	s, clk := start(t, tencenttest.Options{})
	s.AddGroup("g1", members(20)...)
	s.AddGroup("g2", members(5)...)
	o.Seed = seed
	c := s.NewChurner(o)
	var out [][]schema.Member
	for range steps {
		clk.Add(time.Second)
		c.Step()
		out = append(out, append(s.Members("g1"), s.Members("g2")...))
	}
	return out
}

func TestChurnIsDeterministic(t *testing.T) {
	o := tencenttest.ChurnOptions{JoinsPerTick: 2, LeavesPerTick: 2, RejoinProbability: 0.3}
	a := churned(t, 7, 30, o)
	b := churned(t, 7, 30, o)
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("step %d differs with the same seed:\n%v\n%v", i+1, a[i], b[i])
		}
	}
	c := churned(t, 8, 30, o)
	if slices.EqualFunc(a, c, slices.Equal) {
		t.Fatal("seeds 7 and 8 gave the same churn")
	}
	// Membership changed at every step (2 leaves and 2 joins per group).
	for i := 1; i < len(a); i++ {
		if slices.Equal(a[i-1], a[i]) {
			t.Fatalf("step %d changed nothing", i+1)
		}
	}
}

func TestChurnCounts(t *testing.T) {
	s, clk := start(t, tencenttest.Options{})
	s.AddGroup("g1", members(10)...)
	s.AddGroup("other", members(3)...)
	c := s.NewChurner(tencenttest.ChurnOptions{Groups: []string{"g1"}, JoinsPerTick: 3, LeavesPerTick: 1, Seed: 1})
	clk.Add(time.Minute)
	c.Step()
	ms := s.Members("g1")
	if len(ms) != 12 {
		t.Fatalf("%d members after 1 leave and 3 joins on 10, want 12", len(ms))
	}
	joined := 0
	for _, m := range ms {
		if m.JoinTime == clk.Now().Unix() {
			joined++
			if err := validAccount(m.Account); err != "" || m.NickName == "" || m.Avatar == "" {
				t.Fatalf("new member %+v: %s", m, err)
			}
		}
	}
	if joined != 3 {
		t.Fatalf("%d members joined now, want 3", joined)
	}
	if n := len(s.Members("other")); n != 3 {
		t.Fatalf("a group not listed was churned: %d members", n)
	}
}

func TestChurnRejoins(t *testing.T) {
	s, clk := start(t, tencenttest.Options{})
	s.AddGroup("g1", members(10)...)
	c := s.NewChurner(tencenttest.ChurnOptions{JoinsPerTick: 1, LeavesPerTick: 1, RejoinProbability: 1, Seed: 3})
	original := map[string]bool{}
	for _, m := range members(10) {
		original[m.Account] = true
	}
	for range 20 {
		clk.Add(time.Second)
		c.Step()
	}
	// With RejoinProbability 1 nobody new ever arrives: every join is a
	// returning member, with a fresh JoinTime.
	ms := s.Members("g1")
	rejoined := 0
	for _, m := range ms {
		if !original[m.Account] {
			t.Fatalf("new account %s with RejoinProbability 1", m.Account)
		}
		if m.JoinTime > t0.Unix() {
			rejoined++
		}
	}
	if len(ms) != 10 || rejoined == 0 {
		t.Fatalf("%d members, %d rejoined", len(ms), rejoined)
	}
}

func TestChurnSkipsDismissedGroups(t *testing.T) {
	s, _ := start(t, tencenttest.Options{})
	s.AddGroup("g1", members(3)...)
	s.Dismiss("gone")
	c := s.NewChurner(tencenttest.ChurnOptions{Groups: []string{"g1", "gone"}, Seed: 1})
	c.Step()
	if ms := s.Members("gone"); ms != nil {
		t.Fatalf("dismissed group got members: %v", ms)
	}
	if r := getMembers(t, s, "gone", 0); r.code() != 10010 {
		t.Fatalf("ErrorCode %d, want 10010", r.code())
	}
}

func TestChurnRunsUntilCancelled(t *testing.T) {
	s, _ := start(t, tencenttest.Options{})
	s.AddGroup("g1", members(5)...)
	before := s.Members("g1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Churn(ctx, tencenttest.ChurnOptions{Interval: time.Millisecond, Seed: 1})
	}()
	// Wait, without a time assertion, until a tick has changed something.
	deadline := time.After(20 * time.Second)
	for slices.Equal(before, s.Members("g1")) {
		select {
		case <-deadline:
			t.Fatal("Churn changed nothing")
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	<-done // goleak checks nothing else was left running
}

func validAccount(a string) string {
	if len(a) == 0 || len(a) > 32 {
		return "length"
	}
	for _, c := range a {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return "character " + string(c)
		}
	}
	return ""
}
