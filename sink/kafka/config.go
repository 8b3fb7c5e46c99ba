package kafka

import (
	"time"

	"github.com/rollcall-dev/rollcall/schema/config"
)

// Config is a kafka sink's block of the configuration file. It differs
// from Options where the file does: the SASL password may come from a
// file, and create_topic defaults to one partition and one replica.
type Config struct {
	Brokers      []string           `yaml:"brokers"`
	Topic        string             `yaml:"topic"`
	Mode         string             `yaml:"mode"`
	Compression  string             `yaml:"compression"`
	BatchSize    int                `yaml:"batch_size"`
	BatchTimeout time.Duration      `yaml:"batch_timeout"`
	WriteTimeout time.Duration      `yaml:"write_timeout"`
	TLS          *TLSOptions        `yaml:"tls"`
	SASL         *SASLConfig        `yaml:"sasl"`
	CreateTopic  *CreateTopicConfig `yaml:"create_topic"`
}

// SASLConfig is the `sasl` block.
type SASLConfig struct {
	Mechanism    string        `yaml:"mechanism"`
	Username     string        `yaml:"username"`
	Password     config.Secret `yaml:"password"`
	PasswordFile string        `yaml:"password_file"`
}

// CreateTopicConfig is the `create_topic` block.
type CreateTopicConfig struct {
	Partitions  int `yaml:"partitions"`
	Replication int `yaml:"replication"`
}

// SetDefaults fills zero fields with what the sink would use anyway, so
// that the loaded configuration shows them.
//
// create_topic's zeros become 1, where CreateTopicOptions reads 0 as the
// broker's default: the file has always meant one partition and one
// replica, and changing that would change the topics rollcall creates.
func (c *Config) SetDefaults() {
	// New's own defaults, so the two cannot drift apart.
	o := Options{Mode: c.Mode, Compression: c.Compression}.withDefaults()
	c.Mode, c.Compression = o.Mode, o.Compression
	if t := c.CreateTopic; t != nil {
		if t.Partitions == 0 {
			t.Partitions = 1
		}
		if t.Replication == 0 {
			t.Replication = 1
		}
	}
}

// Validate checks c after SetDefaults and reads sasl.password_file into
// sasl.password. Errors are *config.FieldError relative to the sink's
// block; the checks here give the configuration file's wording, Validate
// (run last) everything else the sink would refuse at start.
func (c *Config) Validate() error {
	// What only the file has: readable TLS files, a password file, and
	// create_topic (whose zeros SetDefaults made 1) given as negatives.
	// The rest is the sink's own Validate, reported first error first.
	if c.TLS != nil {
		if err := c.TLS.CheckFiles(); err != nil {
			return err
		}
	}
	if s := c.SASL; s != nil {
		if err := config.ResolveSecret(&s.Password, s.PasswordFile, "sasl.password"); err != nil {
			return err
		}
	}
	if err := config.First(Validate(c.Options())); err != nil {
		return err
	}
	if t := c.CreateTopic; t != nil && (t.Partitions < 1 || t.Replication < 1) {
		return config.Errorf("create_topic", "partitions and replication must be positive")
	}
	return nil
}

// Options is the sink's configuration, without its logger and metrics.
func (c *Config) Options() Options {
	o := Options{
		Brokers: c.Brokers, Topic: c.Topic, Mode: c.Mode, Compression: c.Compression,
		BatchSize: c.BatchSize, BatchTimeout: c.BatchTimeout, WriteTimeout: c.WriteTimeout, TLS: c.TLS,
	}
	if s := c.SASL; s != nil {
		o.SASL = &SASLOptions{Mechanism: s.Mechanism, Username: s.Username, Password: string(s.Password)}
	}
	if t := c.CreateTopic; t != nil {
		o.CreateTopic = &CreateTopicOptions{Partitions: t.Partitions, ReplicationFactor: t.Replication}
	}
	return o
}
