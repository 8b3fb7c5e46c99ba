package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGroupIDsAreValidated: groups.ids goes through groupid.Validate; the
// messages of the cases checked before it existed are unchanged.
func TestGroupIDsAreValidated(t *testing.T) {
	long := strings.Repeat("x", 61)
	cases := []struct{ ids, want string }{
		{`["a", ""]`, `config: groups.ids[1]: empty group id`},
		{`["  "]`, `config: groups.ids[0]: empty group id`},
		{`["a\u0000b"]`, `config: groups.ids[0]: group id contains a control character`},
		{`["a\r\nb"]`, `config: groups.ids[0]: group id contains a control character`},
		{`["tab\there"]`, `config: groups.ids[0]: group id contains a control character`},
		{`["a", "b", "c", "` + long + `"]`, `config: groups.ids[3]: group id is 61 bytes, longer than Tencent's limit of 48`},
		{`["@TGS#a", "@TGS#a"]`, `config: groups.ids[1]: duplicate group id "@TGS#a"`},
	}
	for _, tc := range cases {
		yaml := strings.Replace(minimalConfig, `["@TGS#a", "room-2"]`, tc.ids, 1)
		_, err := ParseConfig([]byte(yaml), env("KEY", "k"))
		if err == nil || err.Error() != tc.want {
			t.Errorf("ids %s: err = %v, want %q", tc.ids, err, tc.want)
		}
	}
	ok := strings.Replace(minimalConfig, `["@TGS#a", "room-2"]`, `["`+long[:48]+`", "直播 room"]`, 1)
	if _, err := ParseConfig([]byte(ok), env("KEY", "k")); err != nil {
		t.Errorf("48-byte and non-ASCII ids: %v", err)
	}
}

func TestTooLongGroupIDExitsWithUsage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rollcall.yaml")
	yaml := strings.Replace(minimalConfig, `"room-2"`, `"`+strings.Repeat("r", 49)+`"`, 1)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, "", []string{"KEY=k"}, "check", "--offline", "--config", path)
	const want = "groups.ids[1]: group id is 49 bytes, longer than Tencent's limit of 48"
	if r.code != exitUsage || !strings.Contains(r.stdout+r.stderr, want) {
		t.Fatalf("check --offline exited %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", r.code, exitUsage, want, r.stdout, r.stderr)
	}
}

func TestSnapshotRefusesAnInvalidGroupID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rollcall.yaml")
	if err := os.WriteFile(path, []byte(minimalConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{
		strings.Repeat("r", 49): "snapshot: --group: group id is 49 bytes, longer than Tencent's limit of 48",
		" ":                     "snapshot: --group: empty group id",
		"a\tb":                  "snapshot: --group: group id contains a control character",
	} {
		r := runCLI(t, "", []string{"KEY=k"}, "snapshot", "--config", path, "--group", id)
		if r.code != exitUsage || !strings.Contains(r.stderr, want) {
			t.Errorf("snapshot --group %q exited %d, want %d with %q\nstderr:\n%s", id, r.code, exitUsage, want, r.stderr)
		}
	}
}
