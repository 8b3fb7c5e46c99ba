package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/diff/filestore"
	"github.com/rollcall-dev/rollcall/poller"
	"github.com/rollcall-dev/rollcall/poller/tencent"
	"github.com/rollcall-dev/rollcall/poller/tencent/tencenttest"
	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/config"
	"github.com/rollcall-dev/rollcall/sink"
)

// simGroups creates n groups with members each on the fake API.
func simGroups(s *tencenttest.Server, n, members int, now time.Time) []string {
	var ids []string
	for g := 1; g <= n; g++ {
		id := fmt.Sprintf("room-%d", g)
		ms := make([]schema.Member, members)
		for i := range ms {
			ms[i] = schema.Member{
				Account:  fmt.Sprintf("user-%d-%03d", g, i+1),
				NickName: fmt.Sprintf("User %d.%d", g, i+1),
				JoinTime: now.Add(-time.Duration(members-i) * time.Minute).Unix(),
			}
		}
		s.AddGroup(id, ms...)
		ids = append(ids, id)
	}
	return ids
}

// cmdDemo runs the whole pipeline against the built-in simulated API:
// no configuration, no credentials, events on stdout.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	duration := fs.Duration("duration", 0, "stop after this long (default: run until Ctrl-C)")
	groups := fs.Int("groups", 3, "number of simulated groups")
	members := fs.Int("members", 5, "initial members per group")
	interval := fs.Duration("interval", 2*time.Second, "poll interval")
	churn := fs.Duration("churn", time.Second, "how often simulated members join and leave")
	logFormat := fs.String("log-format", "console", "json or console")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *groups < 1 || *members < 0 || *interval < 100*time.Millisecond || *churn <= 0 || *duration < 0 {
		return usageError{"demo: need --groups >= 1, --members >= 0, --interval >= 100ms, --churn > 0, --duration >= 0"}
	}
	logger, err := newLogger(*logFormat, *logLevel, stderr)
	if err != nil {
		return err
	}
	defer logger.Sync() //nolint:errcheck

	api := tencenttest.NewServer(tencenttest.Options{})
	defer api.Close()
	ids := simGroups(api, *groups, *members, time.Now())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *duration > 0 {
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		api.Churn(ctx, tencenttest.ChurnOptions{Groups: ids, Interval: *churn, RejoinProbability: 0.2, Seed: time.Now().UnixNano()})
	}()

	empty := ""
	cfg := &Config{
		Tencent: TencentConfig{Config: tencent.Config{
			SDKAppID: api.SDKAppID(), Identifier: tencenttest.DefaultAdmin, SecretKey: config.Secret(api.Key()), Endpoint: api.URL,
		}},
		Groups: GroupsConfig{IDs: ids},
		Poll:   PollConfig{Config: poller.Config{Interval: *interval}},
		State:  StateConfig{Config: filestore.Config{Driver: filestore.DriverMemory}},
		Sinks: []SinkConfig{{Type: "stdout", Stdout: &sink.StdoutConfig{},
			Retry: &sink.RetryConfig{InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second}}},
		HTTP:            HTTPConfig{Listen: &empty},
		Log:             LogConfig{Level: *logLevel, Format: *logFormat},
		ShutdownTimeout: 5 * time.Second,
	}
	// The packages' defaults, but not their checks: the demo polls faster
	// than a configuration may.
	cfg.setDefaults()
	if _, err := cfg.Tencent.FitPollInterval(*interval); err != nil {
		return err
	}
	logger.Info("demo: simulated Tencent Chat API with churning members; events follow on stdout (Ctrl-C to stop)",
		zap.Strings("groups", ids), zap.String("api", api.URL))
	d := &daemon{cfg: cfg, stdout: stdout, logger: logger, quietInterval: true}
	err = d.run(ctx)
	// The daemon drains on a signal without cancelling ctx: stop the churn
	// before waiting for it.
	cancel()
	wg.Wait()
	return err
}

// cmdSimulate serves the fake API on its own, for `rollcall run` trials,
// docker compose and users' own experiments.
func cmdSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("simulate", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve the API on")
	groups := fs.Int("groups", 3, "number of groups (room-1 ... room-N)")
	members := fs.Int("members", 20, "initial members per group")
	churn := fs.Duration("churn", 2*time.Second, "interval between membership changes (0 disables)")
	joins := fs.Int("joins", 1, "joins per group per churn tick")
	leaves := fs.Int("leaves", 1, "leaves per group per churn tick")
	sdkappid := fs.Uint64("sdkappid", tencenttest.DefaultSDKAppID, "the simulated app's SDKAppID")
	keyEnv := fs.String("key-env", "", "environment variable holding the secret key (default: a built-in demo key)")
	admin := fs.String("admin", tencenttest.DefaultAdmin, "the app admin identifier")
	pageSize := fs.Int("page-size", tencenttest.DefaultPageSize, "members per get_members page")
	memberCap := fs.Int("member-cap", tencenttest.DefaultMemberCap, "latest-N cap of the list (30 simulates an app without the feature)")
	rateLimit := fs.Float64("rate-limit", 200, "calls/s before answering 60007 (0 = unlimited)")
	seed := fs.Int64("seed", 1, "seed of the churn")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	key := tencenttest.DefaultKey
	if *keyEnv != "" {
		v, ok := os.LookupEnv(*keyEnv)
		if !ok || v == "" {
			return usageError{fmt.Sprintf("simulate: environment variable %s is not set", *keyEnv)}
		}
		key = v
	}
	logger, err := newLogger("console", "info", stderr)
	if err != nil {
		return err
	}
	api := tencenttest.NewHandler(tencenttest.Options{
		SDKAppID: *sdkappid, Key: key, Admins: []string{*admin}, PageSize: *pageSize,
		MemberCap: *memberCap, RateLimit: *rateLimit,
	})
	ids := simGroups(api, *groups, *members, time.Now())
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return usageError{fmt.Sprintf("simulate: --listen: %v", err)}
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	defer wg.Wait()
	if *churn > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			api.Churn(ctx, tencenttest.ChurnOptions{Groups: ids, Interval: *churn, JoinsPerTick: *joins, LeavesPerTick: *leaves, RejoinProbability: 0.2, Seed: *seed})
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	keyLine := "secret_key: ${" + *keyEnv + "}"
	if *keyEnv == "" {
		keyLine = "secret_key: " + tencenttest.DefaultKey + "   # the simulator's built-in demo key"
	}
	fmt.Fprintf(stdout, "# simulated Tencent Chat API on http://%s\n# a config for it:\ntencent:\n  sdkappid: %d\n  identifier: %s\n  %s\n  endpoint: http://%s\ngroups:\n  ids: [%s]\nsinks:\n  - type: stdout\n",
		ln.Addr(), *sdkappid, *admin, keyLine, ln.Addr(), strings.Join(quoteAll(ids), ", "))
	logger.Info("simulator serving", zap.String("addr", ln.Addr().String()), zap.Int("groups", len(ids)))
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
