package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// TestPProfOnlyWhenAsked: http.pprof serves net/http/pprof on the metrics
// listener; without it the paths are not found.
func TestPProfOnlyWhenAsked(t *testing.T) {
	for _, on := range []bool{false, true} {
		hs, err := newHealthServer("127.0.0.1:0", prometheus.NewRegistry(), nil, on, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		hs.ln.Close() // the handler is served by httptest below
		srv := httptest.NewServer(hs.srv.Handler)
		for path, want := range map[string]string{"/debug/pprof/": "goroutine", "/debug/pprof/cmdline": ""} {
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case on && (resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want)):
				t.Errorf("pprof on: GET %s = %d %.80q", path, resp.StatusCode, body)
			case !on && resp.StatusCode != http.StatusNotFound:
				t.Errorf("pprof off: GET %s = %d, want 404", path, resp.StatusCode)
			}
		}
		srv.Close()
	}
}
