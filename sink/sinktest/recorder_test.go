package sinktest_test

import (
	"encoding/json"
	"testing"

	"go.uber.org/goleak"

	"github.com/rollcall-dev/rollcall/sink"
	"github.com/rollcall-dev/rollcall/sink/sinktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRecorderConformance runs the suite against the Recorder, which also
// exercises the suite's Outage path without a network.
func TestRecorderConformance(t *testing.T) {
	var rec *sinktest.Recorder
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) sink.Sink {
			rec = sinktest.NewRecorder("recorder")
			return rec
		},
		Read: func(t *testing.T) []sinktest.Received {
			var out []sinktest.Received
			for _, ev := range rec.Events() {
				raw, err := json.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, sinktest.Received{Event: ev, Raw: raw})
			}
			return out
		},
		Outage: &sinktest.Outage{
			Stop:  func(*testing.T) { rec.FailUntilHealed(nil) },
			Start: func(*testing.T) { rec.Heal() },
		},
	})
}
