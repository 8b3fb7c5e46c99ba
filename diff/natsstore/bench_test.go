package natsstore

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/sink/nats/natstest"
)

// The baselines are a raw kv.Put / kv.Get of the group's state as plain
// JSON (what a driver without compression, CAS or framing would store),
// on the same server: compare Save and Load to them as ratios.

const benchMembers = 1000

func benchBucket(b *testing.B) *Bucket {
	srv := natstest.Start(b, nil)
	return open(b, testConfig(srv.URL()))
}

func BenchmarkSave(b *testing.B) {
	ctx := context.Background()
	s := benchBucket(b).App(app)
	st := state("bench", benchMembers)
	rev, err := s.Save(ctx, st, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if rev, err = s.Save(ctx, st, rev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawPut(b *testing.B) {
	ctx := context.Background()
	bk := benchBucket(b)
	j, err := json.Marshal(state("bench", benchMembers))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bk.kv.Put(ctx, "raw", j); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	s := benchBucket(b).App(app)
	if _, err := s.Save(ctx, state("bench", benchMembers), 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Load(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawGet(b *testing.B) {
	ctx := context.Background()
	bk := benchBucket(b)
	j, err := json.Marshal(state("bench", benchMembers))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bk.kv.Put(ctx, "raw", j); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		e, err := bk.kv.Get(ctx, "raw")
		if err != nil {
			b.Fatal(err)
		}
		_ = e.Value()
	}
}

// BenchmarkRawGetJSON is BenchmarkRawGet plus decoding the JSON, the
// work Load cannot avoid: Load over it is the driver's own cost
// (decompression, framing, checks).
func BenchmarkRawGetJSON(b *testing.B) {
	ctx := context.Background()
	bk := benchBucket(b)
	j, err := json.Marshal(state("bench", benchMembers))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bk.kv.Put(ctx, "raw", j); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		e, err := bk.kv.Get(ctx, "raw")
		if err != nil {
			b.Fatal(err)
		}
		var st diff.State
		if err := json.Unmarshal(e.Value(), &st); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawPutJSON is BenchmarkRawPut plus encoding the JSON.
func BenchmarkRawPutJSON(b *testing.B) {
	ctx := context.Background()
	bk := benchBucket(b)
	st := state("bench", benchMembers)
	b.ReportAllocs()
	for b.Loop() {
		j, err := json.Marshal(st)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bk.kv.Put(ctx, "raw", j); err != nil {
			b.Fatal(err)
		}
	}
}
