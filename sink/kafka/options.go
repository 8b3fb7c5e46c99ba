package kafka

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/schema/config"
	"github.com/rollcall-dev/rollcall/sink"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Content modes of the CloudEvents Kafka protocol binding.
const (
	ModeStructured = "structured"
	ModeBinary     = "binary"
)

// SASL mechanisms.
const (
	MechanismPlain       = "plain"
	MechanismSCRAMSHA256 = "scram-sha-256"
	MechanismSCRAMSHA512 = "scram-sha-512"
)

// Defaults applied to zero-valued Options fields.
const (
	DefaultBatchSize    = 100
	DefaultBatchTimeout = 10 * time.Millisecond
	DefaultWriteTimeout = 10 * time.Second
)

// maxAttempts is the writer's own retry budget per batch. It is small
// because the sink's caller (sink.Fanout) retries the whole Publish with
// backoff; long internal retries would only hide an outage.
const maxAttempts = 3

// batchBytes caps one produce request per partition; it matches the Kafka
// default message.max.bytes (1 MiB plus overhead) that kafka-go assumes.
const batchBytes = 1 << 20

// Options configures a Sink. The yaml names are the keys Validate reports.
type Options struct {
	// Brokers are bootstrap addresses, host:port.
	Brokers []string `yaml:"brokers"`
	// Topic receives every event.
	Topic string `yaml:"topic"`
	// Mode is "structured" (default) or "binary"; see the package doc.
	Mode string `yaml:"mode"`
	// Compression is none (default), gzip, snappy, lz4 or zstd.
	Compression string `yaml:"compression"`
	// BatchSize is the most messages sent to a partition in one produce
	// request; default 100.
	BatchSize int `yaml:"batch_size"`
	// BatchTimeout bounds how long a partial batch waits before it is sent;
	// default 10ms. It adds to each Publish's latency.
	BatchTimeout time.Duration `yaml:"batch_timeout"`
	// TLS, when set, encrypts connections to the brokers.
	TLS *TLSOptions `yaml:"tls"`
	// SASL, when set, authenticates to the brokers.
	SASL *SASLOptions `yaml:"sasl"`
	// CreateTopic, when set, creates Topic at start if it is missing. Meant
	// for development; production topics are provisioned with their
	// retention and replication settled.
	CreateTopic *CreateTopicOptions `yaml:"create_topic"`
	// WriteTimeout bounds one produce request and the metadata requests of
	// Healthy and Check; default 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// Metrics, when not nil, receives the sink's metrics.
	Metrics *Metrics `yaml:"-"`
	// Logger defaults to zap.NewNop().
	Logger *zap.Logger `yaml:"-"`
}

// TLSOptions configures TLS to the brokers; it is the `tls` block every
// network sink shares.
type TLSOptions = sink.TLSOptions

// SASLOptions configures SASL authentication. Its String, GoString, JSON,
// YAML and zap forms redact the password.
type SASLOptions struct {
	// Mechanism is plain, scram-sha-256 or scram-sha-512.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password is the resolved secret (config loading reads *_file
	// variants); it never reaches a log, an error or a metric.
	Password string `yaml:"password"`
}

const redacted = "<redacted>"

func (s SASLOptions) redacted() map[string]string {
	p := ""
	if s.Password != "" {
		p = redacted
	}
	return map[string]string{"mechanism": s.Mechanism, "username": s.Username, "password": p}
}

// String describes s without the password.
func (s SASLOptions) String() string {
	return fmt.Sprintf("{mechanism:%s username:%s password:%s}", s.Mechanism, s.Username, s.redacted()["password"])
}

// GoString is the %#v form of s, without the password.
func (s SASLOptions) GoString() string { return "kafka.SASLOptions" + s.String() }

// MarshalJSON encodes s with the password redacted.
func (s SASLOptions) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(`{"mechanism":%q,"username":%q,"password":%q}`,
		s.Mechanism, s.Username, s.redacted()["password"])), nil
}

