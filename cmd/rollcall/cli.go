package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes, documented in the README.
const (
	exitOK      = 0
	exitFailure = 1 // a poll or a sink failed (run --once), or a runtime error
	exitUsage   = 2 // bad flags or invalid configuration: nothing was called
	exitFatal   = 3 // the API rejected the configuration: wrong key, region, sdkappid, not an admin
	exitAbort   = 130
)

const usage = `rollcall: a change feed of Tencent Cloud Chat audio-video group members.

Usage:
  rollcall run --config FILE [--once] [--log-format json|console] [--log-level LEVEL]
  rollcall demo [--duration D]
  rollcall simulate --listen ADDR [--groups N] [--members N] [--churn D] [--sdkappid N] [--key-env VAR]
  rollcall snapshot --config FILE --group ID [--format json|table]
  rollcall usersig --sdkappid N --identifier ID (--key-env VAR | --key-file F) [--expire S] [--time UNIX]
  rollcall check --config FILE
  rollcall state list|show|forget|export|import --config FILE ...
  rollcall version

Run 'rollcall COMMAND -h' for a command's flags.
`

// usageError is a mistake on the command line: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	// run and demo handle signals themselves (drain on the first, exit on
	// the second, reload on SIGHUP); the other commands just stop.
	ctx, stop := context.Background(), func() {}
	if cmd := args[0]; cmd != "run" && cmd != "demo" {
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	}
	defer stop()
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		err = cmdRun(ctx, rest, stdout, stderr)
	case "demo":
		err = cmdDemo(ctx, rest, stdout, stderr)
	case "simulate":
		err = cmdSimulate(ctx, rest, stdout, stderr)
	case "snapshot":
		err = cmdSnapshot(ctx, rest, stdout, stderr)
	case "usersig":
		err = cmdUserSig(rest, stdout, stderr)
	case "check":
		err = cmdCheck(ctx, rest, stdout, stderr)
	case "state":
		err = cmdState(ctx, rest, stdout, stderr)
	case "version", "--version":
		err = cmdVersion(rest, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "rollcall: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	return exitCode(err, stderr)
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	fmt.Fprintf(stderr, "rollcall: %v\n", err)
	var ue usageError
	var ce *ConfigError
	var ee *exitError
	switch {
	case errors.As(err, &ue), errors.As(err, &ce):
		return exitUsage
	case errors.As(err, &ee):
		return ee.code
	}
	return exitFailure
}

// newFlagSet returns a FlagSet that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("rollcall "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}
