package sinktest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/schematest"
	"github.com/rollcall-dev/rollcall/sink"
)

// Harness describes a sink under test for Run.
//
// Run's subtests run one after another; each calls New once, and Read and
// Outage then refer to the destination of that latest New.
type Harness struct {
	// New builds a fresh sink connected to a fresh, empty destination the
	// harness owns (a new topic, stream, directory...). The suite closes
	// the sink unless the test did.
	New func(t *testing.T) sink.Sink
	// Read returns what the destination holds, in arrival order. It is
	// called only after Publish returned nil or after Close, so everything
	// acknowledged must be visible without waiting for more.
	Read func(t *testing.T) []Received
	// Outage, when set, lets the suite take the destination down and bring
	// it back on the same address.
	Outage *Outage
	// Dedup is true when the destination itself drops a re-published
	// duplicate (JetStream with the event id as message id).
	Dedup bool
	// CheckMessage, when set, asserts sink-specific wire details (key,
	// subject, headers) of every received message against the event that
	// was sent.
	CheckMessage func(t *testing.T, ev schema.Event, r Received)
}

// Outage stops and restarts a harness's destination.
type Outage struct {
	// Stop makes the destination unreachable.
	Stop func(t *testing.T)
	// Start brings it back on the same address, with what it held before.
	Start func(t *testing.T)
}

// Received is one message as the destination stores it.
type Received struct {
	// Event is the decoded event.
	Event schema.Event
	// Raw is the message value as stored: a structured-mode CloudEvent.
	Raw []byte
	// Key, Subject and Headers are the transport's, where it has them.
	Key     string
	Subject string
	Headers map[string]string
}

// Groups are the group ids Batch spreads events over.
var Groups = []string{"@TGS#aRoomA", "@TGS#aRoomB", "@TGS#aRoomC"}

// SDKAppID is the app id of the events Batch builds.
const SDKAppID = 1400000000

var baseTime = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

// Batch builds perGroup events for each of Groups, interleaved by group as
// a detector polling them in turn would emit them. Events of different
// first values have different ids; the same arguments give the same
// events.
func Batch(first, perGroup int) []schema.Event {
	out := make([]schema.Event, 0, perGroup*len(Groups))
	for i := first; i < first+perGroup; i++ {
		for _, g := range Groups {
			m := schema.Member{
				Account:  fmt.Sprintf("user-%06d", i),
				NickName: fmt.Sprintf("User %d", i),
				Avatar:   "https://example.com/avatar.png",
				JoinTime: baseTime.Unix() - int64(i),
			}
			observed := baseTime.Add(time.Duration(i) * time.Second)
			prev := observed.Add(-10 * time.Second)
			if i%2 == 0 {
				out = append(out, schema.MemberJoined(SDKAppID, g, m, schema.ReasonJoined, observed, &prev))
			} else {
				out = append(out, schema.MemberLeft(SDKAppID, g, m, schema.ReasonLeft, observed, &prev, prev))
			}
		}
	}
	return out
}

// Run runs the conformance suite against the sink h describes:
//
//   - PublishOrdered: batches for three groups arrive once each, in order
//     per group, unchanged, and valid against the event JSON Schema.
//   - CloseFlushes: what was published before Close is readable after it.
//   - ContextCancelled: Publish with a cancelled context fails promptly
//     with an error wrapping context.Canceled; a context cancelled during
//     Publish makes it return; the sink keeps working afterwards.
//   - Outage (when h.Outage is set): Publish fails while the destination
//     is down, and a Fanout retrying it delivers the batch once it is back.
//   - Duplicates: a batch published twice arrives twice, in order, or once
//     when h.Dedup.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil || h.Read == nil {
		t.Fatal("sinktest: Harness needs New and Read")
	}
	t.Run("PublishOrdered", func(t *testing.T) { testPublishOrdered(t, h) })
	t.Run("CloseFlushes", func(t *testing.T) { testCloseFlushes(t, h) })
	t.Run("ContextCancelled", func(t *testing.T) { testContextCancelled(t, h) })
	t.Run("Outage", func(t *testing.T) {
		if h.Outage == nil {
			t.Skip("harness has no Outage")
		}
		testOutage(t, h)
	})
	t.Run("Duplicates", func(t *testing.T) { testDuplicates(t, h) })
}

// hangGuard is how long the suite waits for a call that must return before
// declaring it hung. It is a deadlock detector, not a speed requirement.
const hangGuard = 60 * time.Second

