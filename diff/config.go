package diff

import "github.com/rollcall-dev/rollcall/schema/config"

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
