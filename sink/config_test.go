package sink

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rollcall-dev/rollcall/schema/config"
)

func TestRetryConfig(t *testing.T) {
	var r RetryConfig
	r.SetDefaults()
	if r.InitialInterval != DefaultInitialInterval || r.MaxInterval != DefaultMaxInterval || r.MaxElapsedTime != DefaultOnceMaxElapsed || r.Validate() != nil {
		t.Errorf("defaults: %+v", r)
	}
	// Only a one-shot run keeps the elapsed-time bound.
	if o := r.Options(false); o.MaxElapsedTime != 0 || o.InitialInterval != r.InitialInterval {
		t.Errorf("daemon: %+v", o)
	}
	if o := r.Options(true); o.MaxElapsedTime != DefaultOnceMaxElapsed {
		t.Errorf("once: %+v", o)
	}
	r.MaxInterval = time.Millisecond
	var fe *config.FieldError
	if err := r.Validate(); !errors.As(err, &fe) || fe.Path != "retry" {
		t.Errorf("max below initial: %v", err)
	}
}

func TestTLSCheckFilesNamesTheKey(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	if err := os.WriteFile(notPEM, []byte("no\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o    TLSOptions
		path string
	}{
		{TLSOptions{CA: "/nonexistent"}, "tls.ca"},
		{TLSOptions{Cert: notPEM}, "tls"},
		{TLSOptions{CA: notPEM}, "tls.ca"},
		{TLSOptions{Cert: notPEM, Key: notPEM}, "tls.cert"},
	} {
		var fe *config.FieldError
		if err := tc.o.CheckFiles(); !errors.As(err, &fe) || fe.Path != tc.path {
			t.Errorf("%+v: %v, want a %s error", tc.o, err, tc.path)
		}
	}
	// Config keeps naming both files of a pair.
	if _, err := (TLSOptions{Cert: notPEM, Key: notPEM}).Config(); err == nil || err.Error()[:18] != "tls.cert, tls.key:" {
		t.Errorf("Config: %v", err)
	}
	if err := (TLSOptions{}).CheckFiles(); err != nil {
		t.Errorf("no files: %v", err)
	}
}

func TestFileConfig(t *testing.T) {
	var fe *config.FieldError
	if err := (FileConfig{}).Validate(); !errors.As(err, &fe) || fe.Path != "path" {
		t.Errorf("no path: %v", err)
	}
	if o := (FileConfig{Path: "d", Gzip: true}).Options(); o.Dir != "d" || !o.Gzip {
		t.Errorf("Options = %+v", o)
	}
}
