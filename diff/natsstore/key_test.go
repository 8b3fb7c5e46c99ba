package natsstore

import (
	"regexp"
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/schema/groupid"
)

// validKey is JetStream KV's rule for a key.
var validKey = regexp.MustCompile(`^[-/_=.A-Za-z0-9]+$`)

func checkKey(t *testing.T, app uint64, id string) {
	t.Helper()
	k := Key(app, id)
	if !validKey.MatchString(k) || strings.HasPrefix(k, ".") || strings.HasSuffix(k, ".") {
		t.Fatalf("Key(%d, %q) = %q: not a valid KV key", app, id, k)
	}
	if strings.Count(k, ".") != 1 {
		t.Fatalf("Key(%d, %q) = %q: want exactly one '.', between app and group", app, id, k)
	}
	gotApp, gotID, ok := ParseKey(k)
	if !ok || gotApp != app || gotID != id {
		t.Fatalf("ParseKey(%q) = %d, %q, %v; want %d, %q", k, gotApp, gotID, ok, app, id)
	}
}

func TestKeyRoundTrips(t *testing.T) {
	ids := []string{"@TGS#2abc", "a.b", "1.2", "*", ">", "a b", "群组-直播#1", "..", "%2F", "=", "-",
		strings.Repeat("z", groupid.MaxLen), strings.Repeat("群", groupid.MaxLen/3)}
	for _, id := range ids {
		if err := groupid.Validate(id); err != nil {
			t.Fatalf("test id %q invalid: %v", id, err)
		}
		for _, app := range []uint64{0, 1, 1400000000, ^uint64(0)} {
			checkKey(t, app, id)
		}
	}
	// A dot in one app's group id cannot make another app's key.
	if Key(1, "2.x") == Key(12, "x") || Key(1, "2.x") == Key(1, "2")+".x" {
		t.Fatal("keys collide across apps")
	}
}

func TestParseKeyRefusesForeignKeys(t *testing.T) {
	for _, k := range []string{"", "1", "x.abc", "01.c4", "1.C4", "1.c4.c.ab.0", "-1.c4", "1.", ".c4",
		"18446744073709551616.c4"} {
		if app, id, ok := ParseKey(k); ok {
			t.Errorf("ParseKey(%q) = %d, %q, true; want false", k, app, id)
		}
	}
}

func FuzzKey(f *testing.F) {
	f.Add(uint64(1400000000), "@TGS#a.room/1")
	f.Add(uint64(0), "群组 *>")
	f.Fuzz(func(t *testing.T, app uint64, id string) {
		if groupid.Validate(id) != nil {
			return
		}
		checkKey(t, app, id)
		// Injective: a different id or app never gives the same key.
		if Key(app+1, id) == Key(app, id) || Key(app, id+"x") == Key(app, id) {
			t.Fatal("collision")
		}
	})
}