func newSink(t *testing.T, h Harness) (s sink.Sink, closeSink func() error) {
	t.Helper()
	s = h.New(t)
	if s == nil {
		t.Fatal("Harness.New returned nil")
	}
	if s.Name() == "" {
		t.Error("sink has an empty Name")
	}
	closed := false
	closeSink = func() error {
		closed = true
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		return s.Close(ctx)
	}
	t.Cleanup(func() {
		if !closed {
			if err := closeSink(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	})
	return s, closeSink
}

func publish(t *testing.T, s sink.Sink, events []schema.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := s.Publish(ctx, sink.NewBatch(events)); err != nil {
		t.Fatalf("Publish of %d events: %v", len(events), err)
	}
}

// within runs fn and fails t when it has not returned after d.
func within(t *testing.T, d time.Duration, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
		return nil
	}
}

type delivery int

const (
	exactlyOnce delivery = iota // each event once, in order per group
	twice                       // the sent sequence twice over, per group
	atLeastOnce                 // each event at least once, first arrivals in order per group
)

// check reads the destination and compares it with sent. extra lists
// events that may or may not have arrived (from an interrupted Publish).
func check(t *testing.T, h Harness, sent, extra []schema.Event, mode delivery) {
	t.Helper()
	got := h.Read(t)
	byID := make(map[string]schema.Event, len(sent)+len(extra))
	for _, e := range extra {
		byID[e.ID] = e
	}
	for _, e := range sent {
		byID[e.ID] = e
	}
	wantOrder := map[string][]string{}
	for _, e := range sent {
		wantOrder[e.PartitionKey] = append(wantOrder[e.PartitionKey], e.ID)
	}
	gotOrder := map[string][]string{}
	for i, r := range got {
		ev, ok := byID[r.Event.ID]
		if !ok {
			t.Errorf("message %d: unexpected event id %q", i, r.Event.ID)
			continue
		}
		if len(r.Raw) == 0 {
			t.Errorf("message %d (%s): empty Raw", i, ev.ID)
		} else {
			schematest.Validate(t, r.Raw)
		}
		want, _ := json.Marshal(ev)
		have, err := json.Marshal(r.Event)
		if err != nil || !bytes.Equal(want, have) {
			t.Errorf("message %d: decoded event differs from the sent one:\n got: %s\nwant: %s", i, have, want)
		}
		if h.CheckMessage != nil {
			h.CheckMessage(t, ev, r)
		}
		gotOrder[ev.PartitionKey] = append(gotOrder[ev.PartitionKey], ev.ID)
	}
	for g, want := range wantOrder {
		have := gotOrder[g]
		switch mode {
		case exactlyOnce:
			assertSeq(t, g, have, want)
		case twice:
			assertSeq(t, g, have, append(append([]string{}, want...), want...))
		case atLeastOnce:
			sentSet := map[string]bool{}
			for _, id := range want {
				sentSet[id] = true
			}
			var first []string
			seen := map[string]bool{}
			for _, id := range have {
				if sentSet[id] && !seen[id] {
					seen[id] = true
					first = append(first, id)
				}
			}
			assertSeq(t, g, first, want)
		}
	}
}

func assertSeq(t *testing.T, group string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("group %s: got %d events, want %d", group, len(got), len(want))
		return
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("group %s: event %d is %s, want %s (order or loss)", group, i, got[i], want[i])
			return
		}
	}
}

func testPublishOrdered(t *testing.T, h Harness) {
	s, _ := newSink(t, h)
	publish(t, s, nil) // an empty batch is a no-op
	var sent []schema.Event
	for b := range 4 {
		batch := Batch(b*5, 5)
		publish(t, s, batch)
		sent = append(sent, batch...)
	}
	check(t, h, sent, nil, exactlyOnce)
}

func testCloseFlushes(t *testing.T, h Harness) {
	s, closeSink := newSink(t, h)
	var sent []schema.Event
	for b := range 3 {
		batch := Batch(b*7, 7)
		publish(t, s, batch)
		sent = append(sent, batch...)
	}
	if err := within(t, hangGuard, "Close", closeSink); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check(t, h, sent, nil, exactlyOnce)
}

func testContextCancelled(t *testing.T, h Harness) {
	s, _ := newSink(t, h)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := within(t, hangGuard, "Publish with a cancelled context", func() error {
		return s.Publish(ctx, sink.NewBatch(Batch(0, 3)))
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a cancelled context = %v, want an error wrapping context.Canceled", err)
	}

	// Cancel while Publish is under way: it must return, and an error must
	// say why. Whether any of the batch got through is up to the sink.
	midway := Batch(100, 300)
	ctx, cancel = context.WithCancel(context.Background())
	err = within(t, hangGuard, "Publish cancelled mid-way", func() error {
		done := make(chan error, 1)
		go func() { done <- s.Publish(ctx, sink.NewBatch(midway)) }()
		cancel()
		return <-done
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Publish cancelled mid-way = %v, want nil or an error wrapping context.Canceled", err)
	}

	// The sink must still work with a live context.
	after := Batch(1000, 4)
	publish(t, s, after)
	extra := append(Batch(0, 3), midway...)
	check(t, h, after, extra, atLeastOnce)
}

func testOutage(t *testing.T, h Harness) {
	s, _ := newSink(t, h)
	before := Batch(0, 4)
	publish(t, s, before)

	h.Outage.Stop(t)
	down := Batch(10, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err := within(t, hangGuard, "Publish while the destination is down", func() error {
		return s.Publish(ctx, sink.NewBatch(down))
	})
	cancel()
	if err == nil {
		t.Fatal("Publish while the destination is down returned nil: events would be lost silently")
	}

	f := sink.NewFanout([]sink.Sink{s}, sink.FanoutOptions{
		Retry:  sink.RetryOptions{InitialInterval: 50 * time.Millisecond, MaxInterval: time.Second},
		Logger: zaptest.NewLogger(t),
	})
	ctx, cancel = context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Publish(ctx, down) }()

	// Bring the destination back only once the Fanout has seen it fail,
	// so the retry path is what delivers the batch.
	for f.Status()[0].ConsecutiveFailures == 0 {
		select {
		case err := <-done:
			t.Fatalf("Fanout.Publish returned %v before the destination came back", err)
		case <-ctx.Done():
			t.Fatal("the Fanout never attempted to publish")
		case <-time.After(10 * time.Millisecond):
		}
	}
	h.Outage.Start(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Fanout.Publish after the destination came back: %v", err)
		}
	case <-time.After(hangGuard):
		t.Fatal("Fanout.Publish did not deliver after the destination came back")
	}
	check(t, h, append(append([]schema.Event{}, before...), down...), nil, atLeastOnce)
}

func testDuplicates(t *testing.T, h Harness) {
	s, _ := newSink(t, h)
	batch := Batch(0, 5)
	publish(t, s, batch)
	publish(t, s, batch)
	if h.Dedup {
		check(t, h, batch, nil, exactlyOnce)
	} else {
		check(t, h, batch, nil, twice)
	}
}
