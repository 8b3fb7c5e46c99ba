package tencenttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rollcall-dev/rollcall/schema"
)

// maxLeftPool bounds the per-group pool of members who left and may rejoin.
const maxLeftPool = 1000

// ChurnOptions configures Churn and NewChurner.
type ChurnOptions struct {
	// Groups to churn; empty means every group that exists at each tick.
	Groups []string
	// Interval between ticks; default 1s.
	Interval time.Duration
	// JoinsPerTick and LeavesPerTick are per group and tick. When both are
	// 0 each defaults to 1.
	JoinsPerTick, LeavesPerTick int
	// RejoinProbability is the chance that a join brings back a member who
	// left earlier (with a new JoinTime) instead of a new account.
	RejoinProbability float64
	// Seed makes the sequence of changes reproducible.
	Seed int64
	// Now gives join times; default the server's clock.
	Now func() time.Time
}

// Churner changes a server's membership at random, reproducibly for a
// given seed and sequence of Steps. It is not safe for concurrent use.
type Churner struct {
	s    *Server
	o    ChurnOptions
	rng  *rand.Rand
	next int
	left map[string][]schema.Member
}

// NewChurner returns a Churner for s; call Step to make one tick of changes.
func (s *Server) NewChurner(o ChurnOptions) *Churner {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.JoinsPerTick == 0 && o.LeavesPerTick == 0 {
		o.JoinsPerTick, o.LeavesPerTick = 1, 1
	}
	if o.Now == nil {
		o.Now = s.opts.Now
	}
	seed := uint64(o.Seed)
	return &Churner{
		s:    s,
		o:    o,
		rng:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		left: make(map[string][]schema.Member),
	}
}

// Churn makes random joins and leaves every Interval until ctx ends, then
// returns.
func (s *Server) Churn(ctx context.Context, o ChurnOptions) {
	c := s.NewChurner(o)
	t := time.NewTicker(c.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Step()
		}
	}
}

// Step makes one tick of changes: in each group, LeavesPerTick random
// members leave, then JoinsPerTick members join, each either a returning
// member (with RejoinProbability) or a new account. Dismissed groups are
// skipped.
func (c *Churner) Step() {
	groups := c.o.Groups
	if len(groups) == 0 {
		groups = c.s.Groups()
	}
	now := c.o.Now().Unix()
	for _, gid := range groups {
		c.step(gid, now)
	}
}

func (c *Churner) step(gid string, now int64) {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groupLocked(gid)
	if g.dismissed {
		return
	}
	// Sorted so the picks depend only on the seed, not on map order.
	accounts := sortedAccounts(g)
	for range c.o.LeavesPerTick {
		if len(accounts) == 0 {
			break
		}
		i := c.rng.IntN(len(accounts))
		a := accounts[i]
		accounts = append(accounts[:i], accounts[i+1:]...)
		pool := append(c.left[gid], g.members[a].m)
		if len(pool) > maxLeftPool {
			pool = pool[len(pool)-maxLeftPool:]
		}
		c.left[gid] = pool
		delete(g.members, a)
	}
	for range c.o.JoinsPerTick {
		var m schema.Member
		if pool := c.left[gid]; len(pool) > 0 && c.rng.Float64() < c.o.RejoinProbability {
			i := c.rng.IntN(len(pool))
			m = pool[i]
			c.left[gid] = append(pool[:i:i], pool[i+1:]...)
		} else {
			m = c.newMember(g)
		}
		if g.members[m.Account] != nil {
			continue // came back by other means meanwhile
		}
		m.JoinTime = now
		g.members[m.Account] = &entry{m: m}
	}
}

func (c *Churner) newMember(g *group) schema.Member {
	for {
		c.next++
		a := fmt.Sprintf("user_%07d", c.next)
		if g.members[a] == nil {
			return schema.Member{
				Account:  a,
				NickName: fmt.Sprintf("User %d", c.next),
				Avatar:   fmt.Sprintf("https://avatar.example.com/%s.png", a),
			}
		}
	}
}
