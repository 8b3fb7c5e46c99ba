package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/oklog/run"

	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/diff/filestore"
	"github.com/rollcall-dev/rollcall/diff/natsstore"
	"github.com/rollcall-dev/rollcall/schema/config"
)

// DriverNATS is the state driver that keeps every group in a JetStream
// KV bucket, shared and fenced between replicas.
const DriverNATS = "nats"

func (s *StateConfig) setDefaults() {
	if s.Driver == DriverNATS {
		s.NATS.SetDefaults()
	} else {
		s.Config.SetDefaults()
	}
	s.CheckpointConfig.SetDefaults()
}

// validate checks the keys of the chosen driver and refuses those of the
// other: a nats key under a file driver is a mistake to name, not to
// ignore.
func (s *StateConfig) validate() error {
	if err := s.CheckpointConfig.Validate(); err != nil {
		return err
	}
	switch s.Driver {
	case DriverNATS:
		if s.Path != "" {
			return config.Errorf("path", "is a key of the file driver; state.driver is %s", DriverNATS)
		}
		return s.NATS.Validate()
	case filestore.DriverFile, filestore.DriverMemory:
		if k := setKey(s.NATS); k != "" {
			return config.Errorf(k, "is a key of the %s driver; state.driver is %s", DriverNATS, s.Driver)
		}
		return s.Config.Validate()
	}
	return config.Errorf("driver", "must be file, memory or nats, got %q", s.Driver)
}

// setKey is the YAML key of the first field of v that is set, or "".
func setKey(v any) string {
	rv := reflect.ValueOf(v)
	for i := 0; i < rv.NumField(); i++ {
		if !rv.Field(i).IsZero() {
			name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("yaml"), ",")
			return name
		}
	}
	return ""
}

// stateStore is what every configured store driver offers.
type stateStore interface {
	diff.Store
	diff.Lister
	io.Closer
}

// bucketStore is one app's view of the state bucket that closes the
// bucket with it.
type bucketStore struct {
	*natsstore.Store
	bucket *natsstore.Bucket
}

func (b bucketStore) Close() error { return b.bucket.Close() }

// openStore opens the configured store. ctx bounds a nats driver's
// connection; its errors wrap natsstore.ErrUnreachable when no server
// answered, natsstore.ErrNoBucket when the bucket is missing.
func openStore(ctx context.Context, cfg *Config, logger *zap.Logger) (stateStore, error) {
	if cfg.State.Driver == DriverNATS {
		b, err := natsstore.Open(ctx, cfg.State.NATS, logger)
		if err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
		return bucketStore{Store: b.App(cfg.Tencent.SDKAppID), bucket: b}, nil
	}
	st, err := cfg.State.Open(logger)
	if err != nil {
		return nil, err
	}
	return st.(stateStore), nil // both drivers list and close
}

// unreachable reports whether openStore failed only because no server
// answered: the daemon waits for one instead of exiting.
func unreachable(err error) bool { return errors.Is(err, natsstore.ErrUnreachable) }

// chunkCollectEvery is how often a daemon on the nats driver collects
// what interrupted and superseded writes of chunked groups left in the
// bucket; it reads every key, so rarely.
const chunkCollectEvery = time.Hour

// addStoreUpkeep adds, for the nats driver, the bucket's periodic chunk
// collection. It returns when g interrupts it.
func (p *pipeline) addStoreUpkeep(ctx context.Context, g *run.Group) {
	bs, ok := p.store.Unwrap().(bucketStore)
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	g.Add(func() error {
		bs.bucket.CollectChunksEvery(ctx, chunkCollectEvery)
		return nil
	}, func(error) { cancel() })
}
