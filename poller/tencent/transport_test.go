package tencent

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestKeepAliveAtConcurrency: listings in flight together keep their
// connections between calls instead of dialling anew (the transport's
// default keeps only two idle connections per host).
func TestKeepAliveAtConcurrency(t *testing.T) {
	var dials atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		_, _ = w.Write([]byte(ok("0", member("alice", 100))))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c, err := New(Options{SDKAppID: testAppID, Identifier: testAdmin, Sig: staticSig{}, Endpoint: srv.URL, RateLimit: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	defer c.hc.CloseIdleConnections()
	// Rounds of 8 calls at once, each held long enough to overlap: at the
	// end of a round all 8 connections go idle together.
	const workers, rounds = 8, 5
	for range rounds {
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.ListMembers(context.Background(), "g"); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	if n := dials.Load(); n > 2*workers {
		t.Fatalf("%d connections for %d calls, %d at a time: connections are not kept", n, workers*rounds, workers)
	}
}

type staticSig struct{}

func (staticSig) UserSig() (string, error) { return testSig, nil }
func (staticSig) Invalidate()              {}
