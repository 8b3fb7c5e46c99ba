package tencent

import (
	"errors"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/schema/config"
)

func TestConfigDefaultsAndChecks(t *testing.T) {
	c := Config{SDKAppID: 1400000000, Identifier: "administrator", SecretKey: "k", Region: "singapore"}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.RateLimit != DefaultRateLimit || c.UserSigExpire != 7*24*time.Hour {
		t.Errorf("defaults: %+v", c)
	}
	// The request timeout's default leaves room for a retry in a short
	// cycle, and is reported as derived.
	derived, err := c.FitPollInterval(4 * time.Second)
	if err != nil || !derived || c.RequestTimeout != 2*time.Second {
		t.Errorf("FitPollInterval(4s) = %v, %v; timeout %s", derived, err, c.RequestTimeout)
	}
	c.RequestTimeout = 3 * time.Second
	derived, err = c.FitPollInterval(2 * time.Second)
	var fe *config.FieldError
	if derived || !errors.As(err, &fe) || fe.Path != "request_timeout" {
		t.Errorf("a written timeout above the interval: %v, %v", derived, err)
	}

	c.Region = "mars"
	if err := c.Validate(); !errors.As(err, &fe) || fe.Path != "region" {
		t.Errorf("bad region: %v", err)
	}
}

func TestPollConfig(t *testing.T) {
	var p PollConfig
	p.SetDefaults()
	if p.MemberCap != DefaultMemberCap || p.Validate() != nil {
		t.Errorf("default member cap: %+v", p)
	}
	p.MemberCap = -1
	var fe *config.FieldError
	if err := p.Validate(); !errors.As(err, &fe) || fe.Path != "member_cap" {
		t.Errorf("negative member cap: %v", err)
	}
}
