package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/rollcall-dev/rollcall/poller/tencent"
)

// cmdCheck is the preflight check: every dependency rollcall needs, tried
// once, with a pass/fail line each.
func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	path := fs.String("config", "", "configuration file (required)")
	offline := fs.Bool("offline", false, "only validate the configuration (and the secrets it names): call nothing, create nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageError{"check: --config is required"}
	}
	failed := 0
	report := func(item string, err error) {
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "FAIL  %-28s %v\n", item, err)
			return
		}
		fmt.Fprintf(stdout, "PASS  %s\n", item)
	}
	cfg, err := LoadConfig(*path)
	report("config", err)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("check: %d item(s) failed", failed)}
	}
	if s := cfg.shard(); s.Count > 1 {
		report(fmt.Sprintf("shard %d of %d (owns %d of %d configured groups; %g of tencent.rate_limit %g calls/s)",
			s.Index, s.Count, len(cfg.ownedGroups(cfg.Groups.IDs)), len(cfg.Groups.IDs), cfg.rateLimit(), cfg.Tencent.RateLimit), nil)
	}
	if *offline {
		fmt.Fprintln(stdout, "configuration valid (offline: nothing was called)")
		return nil
	}
	logger := zap.NewNop()
	m := newMetricsSet()

	src, err := newUserSigSource(&cfg.Tencent, m.tencent)
	if err == nil {
		_, err = src.UserSig()
	}
	report("usersig", err)

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err == nil {
		report(checkAPI(ctx, cfg, m))
		if cfg.Groups.discoverInterval() != 0 {
			report(checkDiscovery(ctx, cfg, m))
		}
	}

	for i := range cfg.Sinks {
		sc := &cfg.Sinks[i]
		item := fmt.Sprintf("sink %s (%s)", sc.DisplayName(), sc.Type)
		s, err := buildSink(ctx, sc, m, io.Discard, logger)
		if err == nil {
			if c, ok := s.(checker); ok {
				err = c.Check(ctx)
			}
			_ = s.Close(ctx)
		}
		report(item, err)
	}

	st, err := openStore(ctx, cfg, logger)
	if err == nil {
		var groups []string
		groups, err = st.List(ctx)
		st.Close()
		if err == nil {
			report(fmt.Sprintf("state %s (%d groups stored)", cfg.State.Driver, len(groups)), nil)
		}
	}
	if err != nil {
		report("state", err)
	}
	if failed > 0 {
		return fmt.Errorf("check: %d item(s) failed", failed)
	}
	fmt.Fprintln(stdout, "all checks passed")
	return nil
}

// checkAPI makes one real get_members call on the first group. A dismissed
// group still proves that auth, region and admin rights are right.
func checkAPI(ctx context.Context, cfg *Config, m *metricsSet) (string, error) {
	client, err := newClient(cfg, m.tencent, nil, zap.NewNop())
	if err != nil {
		return "api client", err
	}
	if len(cfg.Groups.IDs) == 0 { // discovery alone: checkDiscovery calls the API
		return "api get_members (skipped: no groups.ids)", nil
	}
	gid := cfg.Groups.IDs[0]
	members, err := client.ListMembers(ctx, gid)
	switch {
	case tencent.KindOf(err) == tencent.KindGroupGone:
		return fmt.Sprintf("api get_members (group %s does not exist: remove it from groups.ids)", gid), nil
	case err != nil:
		return "api get_members", err
	}
	return fmt.Sprintf("api get_members (%d members in %s)", len(members), gid), nil
}
