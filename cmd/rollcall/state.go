package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/diff/filestore"
	"github.com/rollcall-dev/rollcall/schema/groupid"
)

// The `rollcall state` commands let an operator see, remove and move the
// records of the configured store. They use only diff.Store, diff.Lister
// and diff.Forgetter, so every driver openStore opens serves them.

const stateUsage = `Usage:
  rollcall state list   --config FILE [--json]
  rollcall state show   --config FILE --group ID [--app NAME]
  rollcall state forget --config FILE --group ID [--app NAME]
  rollcall state export --config FILE [--out FILE]
  rollcall state import --config FILE [--in FILE] [--overwrite]

Run 'rollcall state SUBCOMMAND -h' for a subcommand's flags.
`

// cmdState dispatches `rollcall state SUBCOMMAND`.
func cmdState(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, stateUsage)
		return usageError{"state: a subcommand is required"}
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "list":
		return cmdStateList(ctx, rest, stdout, stderr)
	case "show":
		return cmdStateShow(ctx, rest, stdout, stderr)
	case "forget":
		return cmdStateForget(ctx, rest, stdout, stderr)
	case "export":
		return cmdStateExport(ctx, rest, stdout, stderr)
	case "import":
		return cmdStateImport(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, stateUsage)
		return nil
	default:
		fmt.Fprint(stderr, stateUsage)
		return usageError{fmt.Sprintf("state: unknown subcommand %q", sub)}
	}
}

// stateApp is an app whose groups the state commands reach.
type stateApp struct {
	Name     string
	SDKAppID uint64
}

// defaultAppName names the app of the top-level tencent section.
const defaultAppName = "default"

// stateApps lists the configured apps. Today that is the one app of the
// top-level tencent section; a list of apps adds its entries here.
func stateApps(cfg *Config) []stateApp {
	return []stateApp{{Name: defaultAppName, SDKAppID: cfg.Tencent.SDKAppID}}
}

// selectApp returns the app --app names, by name or by sdkappid. No name
// selects the only app, and is an error when several are configured.
func selectApp(cfg *Config, name string) (stateApp, error) {
	apps := stateApps(cfg)
	if name == "" {
		if len(apps) == 1 {
			return apps[0], nil
		}
		return stateApp{}, usageError{fmt.Sprintf("--app is required: %d apps are configured (%s)", len(apps), appNames(apps))}
	}
	for _, a := range apps {
		if name == a.Name || name == strconv.FormatUint(a.SDKAppID, 10) {
			return a, nil
		}
	}
	return stateApp{}, usageError{fmt.Sprintf("--app %q: no such app; configured: %s", name, appNames(apps))}
}

// appStore is the store of app's groups. Today the store holds the one
// app's; a store shared by several apps gives each its own view here.
func appStore(st stateStore, _ stateApp) stateStore { return st }

// appOf returns the configured app with the sdkappid.
func appOf(cfg *Config, sdkappid uint64) (stateApp, bool) {
	for _, a := range stateApps(cfg) {
		if a.SDKAppID == sdkappid {
			return a, true
		}
	}
	return stateApp{}, false
}

func appNames(apps []stateApp) string {
	names := make([]string, len(apps))
	for i, a := range apps {
		names[i] = fmt.Sprintf("%s (sdkappid %d)", a.Name, a.SDKAppID)
	}
	return strings.Join(names, ", ")
}

