package natsstore

import (
	"strconv"
	"strings"

	"github.com/rollcall-dev/rollcall/schema/groupid"
)

// Key is the KV key of a group's entry: "<sdkappid>.<stem>", where stem
// is groupid.FileStem(groupID) (lower-case base32hex, no padding, the
// state file's name without ".json"). The stem's alphabet is [0-9a-v], so
// every id — '.', '*', '>', white space, "@TGS#", non-ASCII included —
// gives a valid key, and no id can hold a '.' that would make its key
// look like another app's (or a chunk's). ParseKey reverses it.
//
// Chunks of a value too big for one message live under the group's key
// followed by ".c.<write id>.<n>"; they have four more tokens, so a
// listing of "<sdkappid>.*" sees only entries.
func Key(sdkappid uint64, groupID string) string {
	return strconv.FormatUint(sdkappid, 10) + "." + groupid.FileStem(groupID)
}

// ParseKey reverses Key; ok is false for a key Key does not produce
// (chunks included).
func ParseKey(key string) (sdkappid uint64, groupID string, ok bool) {
	app, stem, found := strings.Cut(key, ".")
	if !found {
		return 0, "", false
	}
	n, err := strconv.ParseUint(app, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != app {
		return 0, "", false
	}
	id, ok := groupid.ParseFileStem(stem)
	if !ok {
		return 0, "", false
	}
	return n, id, true
}
