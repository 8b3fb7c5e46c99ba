package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
)

// bareOptions configure the bare client: the least a program can do to
// list the same groups at the same rate.
type bareOptions struct {
	endpoint    string
	groups      int
	rate        float64
	concurrency int
}

// barePage is the typed decode of a get_members answer: what any client
// has to read.
type barePage struct {
	ErrorCode  int
	MemberList []struct {
		Member_Account string //nolint:revive // the wire name
		NickName       string
		Avatar         string
		JoinTime       int64
	}
	NextTimestamp uint64
}

// runBare lists room-1…room-N round-robin until ctx ends: one keep-alive
// POST and one typed JSON decode per get_members call, concurrency calls
// in flight, rate calls per second. It returns the calls answered OK.
func runBare(ctx context.Context, o bareOptions, calls *atomic.Int64) error {
	sig, err := usersig.Generate(tencenttest.DefaultSDKAppID, tencenttest.DefaultAdmin, tencenttest.DefaultKey, 86400, time.Now(), nil)
	if err != nil {
		return err
	}
	prefix := o.endpoint + "/v4/group_open_avchatroom_http_svc/get_members?sdkappid=" +
		strconv.FormatUint(tencenttest.DefaultSDKAppID, 10) + "&identifier=" + tencenttest.DefaultAdmin +
		"&usersig=" + url.QueryEscape(sig) + "&contenttype=json&random="
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = o.concurrency
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	defer tr.CloseIdleConnections()

	lim := rate.NewLimiter(rate.Limit(o.rate), 1)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, o.concurrency)
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for {
				group := "room-" + strconv.FormatInt(next.Add(1)%int64(o.groups)+1, 10)
				var cursor uint64
				for {
					if lim.Wait(ctx) != nil {
						return
					}
					body := `{"GroupId":"` + group + `","Timestamp":` + strconv.FormatUint(cursor, 10) + `}`
					req, err := http.NewRequestWithContext(ctx, http.MethodPost, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10), bytes.NewBufferString(body))
					if err != nil {
						errc <- err
						return
					}
					req.Header.Set("Content-Type", "application/json")
					res, err := hc.Do(req)
					if err != nil {
						if ctx.Err() != nil {
							return
						}
						errc <- fmt.Errorf("get_members: %w", err)
						return
					}
					buf.Reset()
					_, err = buf.ReadFrom(res.Body)
					res.Body.Close()
					if err != nil {
						if ctx.Err() != nil {
							return
						}
						errc <- err
						return
					}
					var p barePage
					if err := json.Unmarshal(buf.Bytes(), &p); err != nil || p.ErrorCode != 0 {
						errc <- fmt.Errorf("get_members of %s: error code %d, %v", group, p.ErrorCode, err)
						return
					}
					calls.Add(1)
					if cursor = p.NextTimestamp; cursor == 0 {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	return nil
}

// bareMain is the bare side's process: it runs for warmup, then for
// duration, and prints the calls it made and the CPU it used (user+sys,
// from getrusage) in the second part: "calls N cpu_ns M".
func bareMain(ctx context.Context, args []string, stdout io.Writer) error {
	var o bareOptions
	var d, warmup time.Duration
	fs := newFlagSet("bare", io.Discard)
	fs.DurationVar(&warmup, "warmup", 0, "")
	fs.StringVar(&o.endpoint, "endpoint", "", "")
	fs.IntVar(&o.groups, "groups", 0, "")
	fs.Float64Var(&o.rate, "rate", 0, "")
	fs.IntVar(&o.concurrency, "concurrency", 0, "")
	fs.DurationVar(&d, "duration", 0, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.endpoint == "" || o.groups < 1 || o.rate <= 0 || o.concurrency < 1 || d <= 0 {
		return errors.New("bare: need --endpoint, --groups, --rate, --concurrency and --duration")
	}
	ctx, cancel := context.WithTimeout(ctx, warmup+d)
	defer cancel()
	var calls atomic.Int64
	type mark struct {
		calls int64
		cpu   time.Duration
	}
	marks := make(chan mark, 1)
	go func() {
		if sleepCtx(ctx, warmup) {
			marks <- mark{calls.Load(), cpuUsed()}
		}
		close(marks)
	}()
	err := runBare(ctx, o, &calls)
	end := mark{calls.Load(), cpuUsed()}
	start, ok := <-marks
	if !ok {
		return errors.New("bare: stopped during the warm-up")
	}
	fmt.Fprintf(stdout, "calls %d cpu_ns %d\n", end.calls-start.calls, int64(end.cpu-start.cpu))
	return err
}

// cpuUsed is this process's CPU time so far (user+sys).
func cpuUsed() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
