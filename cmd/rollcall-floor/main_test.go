package main

import (
	"bytes"
	"context"
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
	if code := Main(ctx, []string{"--groups", "20", "--members", "5", "--duration", "2s", "--dir", t.TempDir()}, &stdout, &stderr); code != 0 {
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
