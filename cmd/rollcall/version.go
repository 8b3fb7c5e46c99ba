package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at build time: go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
var (
	version = ""
	commit  = ""
)

// buildVersion returns the version and commit, falling back to what the Go
// toolchain recorded in the binary (module version, VCS revision) when
// -ldflags did not set them.
func buildVersion() (ver, rev string) {
	ver, rev = version, commit
	if info, ok := debug.ReadBuildInfo(); ok {
		if ver == "" && info.Main.Version != "" {
			ver = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && rev == "" {
				rev = s.Value
			}
		}
	}
	if ver == "" {
		ver = "(devel)"
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev
}

func cmdVersion(args []string, stdout io.Writer) error {
	fs := newFlagSet("version", io.Discard)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ver, rev := buildVersion()
	fmt.Fprintf(stdout, "rollcall %s (commit %s, %s %s/%s)\n", ver, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
