package kafka

import (
	"errors"
	"testing"

	"github.com/rollcall-dev/rollcall/schema/config"
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
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"compression", func(c *Config) { c.Compression = "brotli" }, `compression: must be none, gzip, snappy, lz4 or zstd, got "brotli"`},
		{"broker", func(c *Config) { c.Brokers = []string{"h:1", "h"} }, `brokers[1]: must be host:port, got "h"`},
		{"sasl", func(c *Config) { c.SASL = &SASLConfig{Mechanism: "plain", Username: "u"} }, "sasl.password: required (or sasl.password_file)"},
		// From Validate, the sink's own rules.
		{"topic rules", func(c *Config) { c.Topic = "a b" }, `topic: "a b": only ASCII letters, digits, '.', '_' and '-' are allowed`},
		{"write timeout", func(c *Config) { c.WriteTimeout = -1 }, "write_timeout: must not be negative, got -1ns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Brokers: []string{"h:1"}, Topic: "t"}
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
