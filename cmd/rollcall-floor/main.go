// Command rollcall-floor measures how close the daemon comes to the floor:
// the CPU a bare client spends per get_members call (one keep-alive POST
// and one typed JSON decode), listing the same simulated groups at the
// same rate and concurrency. It runs `rollcall simulate`, then the daemon
// (state.driver file, a file sink, both in a temporary directory), then
// the bare client, each as its own process, and prints the CPU (user+sys,
// from rusage) per API call of each side and their ratio. The simulator's
// CPU is not counted.
//
//	go run ./cmd/rollcall-floor [--groups 1500] [--members 20] [--rate 100] [--duration 60s]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
)

// roleEnv makes the program (or its test binary) run as the bare client:
// the parent re-executes itself so the bare side's CPU is its own.
const roleEnv = "ROLLCALL_FLOOR_ROLE"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Main runs the command (or the bare side, under roleEnv) and returns the
// exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var err error
	if os.Getenv(roleEnv) == "bare" {
		err = bareMain(ctx, args, stdout)
	} else {
		err = floor(ctx, args, stdout, stderr)
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintln(stderr, "rollcall-floor:", err)
		return 1
	}
	return 0
}

func newFlagSet(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return fs
}

// side is one measured process.
type side struct {
	name  string
	calls int64
	cpu   time.Duration
}

func (s side) perCall() time.Duration {
	if s.calls == 0 {
		return 0
	}
	return s.cpu / time.Duration(s.calls)
}

func floor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rollcall-floor", stderr)
	groups := fs.Int("groups", 1500, "simulated groups")
	members := fs.Int("members", 20, "members per group")
	callRate := fs.Float64("rate", 100, "get_members calls per second (the daemon's rate_limit; its poll.interval is groups/rate, at least 1s)")
	concurrency := fs.Int("concurrency", 8, "calls in flight (the daemon's poll.concurrency)")
	duration := fs.Duration("duration", 60*time.Second, "how long each side is measured, after its warm-up")
	warmup := fs.Duration("warmup", -1, "how long each side runs before it is measured (default: one poll interval and 5s, so the daemon's first cycle — the baseline of every group — is not counted)")
	churn := fs.Duration("churn", 2*time.Second, "the simulator's churn interval (0 disables)")
	checkpoint := fs.String("checkpoint-interval", "", "the daemon's state.checkpoint_interval (default: its default, 1m)")
	dir := fs.String("dir", "", "working directory for the binary, state and events (default: a temporary one, removed after)")
	profile := fs.String("profile", "", "write the daemon's CPU profile of the measured window to this file (turns http.pprof on)")
	bin := fs.String("rollcall", "", "a rollcall binary to use (default: go build ./cmd/rollcall into the working directory)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *groups < 1 || *members < 0 || *callRate <= 0 || *concurrency < 1 || *duration <= 0 || *churn < 0 {
		return errors.New("need --groups >= 1, --members >= 0, --rate > 0, --concurrency >= 1, --duration > 0, --churn >= 0")
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "rollcall-floor-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	if *bin == "" {
		*bin = filepath.Join(*dir, "rollcall")
		fmt.Fprintln(stderr, "building rollcall ...")
		build := exec.CommandContext(ctx, "go", "build", "-o", *bin, "github.com/rollcall-dev/rollcall/cmd/rollcall")
		build.Stdout, build.Stderr = stderr, stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build: %w", err)
		}
	}

	endpoint, stopSim, err := startSimulator(ctx, *bin, *dir, *groups, *members, *churn)
	if err != nil {
		return err
	}
	defer stopSim()

	// The daemon polls each group once per interval, under rate_limit: at
	// most rate calls per second, fewer when the interval's floor of 1s
	// bounds it. The bare client gets the same rate.
	interval := time.Duration(float64(*groups) / *callRate * float64(time.Second)).Round(time.Millisecond)
	interval = max(interval, time.Second)
	effRate := math.Min(*callRate, float64(*groups)/interval.Seconds())
	if *warmup < 0 {
		*warmup = interval + 5*time.Second
	}

	fmt.Fprintf(stderr, "daemon: %d groups x %d members, %.4g calls/s, %d in flight, %v warm-up, then measured for %v ...\n", *groups, *members, effRate, *concurrency, *warmup, *duration)
	daemon, err := runDaemon(ctx, *bin, *dir, endpoint, *groups, *callRate, interval, *concurrency, *checkpoint, *profile, *warmup, *duration)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bare client: the same, %v warm-up, then measured for %v ...\n", *warmup, *duration)
	bare, err := runBareProcess(ctx, endpoint, *groups, effRate, *concurrency, *warmup, *duration)
	if err != nil {
		return err
	}

	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "side\tcalls\tCPU s\tCPU/call µs\t")
	for _, s := range []side{daemon, bare} {
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.1f\t\n", s.name, s.calls, s.cpu.Seconds(), float64(s.perCall().Nanoseconds())/1e3)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if daemon.calls == 0 || bare.calls == 0 || bare.cpu == 0 {
		return errors.New("a side made no calls: no ratio")
	}
	fmt.Fprintf(stdout, "ratio (daemon/bare CPU per call): %.2fx\n", float64(daemon.cpu)/float64(daemon.calls)/(float64(bare.cpu)/float64(bare.calls)))
	return nil
}

