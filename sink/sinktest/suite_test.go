package sinktest_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/sink"
	"github.com/rollcall-dev/rollcall/sink/sinktest"
)

// brokenSink is a Recorder with one defect, to prove the suite notices it.
type brokenSink struct {
	*sinktest.Recorder
	mangle    func([]schema.Event) []schema.Event
	ignoreCtx bool
}

func (b *brokenSink) Publish(ctx context.Context, batch *sink.Batch) error {
	if b.ignoreCtx {
		ctx = context.Background()
	}
	if b.mangle != nil {
		batch = sink.NewBatch(b.mangle(slices.Clone(batch.Events())))
	}
	return b.Recorder.Publish(ctx, batch)
}

// defects maps a defect to the failure message the suite must report.
var defects = map[string]struct {
	sink   func() *brokenSink
	outage bool // give the harness an Outage that does not stop anything
	want   string
}{
	"drops-last": {
		sink: func() *brokenSink {
			return &brokenSink{mangle: func(e []schema.Event) []schema.Event {
				if len(e) == 0 {
					return e
				}
				return e[:len(e)-1]
			}}
		},
		want: "group @TGS#aRoomC: got 16 events, want 20",
	},
	"reorders": {
		sink: func() *brokenSink {
			return &brokenSink{mangle: func(e []schema.Event) []schema.Event {
				slices.Reverse(e)
				return e
			}}
		},
		want: "(order or loss)",
	},
	"mangles": {
		sink: func() *brokenSink {
			return &brokenSink{mangle: func(e []schema.Event) []schema.Event {
				for i := range e {
					e[i].Data.NickName = "someone else"
				}
				return e
			}}
		},
		want: "decoded event differs",
	},
	"ignores-context": {
		sink: func() *brokenSink { return &brokenSink{ignoreCtx: true} },
		want: "want an error wrapping context.Canceled",
	},
	"silent-outage": {
		sink:   func() *brokenSink { return &brokenSink{} },
		outage: true,
		want:   "events would be lost silently",
	},
}

// TestBrokenSink runs the suite against one defective sink; it only runs
// when TestSuiteDetectsDefects asks for it, and is expected to fail.
func TestBrokenSink(t *testing.T) {
	name := os.Getenv("SINKTEST_DEFECT")
	if name == "" {
		t.Skip("run by TestSuiteDetectsDefects")
	}
	d := defects[name]
	var s *brokenSink
	h := sinktest.Harness{
		New: func(t *testing.T) sink.Sink {
			s = d.sink()
			s.Recorder = sinktest.NewRecorder(name)
			return s
		},
		Read: func(t *testing.T) []sinktest.Received {
			var out []sinktest.Received
			for _, ev := range s.Events() {
				raw, _ := json.Marshal(ev)
				out = append(out, sinktest.Received{Event: ev, Raw: raw})
			}
			return out
		},
	}
	if d.outage {
		h.Outage = &sinktest.Outage{Stop: func(*testing.T) {}, Start: func(*testing.T) {}}
	}
	sinktest.Run(t, h)
}

func TestSuiteDetectsDefects(t *testing.T) {
	if os.Getenv("SINKTEST_DEFECT") != "" {
		t.Skip("inside a defect run")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range defects {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(exe, "-test.run=^TestBrokenSink$", "-test.count=1")
			cmd.Env = append(os.Environ(), "SINKTEST_DEFECT="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a sink that %s:\n%s", name, out)
			}
			if !strings.Contains(string(out), d.want) {
				t.Fatalf("the suite failed without reporting %q:\n%s", d.want, out)
			}
		})
	}
}
