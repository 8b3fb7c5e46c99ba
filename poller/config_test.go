package poller

import (
	"context"
	"errors"
	"testing"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/config"
)

// TestNewAppliesConfigDefaults: the scheduler and the configuration
// file default poll.interval and poll.concurrency alike.
func TestNewAppliesConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	nop := HandlerFunc(func(context.Context, schema.Snapshot) error { return nil })
	s, err := New(noLister{}, nop, Options{SDKAppID: 1})
	if err != nil {
		t.Fatal(err)
	}
	if s.o.Interval != c.Interval || cap(s.sem) != c.Concurrency {
		t.Errorf("New: interval %s concurrency %d, Config defaults %s %d", s.o.Interval, cap(s.sem), c.Interval, c.Concurrency)
	}
	c.Interval = MinInterval / 2
	var fe *config.FieldError
	if err := c.Validate(); !errors.As(err, &fe) || fe.Path != "interval" {
		t.Errorf("short interval: %v", err)
	}
}

type noLister struct{}

func (noLister) List(context.Context, string) (schema.Snapshot, error) { return schema.Snapshot{}, nil }

func (noLister) Scheduled([]string) {}
