package natsstore

import (
	natssink "github.com/rollcall-dev/rollcall/sink/nats"

	"github.com/rollcall-dev/rollcall/schema/config"
	"github.com/rollcall-dev/rollcall/sink"
)

// Defaults of the nats state driver.
const (
	DefaultBucket   = "rollcall_state"
	DefaultReplicas = 1
	// MaxReplicas is JetStream's limit on a stream's replicas.
	MaxReplicas = 5
)

// Config is the nats driver's keys of the `state` section. The connection
// keys (url, creds_file, nkey_file, user, password, password_file, token,
// token_file, tls) have the nats sink's names, meaning and checks.
type Config struct {
	URL          config.StringList `yaml:"url"`
	Bucket       string            `yaml:"bucket"`
	Create       bool              `yaml:"create"`
	Replicas     int               `yaml:"replicas"`
	CredsFile    string            `yaml:"creds_file"`
	NKeyFile     string            `yaml:"nkey_file"`
	User         string            `yaml:"user"`
	Password     config.Secret     `yaml:"password"`
	PasswordFile string            `yaml:"password_file"`
	Token        config.Secret     `yaml:"token"`
	TokenFile    string            `yaml:"token_file"`
	TLS          *sink.TLSOptions  `yaml:"tls"`
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
}

// Validate checks c after SetDefaults and reads password_file and
// token_file. Errors are *config.FieldError naming the key, relative to
// the section. The connection keys are checked as the nats sink checks
// them, in the same order and with the same words.
func (c *Config) Validate() error {
	if !validBucket(c.Bucket) {
		return config.Errorf("bucket", "must be [A-Za-z0-9_-]+, got %q", c.Bucket)
	}
	if c.Replicas < 1 || c.Replicas > MaxReplicas {
		return config.Errorf("replicas", "must be 1 to %d, got %d", MaxReplicas, c.Replicas)
	}
	files := natssink.ConnFiles{TLS: c.TLS, Password: &c.Password, PasswordFile: c.PasswordFile,
		Token: &c.Token, TokenFile: c.TokenFile, CredsFile: c.CredsFile, NKeyFile: c.NKeyFile}
	if err := files.Check(); err != nil {
		return err
	}
	return config.First(natssink.Validate(c.conn()))
}

// conn is c's connection keys as the sink's Options, so that both are
// checked and turned into client options by the same code.
func (c *Config) conn() natssink.Options {
	return natssink.Options{
		URLs: c.URL, CredsFile: c.CredsFile, NKeyFile: c.NKeyFile, User: c.User,
		Password: string(c.Password), Token: string(c.Token), TLS: c.TLS,
		Name: "rollcall-state",
	}
}

// validBucket is JetStream's rule for a KV bucket name.
func validBucket(b string) bool {
	if b == "" {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
