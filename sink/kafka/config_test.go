package kafka

import (
	"testing"

	"github.com/rollcall-dev/rollcall/schema/config/configtest"
)

func TestConfigDefaultsAndOptions(t *testing.T) {
	c := Config{Brokers: []string{"h:1"}, Topic: "t", CreateTopic: &CreateTopicConfig{}}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeStructured || c.Compression != "none" {
		t.Errorf("defaults: mode %q compression %q", c.Mode, c.Compression)
	}
	// The file's create_topic: {} means one partition and one replica,
	// not CreateTopicOptions' zero (the broker's default).
	if ct := c.Options().CreateTopic; ct == nil || ct.Partitions != 1 || ct.ReplicationFactor != 1 {
		t.Errorf("create_topic: %+v", ct)
	}
}

func TestConfigValidateNamesTheKey(t *testing.T) {
	configtest.ValidateNamesTheKey(t, func() Config { return Config{Brokers: []string{"h:1"}, Topic: "t"} }, []configtest.Case[Config]{
		{Name: "compression", Mod: func(c *Config) { c.Compression = "brotli" }, Want: `compression: must be none, gzip, snappy, lz4 or zstd, got "brotli"`},
		{Name: "broker", Mod: func(c *Config) { c.Brokers = []string{"h:1", "h"} }, Want: `brokers[1]: must be host:port, got "h"`},
		{Name: "sasl", Mod: func(c *Config) { c.SASL = &SASLConfig{Mechanism: "plain", Username: "u"} }, Want: "sasl.password: required (or sasl.password_file)"},
		// From Validate, the sink's own rules.
		{Name: "topic rules", Mod: func(c *Config) { c.Topic = "a b" }, Want: `topic: "a b": only ASCII letters, digits, '.', '_' and '-' are allowed`},
		{Name: "write timeout", Mod: func(c *Config) { c.WriteTimeout = -1 }, Want: "write_timeout: must not be negative, got -1ns"},
	})
}
