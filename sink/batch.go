package sink

import (
	"github.com/rollcall-dev/rollcall/schema"
)

// Batch is the events of one publish with their wire encoding, made once
// (by NewBatch; a Fanout makes one per Publish) and shared by every sink:
// no sink encodes an event itself. A Batch and the bytes it returns are
// read-only once built, so sinks may use them concurrently and hand them
// to their clients without copying; they must not modify them.
type Batch struct {
	events []schema.Event
	// lines holds each event's structured-mode JSON followed by '\n'.
	lines []byte
	spans []span
}

// span locates one event in Batch.lines: its JSON is lines[start:end]
// (the '\n' follows), its data object lines[data:end-1].
type span struct{ start, data, end int }

// NewBatch encodes events. The Batch keeps events (not a copy): the caller
// must not modify them while the Batch is in use.
func NewBatch(events []schema.Event) *Batch {
	b := &Batch{events: events, spans: make([]span, len(events))}
	size := 0
	for i := range events {
		size += events[i].JSONSizeHint() + 1
	}
	buf := make([]byte, 0, size)
	for i := range events {
		start := len(buf)
		var data int
		buf, data = events[i].AppendJSONData(buf)
		b.spans[i] = span{start: start, data: data, end: len(buf)}
		buf = append(buf, '\n')
	}
	b.lines = buf
	return b
}

// Len returns the number of events; a nil Batch has none.
func (b *Batch) Len() int {
	if b == nil {
		return 0
	}
	return len(b.events)
}

// Events returns the events, in order. The slice is shared: read only.
func (b *Batch) Events() []schema.Event {
	if b == nil {
		return nil
	}
	return b.events
}

// JSON returns event i as a structured-mode CloudEvent (what
// schema.Event.MarshalJSON returns). Its capacity ends with it, so an
// append by the caller cannot overwrite what follows.
func (b *Batch) JSON(i int) []byte {
	s := b.spans[i]
	return b.lines[s.start:s.end:s.end]
}

// Data returns event i's data object alone (what schema.Event.MarshalData
// returns): the binary-mode value. It is part of JSON(i), so it costs no
// encoding.
func (b *Batch) Data(i int) []byte {
	s := b.spans[i]
	return b.lines[s.data : s.end-1 : s.end-1]
}

// Lines returns every event's JSON followed by a newline: the batch as JSON
// Lines, ready for one Write.
func (b *Batch) Lines() []byte {
	if b == nil {
		return nil
	}
	return b.lines[:len(b.lines):len(b.lines)]
}
