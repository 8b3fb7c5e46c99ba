package nats

import (
	"errors"
	"testing"

	"github.com/rollcall-dev/rollcall/schema/config"
)

func TestConfigDefaultsAreNews(t *testing.T) {
	var c Config
	c.URL = config.StringList{"nats://h:1"}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Options{}.withDefaults()
	if c.SubjectPrefix != want.SubjectPrefix || c.Stream.Name != want.Stream.Name {
		t.Errorf("defaults %q %q, want New's %q %q", c.SubjectPrefix, c.Stream.Name, want.SubjectPrefix, want.Stream.Name)
	}
	if o := c.Options(); o.Password != "" || o.URLs[0] != "nats://h:1" || o.Stream.Name != DefaultStreamName {
		t.Errorf("Options = %+v", o)
	}
}

func TestConfigValidateNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"prefix", func(c *Config) { c.SubjectPrefix = "a.*" }, `subject_prefix: must be dot-separated tokens of [A-Za-z0-9_-], got "a.*"`},
		{"create without js", func(c *Config) { c.Stream = &StreamOptions{Create: true} }, "stream.create: needs jetstream: true"},
		{"two ways", func(c *Config) { c.User, c.Password, c.Token = "u", "p", "t" }, "token: set one way to authenticate, not token and user"},
		{"token twice", func(c *Config) { c.Token, c.TokenFile = "t", "/x" }, "token: set token or token_file, not both"},
		// From Validate, the sink's own rules.
		{"url", func(c *Config) { c.URL = config.StringList{"nats://a:1", "http://b:1"} }, `url[1]: scheme "http": want nats, tls, ws or wss`},
		{"user alone", func(c *Config) { c.User = "u" }, "password: required with user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{URL: config.StringList{"nats://h:1"}}
			tc.mod(&c)
			c.SetDefaults()
			err := c.Validate()
			var fe *config.FieldError
			if !errors.As(err, &fe) || err.Error() != tc.want {
				t.Fatalf("Validate = %v, want the FieldError %q", err, tc.want)
			}
		})
	}
}
