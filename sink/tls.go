package sink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
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

// Validate checks what can be checked without reading the files.
func (o TLSOptions) Validate() error {
	if (o.Cert == "") != (o.Key == "") {
		return errors.New("tls: cert and key must be set together")
	}
	return nil
}

// Config loads the files into a tls.Config (TLS 1.2 or later). Errors name
// the key and the file, never the contents.
func (o TLSOptions) Config() (*tls.Config, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// An explicit opt-in, for test clusters with self-signed certificates.
		InsecureSkipVerify: o.InsecureSkipVerify, //nolint:gosec // user's choice
	}
	if o.CA != "" {
		pem, err := os.ReadFile(o.CA)
		if err != nil {
			return nil, fmt.Errorf("tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca: no PEM certificate in %s", o.CA)
		}
		c.RootCAs = pool
	}
	if o.Cert != "" {
		cert, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			return nil, fmt.Errorf("tls.cert, tls.key: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