// MarshalYAML encodes s with the password redacted.
func (s SASLOptions) MarshalYAML() (any, error) { return s.redacted(), nil }

// MarshalLogObject lets zap log s without the password.
func (s SASLOptions) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("mechanism", s.Mechanism)
	enc.AddString("username", s.Username)
	enc.AddString("password", s.redacted()["password"])
	return nil
}

// CreateTopicOptions sets up the topic New creates when it is missing.
// Zero means the broker's default (num.partitions,
// default.replication.factor; needs Kafka 2.4 or later).
type CreateTopicOptions struct {
	Partitions        int `yaml:"partitions"`
	ReplicationFactor int `yaml:"replication"` // as rollcall's create_topic.replication
}

var codecs = map[string]bool{"": true, "none": true, "gzip": true, "snappy": true, "lz4": true, "zstd": true}

// Validate checks o without any I/O. Each problem is a *config.FieldError
// whose path is the YAML key at fault, relative to the sink's block (e.g.
// "sasl.mechanism: ..."); all problems are reported, joined.
func Validate(o Options) error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, config.Errorf(path, format, args...)) }

	// The wording is the configuration file's: `rollcall` reports these
	// errors under the sink's key (sinks[N].<path>).
	if len(o.Brokers) == 0 {
		add("brokers", "at least one broker address is required")
	}
	for i, b := range o.Brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" || port == "" {
			add(fmt.Sprintf("brokers[%d]", i), "must be host:port, got %q", b)
		}
	}
	if err := validTopic(o.Topic); err != nil {
		add("topic", "%v", err)
	}
	switch o.Mode {
	case "", ModeStructured, ModeBinary:
	default:
		add("mode", "must be structured or binary, got %q", o.Mode)
	}
	if !codecs[o.Compression] {
		add("compression", "must be none, gzip, snappy, lz4 or zstd, got %q", o.Compression)
	}
	if o.BatchSize < 0 {
		add("batch_size", "must be positive")
	}
	if o.BatchTimeout < 0 {
		add("batch_timeout", "must be positive")
	}
	if o.WriteTimeout < 0 {
		add("write_timeout", "must not be negative, got %s", o.WriteTimeout)
	}
	if t := o.TLS; t != nil {
		if err := t.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if s := o.SASL; s != nil {
		switch s.Mechanism {
		case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		default:
			add("sasl.mechanism", "must be plain, scram-sha-256 or scram-sha-512, got %q", s.Mechanism)
		}
		if s.Username == "" {
			add("sasl.username", "required")
		}
		if s.Password == "" {
			add("sasl.password", "required (or sasl.password_file)")
		}
	}
	if c := o.CreateTopic; c != nil {
		if c.Partitions < 0 {
			add("create_topic.partitions", "must not be negative, got %d", c.Partitions)
		}
		if c.ReplicationFactor < 0 || c.ReplicationFactor > 32767 {
			add("create_topic.replication", "must be between 0 and 32767, got %d", c.ReplicationFactor)
		}
	}
	return errors.Join(errs...)
}

// validTopic applies Kafka's topic name rules.
func validTopic(t string) error {
	switch {
	case t == "":
		return errors.New("required")
	case t == "." || t == "..":
		return fmt.Errorf("%q is not a valid topic name", t)
	case len(t) > 249:
		return fmt.Errorf("longer than 249 characters")
	}
	if i := strings.IndexFunc(t, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}); i >= 0 {
		return fmt.Errorf("%q: only ASCII letters, digits, '.', '_' and '-' are allowed", t)
	}
	return nil
}

// withDefaults fills zero fields; o must be valid.
func (o Options) withDefaults() Options {
	if o.Mode == "" {
		o.Mode = ModeStructured
	}
	if o.Compression == "" {
		o.Compression = "none"
	}
	if o.BatchSize == 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.BatchTimeout == 0 {
		o.BatchTimeout = DefaultBatchTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}
