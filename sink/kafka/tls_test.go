package kafka

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/rollcall-dev/rollcall/schema/schematest/testpki"
)

func TestTLS(t *testing.T) {
	pki := testpki.New(t)
	caFile, serverTLS := pki.CAFile, &tls.Config{Certificates: []tls.Certificate{pki.Cert}, MinVersion: tls.VersionTLS12}
	c := newCluster(t, kfake.TLS(serverTLS), kfake.SeedTopics(1, "events"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	s := newSink(t, c, Options{Topic: "events", TLS: &TLSOptions{CA: caFile}})
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check with the CA: %v", err)
	}
	publish(t, s, groupEvents("@TGS#tls", 3))

	untrusted := newSink(t, c, Options{Topic: "events", TLS: &TLSOptions{}, WriteTimeout: 2 * time.Second})
	if err := untrusted.Check(ctx); err == nil {
		t.Error("Check trusting only the system roots accepted the test CA's certificate")
	}
	insecure := newSink(t, c, Options{Topic: "events", TLS: &TLSOptions{InsecureSkipVerify: true}})
	if err := insecure.Check(ctx); err != nil {
		t.Errorf("Check with insecure_skip_verify: %v", err)
	}
}
