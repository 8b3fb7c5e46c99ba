package testpki

import (
	"crypto/x509"
	"testing"
)

func TestCertVerifiesAgainstTheCAForServerAndClient(t *testing.T) {
	p := New(t)
	leaf, err := x509.ParseCertificate(p.Cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: p.Pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("usage %v: %v", usage, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "127.0.0.1"}); err == nil {
		t.Error("verified against the system roots")
	}
}
