package sink

import (
	"time"

	"github.com/rollcall-dev/rollcall/schema/config"
)

// DefaultOnceMaxElapsed bounds a failing sink's retries in a one-shot run
// (retry.max_elapsed_time); the daemon retries without limit.
const DefaultOnceMaxElapsed = 30 * time.Second

// RetryConfig is a sink's `retry` block.
type RetryConfig struct {
	InitialInterval time.Duration `yaml:"initial_interval"`
	MaxInterval     time.Duration `yaml:"max_interval"`
	// MaxElapsedTime bounds retries in `run --once` only; the daemon
	// retries a failing sink for as long as it runs.
	MaxElapsedTime time.Duration `yaml:"max_elapsed_time"`
}

// SetDefaults fills zero fields.
func (r *RetryConfig) SetDefaults() {
	if r.InitialInterval == 0 {
		r.InitialInterval = DefaultInitialInterval
	}
	if r.MaxInterval == 0 {
		r.MaxInterval = DefaultMaxInterval
	}
	if r.MaxElapsedTime == 0 {
		r.MaxElapsedTime = DefaultOnceMaxElapsed
	}
}

// Validate checks r after SetDefaults; the error's path is relative to
// the sink's block.
func (r RetryConfig) Validate() error {
	if r.InitialInterval < 0 || r.MaxInterval < r.InitialInterval || r.MaxElapsedTime < 0 {
		return config.Errorf("retry", "need 0 < initial_interval <= max_interval and max_elapsed_time >= 0")
	}
	return nil
}

// Options is the Fanout's retry policy for the sink; once keeps the
// elapsed-time bound, which only a one-shot run wants.
func (r RetryConfig) Options(once bool) RetryOptions {
	o := RetryOptions{InitialInterval: r.InitialInterval, MaxInterval: r.MaxInterval}
	if once {
		o.MaxElapsedTime = r.MaxElapsedTime
	}
	return o
}

// StdoutConfig is a stdout sink's block: it has no keys of its own.
type StdoutConfig struct{}

// FileConfig is a file sink's block.
type FileConfig struct {
	// Path is the directory events are written under (FileOptions.Dir).
	Path string `yaml:"path"`
	Gzip bool   `yaml:"gzip"`
}

// Validate checks c; the error's path is relative to the sink's block.
func (c FileConfig) Validate() error {
	if c.Path == "" {
		return config.Errorf("path", "required: the directory events are written under")
	}
	return nil
}

// Options is the file sink's configuration, without its clock and logger.
func (c FileConfig) Options() FileOptions { return FileOptions{Dir: c.Path, Gzip: c.Gzip} }
