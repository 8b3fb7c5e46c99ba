package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
)

// cmdUserSig prints a usersig for curl and debugging. The key comes from
// an environment variable or a file, never from the command line, where it
// would land in shell history and the process list.
func cmdUserSig(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("usersig", stderr)
	sdkappid := fs.Uint64("sdkappid", 0, "the app's SDKAppID (required)")
	identifier := fs.String("identifier", "", "the UserID to sign for, usually an App admin (required)")
	keyEnv := fs.String("key-env", "", "name of the environment variable holding the secret key")
	keyFile := fs.String("key-file", "", "file holding the secret key")
	expire := fs.Int64("expire", 86400, "lifetime in seconds")
	at := fs.Int64("time", 0, "signing time as unix seconds (default: now)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *sdkappid == 0 {
		return usageError{"usersig: --sdkappid is required"}
	}
	if *identifier == "" {
		return usageError{"usersig: --identifier is required"}
	}
	if (*keyEnv == "") == (*keyFile == "") {
		return usageError{"usersig: give exactly one of --key-env or --key-file"}
	}
	if *expire <= 0 {
		return usageError{"usersig: --expire must be positive"}
	}
	var key string
	if *keyEnv != "" {
		v, ok := os.LookupEnv(*keyEnv)
		if !ok || v == "" {
			return usageError{fmt.Sprintf("usersig: environment variable %s is not set", *keyEnv)}
		}
		key = v
	} else {
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return usageError{fmt.Sprintf("usersig: --key-file: %v", err)}
		}
		key = strings.TrimRight(string(b), "\r\n")
	}
	now := time.Now()
	if *at != 0 {
		now = time.Unix(*at, 0)
	}
	sig, err := usersig.Generate(*sdkappid, *identifier, key, *expire, now, nil)
	if err != nil {
		return usageError{fmt.Sprintf("usersig: %v", err)}
	}
	fmt.Fprintln(stdout, sig)
	return nil
}