var simURL = regexp.MustCompile(`http://127\.0\.0\.1:\d+`)

// startSimulator runs `rollcall simulate` on a free loopback port and
// returns its URL and a function that stops it.
func startSimulator(ctx context.Context, bin, dir string, groups, members int, churn time.Duration) (string, func(), error) {
	logf, err := os.Create(filepath.Join(dir, "simulate.log"))
	if err != nil {
		return "", nil, err
	}
	// rate-limit 0: the simulator never answers 60007, so neither side
	// slows down for it.
	sim := exec.Command(bin, "simulate", "--listen", "127.0.0.1:0", "--groups", strconv.Itoa(groups),
		"--members", strconv.Itoa(members), "--churn", churn.String(), "--rate-limit", "0")
	sim.Stderr = logf
	out, err := sim.StdoutPipe()
	if err != nil {
		logf.Close()
		return "", nil, err
	}
	if err := sim.Start(); err != nil {
		logf.Close()
		return "", nil, err
	}
	stop := func() {
		_ = sim.Process.Signal(syscall.SIGTERM)
		_ = sim.Wait()
		logf.Close()
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		url := ""
		for sc.Scan() {
			if url == "" {
				if url = simURL.FindString(sc.Text()); url != "" {
					found <- url
				}
			}
		}
		close(found)
	}()
	select {
	case url, ok := <-found:
		if ok {
			return url, stop, nil
		}
	case <-time.After(time.Minute):
	case <-ctx.Done():
	}
	stop()
	return "", nil, fmt.Errorf("the simulator did not start; see %s", logf.Name())
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// runDaemon runs `rollcall run` for d, reads rollcall_api_calls_total from
// its metrics endpoint, stops it with SIGTERM and returns its CPU.
func runDaemon(ctx context.Context, bin, dir, endpoint string, groups int, callRate float64, interval time.Duration, concurrency int, checkpoint, profile string, warmup, d time.Duration) (side, error) {
	metricsAddr, err := freePort()
	if err != nil {
		return side{}, err
	}
	ids := make([]string, groups)
	for i := range ids {
		ids[i] = strconv.Quote("room-" + strconv.Itoa(i+1))
	}
	state, events := filepath.Join(dir, "state"), filepath.Join(dir, "events")
	// Fresh state: every run starts with the same baseline.
	if err := errors.Join(os.RemoveAll(state), os.RemoveAll(events)); err != nil {
		return side{}, err
	}
	cfg := fmt.Sprintf(`tencent:
  sdkappid: %d
  identifier: %s
  secret_key: %s
  endpoint: %s
  rate_limit: %g
groups:
  ids: [%s]
poll:
  interval: %s
  concurrency: %d
state:
  driver: file
  path: %s
%ssinks:
  - type: file
    path: %s
http:
  listen: %s
  pprof: %t
log:
  level: warn
`, tencenttest.DefaultSDKAppID, tencenttest.DefaultAdmin, tencenttest.DefaultKey, endpoint, callRate,
		strings.Join(ids, ", "), interval, concurrency, strconv.Quote(state), checkpointLine(checkpoint), strconv.Quote(events), metricsAddr, profile != "")
	cfgPath := filepath.Join(dir, "rollcall.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return side{}, err
	}
	logf, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return side{}, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return side{}, err
	}
	// The window is read from the daemon's own metrics: its API calls and
	// process_cpu_seconds_total, at the end of the warm-up and at the end.
	url := "http://" + metricsAddr + "/metrics"
	var first, last sample
	var scrapeErr error
	var profiled chan error
	if sleepCtx(ctx, warmup) {
		first, scrapeErr = scrape(url)
		if profile != "" {
			profiled = make(chan error, 1)
			go func() { profiled <- fetchProfile(ctx, "http://"+metricsAddr, profile, d) }()
		}
		if scrapeErr == nil && sleepCtx(ctx, d) {
			last, scrapeErr = scrape(url)
		}
	}
	if profiled != nil {
		if err := <-profiled; err != nil {
			scrapeErr = errors.Join(scrapeErr, fmt.Errorf("profile: %w", err))
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		return side{}, fmt.Errorf("the daemon: %w; see %s", err, logf.Name())
	}
	if err := ctx.Err(); err != nil {
		return side{}, err
	}
	if scrapeErr != nil {
		return side{}, fmt.Errorf("the daemon's metrics: %w", scrapeErr)
	}
	return side{name: "daemon", calls: last.calls - first.calls, cpu: last.cpu - first.cpu}, nil
}

// fetchProfile saves the daemon's CPU profile of the next d to path.
func fetchProfile(ctx context.Context, base, path string, d time.Duration) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, int(d.Seconds())), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkpointLine is the state section's checkpoint_interval line, if set.
func checkpointLine(d string) string {
	if d == "" {
		return ""
	}
	return "  checkpoint_interval: " + strconv.Quote(d) + "\n"
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sample is what one scrape of the daemon's metrics says.
type sample struct {
	calls int64         // rollcall_api_calls_total, summed
	cpu   time.Duration // process_cpu_seconds_total
}

// scrape reads a sample from the daemon's /metrics.
func scrape(url string) (sample, error) {
	// No keep-alive: one request, and no idle connection left behind.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	res, err := hc.Get(url)
	if err != nil {
		return sample{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return sample{}, fmt.Errorf("%s: %s", url, res.Status)
	}
	var calls, cpu float64
	cpuSeen := false
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		isCalls := strings.HasPrefix(line, "rollcall_api_calls_total{") || strings.HasPrefix(line, "rollcall_api_calls_total ")
		isCPU := strings.HasPrefix(line, "process_cpu_seconds_total ")
		if !isCalls && !isCPU {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return sample{}, fmt.Errorf("%q: %w", line, err)
		}
		if isCPU {
			cpu, cpuSeen = v, true
		} else {
			calls += v
		}
	}
	if err := sc.Err(); err != nil {
		return sample{}, err
	}
	if !cpuSeen {
		return sample{}, errors.New("no process_cpu_seconds_total (the process collector reads /proc: Linux only)")
	}
	return sample{calls: int64(calls), cpu: time.Duration(cpu * float64(time.Second))}, nil
}

// runBareProcess re-executes this program as the bare client.
func runBareProcess(ctx context.Context, endpoint string, groups int, callRate float64, concurrency int, warmup, d time.Duration) (side, error) {
	self, err := os.Executable()
	if err != nil {
		return side{}, err
	}
	cmd := exec.CommandContext(ctx, self, "--endpoint", endpoint, "--groups", strconv.Itoa(groups),
		"--rate", strconv.FormatFloat(callRate, 'g', -1, 64), "--concurrency", strconv.Itoa(concurrency), "--warmup", warmup.String(), "--duration", d.String())
	cmd.Env = append(os.Environ(), roleEnv+"=bare")
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		return side{}, fmt.Errorf("the bare client: %w: %s", err, errb.String())
	}
	var calls, cpuNS int64
	if _, err := fmt.Sscanf(string(out), "calls %d cpu_ns %d", &calls, &cpuNS); err != nil {
		return side{}, fmt.Errorf("the bare client printed %q", out)
	}
	return side{name: "bare", calls: calls, cpu: time.Duration(cpuNS)}, nil
}
