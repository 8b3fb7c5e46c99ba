package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/rollcall-dev/rollcall/poller/tencent"
	"github.com/rollcall-dev/rollcall/schema"
	"github.com/rollcall-dev/rollcall/schema/groupid"
)

// cmdSnapshot prints one group's full member list as the API gives it now.
func cmdSnapshot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("snapshot", stderr)
	path := fs.String("config", "", "configuration file (required)")
	group := fs.String("group", "", "group id (required)")
	format := fs.String("format", "table", "json or table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" || *group == "" {
		return usageError{"snapshot: --config and --group are required"}
	}
	if err := groupid.Validate(*group); err != nil {
		return usageError{"snapshot: --group: " + err.Error()}
	}
	if *format != "json" && *format != "table" {
		return usageError{fmt.Sprintf("snapshot: --format must be json or table, got %q", *format)}
	}
	cfg, err := LoadConfig(*path)
	if err != nil {
		return err
	}
	logger, err := newLogger(cfg.Log.Format, cfg.Log.Level, stderr)
	if err != nil {
		return err
	}
	client, err := newClient(cfg, nil, nil, logger)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Poll.Interval+cfg.Tencent.RequestTimeout)
	defer cancel()
	lister, err := newLister(client, cfg, logger)
	if err != nil {
		return err
	}
	taken := time.Now().UTC()
	snap, err := lister.List(ctx, *group)
	if err != nil {
		return apiExit(fmt.Errorf("list members of %s: %w", *group, err))
	}
	members := snap.Members
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if members == nil {
			members = []schema.Member{}
		}
		return enc.Encode(struct {
			SDKAppID  uint64          `json:"sdkappid"`
			GroupID   string          `json:"group_id"`
			TakenAt   time.Time       `json:"taken_at"`
			Count     int             `json:"count"`
			Truncated bool            `json:"truncated"`
			Members   []schema.Member `json:"members"`
		}{cfg.Tencent.SDKAppID, *group, taken, len(members), snap.Truncated, members})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER_ACCOUNT\tJOIN_TIME\tNICK_NAME\tAVATAR")
	for _, m := range members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Account, time.Unix(m.JoinTime, 0).UTC().Format(time.RFC3339), m.NickName, m.Avatar)
	}
	tw.Flush()
	note := ""
	switch {
	case snap.Truncated && len(members) >= cfg.Poll.MemberCap:
		note = fmt.Sprintf(" (at poll.member_cap %d: the API lists only the latest joiners)", cfg.Poll.MemberCap)
	case snap.Truncated: // cut short of the cap, as the online count shows
		note = " (truncated: more members are online than the API lists)"
	}
	fmt.Fprintf(stdout, "%d members in %s%s\n", len(members), *group, note)
	return nil
}

// apiExit maps an API error to the process exit code: configuration
// problems the API revealed exit 3, the rest 1.
func apiExit(err error) error {
	switch tencent.KindOf(err) {
	case tencent.KindFatalConfig, tencent.KindAuth:
		return &exitError{code: exitFatal, err: err}
	}
	return err
}