// openStateStore loads the configuration and opens its store, as `run`
// does: an invalid configuration is a *ConfigError (exit 2).
func openStateStore(ctx context.Context, path string, stderr io.Writer) (*Config, stateStore, error) {
	cfg, err := LoadConfig(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := openConfiguredStore(ctx, cfg, stderr)
	return cfg, st, err
}

// openConfiguredStore opens cfg's store; a file store that a daemon holds
// says so.
func openConfiguredStore(ctx context.Context, cfg *Config, stderr io.Writer) (stateStore, error) {
	logger, err := newLogger(cfg.Log.Format, cfg.Log.Level, stderr)
	if err != nil {
		return nil, err
	}
	if cfg.State.Driver == filestore.DriverMemory {
		fmt.Fprintln(stderr, "rollcall: note: state.driver is memory: this process starts with an empty store and nothing it writes outlives it")
	}
	st, err := openStore(ctx, cfg, logger)
	if errors.Is(err, filestore.ErrLocked) {
		// The file driver's lock: the daemon owns the directory.
		return nil, fmt.Errorf("%w: is rollcall running over it? Stop it first: the state commands need the directory to themselves", err)
	}
	return st, err
}

// openAppStore is openStateStore for the commands that take --app, which
// is checked before the store is opened.
func openAppStore(ctx context.Context, path, appName string, stderr io.Writer) (*Config, stateApp, stateStore, error) {
	cfg, err := LoadConfig(path)
	if err != nil {
		return nil, stateApp{}, nil, err
	}
	app, err := selectApp(cfg, appName)
	if err != nil {
		return nil, stateApp{}, nil, err
	}
	st, err := openConfiguredStore(ctx, cfg, stderr)
	return cfg, app, st, err
}

// stateFormat is the version of the record format of `state show`,
// `state export` and `state import` (the "format" field of each record).
// A change that an older rollcall would misread gets a new number; import
// refuses numbers it does not know.
const stateFormat = 1

// stateRecord is one group's record: its committed state and its outbox
// (a batch not yet acknowledged by every sink), each null when absent.
// State is the State JSON as the stores keep it; Outbox is diff.Pending's.
// Revision is the store's revision when read, for information: import
// ignores it (the target store has its own).
type stateRecord struct {
	Format   int           `json:"format"`
	App      uint64        `json:"app"`
	GroupID  string        `json:"group_id"`
	Revision diff.Revision `json:"revision,omitempty"`
	State    *diff.State   `json:"state"`
	Outbox   *diff.Pending `json:"outbox"`
}

// recordOf splits what Store.Load returned into state and outbox.
func recordOf(app stateApp, groupID string, s *diff.State, rev diff.Revision) stateRecord {
	r := stateRecord{Format: stateFormat, App: app.SDKAppID, GroupID: groupID, Revision: rev}
	if s == nil {
		return r
	}
	r.Outbox = s.Pending
	if !outboxOnly(s) {
		c := *s
		c.Pending = nil
		r.State = &c
	}
	return r
}

// outboxOnly reports whether s is what Load returns for an outbox with no
// committed state (diff.OutboxOnly): a committed state always has an
// observation time.
func outboxOnly(s *diff.State) bool {
	return s.Pending != nil && s.ObservedAt.IsZero() && !s.Dismissed && len(s.Members) == 0
}

// stateRow is one line of `state list --json`.
type stateRow struct {
	App          uint64    `json:"app"`
	GroupID      string    `json:"group_id"`
	ObservedAt   time.Time `json:"observed_at,omitzero"`
	Members      int       `json:"members"`
	OutOfView    int       `json:"out_of_view"`
	Dismissed    bool      `json:"dismissed"`
	OutboxEvents int       `json:"outbox_events"`
}

func rowOf(app stateApp, groupID string, s *diff.State) stateRow {
	r := stateRow{App: app.SDKAppID, GroupID: groupID}
	if s == nil {
		return r
	}
	if s.SDKAppID != 0 {
		r.App = s.SDKAppID // as stored
	}
	r.ObservedAt, r.Members, r.Dismissed = s.ObservedAt, len(s.Members), s.Dismissed
	for _, m := range s.Members {
		if m.OutOfView {
			r.OutOfView++
		}
	}
	if s.Pending != nil {
		r.OutboxEvents = len(s.Pending.Events)
	}
	return r
}

func cmdStateList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("state list", stderr)
	path := fs.String("config", "", "configuration file (required)")
	asJSON := fs.Bool("json", false, "print JSON Lines, one object per group, instead of a table")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageError{"state list: --config is required"}
	}
	cfg, st, err := openStateStore(ctx, *path, stderr)
	if err != nil {
		return err
	}
	defer st.Close()

	out := bufio.NewWriter(stdout)
	enc := json.NewEncoder(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "GROUP_ID\tSDKAPPID\tOBSERVED_AT\tMEMBERS\tOUT_OF_VIEW\tDISMISSED\tOUTBOX")
	}
	// A group that cannot be read is reported and the others listed: the
	// list is how an operator finds the broken one.
	var failed []string
	for _, app := range stateApps(cfg) {
		ast := appStore(st, app)
		ids, err := ast.List(ctx)
		if err != nil {
			return fmt.Errorf("state list: %w", err)
		}
		for _, id := range ids {
			s, _, err := ast.Load(ctx, id)
			if err != nil {
				fmt.Fprintf(stderr, "rollcall: state list: %v\n", err)
				failed = append(failed, id)
				continue
			}
			r := rowOf(app, id, s)
			if *asJSON {
				if err := enc.Encode(r); err != nil {
					return err
				}
				continue
			}
			at, outbox := "-", "-"
			if !r.ObservedAt.IsZero() {
				at = r.ObservedAt.UTC().Format(time.RFC3339)
			}
			if r.OutboxEvents > 0 {
				outbox = fmt.Sprintf("%d events", r.OutboxEvents)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\n", r.GroupID, r.App, at, r.Members, r.OutOfView, yesNo(r.Dismissed), outbox)
		}
	}
	if !*asJSON {
		tw.Flush()
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("state list: %d group(s) could not be read: %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

func groupCount(n int) string {
	if n == 1 {
		return "1 group"
	}
	return fmt.Sprintf("%d groups", n)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// groupFlags parses the flags of show and forget.
func groupFlags(name string, args []string, stderr io.Writer) (path, group, app string, err error) {
	fs := newFlagSet(name, stderr)
	fs.StringVar(&path, "config", "", "configuration file (required)")
	fs.StringVar(&group, "group", "", "group id (required)")
	fs.StringVar(&app, "app", "", "the app of the group: its name or sdkappid (default: the only app)")
	if err := parseFlags(fs, args); err != nil {
		return "", "", "", err
	}
	if path == "" || group == "" {
		return "", "", "", usageError{name + ": --config and --group are required"}
	}
	if err := groupid.Validate(group); err != nil {
		return "", "", "", usageError{name + ": --group: " + err.Error()}
	}
	return path, group, app, nil
}

func cmdStateShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	path, group, appName, err := groupFlags("state show", args, stderr)
	if err != nil {
		return err
	}
	_, app, st, err := openAppStore(ctx, path, appName, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	s, rev, err := appStore(st, app).Load(ctx, group)
	if err != nil {
		return fmt.Errorf("state show: %w", err)
	}
	if s == nil {
		return fmt.Errorf("state show: no state stored for group %s (sdkappid %d)", group, app.SDKAppID)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(recordOf(app, group, s, rev))
}

func cmdStateForget(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	path, group, appName, err := groupFlags("state forget", args, stderr)
	if err != nil {
		return err
	}
	cfg, app, st, err := openAppStore(ctx, path, appName, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	ast := appStore(st, app)
	f, ok := ast.(diff.Forgetter)
	if !ok {
		return fmt.Errorf("state forget: the %s state driver cannot remove a group", cfg.State.Driver)
	}
	// Read first, to say what goes. An unreadable record is removed all
	// the same: forgetting is how an operator gets rid of it.
	s, _, loadErr := ast.Load(ctx, group)
	if loadErr == nil && s == nil {
		fmt.Fprintf(stdout, "no state stored for group %s (sdkappid %d): nothing to forget\n", group, app.SDKAppID)
		return nil
	}
	if err := f.Forget(ctx, group); err != nil {
		return fmt.Errorf("state forget: %w", err)
	}
	what := "an unreadable record (" + errString(loadErr) + ")"
	if loadErr == nil {
		what = describe(s)
	}
	fmt.Fprintf(stdout, "forgot group %s (sdkappid %d): %s\n", group, app.SDKAppID, what)
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// describe says what a group's record holds, in a line.
func describe(s *diff.State) string {
	var parts []string
	if !outboxOnly(s) {
		p := fmt.Sprintf("state observed at %s, %d members", s.ObservedAt.UTC().Format(time.RFC3339), len(s.Members))
		if s.Dismissed {
			p += ", dismissed"
		}
		parts = append(parts, p)
	}
	if s.Pending != nil {
		parts = append(parts, fmt.Sprintf("an outbox of %d unacknowledged events", len(s.Pending.Events)))
	}
	return strings.Join(parts, "; ")
}

func cmdStateExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("state export", stderr)
	path := fs.String("config", "", "configuration file (required)")
	outPath := fs.String("out", "", "write to this file (replaced only once the export is whole) instead of stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageError{"state export: --config is required"}
	}
	cfg, st, err := openStateStore(ctx, *path, stderr)
	if err != nil {
		return err
	}
	defer st.Close()

	w, commit, abort, err := exportTarget(*outPath, stdout)
	if err != nil {
		return fmt.Errorf("state export: %w", err)
	}
	n, err := exportState(ctx, st, stateApps(cfg), w)
	if err == nil {
		err = commit()
	}
	if err != nil {
		abort()
		return fmt.Errorf("state export: %w", err)
	}
	dest := "stdout"
	if *outPath != "" {
		dest = *outPath
	}
	fmt.Fprintf(stderr, "exported %s to %s\n", groupCount(n), dest)
	return nil
}

// exportTarget returns where an export goes: stdout, or a temporary file
// beside path that commit renames over it, so that a failed export never
// leaves a file that looks whole.
func exportTarget(path string, stdout io.Writer) (w io.Writer, commit func() error, abort func(), err error) {
	if path == "" {
		bw := bufio.NewWriter(stdout)
		return bw, bw.Flush, func() { bw.Flush() }, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, nil, nil, err
	}
	bw := bufio.NewWriter(f)
	commit = func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(f.Name(), path)
	}
	abort = func() {
		f.Close()
		os.Remove(f.Name())
	}
	return bw, commit, abort, nil
}

// exportState writes one record per group with a record, as JSON Lines,
// in a stable order: apps as configured, groups sorted. It stops at the
// first group it cannot read: an export must not silently miss one.
func exportState(ctx context.Context, st stateStore, apps []stateApp, w io.Writer) (int, error) {
	enc := json.NewEncoder(w)
	n := 0
	for _, app := range apps {
		ast := appStore(st, app)
		ids, err := ast.List(ctx)
		if err != nil {
			return n, err
		}
		for _, id := range ids {
			s, rev, err := ast.Load(ctx, id)
			if err != nil {
				return n, err
			}
			if s == nil {
				continue // forgotten since List
			}
			if err := enc.Encode(recordOf(app, id, s, rev)); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func cmdStateImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("state import", stderr)
	path := fs.String("config", "", "configuration file (required)")
	inPath := fs.String("in", "", "read from this file instead of stdin")
	overwrite := fs.Bool("overwrite", false, "replace the records of groups that have one (default: refuse the import)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageError{"state import: --config is required"}
	}
	cfg, st, err := openStateStore(ctx, *path, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	var in io.Reader = os.Stdin
	if *inPath != "" {
		f, err := os.Open(*inPath)
		if err != nil {
			return fmt.Errorf("state import: %w", err)
		}
		defer f.Close()
		in = f
	}
	res, err := importState(ctx, st, cfg, in, *overwrite)
	if err != nil {
		return fmt.Errorf("state import: %w", err)
	}
	fmt.Fprintf(stdout, "imported %s (%d new, %d replaced)\n", groupCount(res.created+res.replaced), res.created, res.replaced)
	return nil
}

// importLine is a validated record, its app and the line it came from.
type importLine struct {
	line int
	app  stateApp
	rec  stateRecord
}

type importResult struct{ created, replaced int }

// importState reads records written by exportState into st. It reads and
// checks the whole input first, then which groups already have a record:
// a bad line, or a group with a record without overwrite, stops the
// import before anything is written. A group with no record is created
// from revision 0 (the state, then the outbox: Save clears an outbox), so
// a store that is written meanwhile refuses it as a conflict.
func importState(ctx context.Context, st stateStore, cfg *Config, in io.Reader, overwrite bool) (importResult, error) {
	lines, err := readRecords(cfg, in)
	if err != nil {
		return importResult{}, err
	}
	bases := make([]diff.Revision, len(lines))
	exists := make([]bool, len(lines))
	var taken []string
	for i, l := range lines {
		ast := appStore(st, l.app)
		s, rev, err := ast.Load(ctx, l.rec.GroupID)
		if err != nil {
			return importResult{}, fmt.Errorf("line %d: %w", l.line, err)
		}
		bases[i], exists[i] = rev, s != nil
		if !exists[i] {
			continue
		}
		taken = append(taken, fmt.Sprintf("%s (line %d)", l.rec.GroupID, l.line))
		// Replacing a state by an outbox alone removes the state first.
		if _, ok := ast.(diff.Forgetter); overwrite && l.rec.State == nil && !ok {
			return importResult{}, fmt.Errorf("line %d: group %s: replacing its state by an outbox alone needs a driver that can remove a group; the %s driver cannot",
				l.line, l.rec.GroupID, cfg.State.Driver)
		}
	}
	if len(taken) > 0 && !overwrite {
		return importResult{}, fmt.Errorf("%d group(s) already have state: %s; nothing was imported (--overwrite replaces them)",
			len(taken), strings.Join(taken, ", "))
	}
	var res importResult
	for i, l := range lines {
		if err := importRecord(ctx, appStore(st, l.app), l.rec, bases[i], exists[i]); err != nil {
			return res, fmt.Errorf("line %d: group %s: %w (%d groups imported before it)", l.line, l.rec.GroupID, err, res.created+res.replaced)
		}
		if exists[i] {
			res.replaced++
		} else {
			res.created++
		}
	}
	return res, nil
}

// importRecord writes one group's record at base, the revision of what is
// stored (0: nothing).
func importRecord(ctx context.Context, st stateStore, rec stateRecord, base diff.Revision, exists bool) error {
	var err error
	switch {
	case rec.State != nil:
		if base, err = st.Save(ctx, rec.State, base); err != nil {
			return err
		}
	case exists:
		if err := st.(diff.Forgetter).Forget(ctx, rec.GroupID); err != nil { // checked by importState
			return err
		}
		base = 0
	}
	if rec.Outbox != nil {
		if _, err := st.SaveOutbox(ctx, rec.GroupID, rec.Outbox, base); err != nil {
			return err
		}
	}
	return nil
}

// readRecords reads and checks every line of in; blank lines are skipped.
func readRecords(cfg *Config, in io.Reader) ([]importLine, error) {
	r := bufio.NewReader(in)
	var out []importLine
	seen := make(map[string]int) // app/group → line
	for n := 1; ; n++ {
		b, err := r.ReadBytes('\n') // no line limit: a big group's state is megabytes
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read line %d: %w", n, err)
		}
		if len(bytes.TrimSpace(b)) > 0 {
			rec, app, verr := decodeRecord(cfg, b)
			if verr != nil {
				return nil, fmt.Errorf("line %d: %w", n, verr)
			}
			key := strconv.FormatUint(rec.App, 10) + "/" + rec.GroupID
			if first, dup := seen[key]; dup {
				return nil, fmt.Errorf("line %d: group %s again (first on line %d)", n, rec.GroupID, first)
			}
			seen[key] = n
			out = append(out, importLine{line: n, app: app, rec: rec})
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
	}
}

// decodeRecord decodes one line strictly and checks that it is a record
// of a configured app.
func decodeRecord(cfg *Config, b []byte) (stateRecord, stateApp, error) {
	var rec stateRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return rec, stateApp{}, fmt.Errorf("not a state record: %w", err)
	}
	if dec.More() {
		return rec, stateApp{}, errors.New("not a state record: more than one JSON value on the line")
	}
	app, err := checkRecord(cfg, rec)
	return rec, app, err
}

func checkRecord(cfg *Config, rec stateRecord) (stateApp, error) {
	switch {
	case rec.Format != stateFormat:
		return stateApp{}, fmt.Errorf("format %d; this rollcall reads format %d", rec.Format, stateFormat)
	case rec.GroupID == "":
		return stateApp{}, errors.New("no group_id")
	}
	if err := groupid.Validate(rec.GroupID); err != nil {
		return stateApp{}, fmt.Errorf("group_id %q: %w", rec.GroupID, err)
	}
	app, ok := appOf(cfg, rec.App)
	if !ok {
		return stateApp{}, fmt.Errorf("group %s: app %d is not configured (%s)", rec.GroupID, rec.App, appNames(stateApps(cfg)))
	}
	if rec.State == nil && rec.Outbox == nil {
		return stateApp{}, fmt.Errorf("group %s: neither state nor outbox", rec.GroupID)
	}
	if err := checkImported("state", rec.State, rec); err != nil {
		return stateApp{}, err
	}
	if rec.Outbox != nil {
		if err := rec.Outbox.Check(rec.GroupID); err != nil {
			return stateApp{}, fmt.Errorf("group %s: outbox: %w", rec.GroupID, err)
		}
		if err := checkImported("outbox.next", rec.Outbox.Next, rec); err != nil {
			return stateApp{}, err
		}
	}
	return app, nil
}

// checkImported checks a state of the record (nil passes).
func checkImported(field string, s *diff.State, rec stateRecord) error {
	switch {
	case s == nil:
		return nil
	case s.Version != diff.StateVersion:
		return fmt.Errorf("group %s: %s: version %d; this rollcall reads %d", rec.GroupID, field, s.Version, diff.StateVersion)
	case s.GroupID != rec.GroupID:
		return fmt.Errorf("group %s: %s: holds group %q", rec.GroupID, field, s.GroupID)
	case s.SDKAppID != rec.App:
		return fmt.Errorf("group %s: %s: holds sdkappid %d, the record's app is %d", rec.GroupID, field, s.SDKAppID, rec.App)
	}
	return nil
}
