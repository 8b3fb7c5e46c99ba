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
	// MaxElapsedTime bounds how long a sink may keep failing: counted from
	// the first failure of its current streak (not per batch), so a run
	// with many groups waiting on one down sink still gives up after about
	// this long, each later batch getting one more attempt. 0 retries until
	// the sink succeeds or the context ends, which is what a daemon wants
	// (the detector must not move on before the events are out). A
	// one-shot run sets a bound so it terminates.
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
// safe for concurrent use, so every retry loop gets its own. The elapsed
// time is not its business: see budgetBackOff.
func (o RetryOptions) newBackOff() *backoff.ExponentialBackOff {
	o = o.withDefaults()
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(o.InitialInterval),
		backoff.WithMaxInterval(o.MaxInterval),
		backoff.WithMaxElapsedTime(0),
	)
}

// budgetBackOff stops when the sink's failure budget is spent, and
// shortens the last wait so the final attempt lands on the deadline rather
// than giving up one whole interval early. deadline returns the end of the
// budget, zero for none.
type budgetBackOff struct {
	backoff.BackOff
	deadline func() time.Time
}

func (b *budgetBackOff) NextBackOff() time.Duration {
	d := b.BackOff.NextBackOff()
	dl := b.deadline()
	if d == backoff.Stop || dl.IsZero() {
		return d
	}
	left := time.Until(dl)
	if left <= 0 {
		return backoff.Stop
	}
	return min(d, left)
}
