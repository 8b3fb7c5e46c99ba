package sink

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Default retry intervals, applied to zero fields of RetryOptions.
const (
	DefaultInitialInterval = 500 * time.Millisecond
	DefaultMaxInterval     = 30 * time.Second
)

// RetryOptions configures how the Fanout retries a failing sink: exponential
// backoff with jitter, from InitialInterval up to MaxInterval between
// attempts.
type RetryOptions struct {
	// InitialInterval is the wait after the first failure; 0 means
	// DefaultInitialInterval.
	InitialInterval time.Duration `yaml:"initial_interval"`
	// MaxInterval caps the wait between attempts; 0 means
	// DefaultMaxInterval.
	MaxInterval time.Duration `yaml:"max_interval"`
	// MaxElapsedTime bounds the retries of one Publish call; 0 retries
	// until the sink succeeds or the context ends, which is what a daemon
	// wants (the detector must not move on before the events are out).
	// A one-shot run sets a bound so it terminates.
	MaxElapsedTime time.Duration `yaml:"max_elapsed_time"`
}

func (o RetryOptions) withDefaults() RetryOptions {
	if o.InitialInterval <= 0 {
		o.InitialInterval = DefaultInitialInterval
	}
	if o.MaxInterval <= 0 {
		o.MaxInterval = DefaultMaxInterval
	}
	if o.MaxInterval < o.InitialInterval {
		o.MaxInterval = o.InitialInterval
	}
	if o.MaxElapsedTime < 0 {
		o.MaxElapsedTime = 0
	}
	return o
}

// newBackOff returns a fresh policy: ExponentialBackOff is stateful and not
// safe for concurrent use, so every retry loop gets its own.
func (o RetryOptions) newBackOff() *backoff.ExponentialBackOff {
	o = o.withDefaults()
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(o.InitialInterval),
		backoff.WithMaxInterval(o.MaxInterval),
		backoff.WithMaxElapsedTime(o.MaxElapsedTime),
	)
}
