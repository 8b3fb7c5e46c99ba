package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestPrefixNamesTheWholeKey(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		err    error
		want   string
	}{
		{"sinks[1]", Errorf("compression", "bad"), "sinks[1].compression: bad"},
		{"sinks[0]", Errorf("brokers[2]", "bad"), "sinks[0].brokers[2]: bad"},
		{"sinks", Errorf("[3]", "bad"), "sinks[3]: bad"},
		{"sinks[0]", Errorf("", "no single key"), "sinks[0]: no single key"},
		{"tencent", errors.New("plain"), "tencent: plain"},
		// A joined Validate error: the first FieldError is reported.
		{"sinks[2]", errors.Join(Errorf("url[1]", "first"), Errorf("token", "second")), "sinks[2].url[1]: first"},
		{"", Errorf("poll", "x"), "poll: x"},
	} {
		err := Prefix(tc.prefix, tc.err)
		var fe *FieldError
		if !errors.As(err, &fe) || err.Error() != tc.want {
			t.Errorf("Prefix(%q, %v) = %v, want FieldError %q", tc.prefix, tc.err, err, tc.want)
		}
	}
	if Prefix("x", nil) != nil {
		t.Error("Prefix of nil is not nil")
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("hunter2")
	out, err := yaml.Marshal(struct{ S Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s %#v %+v", s, s, s, struct{ S Secret }{s}), string(out)} {
		if strings.Contains(o, "hunter2") {
			t.Fatalf("secret printed: %s", o)
		}
	}
	if Secret("").String() != "" {
		t.Error("an empty secret should print empty")
	}
}

func TestResolveSecret(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	if err := os.WriteFile(f, []byte("pw-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var s Secret
	if err := ResolveSecret(&s, f, "sasl.password"); err != nil || s != "pw-from-file" {
		t.Fatalf("ResolveSecret = %v, %q", err, string(s))
	}
	if err := ResolveSecret(&s, f, "sasl.password"); err == nil || err.Error() != "sasl.password: set password or password_file, not both" {
		t.Errorf("both set: %v", err)
	}
	var empty Secret
	if err := os.WriteFile(f, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := ResolveSecret(&empty, f, "token")
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "token_file" || !strings.Contains(fe.Msg, "is empty") {
		t.Errorf("empty file: %v", err)
	}
}

func TestStringList(t *testing.T) {
	var v struct{ L StringList }
	for in, want := range map[string]string{"l: a": "[a]", "l: [a, b]": "[a b]"} {
		if err := yaml.Unmarshal([]byte(in), &v); err != nil || fmt.Sprint(v.L) != want {
			t.Errorf("%q: %v %v, want %s", in, v.L, err, want)
		}
	}
}

func TestFirst(t *testing.T) {
	a, b := Errorf("a", "x"), Errorf("b", "y")
	if got := First(errors.Join(a, b)); got != a {
		t.Errorf("First(join) = %v, want %v", got, a)
	}
	if got := First(b); got != b {
		t.Errorf("First(b) = %v", got)
	}
	if First(nil) != nil {
		t.Error("First(nil) != nil")
	}
}

// ReadSecretFile trims only the line ending an editor or `echo` appends,
// CRLF included; spaces and inner newlines are part of the secret.
func TestReadSecretFileTrimsOnlyTheLineEnding(t *testing.T) {
	dir := t.TempDir()
	for in, want := range map[string]string{
		"pw\r\n":     "pw",
		"pw\n\n":     "pw",
		" pw \n":     " pw ",
		"p\nw\n":     "p\nw",
		"no-newline": "no-newline",
	} {
		f := filepath.Join(dir, "s")
		if err := os.WriteFile(f, []byte(in), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadSecretFile(f)
		if err != nil || string(got) != want {
			t.Errorf("ReadSecretFile(%q) = %q, %v; want %q", in, string(got), err, want)
		}
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing file should be named in the error: %v", err)
	}
}
