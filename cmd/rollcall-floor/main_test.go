package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The command re-executes itself as the bare client: here, this test
	// binary.
	if os.Getenv(roleEnv) == "bare" {
		os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// TestFloorPrintsRatio runs the whole command in a tiny configuration:
// both sides make calls and a ratio is printed (its value is not judged:
// that is a measurement, not a test).
func TestFloorPrintsRatio(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rollcall and runs three processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := Main(ctx, []string{"--groups", "20", "--members", "5", "--warmup", "1500ms", "--duration", "2s", "--dir", t.TempDir()}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	out := stdout.String()
	for _, re := range []string{
		`(?m)^\s*daemon\s+[1-9]\d*\s+\d+\.\d+\s+\d+\.\d\s*$`,
		`(?m)^\s*bare\s+[1-9]\d*\s+\d+\.\d+\s+\d+\.\d\s*$`,
		`(?m)^ratio \(daemon/bare CPU per call\): \d+\.\d\dx$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}
}

// TestBareNeedsItsFlags: the bare side refuses to run half-configured.
func TestBareNeedsItsFlags(t *testing.T) {
	var out bytes.Buffer
	if err := bareMain(context.Background(), []string{"--groups", "3"}, &out); err == nil {
		t.Fatal("bare ran without an endpoint")
	}
}

// TestScrapeSumsEveryCode: the daemon's calls are the counter summed over
// command and code, other families are not counted, and its CPU is
// process_cpu_seconds_total.
func TestScrapeSumsEveryCode(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `# HELP rollcall_api_calls_total Tencent Chat REST API calls.
# TYPE rollcall_api_calls_total counter
rollcall_api_calls_total{code="0",command="get_members"} 1234
rollcall_api_calls_total{code="transport",command="get_members"} 5
rollcall_api_calls_total{code="0",command="get_online_member_num"} 0
rollcall_api_calls_totally_different 99
rollcall_api_call_duration_seconds_count{command="get_members"} 1239
process_cpu_seconds_total 12.5
process_cpu_seconds_total_not 3
`)
	}))
	defer srv.Close()
	got, err := scrape(srv.URL)
	if err != nil || got.calls != 1239 || got.cpu != 12500*time.Millisecond {
		t.Fatalf("scrape = %+v, %v; want 1239 calls and 12.5s", got, err)
	}
}
