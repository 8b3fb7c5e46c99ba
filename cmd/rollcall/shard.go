package main

import (
	"os"

	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/poller/shard"
	"github.com/rollcall-dev/rollcall/poller/tencent"
)

// ShardConfig is the `shard` section: which part of the configured groups
// this replica polls, when several replicas share one state.
type ShardConfig struct {
	shard.Config `yaml:",inline"` // count, index, index_from_hostname
	// resolved is this replica's shard, set by validate (from index or the
	// hostname).
	resolved shard.Shard
}

// sharedStateDriver is the state driver replicas can share (the only one
// that fences their writes); shard.count > 1 needs it.
const sharedStateDriver = "nats"

// hostname is os.Hostname; a test hook.
var hostname = os.Hostname

// validateShard checks the shard section against the state driver and the
// rate budget, and resolves this replica's index. It runs after the
// tencent and state sections are validated.
func (c *Config) validateShard() error {
	if err := c.Shard.Validate(); err != nil {
		return fieldErr("shard", err)
	}
	if c.Shard.Count > 1 && c.State.Driver != sharedStateDriver {
		return cfgErr("shard.count", "must be 1 with state.driver %s: replicas must share one state (state.driver %s)", c.State.Driver, sharedStateDriver)
	}
	var host string
	if c.Shard.IndexFromHostname {
		h, err := hostname()
		if err != nil {
			return cfgErr("shard.index_from_hostname", "reading the hostname: %v", err)
		}
		host = h
	}
	s, err := c.Shard.Resolve(host)
	if err != nil {
		return fieldErr("shard", err)
	}
	c.Shard.resolved = s
	if r := c.rateLimit(); r < tencent.MinRateLimit {
		return cfgErr("shard.count", "tencent.rate_limit %g split over %d replicas leaves %g calls/s each, below %g",
			c.Tencent.RateLimit, s.Count, r, tencent.MinRateLimit)
	}
	return nil
}

// shard is this replica's shard; a Config not made by ParseConfig (a
// test's) is one shard of one.
func (c *Config) shard() shard.Shard {
	if c.Shard.resolved.Count == 0 {
		return shard.Shard{Count: 1}
	}
	return c.Shard.resolved
}

// rateLimit is this replica's share of the app's budget: the replicas of
// an app spend tencent.rate_limit together, each an equal part, since
// rendezvous hashing gives each about as many groups.
func (c *Config) rateLimit() float64 {
	return c.Tencent.RateLimit / float64(c.shard().Count)
}

// ownedGroups keeps the ids this replica polls, in order.
func (c *Config) ownedGroups(ids []string) []string {
	s := c.shard()
	if s.Count == 1 {
		return ids
	}
	var out []string
	for _, id := range ids {
		if s.Owns(c.Tencent.SDKAppID, id) {
			out = append(out, id)
		}
	}
	return out
}

// logShard states, once at the start of a sharded replica, its part: the
// index, the count, the groups it owns and the rate it spends.
func logShard(logger *zap.Logger, cfg *Config) {
	s := cfg.shard()
	if s.Count == 1 {
		return
	}
	logger.Info("polling this replica's shard of the groups",
		zap.Int("shard_index", s.Index), zap.Int("shard_count", s.Count),
		zap.Int("groups_owned", len(cfg.ownedGroups(cfg.Groups.IDs))), zap.Int("groups_configured", len(cfg.Groups.IDs)),
		zap.Float64("rate_limit", cfg.rateLimit()), zap.Float64("app_rate_limit", cfg.Tencent.RateLimit))
}
