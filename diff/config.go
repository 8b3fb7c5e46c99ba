package diff

import (
	"time"

	"github.com/rollcall-dev/rollcall/schema/config"
)

// BaselineConfig is what the `poll` section says about a group's first
// snapshot. Baseline stays a plain string, as it appears in logs.
type BaselineConfig struct {
	Baseline string `yaml:"baseline"`
}

// SetDefaults fills zero fields.
func (c *BaselineConfig) SetDefaults() {
	if c.Baseline == "" {
		c.Baseline = string(BaselineEmit)
	}
}

// Validate checks c after SetDefaults; paths are relative to the section.
func (c BaselineConfig) Validate() error {
	switch BaselineMode(c.Baseline) {
	case BaselineEmit, BaselineSilent:
		return nil
	}
	return config.Errorf("baseline", "must be emit or silent, got %q", c.Baseline)
}

// DefaultCheckpointInterval is state.checkpoint_interval's default.
const DefaultCheckpointInterval = time.Minute

// CheckpointConfig is what the `state` section says about writing state
// that polls change without events (see DetectorOptions.CheckpointInterval).
// A pointer, since 0 (every poll) differs from unset.
type CheckpointConfig struct {
	CheckpointInterval *time.Duration `yaml:"checkpoint_interval"`
}

// SetDefaults fills zero fields.
func (c *CheckpointConfig) SetDefaults() {
	if c.CheckpointInterval == nil {
		d := DefaultCheckpointInterval
		c.CheckpointInterval = &d
	}
}

// Validate checks c after SetDefaults; paths are relative to the section.
func (c CheckpointConfig) Validate() error {
	if d := c.Interval(); d < 0 {
		return config.Errorf("checkpoint_interval", "must not be negative (0 writes every poll), got %s", d)
	}
	return nil
}

// Interval is the configured interval, or the default when unset.
func (c CheckpointConfig) Interval() time.Duration {
	if c.CheckpointInterval == nil {
		return DefaultCheckpointInterval
	}
	return *c.CheckpointInterval
}
