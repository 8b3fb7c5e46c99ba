package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rollcall-dev/rollcall/diff"
	"github.com/rollcall-dev/rollcall/diff/filestore"
	"github.com/rollcall-dev/rollcall/diff/natsstore"
	"github.com/rollcall-dev/rollcall/poller"
	"github.com/rollcall-dev/rollcall/poller/tencent"
	"github.com/rollcall-dev/rollcall/schema/config"
	"github.com/rollcall-dev/rollcall/schema/groupid"
	"github.com/rollcall-dev/rollcall/sink"
	"github.com/rollcall-dev/rollcall/sink/kafka"
	"github.com/rollcall-dev/rollcall/sink/nats"
)

// Config is the whole configuration file. Each section is the
// configuration of the package that uses it, which owns its keys,
// defaults and checks; this file decodes the YAML into them and composes.
// The YAML key names are rollcall's public interface and are documented
// in the README and deploy/rollcall.example.yaml.
type Config struct {
	Tencent         TencentConfig `yaml:"tencent"`
	Groups          GroupsConfig  `yaml:"groups"`
	Poll            PollConfig    `yaml:"poll"`
	State           StateConfig   `yaml:"state"`
	Sinks           []SinkConfig  `yaml:"sinks"`
	Shard           ShardConfig   `yaml:"shard"`
	HTTP            HTTPConfig    `yaml:"http"`
	Log             LogConfig     `yaml:"log"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// TencentConfig is the `tencent` section.
type TencentConfig struct {
	tencent.Config `yaml:",inline"`
	// requestTimeoutDefault is set when RequestTimeout was derived from
	// poll.interval rather than written: a reload that changes only the
	// interval has not changed the tencent section.
	requestTimeoutDefault bool
}

// GroupsConfig is the `groups` section.
type GroupsConfig struct {
	IDs  []string `yaml:"ids"`
	Mark *int64   `yaml:"mark"`
	// Exclude are ids never watched, listed or not (discover.go).
	Exclude  []string        `yaml:"exclude"`
	Discover *DiscoverConfig `yaml:"discover"`
}

// StateConfig is the `state` section: the store — file or memory
// (filestore), or a JetStream KV bucket (natsstore) — and how often the
// detector writes what quiet polls change (diff).
type StateConfig struct {
	filestore.Config      `yaml:",inline"` // driver, path
	NATS                  natsstore.Config `yaml:",inline"` // url, bucket, create, replicas, auth, tls
	diff.CheckpointConfig `yaml:",inline"` // checkpoint_interval
}

// PollConfig is the `poll` section; each package reads its part.
type PollConfig struct {
	poller.Config       `yaml:",inline"` // interval, concurrency
	tencent.PollConfig  `yaml:",inline"` // member_cap, confirm_departures
	diff.BaselineConfig `yaml:",inline"` // baseline
}

func (p *PollConfig) setDefaults() {
	p.Config.SetDefaults()
	p.PollConfig.SetDefaults()
	p.BaselineConfig.SetDefaults()
}

// HTTPConfig is the `http` section. Listen is a pointer so that an
// explicit empty value (disable the server) differs from an absent one.
type HTTPConfig struct {
	Listen *string `yaml:"listen"`
	// PProf serves net/http/pprof under /debug/pprof/ on the same
	// listener: off by default, as profiles show internals to whoever can
	// reach the port.
	PProf bool `yaml:"pprof"`
}

// LogConfig is the `log` section.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// SinkConfig is one entry of `sinks`: type, name and retry, plus the block
// of its type, of which exactly one is set.
type SinkConfig struct {
	Type  string            `yaml:"type"`
	Name  string            `yaml:"name"`
	Retry *sink.RetryConfig `yaml:"retry"`

	Stdout *sink.StdoutConfig `yaml:"-"`
	File   *sink.FileConfig   `yaml:"-"`
	Kafka  *kafka.Config      `yaml:"-"`
	NATS   *nats.Config       `yaml:"-"`
}

// sinkTypes are the sink types; each sets and returns the block its keys
// decode into. The set is small and closed, so a map beats a registry.
var sinkTypes = map[string]func(*SinkConfig) any{
	"stdout": func(s *SinkConfig) any { s.Stdout = &sink.StdoutConfig{}; return s.Stdout },
	"file":   func(s *SinkConfig) any { s.File = &sink.FileConfig{}; return s.File },
	"kafka":  func(s *SinkConfig) any { s.Kafka = &kafka.Config{}; return s.Kafka },
	"nats":   func(s *SinkConfig) any { s.NATS = &nats.Config{}; return s.NATS },
}

// KeyBlocks implements config.Blocks: a sink entry takes the keys of its
// type's block; one of an unknown type, which validate reports, those of
// every type.
func (*SinkConfig) KeyBlocks(n *yaml.Node) []any {
	typ := sinkTypeOf(n)
	var blocks []any
	for name, newBlock := range sinkTypes {
		if _, known := sinkTypes[typ]; !known || name == typ {
			blocks = append(blocks, newBlock(&SinkConfig{}))
		}
	}
	return blocks
}

// UnmarshalYAML decodes the common keys, and the same mapping into the
// block of the sink's type. Unknown keys were refused before, by
// config.Decode.
func (s *SinkConfig) UnmarshalYAML(n *yaml.Node) error {
	type sinkConfig = SinkConfig
	// Without this method, and named so that yaml's "cannot unmarshal
	// !!str into main.SinkConfig" reads as before.
	type SinkConfig sinkConfig
	parts := []any{(*SinkConfig)(s)}
	if newBlock, ok := sinkTypes[sinkTypeOf(n)]; ok {
		parts = append(parts, newBlock((*sinkConfig)(s)))
	}
	return config.DecodeInto(n, parts...)
}

// sinkTypeOf is the value of a sink entry's type key, "" if none.
func sinkTypeOf(n *yaml.Node) string {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "type" {
			return n.Content[i+1].Value
		}
	}
	return ""
}

// block is the sink's type-specific configuration, nil for an unknown type.
func (s *SinkConfig) block() any {
	switch {
	case s.Stdout != nil:
		return s.Stdout
	case s.File != nil:
		return s.File
	case s.Kafka != nil:
		return s.Kafka
	case s.NATS != nil:
		return s.NATS
	}
	return nil
}

// DisplayName is the sink's name in logs and metrics.
func (s *SinkConfig) DisplayName() string {
	if s.Name != "" {
		return s.Name
	}
	return s.Type
}

// Defaults of the sections that belong to the command itself.
const (
	defaultHTTPListen      = "127.0.0.1:9464"
	defaultShutdownTimeout = 30 * time.Second
)

// ConfigError is an invalid configuration; Key is the dotted YAML path.
type ConfigError struct {
	Key string
	Msg string
}

func (e *ConfigError) Error() string {
	if e.Key == "" {
		return "config: " + e.Msg
	}
	return "config: " + e.Key + ": " + e.Msg
}

func cfgErr(key, format string, args ...any) error {
	return &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// fieldErr places a package's Validate error under the section at key.
func fieldErr(key string, err error) error {
	if err == nil {
		return nil
	}
	var fe *config.FieldError
	errors.As(config.Prefix(key, err), &fe)
	return &ConfigError{Key: fe.Path, Msg: fe.Msg}
}

// LoadConfig reads, expands, strictly decodes, defaults and validates the
// configuration file at path. Every error is a *ConfigError naming its key
// (or the file). It performs no network I/O.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{Msg: err.Error()}
	}
	return ParseConfig(b, os.LookupEnv)
}

// ParseConfig is LoadConfig on bytes, with an injectable environment.
func ParseConfig(b []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	var c Config
	if err := config.Decode(b, &c, lookupEnv); err != nil {
		return nil, fieldErr("", err)
	}
	c.setDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// setDefaults fills what the file leaves out, except the request timeout
// that validate derives from the poll interval.
func (c *Config) setDefaults() {
	c.Tencent.SetDefaults()
	c.Poll.setDefaults()
	c.State.setDefaults()
	c.Shard.SetDefaults()
	for i := range c.Sinks {
		s := &c.Sinks[i]
		if s.Retry == nil {
			s.Retry = &sink.RetryConfig{}
		}
		s.Retry.SetDefaults()
		if d, ok := s.block().(interface{ SetDefaults() }); ok {
			d.SetDefaults()
		}
	}
	if c.HTTP.Listen == nil {
		l := defaultHTTPListen
		c.HTTP.Listen = &l
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = defaultShutdownTimeout
	}
}

// validate checks c after setDefaults, section by section, and reads the
// secret files. The first problem is returned as a *ConfigError.
func (c *Config) validate() error {
	if err := c.Tencent.Validate(); err != nil {
		return fieldErr("tencent", err)
	}
	if err := c.Groups.validate(); err != nil {
		return err
	}
	if err := c.Poll.Config.Validate(); err != nil {
		return fieldErr("poll", err)
	}
	derived, err := c.Tencent.FitPollInterval(c.Poll.Interval)
	if err != nil {
		return fieldErr("tencent", err)
	}
	c.Tencent.requestTimeoutDefault = derived
	if err := errors.Join(c.Poll.PollConfig.Validate(), c.Poll.BaselineConfig.Validate()); err != nil {
		return fieldErr("poll", err)
	}
	if err := c.State.validate(); err != nil {
		return fieldErr("state", err)
	}
	if err := c.validateShard(); err != nil {
		return err
	}
	if err := c.validateSinks(); err != nil {
		return err
	}
	if l := *c.HTTP.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			return cfgErr("http.listen", "must be host:port or empty to disable, got %q", l)
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return cfgErr("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		return cfgErr("log.format", "must be json or console, got %q", c.Log.Format)
	}
	if c.ShutdownTimeout < 0 {
		return cfgErr("shutdown_timeout", "must be positive")
	}
	return nil
}

// validateGroupIDs checks groups.ids: at least one, each a usable id,
// none twice.
func validateGroupIDs(ids []string) error {
	if len(ids) == 0 {
		return cfgErr("groups.ids", "at least one group id is required")
	}
	return validateIDList("groups.ids", ids)
}

// validateIDList checks each id of the list at key: valid, and once.
func validateIDList(key string, ids []string) error {
	seen := map[string]bool{}
	for i, id := range ids {
		key := fmt.Sprintf("%s[%d]", key, i)
		if err := groupid.Validate(id); err != nil {
			return cfgErr(key, "%v", err)
		}
		if seen[id] {
			return cfgErr(key, "duplicate group id %q", id)
		}
		seen[id] = true
	}
	return nil
}

func (c *Config) validateSinks() error {
	if len(c.Sinks) == 0 {
		return cfgErr("sinks", "at least one sink is required (stdout, file, kafka or nats)")
	}
	names := map[string]bool{}
	for i := range c.Sinks {
		s := &c.Sinks[i]
		key := fmt.Sprintf("sinks[%d]", i)
		if s.block() == nil {
			if s.Type == "" {
				return cfgErr(key+".type", "required (stdout, file, kafka or nats)")
			}
			return cfgErr(key+".type", "unknown sink type %q (want stdout, file, kafka or nats)", s.Type)
		}
		if err := s.Retry.Validate(); err != nil {
			return fieldErr(key, err)
		}
		if v, ok := s.block().(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return fieldErr(key, err)
			}
		}
		if names[s.DisplayName()] {
			return cfgErr(key+".name", "duplicate sink name %q: give each sink a distinct name", s.DisplayName())
		}
		names[s.DisplayName()] = true
	}
	return nil
}
