package devtls_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/examples/devtls"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	block, rest := pem.Decode(data)
	require.NotNil(t, block)
	require.Equal(t, "CERTIFICATE", block.Type)
	require.Empty(t, rest, "exactly one certificate per file")
	c, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return c
}

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	require.NoError(t, devtls.Write(dir, []string{"gateway.test", "10.1.2.3", "*.wild.test"}, now))

	fi, err := os.Stat(filepath.Join(dir, devtls.KeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "server.key must be private")
	di, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{devtls.CAFile, devtls.CertFile, devtls.KeyFile}, names,
		"no CA key and no temporary files on disk")

	ca := readCert(t, filepath.Join(dir, devtls.CAFile))
	leaf := readCert(t, filepath.Join(dir, devtls.CertFile))
	require.True(t, ca.IsCA)
	require.True(t, ca.MaxPathLenZero)
	require.False(t, leaf.IsCA)
	require.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, leaf.ExtKeyUsage)
	for _, c := range []*x509.Certificate{ca, leaf} {
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		require.True(t, ok)
		require.Equal(t, elliptic.P256(), pub.Curve)
		require.Equal(t, now.Add(devtls.Validity).UTC(), c.NotAfter)
		require.True(t, c.NotBefore.Before(now))
	}
	require.Equal(t, []string{"localhost", "gateway.test", "*.wild.test"}, leaf.DNSNames)
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	require.Equal(t, []string{"127.0.0.1", "::1", "10.1.2.3"}, ips)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, host := range []string{"localhost", "127.0.0.1", "::1", "gateway.test", "10.1.2.3", "a.wild.test"} {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, CurrentTime: now})
		require.NoError(t, err, host)
	}
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: "other.test", Roots: pool, CurrentTime: now})
	require.Error(t, err)
	require.NoError(t, devtls.Check(dir, []string{"gateway.test", "10.1.2.3", "*.wild.test"}, now))
}

func TestWriteRejectsBadHosts(t *testing.T) {
	for _, h := range []string{"", "  ", "a b", "http://x", "host:443", "a/b"} {
		err := devtls.Write(t.TempDir(), []string{h}, now)
		require.ErrorIs(t, err, devtls.ErrInvalidHost, "%q", h)
	}
	// Bracketed IPv6 is accepted.
	require.NoError(t, devtls.Write(t.TempDir(), []string{"[fd00::1]"}, now))
}

func TestEnsure(t *testing.T) {
	tests := []struct {
		name        string
		prepare     func(t *testing.T, dir string) // after a first Ensure at now
		hosts       []string
		at          time.Time
		wantCreated bool
	}{
		{name: "fresh files are kept", at: now.Add(time.Hour)},
		{name: "still valid for more than a day", at: now.Add(devtls.Validity - devtls.RenewBefore - time.Minute)},
		{name: "expiring within a day", at: now.Add(devtls.Validity - devtls.RenewBefore + time.Minute), wantCreated: true},
		{name: "expired", at: now.Add(devtls.Validity + time.Hour), wantCreated: true},
		{name: "not yet valid (clock went back)", at: now.Add(-48 * time.Hour), wantCreated: true},
		{name: "new host", hosts: []string{"extra.test"}, at: now, wantCreated: true},
		{name: "default host spelled differently", hosts: []string{"LOCALHOST", "[::1]"}, at: now},
		{
			name: "missing key", at: now, wantCreated: true,
			prepare: func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, devtls.KeyFile))) },
		},
		{
			name: "missing ca", at: now, wantCreated: true,
			prepare: func(t *testing.T, dir string) { require.NoError(t, os.Remove(filepath.Join(dir, devtls.CAFile))) },
		},
		{
			name: "key from another run", at: now, wantCreated: true,
			prepare: func(t *testing.T, dir string) {
				other := t.TempDir()
				require.NoError(t, devtls.Write(other, nil, now))
				copyFile(t, filepath.Join(other, devtls.KeyFile), filepath.Join(dir, devtls.KeyFile))
			},
		},
		{
			name: "certificate from another CA", at: now, wantCreated: true,
			prepare: func(t *testing.T, dir string) {
				other := t.TempDir()
				require.NoError(t, devtls.Write(other, nil, now))
				copyFile(t, filepath.Join(other, devtls.CAFile), filepath.Join(dir, devtls.CAFile))
			},
		},
		{
			name: "garbage certificate", at: now, wantCreated: true,
			prepare: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, devtls.CertFile), []byte("not pem"), 0o644))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tls")
			created, err := devtls.Ensure(dir, nil, now)
			require.NoError(t, err)
			require.True(t, created, "empty directory")
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}
			before, _ := os.ReadFile(filepath.Join(dir, devtls.CertFile))

			created, err = devtls.Ensure(dir, tc.hosts, tc.at)
			require.NoError(t, err)
			require.Equal(t, tc.wantCreated, created)
			after, err := os.ReadFile(filepath.Join(dir, devtls.CertFile))
			require.NoError(t, err)
			if !tc.wantCreated {
				require.Equal(t, before, after, "files must be left alone")
			}
			require.NoError(t, devtls.Check(dir, tc.hosts, tc.at), "usable after Ensure")

			created, err = devtls.Ensure(dir, tc.hosts, tc.at)
			require.NoError(t, err)
			require.False(t, created, "idempotent")
		})
	}
}

func TestEnsureInvalidHost(t *testing.T) {
	dir := t.TempDir()
	created, err := devtls.Ensure(dir, []string{"bad host"}, now)
	require.ErrorIs(t, err, devtls.ErrInvalidHost)
	require.False(t, created)
}

// TestServeTLS checks the files work for a real TLS server and client over h2.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	require.NoError(t, devtls.Write(dir, nil, start))

	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, devtls.CertFile), filepath.Join(dir, devtls.KeyFile))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) }),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })

	caPEM, err := os.ReadFile(filepath.Join(dir, devtls.CAFile))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	port := ln.Addr().(*net.TCPAddr).Port
	for _, host := range []string{"127.0.0.1", "localhost"} {
		resp, err := client.Get("https://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/")
		require.NoError(t, err, host)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, "HTTP/2.0", string(body))
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, data, 0o600))
}
