package nats_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/rollcall-dev/rollcall/schema/schematest/testpki"
	"github.com/rollcall-dev/rollcall/sink"
	natssink "github.com/rollcall-dev/rollcall/sink/nats"
	"github.com/rollcall-dev/rollcall/sink/nats/natstest"
)

func TestNKeyAuth(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	ts := natstest.Start(t, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })
	dir := t.TempDir()
	good := filepath.Join(dir, "user.nk")
	if err := os.WriteFile(good, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSink(t, ts, natssink.Options{NKeyFile: good})
	if err := s.Publish(ctxT(t, 10*time.Second), sink.NewBatch(events(1, 1, 0))); err != nil {
		t.Fatal(err)
	}

	// A file that is not a seed: the error names the key, not the content.
	bad := filepath.Join(dir, "bad.nk")
	if err := os.WriteFile(bad, []byte("SUAnotaseed-but-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = natssink.New(ctxT(t, 5*time.Second), natssink.Options{URLs: []string{ts.URL()}, NKeyFile: bad})
	if err == nil || !strings.HasPrefix(err.Error(), "nkey_file: ") || strings.Contains(err.Error(), "secret") {
		t.Errorf("New with a bad seed file = %v", err)
	}
}

func TestMutualTLS(t *testing.T) {
	pki := testpki.New(t)
	caFile, certFile, keyFile, cert, pool := pki.CAFile, pki.CertFile, pki.KeyFile, pki.Cert, pki.Pool
	ts := natstest.Start(t, func(o *server.Options) {
		o.TLS, o.TLSVerify, o.TLSTimeout = true, true, 5
		o.TLSConfig = &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientCAs:    pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		}
	})
	tests := []struct {
		name string
		tls  natssink.TLSOptions
		ok   bool
	}{
		{"ca and client cert", natssink.TLSOptions{CA: caFile, Cert: certFile, Key: keyFile}, true},
		{"insecure skip verify", natssink.TLSOptions{InsecureSkipVerify: true, Cert: certFile, Key: keyFile}, true},
		{"unknown server ca", natssink.TLSOptions{Cert: certFile, Key: keyFile}, false},
		{"no client cert", natssink.TLSOptions{CA: caFile}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tlsOpts := tt.tls
			o := natssink.Options{URLs: []string{"tls://127.0.0.1:" + strings.TrimPrefix(ts.URL(), "nats://127.0.0.1:")}, TLS: &tlsOpts}
			s, err := natssink.New(ctxT(t, 10*time.Second), o)
			if !tt.ok {
				if err == nil {
					_ = s.Close(ctxT(t, 5*time.Second))
					t.Fatal("connected")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close(ctxT(t, 5*time.Second)) }()
			if err := s.Publish(ctxT(t, 10*time.Second), sink.NewBatch(events(2, 1, 0))); err != nil {
				t.Fatal(err)
			}
		})
	}
	_, err := natssink.New(ctxT(t, 5*time.Second), natssink.Options{URLs: []string{ts.URL()},
		TLS: &natssink.TLSOptions{CA: filepath.Join(t.TempDir(), "missing.pem")}})
	if err == nil || !strings.HasPrefix(err.Error(), "tls.ca: ") {
		t.Errorf("New with a missing CA file = %v", err)
	}
}
