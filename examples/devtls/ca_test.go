package devtls_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/examples/devtls"
)

func parsePEMCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode(b)
	require.NotNil(t, block)
	require.Empty(t, rest)
	c, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return c
}

func TestCAIssuesClientAndServerCertificates(t *testing.T) {
	ca, err := devtls.NewCA("test CA", now)
	require.NoError(t, err)
	other, err := devtls.NewCA("other CA", now)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())

	tests := []struct {
		name    string
		leaf    devtls.Leaf
		usage   x509.ExtKeyUsage
		wrongEK x509.ExtKeyUsage
	}{
		{"client with a SPIFFE id", devtls.Leaf{CommonName: "envoy", URIs: []string{"spiffe://tollgate.test/envoy"}, Client: true},
			x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		{"server with names and IPs", devtls.Leaf{CommonName: "tollgate", DNSNames: []string{"tollgate.test"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true},
			x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			certPEM, keyPEM, err := ca.Issue(tc.leaf, now)
			require.NoError(t, err)
			_, err = tls.X509KeyPair(certPEM, keyPEM)
			require.NoError(t, err, "key matches certificate")
			leaf := parsePEMCert(t, certPEM)
			require.Equal(t, tc.leaf.DNSNames, leaf.DNSNames)
			require.Len(t, leaf.URIs, len(tc.leaf.URIs))
			for i, u := range leaf.URIs {
				require.Equal(t, tc.leaf.URIs[i], u.String())
			}
			_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{tc.usage}})
			require.NoError(t, err)
			_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{tc.wrongEK}})
			require.Error(t, err, "only the usage asked for")
			otherPool := x509.NewCertPool()
			otherPool.AddCert(other.Certificate())
			_, err = leaf.Verify(x509.VerifyOptions{Roots: otherPool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{tc.usage}})
			require.Error(t, err, "another CA does not vouch for it")
		})
	}
	_, _, err = ca.Issue(devtls.Leaf{CommonName: "nothing"}, now)
	require.ErrorIs(t, err, devtls.ErrNoUsage)
}

func TestCAIssueFiles(t *testing.T) {
	ca, err := devtls.NewCA("test CA", now)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "mtls")
	certFile, keyFile, err := ca.IssueFiles(dir, "envoy-client", devtls.Leaf{URIs: []string{"spiffe://t/envoy"}, Client: true}, now)
	require.NoError(t, err)
	require.NoError(t, ca.WriteCert(filepath.Join(dir, "ca.crt")))
	fi, err := os.Stat(keyFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, err = tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	require.NoError(t, err)
	require.Equal(t, ca.CertPEM(), caPEM)
	require.True(t, parsePEMCert(t, caPEM).IsCA)
}
