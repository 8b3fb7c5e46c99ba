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
		client, err := newClient(cfg, m.tencent, nil, logger)
		if err == nil {
			// One real call: the first group's list. A dismissed group still
			// proves that auth, region and admin rights are right.
			gid := cfg.Groups.IDs[0]
			var n []string
			members, lerr := client.ListMembers(ctx, gid)
			if tencent.KindOf(lerr) == tencent.KindGroupGone {
				n, lerr = []string{"group " + gid + " does not exist (10010/10015); remove it from groups.ids"}, nil
			}
			err = lerr
			if err == nil && n == nil {
				n = []string{fmt.Sprintf("%d members in %s", len(members), gid)}
			}
			if err == nil {
				report("api get_members ("+n[0]+")", nil)
			} else {
				report("api get_members", err)
			}
		} else {
			report("api client", err)
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

	st, err := openStore(cfg, logger)
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
