package nats

import (
	"time"

	"github.com/rollcall-dev/rollcall/schema/config"
	"github.com/rollcall-dev/rollcall/sink"
)

// Config is a nats sink's block of the configuration file. Unlike
// Options, its secrets may come from files and never print.
type Config struct {
	URL            config.StringList `yaml:"url"`
	SubjectPrefix  string            `yaml:"subject_prefix"`
	JetStream      bool              `yaml:"jetstream"`
	Stream         *StreamOptions    `yaml:"stream"`
	CredsFile      string            `yaml:"creds_file"`
	NKeyFile       string            `yaml:"nkey_file"`
	User           string            `yaml:"user"`
	Password       config.Secret     `yaml:"password"`
	PasswordFile   string            `yaml:"password_file"`
	Token          config.Secret     `yaml:"token"`
	TokenFile      string            `yaml:"token_file"`
	TLS            *TLSOptions       `yaml:"tls"`
	PublishTimeout time.Duration     `yaml:"publish_timeout"`
}

// SetDefaults fills the subject prefix and stream name the sink would use
// anyway, so that the loaded configuration shows them.
func (c *Config) SetDefaults() {
	if c.Stream == nil {
		c.Stream = &StreamOptions{}
	}
	// New's own defaults, so the two cannot drift apart.
	o := Options{SubjectPrefix: c.SubjectPrefix, Stream: *c.Stream}.withDefaults()
	c.SubjectPrefix, *c.Stream = o.SubjectPrefix, o.Stream
}

// Validate checks c after SetDefaults and reads password_file and
// token_file. Errors are *config.FieldError relative to the sink's block;
// the checks here give the configuration file's wording and name one key
// each, Validate (run last) everything else the sink would refuse.
func (c *Config) Validate() error {
	// What only the file has: readable TLS, creds and nkey files, the
	// password and token files, and stream.create. The rest is the sink's
	// own Validate, reported first error first.
	files := ConnFiles{TLS: c.TLS, Password: &c.Password, PasswordFile: c.PasswordFile,
		Token: &c.Token, TokenFile: c.TokenFile, CredsFile: c.CredsFile, NKeyFile: c.NKeyFile}
	if err := files.Check(); err != nil {
		return err
	}
	if err := config.First(Validate(c.Options())); err != nil {
		return err
	}
	if c.Stream.Create && !c.JetStream {
		return config.Errorf("stream.create", "needs jetstream: true")
	}
	return nil
}

// Options is the sink's configuration, without its logger and metrics.
func (c *Config) Options() Options {
	o := Options{
		URLs: c.URL, SubjectPrefix: c.SubjectPrefix, JetStream: c.JetStream,
		CredsFile: c.CredsFile, NKeyFile: c.NKeyFile, User: c.User,
		Password: string(c.Password), Token: string(c.Token),
		TLS: c.TLS, PublishTimeout: c.PublishTimeout,
	}
	if c.Stream != nil {
		o.Stream = *c.Stream
	}
	return o
}

// ConnFiles are the files a NATS connection's keys name, in any
// configuration that takes the nats sink's connection keys (the sink's
// block, the nats state driver's): Check reads or stats them with the
// sink's wording, one key per error.
type ConnFiles struct {
	TLS                 *sink.TLSOptions
	Password            *config.Secret // filled from PasswordFile
	PasswordFile        string
	Token               *config.Secret // filled from TokenFile
	TokenFile           string
	CredsFile, NKeyFile string
}

// Check verifies the TLS files, reads password_file and token_file into
// Password and Token, and checks that creds_file and nkey_file exist.
func (f ConnFiles) Check() error {
	if f.TLS != nil {
		if err := f.TLS.CheckFiles(); err != nil {
			return err
		}
	}
	if err := config.ResolveSecret(f.Password, f.PasswordFile, "password"); err != nil {
		return err
	}
	if err := config.ResolveSecret(f.Token, f.TokenFile, "token"); err != nil {
		return err
	}
	return sink.StatFiles(sink.FileKey{Key: "creds_file", Path: f.CredsFile}, sink.FileKey{Key: "nkey_file", Path: f.NKeyFile})
}
