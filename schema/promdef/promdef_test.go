package promdef

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegisterNilRegistryRegistersNothing(t *testing.T) {
	Register(nil, Counter("x_total", "x"))
}

func TestCollectorsCarryNameHelpLabelsAndBuckets(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	c := CounterVec("t_calls_total", "Calls.", "command", "code")
	h := Histogram("t_wait_seconds", "Wait.", []float64{1, 2})
	g := GaugeVec("t_up", "Up.", "sink")
	Register(reg, c, h, g, Counter("t_plain_total", "Plain."), Gauge("t_gauge", "Gauge."),
		HistogramVec("t_dur_seconds", "Dur.", []float64{1}, "topic"))
	c.WithLabelValues("get", "0").Inc()
	h.Observe(1.5)
	g.WithLabelValues("k").Set(1)
	want := `
# HELP t_calls_total Calls.
# TYPE t_calls_total counter
t_calls_total{code="0",command="get"} 1
# HELP t_up Up.
# TYPE t_up gauge
t_up{sink="k"} 1
# HELP t_wait_seconds Wait.
# TYPE t_wait_seconds histogram
t_wait_seconds_bucket{le="1"} 0
t_wait_seconds_bucket{le="2"} 1
t_wait_seconds_bucket{le="+Inf"} 1
t_wait_seconds_sum 1.5
t_wait_seconds_count 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "t_calls_total", "t_up", "t_wait_seconds"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering twice did not panic")
		}
	}()
	Register(reg, Counter("t_plain_total", "Plain."))
}
