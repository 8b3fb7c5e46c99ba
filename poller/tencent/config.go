package tencent

import (
	"fmt"
	"math"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/rollcall-dev/rollcall/poller/tencent/usersig"
	"github.com/rollcall-dev/rollcall/schema/config"
)

// MinRateLimit is the lowest tencent.rate_limit accepted, in calls/s:
// below it one group's poll takes minutes.
const MinRateLimit = 0.1

// Config is the `tencent` section of the configuration file.
type Config struct {
	SDKAppID      uint64        `yaml:"sdkappid"`
	Identifier    string        `yaml:"identifier"`
	SecretKey     config.Secret `yaml:"secret_key"`
	SecretKeyFile string        `yaml:"secret_key_file"`
	UserSig       config.Secret `yaml:"usersig"`
	UserSigFile   string        `yaml:"usersig_file"`
	UserSigExpire time.Duration `yaml:"usersig_expire"`
	Region        string        `yaml:"region"`
	Endpoint      string        `yaml:"endpoint"`
	RateLimit     float64       `yaml:"rate_limit"`
	// RequestTimeout bounds one HTTP request to the API; its default
	// depends on poll.interval, see FitPollInterval.
	RequestTimeout time.Duration `yaml:"request_timeout"`
}

// SetDefaults fills zero fields, except RequestTimeout.
func (c *Config) SetDefaults() {
	if c.UserSigExpire == 0 {
		c.UserSigExpire = usersig.DefaultExpire
	}
	if c.RateLimit == 0 {
		c.RateLimit = DefaultRateLimit
	}
}

// Validate checks c after SetDefaults. It reads secret_key_file and
// usersig_file into SecretKey and UserSig, and refuses a static usersig
// the API would refuse whatever happens. Errors are *config.FieldError
// relative to the section and never quote a secret.
func (c *Config) Validate() error {
	if c.SDKAppID == 0 {
		return config.Errorf("sdkappid", "required (the app's SDKAppID from the Chat console)")
	}
	if c.Identifier == "" {
		return config.Errorf("identifier", "required (an App admin account)")
	}
	if usersig.ValidateIdentifier(c.Identifier) != nil {
		return config.Errorf("identifier", "must be 1-32 bytes of printable ASCII")
	}
	n := 0
	for _, set := range []bool{c.SecretKey != "", c.SecretKeyFile != "", c.UserSig != "", c.UserSigFile != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return config.Errorf("secret_key", "set exactly one of tencent.secret_key, tencent.secret_key_file, tencent.usersig, tencent.usersig_file")
	}
	for _, f := range []struct {
		key  string
		file string
		dst  *config.Secret
	}{{"secret_key_file", c.SecretKeyFile, &c.SecretKey}, {"usersig_file", c.UserSigFile, &c.UserSig}} {
		if f.file == "" {
			continue
		}
		s, err := config.ReadSecretFile(f.file)
		if err != nil {
			return config.Errorf(f.key, "%v", err)
		}
		*f.dst = s
	}
	if c.UserSig != "" {
		key := "usersig"
		if c.UserSigFile != "" {
			key = "usersig_file"
		}
		if err := checkStaticUserSig(string(c.UserSig), c.SDKAppID, c.Identifier, time.Now()); err != nil {
			return config.Errorf(key, "%v", err)
		}
	}
	if c.UserSigExpire < time.Hour {
		return config.Errorf("usersig_expire", "must be at least 1h (got %s)", c.UserSigExpire)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return config.Errorf("endpoint", "must be an http:// or https:// base URL, got %q", c.Endpoint)
		}
	} else {
		if c.Region == "" {
			return config.Errorf("region", "required unless tencent.endpoint is set (one of %s)", regionNames())
		}
		if _, ok := regions[c.Region]; !ok {
			return config.Errorf("region", "unknown region %q (want one of %s)", c.Region, regionNames())
		}
	}
	if math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0) || c.RateLimit < MinRateLimit {
		return config.Errorf("rate_limit", "must be a number of calls per second, at least %g (got %v)", MinRateLimit, c.RateLimit)
	}
	if c.RequestTimeout < 0 {
		return config.Errorf("request_timeout", "must be positive")
	}
	return nil
}

// FitPollInterval defaults RequestTimeout from the poll interval, so that
// a call and a retry fit in one cycle however short, and checks that it is
// shorter than the interval. It reports whether it set the default.
func (c *Config) FitPollInterval(interval time.Duration) (derived bool, err error) {
	if c.RequestTimeout == 0 {
		c.RequestTimeout = min(DefaultRequestTimeout, interval/2)
		derived = true
	}
	if c.RequestTimeout >= interval {
		return derived, config.Errorf("request_timeout", "must be shorter than poll.interval (%s >= %s)", c.RequestTimeout, interval)
	}
	return derived, nil
}

// PollConfig is what the `poll` section says about listing members.
type PollConfig struct {
	// MemberCap is the most members get_members lists.
	MemberCap int `yaml:"member_cap"`
	// ConfirmDepartures asks check_members whether members who dropped
	// below a capped list's window have left.
	ConfirmDepartures bool `yaml:"confirm_departures"`
}

// SetDefaults fills zero fields.
func (p *PollConfig) SetDefaults() {
	if p.MemberCap == 0 {
		p.MemberCap = DefaultMemberCap
	}
}

// Validate checks p after SetDefaults; paths are relative to the section.
func (p PollConfig) Validate() error {
	if p.MemberCap < 1 {
		return config.Errorf("member_cap", "must be positive (%d, or %d for apps without the online member list feature)", DefaultMemberCap, FeatureCap)
	}
	return nil
}

// regionNames lists Regions' keys, sorted, for messages.
func regionNames() string {
	names := make([]string, 0, len(regions))
	for n := range regions {
		names = append(names, n)
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
	if exp := StaticUserSigExpiry(doc); !exp.After(now) {
		return fmt.Errorf("expired at %s", exp.UTC().Format(time.RFC3339))
	}
	return nil
}

// StaticUserSigExpiry is when a decoded usersig stops being accepted.
func StaticUserSigExpiry(doc *usersig.Doc) time.Time {
	return time.Unix(doc.Time+doc.Expire, 0)
}
