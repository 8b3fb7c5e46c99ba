package sink

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/rollcall-dev/rollcall/schema/config"
)

// TLSOptions is the `tls` block shared by the network sinks. Without CA
// the system roots are trusted; Cert and Key together enable a client
// certificate.
type TLSOptions struct {
	CA                 string `yaml:"ca"`
	Cert               string `yaml:"cert"`
	Key                string `yaml:"key"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Validate checks what can be checked without reading the files. The
// error is a *config.FieldError for "tls".
func (o TLSOptions) Validate() error {
	if (o.Cert == "") != (o.Key == "") {
		return config.Errorf("tls", "cert and key must be set together")
	}
	return nil
}

// Config loads the files into a tls.Config (TLS 1.2 or later). Errors name
// the key and the file, never the contents.
func (o TLSOptions) Config() (*tls.Config, error) {
	c, fe := o.load()
	if fe != nil {
		if fe.Path == "tls.cert" {
			// The pair is loaded together; either file may be at fault.
			return nil, fmt.Errorf("tls.cert, tls.key: %s", fe.Msg)
		}
		return nil, fe
	}
	return c, nil
}

// CheckFiles is Validate plus loading the files, as configuration loading
// wants it: each error is a *config.FieldError naming one key of the
// sink's block ("tls.ca").
func (o TLSOptions) CheckFiles() error {
	if err := StatFiles(FileKey{Key: "tls.ca", Path: o.CA}, FileKey{Key: "tls.cert", Path: o.Cert}, FileKey{Key: "tls.key", Path: o.Key}); err != nil {
		return err
	}
	if _, fe := o.load(); fe != nil {
		return fe
	}
	return nil
}

// FileKey is a configuration key that names a file.
type FileKey struct{ Key, Path string }

// StatFiles checks that each set file exists, as configuration loading
// wants it: the error is a *config.FieldError naming the first key whose
// file cannot be stat'ed.
func StatFiles(files ...FileKey) error {
	for _, f := range files {
		if f.Path != "" {
			if _, err := os.Stat(f.Path); err != nil {
				return config.Errorf(f.Key, "%v", err)
			}
		}
	}
	return nil
}

func (o TLSOptions) load() (*tls.Config, *config.FieldError) {
	if err := o.Validate(); err != nil {
		return nil, err.(*config.FieldError)
	}
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// An explicit opt-in, for test clusters with self-signed certificates.
		InsecureSkipVerify: o.InsecureSkipVerify, //nolint:gosec // user's choice
	}
	if o.CA != "" {
		pem, err := os.ReadFile(o.CA)
		if err != nil {
			return nil, config.Errorf("tls.ca", "%v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, config.Errorf("tls.ca", "no PEM certificate in %s", o.CA)
		}
		c.RootCAs = pool
	}
	if o.Cert != "" {
		cert, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			return nil, config.Errorf("tls.cert", "%v", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
