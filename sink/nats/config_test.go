package nats

import (
	"testing"

	"github.com/rollcall-dev/rollcall/schema/config"
	"github.com/rollcall-dev/rollcall/schema/config/configtest"
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
	configtest.ValidateNamesTheKey(t, func() Config { return Config{URL: config.StringList{"nats://h:1"}} }, []configtest.Case[Config]{
		{Name: "prefix", Mod: func(c *Config) { c.SubjectPrefix = "a.*" }, Want: `subject_prefix: must be dot-separated tokens of [A-Za-z0-9_-], got "a.*"`},
		{Name: "create without js", Mod: func(c *Config) { c.Stream = &StreamOptions{Create: true} }, Want: "stream.create: needs jetstream: true"},
		{Name: "two ways", Mod: func(c *Config) { c.User, c.Password, c.Token = "u", "p", "t" }, Want: "token: set one way to authenticate, not token and user"},
		{Name: "token twice", Mod: func(c *Config) { c.Token, c.TokenFile = "t", "/x" }, Want: "token: set token or token_file, not both"},
		{Name: "creds file", Mod: func(c *Config) { c.CredsFile = "/nonexistent/creds" }, Want: "creds_file: stat /nonexistent/creds: no such file or directory"},
		{Name: "nkey file", Mod: func(c *Config) { c.NKeyFile = "/nonexistent/nkey" }, Want: "nkey_file: stat /nonexistent/nkey: no such file or directory"},
		// From Validate, the sink's own rules.
		{Name: "url", Mod: func(c *Config) { c.URL = config.StringList{"nats://a:1", "http://b:1"} }, Want: `url[1]: scheme "http": want nats, tls, ws or wss`},
		{Name: "user alone", Mod: func(c *Config) { c.User = "u" }, Want: "password: required with user"},
	})
}
