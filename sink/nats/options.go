package nats

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/schema/config"
	"github.com/rollcall-dev/rollcall/sink"

	"go.uber.org/zap"
)

// Defaults applied to zero-valued Options fields.
const (
	DefaultSubjectPrefix  = "rollcall"
	DefaultStreamName     = "ROLLCALL"
	DefaultName           = "rollcall"
	DefaultPublishTimeout = 10 * time.Second
	// DefaultDuplicateWindow is the dedup window of a stream created by
	// the sink (Stream.Create); it matches the server's default.
	DefaultDuplicateWindow = 2 * time.Minute
)

// Options configure a Sink. Secrets (Password, Token, the contents of
// CredsFile and NKeyFile) are never logged or put in errors.
type Options struct {
	// URLs are the servers to connect to, e.g. "nats://n1:4222"; the
	// client fails over between them and reconnects forever.
	URLs []string `yaml:"url"`
	// SubjectPrefix is the first token(s) of every subject; default
	// "rollcall".
	SubjectPrefix string `yaml:"subject_prefix"`
	// JetStream publishes through JetStream and waits for each PubAck;
	// otherwise core NATS publishes are confirmed by a flush round-trip.
	JetStream bool          `yaml:"jetstream"`
	Stream    StreamOptions `yaml:"stream"`

	// Authentication: at most one of CredsFile, NKeyFile, User/Password
	// and Token.
	CredsFile string `yaml:"creds_file"`
	NKeyFile  string `yaml:"nkey_file"`
	User      string `yaml:"user"`
	Password  string `yaml:"password"`
	Token     string `yaml:"token"`

	// TLS, when set, turns TLS on; tls:// URLs turn it on too.
	TLS *TLSOptions `yaml:"tls"`

	// Name is the client connection name shown by the server; default
	// "rollcall".
	Name string `yaml:"name"`
	// PublishTimeout bounds the flush (core NATS) or each PubAck
	// (JetStream); default 10s.
	PublishTimeout time.Duration `yaml:"publish_timeout"`

	Logger *zap.Logger `yaml:"-"`
	// Metrics is one sink's series: NewMetrics(reg).For(name).
	Metrics *Metrics `yaml:"-"`
}

// StreamOptions name the JetStream stream events go to.
type StreamOptions struct {
	// Name of the stream; default "ROLLCALL". Publishes carry it as the
	// expected stream, so a subject captured by another stream fails.
	Name string `yaml:"name"`
	// Create makes New create a missing stream over "<prefix>.>" (meant
	// for development); otherwise a missing stream is an error.
	Create bool `yaml:"create"`
}

// TLSOptions configure TLS to the servers; it is the `tls` block every
// network sink shares.
type TLSOptions = sink.TLSOptions

func (o Options) withDefaults() Options {
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = DefaultSubjectPrefix
	}
	if o.Stream.Name == "" {
		o.Stream.Name = DefaultStreamName
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return o
}

// Validate checks o after defaults are applied. Each problem is a
// *config.FieldError whose path is the offending key, relative to the
// sink's configuration block ("url[1]: ...", "subject_prefix: ..."); a
// problem no single key owns has an empty path.
func Validate(o Options) error {
	o = o.withDefaults()
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, config.Errorf(path, format, args...)) }
	if len(o.URLs) == 0 {
		add("url", "at least one server URL is required")
	}
	for i, u := range o.URLs {
		if err := validateURL(u); err != nil {
			add(fmt.Sprintf("url[%d]", i), "%v", err)
		}
	}
	if !validPrefix(o.SubjectPrefix) {
		add("subject_prefix", "must be dot-separated tokens of [A-Za-z0-9_-], got %q", o.SubjectPrefix)
	}
	if o.JetStream && !validStreamName(o.Stream.Name) {
		add("stream.name", "%q must not contain whitespace, '.', '*', '>', '/' or '\\'", o.Stream.Name)
	}
	if o.Password != "" && o.User == "" {
		add("user", "required with password")
	}
	// At most one way to authenticate; the error names the first key set.
	var auth []string
	for _, m := range []struct {
		key string
		set bool
	}{{"creds_file", o.CredsFile != ""}, {"nkey_file", o.NKeyFile != ""}, {"token", o.Token != ""}, {"user", o.User != ""}} {
		if m.set {
			auth = append(auth, m.key)
		}
	}
	if len(auth) > 1 {
		add(auth[0], "set one way to authenticate, not %s", strings.Join(auth, " and "))
	}
	if o.User != "" && o.Password == "" {
		add("password", "required with user")
	}
	if t := o.TLS; t != nil {
		if err := t.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if o.PublishTimeout < 0 {
		add("publish_timeout", "%s must be positive", o.PublishTimeout)
	}
	return errors.Join(errs...)
}

// validateURL checks one server URL without ever echoing it: it may
// carry a user and password.
func validateURL(raw string) error {
	if raw == "" {
		return errors.New("empty")
	}
	if strings.Contains(raw, ",") {
		return errors.New("one URL per entry")
	}
	s := raw
	if !strings.Contains(s, "://") {
		s = "nats://" + s // as the client does
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole URL
		}
		return fmt.Errorf("not a valid URL: %w", err)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("scheme %q: want nats, tls, ws or wss", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

func validStreamName(n string) bool {
	if n == "" || len(n) > 255 {
		return false
	}
	for _, r := range n {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(".*>/\\", r) {
			return false
		}
	}
	return true
}
