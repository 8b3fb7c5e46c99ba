package poller

import (
	"time"

	"github.com/rollcall-dev/rollcall/schema/config"
)

// MinInterval is the shortest poll.interval the configuration accepts.
const MinInterval = time.Second

// Config is what the `poll` section says about scheduling. New applies
// the same defaults to the matching Options fields.
type Config struct {
	// Interval: each group is polled once per interval.
	Interval time.Duration `yaml:"interval"`
	// Concurrency bounds how many listings run at once.
	Concurrency int `yaml:"concurrency"`
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
}

// Validate checks c after SetDefaults; paths are relative to the section.
func (c Config) Validate() error {
	if c.Interval < MinInterval {
		return config.Errorf("interval", "must be at least %s (got %s); the API's list is cached for 10-40s anyway", MinInterval, c.Interval)
	}
	if c.Concurrency < 1 {
		return config.Errorf("concurrency", "must be positive")
	}
	return nil
}
