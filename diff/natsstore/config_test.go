package natsstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rollcall-dev/rollcall/schema/config"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{URL: []string{"nats://n1:4222"}}
	c.SetDefaults()
	if c.Bucket != "rollcall_state" || c.Replicas != 1 || c.Create {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidateNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    Config
		path string
	}{
		{Config{}, "url"},
		{Config{URL: []string{"http://x"}}, "url[0]"},
		{Config{URL: []string{"nats://x"}, Bucket: "a.b"}, "bucket"},
		{Config{URL: []string{"nats://x"}, Replicas: 6}, "replicas"},
		{Config{URL: []string{"nats://x"}, Replicas: -1}, "replicas"},
		{Config{URL: []string{"nats://x"}, User: "u"}, "password"},
		{Config{URL: []string{"nats://x"}, Password: "p"}, "user"},
		{Config{URL: []string{"nats://x"}, Token: "t", User: "u", Password: "p"}, "token"},
		{Config{URL: []string{"nats://x"}, Token: "t", TokenFile: pw}, "token"},
		{Config{URL: []string{"nats://x"}, PasswordFile: filepath.Join(dir, "none"), User: "u"}, "password_file"},
		{Config{URL: []string{"nats://x"}, CredsFile: filepath.Join(dir, "none")}, "creds_file"},
	} {
		tc.c.SetDefaults()
		err := tc.c.Validate()
		var fe *config.FieldError
		if !errors.As(err, &fe) || fe.Path != tc.path {
			t.Errorf("%+v: Validate = %v, want an error on %q", tc.c, err, tc.path)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	c := Config{URL: []string{"nats://x"}, User: "u", PasswordFile: pw}
	c.SetDefaults()
	if err := c.Validate(); err != nil || c.Password != "s3cret" {
		t.Fatalf("password_file: %v, %q", err, c.Password)
	}
}
