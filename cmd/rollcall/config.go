package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rollcall-dev/rollcall/poller/tencent"
	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
	"github.com/rollcall-dev/rollcall/schema/groupid"
	"github.com/rollcall-dev/rollcall/sink"
	"github.com/rollcall-dev/rollcall/sink/kafka"
	"github.com/rollcall-dev/rollcall/sink/nats"
)

// Config is the whole configuration file. Each section maps onto the
// options of one package; the YAML key names are rollcall's public
// interface and are documented in the README and deploy/rollcall.example.yaml.
type Config struct {
	Tencent         TencentConfig `yaml:"tencent"`
	Groups          GroupsConfig  `yaml:"groups"`
	Poll            PollConfig    `yaml:"poll"`
	State           StateConfig   `yaml:"state"`
	Sinks           []SinkConfig  `yaml:"sinks"`
	HTTP            HTTPConfig    `yaml:"http"`
	Log             LogConfig     `yaml:"log"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Secret is a string that never prints: logs, errors and dumps of the
// config show "<secret>".
type Secret string

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<secret>"
}

// GoString implements fmt.GoStringer, so %#v redacts too.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// MarshalYAML redacts the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// TencentConfig is the `tencent` section.
type TencentConfig struct {
	SDKAppID      uint64        `yaml:"sdkappid"`
	Identifier    string        `yaml:"identifier"`
	SecretKey     Secret        `yaml:"secret_key"`
	SecretKeyFile string        `yaml:"secret_key_file"`
	UserSig       Secret        `yaml:"usersig"`
	UserSigFile   string        `yaml:"usersig_file"`
	UserSigExpire time.Duration `yaml:"usersig_expire"`
	Region        string        `yaml:"region"`
	Endpoint      string        `yaml:"endpoint"`
	RateLimit     float64       `yaml:"rate_limit"`
	// RequestTimeout bounds one HTTP request to the API.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// requestTimeoutDefault is set when RequestTimeout was derived from
	// poll.interval rather than written: a reload that changes only the
	// interval has not changed the tencent section.
	requestTimeoutDefault bool
}

// GroupsConfig is the `groups` section.
type GroupsConfig struct {
	IDs  []string `yaml:"ids"`
	Mark *int64   `yaml:"mark"`
}

// PollConfig is the `poll` section.
type PollConfig struct {
	Interval    time.Duration `yaml:"interval"`
	MemberCap   int           `yaml:"member_cap"`
	Baseline    string        `yaml:"baseline"`
	Concurrency int           `yaml:"concurrency"`
	// ConfirmDepartures asks check_members whether members who dropped
	// below a capped list's window have left.
	ConfirmDepartures bool `yaml:"confirm_departures"`
}

// StateConfig is the `state` section.
type StateConfig struct {
	Driver string `yaml:"driver"`
	Path   string `yaml:"path"`
}

// HTTPConfig is the `http` section. Listen is a pointer so that an
// explicit empty value (disable the server) differs from an absent one.
type HTTPConfig struct {
	Listen *string `yaml:"listen"`
}

// LogConfig is the `log` section.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// RetryConfig is a sink's `retry` block.
type RetryConfig struct {
	InitialInterval time.Duration `yaml:"initial_interval"`
	MaxInterval     time.Duration `yaml:"max_interval"`
	// MaxElapsedTime bounds retries in `run --once` only; the daemon
	// retries a failing sink for as long as it runs.
	MaxElapsedTime time.Duration `yaml:"max_elapsed_time"`
}

// TLSConfig is a sink's `tls` block: {ca, cert, key, insecure_skip_verify}.
type TLSConfig = sink.TLSOptions

// SASLConfig is a Kafka sink's `sasl` block.
type SASLConfig struct {
	Mechanism    string `yaml:"mechanism"`
	Username     string `yaml:"username"`
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// CreateTopicConfig is a Kafka sink's `create_topic` block.
type CreateTopicConfig struct {
	Partitions  int `yaml:"partitions"`
	Replication int `yaml:"replication"`
}

// StreamConfig is a NATS sink's `stream` block.
type StreamConfig struct {
	Name   string `yaml:"name"`
	Create bool   `yaml:"create"`
}

// SinkConfig is one entry of `sinks`. Which keys are allowed depends on
// `type`; see sinkKeys.
type SinkConfig struct {
	Type  string       `yaml:"type"`
	Name  string       `yaml:"name"`
	Retry *RetryConfig `yaml:"retry"`

	// file
	Path string `yaml:"path"`
	Gzip bool   `yaml:"gzip"`

	// kafka
	Brokers      []string           `yaml:"brokers"`
	Topic        string             `yaml:"topic"`
	Mode         string             `yaml:"mode"`
	Compression  string             `yaml:"compression"`
	BatchSize    int                `yaml:"batch_size"`
	BatchTimeout time.Duration      `yaml:"batch_timeout"`
	WriteTimeout time.Duration      `yaml:"write_timeout"`
	SASL         *SASLConfig        `yaml:"sasl"`
	CreateTopic  *CreateTopicConfig `yaml:"create_topic"`

	// kafka and nats
	TLS *TLSConfig `yaml:"tls"`

	// nats
	URL            stringList    `yaml:"url"`
	SubjectPrefix  string        `yaml:"subject_prefix"`
	JetStream      bool          `yaml:"jetstream"`
	Stream         *StreamConfig `yaml:"stream"`
	CredsFile      string        `yaml:"creds_file"`
	NKeyFile       string        `yaml:"nkey_file"`
	User           string        `yaml:"user"`
	Password       Secret        `yaml:"password"`
	PasswordFile   string        `yaml:"password_file"`
	Token          Secret        `yaml:"token"`
	TokenFile      string        `yaml:"token_file"`
	PublishTimeout time.Duration `yaml:"publish_timeout"`
}

// stringList accepts a YAML list or a single string.
type stringList []string

// UnmarshalYAML implements yaml.Unmarshaler.
func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = stringList{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// sinkKeys lists the keys each sink type accepts besides type, name, retry.
var sinkKeys = map[string][]string{
	"stdout": {},
	"file":   {"path", "gzip"},
	"kafka": {"brokers", "topic", "mode", "compression", "batch_size", "batch_timeout",
		"write_timeout", "tls", "sasl", "create_topic"},
	"nats": {"url", "subject_prefix", "jetstream", "stream", "creds_file", "nkey_file",
		"user", "password", "password_file", "token", "token_file", "tls", "publish_timeout"},
}

// Defaults.
const (
	defaultRateLimit       = 200 // the default: Tencent's documented 200/s per API
	defaultRequestTimeout  = 5 * time.Second
	minRateLimit           = 0.1 // calls/s; below it one group's poll takes minutes
	defaultUserSigExpire   = 7 * 24 * time.Hour
	defaultInterval        = 10 * time.Second
	defaultMemberCap       = 1000
	defaultConcurrency     = 8
	defaultStatePath       = "state"
	defaultHTTPListen      = "127.0.0.1:9464"
	defaultShutdownTimeout = 30 * time.Second
	defaultSubjectPrefix   = "rollcall"
	defaultStreamName      = "ROLLCALL"
	defaultOnceMaxElapsed  = 30 * time.Second
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
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, &ConfigError{Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return nil, &ConfigError{Msg: "the file is empty"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &ConfigError{Msg: "the top level must be a mapping"}
	}
	lines := map[int]string{}
	if err := walk(root, "", reflect.TypeOf(Config{}), lookupEnv, lines); err != nil {
		return nil, err
	}
	var c Config
	if err := root.Decode(&c); err != nil {
		return nil, decodeError(err, lines)
	}
	if err := c.setDefaultsAndValidate(); err != nil {
		return nil, err
	}
	return &c, nil
}

var lineRE = regexp.MustCompile(`line (\d+): (.*)`)

// decodeError turns yaml's "line N: cannot unmarshal ..." into an error
// naming the key on that line.
func decodeError(err error, lines map[int]string) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		m := lineRE.FindStringSubmatch(te.Errors[0])
		if m != nil {
			var n int
			fmt.Sscan(m[1], &n)
			if key, ok := lines[n]; ok {
				return cfgErr(key, "%s", m[2])
			}
		}
		return &ConfigError{Msg: te.Errors[0]}
	}
	return &ConfigError{Msg: err.Error()}
}

var envRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// walk checks every mapping key against the struct it decodes into (strict
// decoding with error messages that name the key), expands ${VAR} in
// scalar values, and records which key sits on which line.
func walk(n *yaml.Node, path string, t reflect.Type, env func(string) (string, bool), lines map[int]string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if path != "" {
			lines[n.Line] = path
		}
		var missing string
		orig := n.Value
		n.Value = envRE.ReplaceAllStringFunc(n.Value, func(s string) string {
			name := envRE.FindStringSubmatch(s)[1]
			v, ok := env(name)
			if !ok && missing == "" {
				missing = name
			}
			return v
		})
		if missing != "" {
			return cfgErr(path, "environment variable %s is not set", missing)
		}
		// The parser tagged the plain scalar "${RATE}" as a string; drop
		// that tag so the expanded "200" resolves as a number again.
		if n.Value != orig && n.Style == 0 {
			n.Tag = ""
		}
		return nil
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice {
			if t.Kind() == reflect.Struct || t.Kind() == reflect.Map {
				return cfgErr(path, "expected a mapping, got a list")
			}
			return cfgErr(path, "expected a single value, got a list")
		}
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if err := walk(c, p, t.Elem(), env, lines); err != nil {
				return err
			}
		}
		return nil
	case yaml.MappingNode:
		if t.Kind() != reflect.Struct {
			return cfgErr(path, "expected a single value, got a mapping")
		}
		allowed := fieldTypes(t)
		if t == reflect.TypeOf(SinkConfig{}) {
			allowed = sinkFields(n, allowed)
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := joinKey(path, k.Value)
			lines[k.Line] = key
			if seen[k.Value] {
				return cfgErr(key, "duplicate key")
			}
			seen[k.Value] = true
			ft, ok := allowed[k.Value]
			if !ok {
				return cfgErr(key, "unknown key%s", suggest(k.Value, allowed))
			}
			if err := walk(v, key, ft, env, lines); err != nil {
				return err
			}
		}
		return nil
	case yaml.AliasNode:
		return cfgErr(path, "YAML aliases are not supported")
	}
	return nil
}

func joinKey(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func fieldTypes(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		m[tag] = f.Type
	}
	return m
}

// sinkFields narrows the allowed keys of a sink entry to those of its type.
func sinkFields(n *yaml.Node, all map[string]reflect.Type) map[string]reflect.Type {
	typ := ""
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "type" {
			typ = n.Content[i+1].Value
		}
	}
	keys, ok := sinkKeys[typ]
	if !ok {
		return all // the type itself is reported by validation
	}
	m := map[string]reflect.Type{"type": all["type"], "name": all["name"], "retry": all["retry"]}
	for _, k := range keys {
		m[k] = all[k]
	}
	return m
}

func suggest(k string, allowed map[string]reflect.Type) string {
	var names []string
	for a := range allowed {
		names = append(names, a)
	}
	for _, a := range names {
		if strings.EqualFold(strings.ReplaceAll(a, "_", ""), strings.ReplaceAll(strings.ReplaceAll(k, "_", ""), "-", "")) {
			return fmt.Sprintf(" (did you mean %q?)", a)
		}
	}
	return ""
}

var identifierRE = regexp.MustCompile(`^[\x21-\x7e]{1,32}$`)

func (c *Config) setDefaultsAndValidate() error {
	t := &c.Tencent
	if t.SDKAppID == 0 {
		return cfgErr("tencent.sdkappid", "required (the app's SDKAppID from the Chat console)")
	}
	if t.Identifier == "" {
		return cfgErr("tencent.identifier", "required (an App admin account)")
	}
	if !identifierRE.MatchString(t.Identifier) {
		return cfgErr("tencent.identifier", "must be 1-32 bytes of printable ASCII")
	}
	n := 0
	for _, set := range []bool{t.SecretKey != "", t.SecretKeyFile != "", t.UserSig != "", t.UserSigFile != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return cfgErr("tencent.secret_key", "set exactly one of tencent.secret_key, tencent.secret_key_file, tencent.usersig, tencent.usersig_file")
	}
	if t.SecretKeyFile != "" {
		s, err := readSecretFile(t.SecretKeyFile)
		if err != nil {
			return cfgErr("tencent.secret_key_file", "%v", err)
		}
		t.SecretKey = s
	}
	if t.UserSigFile != "" {
		s, err := readSecretFile(t.UserSigFile)
		if err != nil {
			return cfgErr("tencent.usersig_file", "%v", err)
		}
		t.UserSig = s
	}
	if t.UserSig != "" {
		key := "tencent.usersig"
		if t.UserSigFile != "" {
			key = "tencent.usersig_file"
		}
		if err := checkStaticUserSig(string(t.UserSig), t.SDKAppID, t.Identifier, time.Now()); err != nil {
			return cfgErr(key, "%v", err)
		}
	}
	if t.UserSigExpire == 0 {
		t.UserSigExpire = defaultUserSigExpire
	}
	if t.UserSigExpire < time.Hour {
		return cfgErr("tencent.usersig_expire", "must be at least 1h (got %s)", t.UserSigExpire)
	}
	if t.Endpoint != "" {
		u, err := url.Parse(t.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfgErr("tencent.endpoint", "must be an http:// or https:// base URL, got %q", t.Endpoint)
		}
	} else {
		if t.Region == "" {
			return cfgErr("tencent.region", "required unless tencent.endpoint is set (one of %s)", regionNames())
		}
		if _, ok := tencent.Regions()[t.Region]; !ok {
			return cfgErr("tencent.region", "unknown region %q (want one of %s)", t.Region, regionNames())
		}
	}
	if t.RateLimit == 0 {
		t.RateLimit = defaultRateLimit
	}
	if math.IsNaN(t.RateLimit) || math.IsInf(t.RateLimit, 0) || t.RateLimit < minRateLimit {
		return cfgErr("tencent.rate_limit", "must be a number of calls per second, at least %g (got %v)", minRateLimit, t.RateLimit)
	}
	if t.RequestTimeout < 0 {
		return cfgErr("tencent.request_timeout", "must be positive")
	}

	if len(c.Groups.IDs) == 0 {
		return cfgErr("groups.ids", "at least one group id is required")
	}
	seen := map[string]bool{}
	for i, id := range c.Groups.IDs {
		key := fmt.Sprintf("groups.ids[%d]", i)
		if err := groupid.Validate(id); err != nil {
			return cfgErr(key, "%v", err)
		}
		if seen[id] {
			return cfgErr(key, "duplicate group id %q", id)
		}
		seen[id] = true
	}

	p := &c.Poll
	if p.Interval == 0 {
		p.Interval = defaultInterval
	}
	if p.Interval < time.Second {
		return cfgErr("poll.interval", "must be at least 1s (got %s); the API's list is cached for 10-40s anyway", p.Interval)
	}
	if t.RequestTimeout == 0 {
		// A call and a retry fit in one cycle, however short.
		t.RequestTimeout = min(defaultRequestTimeout, p.Interval/2)
		t.requestTimeoutDefault = true
	}
	if t.RequestTimeout >= p.Interval {
		return cfgErr("tencent.request_timeout", "must be shorter than poll.interval (%s >= %s)", t.RequestTimeout, p.Interval)
	}
	if p.MemberCap == 0 {
		p.MemberCap = defaultMemberCap
	}
	if p.MemberCap < 1 {
		return cfgErr("poll.member_cap", "must be positive (1000, or 30 for apps without the online member list feature)")
	}
	switch p.Baseline {
	case "":
		p.Baseline = "emit"
	case "emit", "silent":
	default:
		return cfgErr("poll.baseline", "must be emit or silent, got %q", p.Baseline)
	}
	if p.Concurrency == 0 {
		p.Concurrency = defaultConcurrency
	}
	if p.Concurrency < 1 {
		return cfgErr("poll.concurrency", "must be positive")
	}

	switch c.State.Driver {
	case "":
		c.State.Driver = "file"
	case "file", "memory":
	default:
		return cfgErr("state.driver", "must be file or memory, got %q", c.State.Driver)
	}
	if c.State.Driver == "file" && c.State.Path == "" {
		c.State.Path = defaultStatePath
	}

	if len(c.Sinks) == 0 {
		return cfgErr("sinks", "at least one sink is required (stdout, file, kafka or nats)")
	}
	names := map[string]bool{}
	for i := range c.Sinks {
		if err := c.Sinks[i].validate(fmt.Sprintf("sinks[%d]", i)); err != nil {
			return err
		}
		name := c.Sinks[i].DisplayName()
		if names[name] {
			return cfgErr(fmt.Sprintf("sinks[%d].name", i), "duplicate sink name %q: give each sink a distinct name", name)
		}
		names[name] = true
	}

	if c.HTTP.Listen == nil {
		l := defaultHTTPListen
		c.HTTP.Listen = &l
	}
	if l := *c.HTTP.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			return cfgErr("http.listen", "must be host:port or empty to disable, got %q", l)
		}
	}
	switch c.Log.Level {
	case "":
		c.Log.Level = "info"
	case "debug", "info", "warn", "error":
	default:
		return cfgErr("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "":
		c.Log.Format = "json"
	case "json", "console":
	default:
		return cfgErr("log.format", "must be json or console, got %q", c.Log.Format)
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = defaultShutdownTimeout
	}
	if c.ShutdownTimeout < 0 {
		return cfgErr("shutdown_timeout", "must be positive")
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

func (s *SinkConfig) validate(key string) error {
	if _, ok := sinkKeys[s.Type]; !ok {
		if s.Type == "" {
			return cfgErr(key+".type", "required (stdout, file, kafka or nats)")
		}
		return cfgErr(key+".type", "unknown sink type %q (want stdout, file, kafka or nats)", s.Type)
	}
	if s.Retry == nil {
		s.Retry = &RetryConfig{}
	}
	r := s.Retry
	if r.InitialInterval == 0 {
		r.InitialInterval = 500 * time.Millisecond
	}
	if r.MaxInterval == 0 {
		r.MaxInterval = 30 * time.Second
	}
	if r.MaxElapsedTime == 0 {
		r.MaxElapsedTime = defaultOnceMaxElapsed
	}
	if r.InitialInterval < 0 || r.MaxInterval < r.InitialInterval || r.MaxElapsedTime < 0 {
		return cfgErr(key+".retry", "need 0 < initial_interval <= max_interval and max_elapsed_time >= 0")
	}
	if s.TLS != nil {
		for k, f := range map[string]string{"ca": s.TLS.CA, "cert": s.TLS.Cert, "key": s.TLS.Key} {
			if f != "" {
				if _, err := os.Stat(f); err != nil {
					return cfgErr(key+".tls."+k, "%v", err)
				}
			}
		}
		if err := s.TLS.Validate(); err != nil {
			return cfgErr(key+".tls", "cert and key must be set together")
		}
		if _, err := s.TLS.Config(); err != nil {
			// "tls.ca: no PEM certificate in …" names its key first.
			sub, msg, _ := strings.Cut(err.Error(), ": ")
			sub, _, _ = strings.Cut(sub, ",")
			return cfgErr(key+"."+sub, "%s", msg)
		}
	}
	switch s.Type {
	case "file":
		if s.Path == "" {
			return cfgErr(key+".path", "required: the directory events are written under")
		}
	case "kafka":
		if len(s.Brokers) == 0 {
			return cfgErr(key+".brokers", "at least one broker address is required")
		}
		for i, b := range s.Brokers {
			if _, _, err := net.SplitHostPort(b); err != nil {
				return cfgErr(fmt.Sprintf("%s.brokers[%d]", key, i), "must be host:port, got %q", b)
			}
		}
		if s.Topic == "" {
			return cfgErr(key+".topic", "required")
		}
		switch s.Mode {
		case "":
			s.Mode = "structured"
		case "structured", "binary":
		default:
			return cfgErr(key+".mode", "must be structured or binary, got %q", s.Mode)
		}
		switch s.Compression {
		case "":
			s.Compression = "none"
		case "none", "gzip", "snappy", "lz4", "zstd":
		default:
			return cfgErr(key+".compression", "must be none, gzip, snappy, lz4 or zstd, got %q", s.Compression)
		}
		if s.BatchSize < 0 {
			return cfgErr(key+".batch_size", "must be positive")
		}
		if s.BatchTimeout < 0 {
			return cfgErr(key+".batch_timeout", "must be positive")
		}
		if s.SASL != nil {
			switch s.SASL.Mechanism {
			case "plain", "scram-sha-256", "scram-sha-512":
			default:
				return cfgErr(key+".sasl.mechanism", "must be plain, scram-sha-256 or scram-sha-512, got %q", s.SASL.Mechanism)
			}
			if s.SASL.Username == "" {
				return cfgErr(key+".sasl.username", "required")
			}
			if err := resolveSecret(&s.SASL.Password, s.SASL.PasswordFile, key+".sasl.password"); err != nil {
				return err
			}
			if s.SASL.Password == "" {
				return cfgErr(key+".sasl.password", "required (or sasl.password_file)")
			}
		}
		if s.CreateTopic != nil {
			if s.CreateTopic.Partitions == 0 {
				s.CreateTopic.Partitions = 1
			}
			if s.CreateTopic.Replication == 0 {
				s.CreateTopic.Replication = 1
			}
			if s.CreateTopic.Partitions < 1 || s.CreateTopic.Replication < 1 {
				return cfgErr(key+".create_topic", "partitions and replication must be positive")
			}
		}
		// The sink's own checks (topic name rules, timeouts…), so that
		// nothing the sink would refuse at start passes here.
		if err := kafka.Validate(s.kafkaOptions()); err != nil {
			return sinkOptionErr(key, err)
		}
	case "nats":
		if len(s.URL) == 0 {
			return cfgErr(key+".url", "at least one server URL is required")
		}
		if s.SubjectPrefix == "" {
			s.SubjectPrefix = defaultSubjectPrefix
		}
		if !subjectPrefixRE.MatchString(s.SubjectPrefix) {
			return cfgErr(key+".subject_prefix", "must be dot-separated tokens of [A-Za-z0-9_-], got %q", s.SubjectPrefix)
		}
		if s.Stream == nil {
			s.Stream = &StreamConfig{}
		}
		if s.Stream.Name == "" {
			s.Stream.Name = defaultStreamName
		}
		if s.Stream.Create && !s.JetStream {
			return cfgErr(key+".stream.create", "needs jetstream: true")
		}
		if err := resolveSecret(&s.Password, s.PasswordFile, key+".password"); err != nil {
			return err
		}
		if err := resolveSecret(&s.Token, s.TokenFile, key+".token"); err != nil {
			return err
		}
		for k, f := range map[string]string{"creds_file": s.CredsFile, "nkey_file": s.NKeyFile} {
			if f != "" {
				if _, err := os.Stat(f); err != nil {
					return cfgErr(key+"."+k, "%v", err)
				}
			}
		}
		if s.Password != "" && s.User == "" {
			return cfgErr(key+".user", "required with password")
		}
		// nats.Validate refuses two ways too, but names no single key.
		var auth []string
		for _, m := range []struct {
			key string
			set bool
		}{{"creds_file", s.CredsFile != ""}, {"nkey_file", s.NKeyFile != ""}, {"token", s.Token != ""}, {"user", s.User != ""}} {
			if m.set {
				auth = append(auth, m.key)
			}
		}
		if len(auth) > 1 {
			return cfgErr(key+"."+auth[0], "set one way to authenticate, not %s", strings.Join(auth, " and "))
		}
		// The sink's own checks (URLs, stream name, timeouts…), so that
		// nothing the sink would refuse at start passes here.
		if err := nats.Validate(s.natsOptions()); err != nil {
			return sinkOptionErr(key, err)
		}
	}
	return nil
}

// sinkOptionErr turns the first of a sink package's Validate errors, which
// start with the key relative to the sink's block ("topic: …",
// "url[1]: …"), into a ConfigError naming the whole key.
func sinkOptionErr(key string, err error) error {
	msg, _, _ := strings.Cut(err.Error(), "\n") // errors.Join: one per line
	sub, rest, ok := strings.Cut(msg, ": ")
	if !ok || strings.ContainsAny(sub, " /") {
		return cfgErr(key, "%s", msg)
	}
	return cfgErr(key+"."+sub, "%s", rest)
}

// kafkaOptions is the kafka sink's configuration, without its logger and
// metrics.
func (s *SinkConfig) kafkaOptions() kafka.Options {
	o := kafka.Options{
		Brokers: s.Brokers, Topic: s.Topic, Mode: s.Mode, Compression: s.Compression,
		BatchSize: s.BatchSize, BatchTimeout: s.BatchTimeout, WriteTimeout: s.WriteTimeout, TLS: s.TLS,
	}
	if s.SASL != nil {
		o.SASL = &kafka.SASLOptions{Mechanism: s.SASL.Mechanism, Username: s.SASL.Username, Password: string(s.SASL.Password)}
	}
	if s.CreateTopic != nil {
		o.CreateTopic = &kafka.CreateTopicOptions{Partitions: s.CreateTopic.Partitions, ReplicationFactor: s.CreateTopic.Replication}
	}
	return o
}

// natsOptions is the nats sink's configuration, without its logger and
// metrics.
func (s *SinkConfig) natsOptions() nats.Options {
	o := nats.Options{
		URLs: s.URL, SubjectPrefix: s.SubjectPrefix, JetStream: s.JetStream,
		CredsFile: s.CredsFile, NKeyFile: s.NKeyFile, User: s.User,
		Password: string(s.Password), Token: string(s.Token),
		TLS: s.TLS, PublishTimeout: s.PublishTimeout,
	}
	if s.Stream != nil {
		o.Stream = nats.StreamOptions{Name: s.Stream.Name, Create: s.Stream.Create}
	}
	return o
}

var subjectPrefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// resolveSecret fills *s from file when file is set; both set is an error.
func resolveSecret(s *Secret, file, key string) error {
	if file == "" {
		return nil
	}
	if *s != "" {
		return cfgErr(key, "set %s or %s_file, not both", key[strings.LastIndex(key, ".")+1:], key[strings.LastIndex(key, ".")+1:])
	}
	v, err := readSecretFile(file)
	if err != nil {
		return cfgErr(key+"_file", "%v", err)
	}
	*s = v
	return nil
}

// readSecretFile reads a mounted secret, trimming the trailing newline
// that editors and `echo` add. The error names the file, never the content.
func readSecretFile(path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	b = bytes.TrimRight(b, "\r\n")
	if len(b) == 0 {
		return "", fmt.Errorf("%s is empty", path)
	}
	return Secret(b), nil
}

func regionNames() string {
	var names []string
	for r := range tencent.Regions() {
		names = append(names, r)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// checkStaticUserSig rejects a configured usersig that the API would
// refuse whatever happens: unreadable, minted for another app or
// identifier, or already expired. Errors never quote it.
func checkStaticUserSig(sig string, sdkappid uint64, identifier string, now time.Time) error {
	doc, err := usersig.Decode(sig)
	if err != nil {
		return fmt.Errorf("not a usersig rollcall can read: %w", err)
	}
	switch {
	case doc.SDKAppID != sdkappid:
		return fmt.Errorf("minted for sdkappid %d, not tencent.sdkappid %d", doc.SDKAppID, sdkappid)
	case doc.Identifier != identifier:
		return fmt.Errorf("minted for identifier %q, not tencent.identifier %q", doc.Identifier, identifier)
	}
	if exp := staticUserSigExpiry(doc); !exp.After(now) {
		return fmt.Errorf("expired at %s", exp.UTC().Format(time.RFC3339))
	}
	return nil
}

// staticUserSigExpiry is when a decoded usersig stops being accepted.
func staticUserSigExpiry(doc *usersig.Doc) time.Time {
	return time.Unix(doc.Time+doc.Expire, 0)
}
