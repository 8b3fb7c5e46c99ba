package main

import (
	"errors"
	"testing"
)

// FuzzParseConfig: no input makes the loader panic, and every error is a
// *ConfigError (so the command exits 2 naming the key). A configuration
// that loads has its defaults applied. The seed corpus is in
// testdata/fuzz/FuzzParseConfig.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(minimalConfig))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b, env("KEY", "k", "RATE", "50"))
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v (%T), want a *ConfigError", err, err)
			}
			return
		}
		if c.Poll.Interval < 1e9 || c.Tencent.RequestTimeout <= 0 || c.Tencent.RequestTimeout >= c.Poll.Interval ||
			c.Poll.MemberCap < 1 || c.Poll.Concurrency < 1 || c.HTTP.Listen == nil || len(c.Sinks) == 0 {
			t.Fatalf("loaded without its defaults or checks: %+v", c)
		}
		for i, s := range c.Sinks {
			if s.block() == nil || s.Retry == nil {
				t.Fatalf("sinks[%d] loaded without its block or retry: %+v", i, s)
			}
		}
	})
}
