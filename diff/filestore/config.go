package filestore

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/schema/config"
)

// State drivers.
const (
	DriverFile   = "file"
	DriverMemory = "memory"
)

// DefaultPath is the file driver's directory when none is configured.
const DefaultPath = "state"

// Config is the `state` section: which store keeps the groups' state.
type Config struct {
	Driver string `yaml:"driver"`
	Path   string `yaml:"path"`
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.Driver == "" {
		c.Driver = DriverFile
	}
	if c.Driver == DriverFile && c.Path == "" {
		c.Path = DefaultPath
	}
}

// Validate checks c after SetDefaults; paths are relative to the section.
func (c Config) Validate() error {
	switch c.Driver {
	case DriverFile, DriverMemory:
		return nil
	}
	return config.Errorf("driver", "must be file or memory, got %q", c.Driver)
}

// Open opens the configured store: a memory store, or a Store at Path.
func (c Config) Open(logger *zap.Logger) (diff.Store, error) {
	if c.Driver == DriverMemory {
		return diff.NewMemoryStore(), nil
	}
	st, err := Open(c.Path, logger)
	if err != nil {
		return nil, fmt.Errorf("state.path: %w", err)
	}
	return st, nil
}
