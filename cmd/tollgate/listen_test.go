package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/policy"
)

// envoySAN is the SPIFFE id the tests' Envoy client certificate carries.
const envoySAN = "spiffe://tollgate.test/ns/edge/sa/envoy"

// pki is the mTLS material of one test: the CA that issues Tollgate's server certificate and
// Envoy's client certificates, and another CA nobody trusts.
type pki struct {
	dir       string
	ca, other *devtls.CA
	caFile    string
	pool      *x509.CertPool // trusts ca, for clients verifying Tollgate
}

func newPKI(t *testing.T, dir string) *pki {
	t.Helper()
	now := time.Now()
	p := &pki{dir: filepath.Join(dir, "mtls")}
	var err error
	p.ca, err = devtls.NewCA("tollgate test CA", now)
	require.NoError(t, err)
	p.other, err = devtls.NewCA("another CA", now)
	require.NoError(t, err)
	_, _, err = p.ca.IssueFiles(p.dir, "server", devtls.Leaf{CommonName: "tollgate", DNSNames: []string{"tollgate.test"},
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true}, now)
	require.NoError(t, err)
	p.caFile = filepath.Join(p.dir, "ca.crt")
	require.NoError(t, p.ca.WriteCert(p.caFile))
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.ca.Certificate())
	return p
}

// client issues a client certificate from ca.
func (p *pki) client(t *testing.T, ca *devtls.CA, leaf devtls.Leaf) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(leaf, time.Now())
	require.NoError(t, err)
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	return c
}

// tlsBlock is a TLS config block for the trial's YAML, its files in the pki directory.
func (p *pki) tlsBlock(sans ...string) string {
	return `{cert_file: mtls/server.crt, key_file: mtls/server.key, client_ca_file: mtls/ca.crt, allowed_sans: ["` +
		strings.Join(sans, `", "`) + `"], min_version: "1.2"}`
}

// setListen replaces the trial config's listen line.
func (tr *trial) setListen(t *testing.T, listen, extra string) {
	t.Helper()
	tr.writeConfig(t, extra)
	raw, err := os.ReadFile(tr.cfg)
	require.NoError(t, err)
	old := `listen: {extproc: "` + tr.extproc + `", admin: "` + tr.admin + `"}`
	require.Contains(t, string(raw), old)
	require.NoError(t, os.WriteFile(tr.cfg+".tmp", []byte(strings.Replace(string(raw), old, "listen: "+listen, 1)), 0o600))
	require.NoError(t, os.Rename(tr.cfg+".tmp", tr.cfg))
}

// extprocCall opens a connection with creds, sends a chat request's headers with key and
// returns the status Tollgate decided (0: continue), or the error that stopped it.
func extprocCall(target string, creds credentials.TransportCredentials, key string) (int, error) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return extprocCallOn(conn, key)
}

func extprocCallOn(conn *grpc.ClientConn, key string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	if err != nil {
		return 0, err
	}
	hm := &corev3.HeaderMap{}
	for _, kv := range [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {"authorization", "Bearer " + key}, {"content-type", "application/json"}} {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
	}
	if err := s.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: hm}}}); err != nil {
		_, err = s.Recv() // the real reason
		return 0, err
	}
	resp, err := s.Recv()
	if err != nil {
		return 0, err
	}
	return int(resp.GetImmediateResponse().GetStatus().GetCode()), nil
}

func clientCreds(roots *x509.CertPool, certs ...tls.Certificate) credentials.TransportCredentials {
	return credentials.NewTLS(clientTLS(roots, certs...))
}

// clientTLS presents the first of certs whatever CAs the server asks for, as Envoy does (a
// Go client would otherwise keep a certificate from another CA to itself).
func clientTLS(roots *x509.CertPool, certs ...tls.Certificate) *tls.Config {
	cfg := &tls.Config{RootCAs: roots, ServerName: "tollgate.test", MinVersion: tls.VersionTLS12}
	if len(certs) > 0 {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
	}
	return cfg
}

func (tr *trial) demoKey(t *testing.T) string {
	t.Helper()
	demo, err := os.ReadFile(filepath.Join(tr.dir, ".dev", "demo-key"))
	require.NoError(t, err)
	return strings.TrimSpace(string(demo))
}

func (tr *trial) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + tr.admin + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return string(b)
}

// TestExtProcMTLS binds ext_proc on every interface with mutual TLS: only a client with a
// certificate from the configured CA and an allow-listed SAN can open a stream.
func TestExtProcMTLS(t *testing.T) {
	tr := newTrial(t)
	p := newPKI(t, tr.dir)
	_, port, err := net.SplitHostPort(tr.extproc)
	require.NoError(t, err)
	tr.setListen(t, `{extproc: "0.0.0.0:`+port+`", admin: "`+tr.admin+`", extproc_tls: `+p.tlsBlock(envoySAN, "envoy.edge.internal")+`}`, "")
	prev := handshakeLogEvery
	handshakeLogEvery = 0 // log every refusal, so each case is checked by its reason
	t.Cleanup(func() { handshakeLogEvery = prev })
	tr.start(t)
	key := tr.demoKey(t)
	good := p.client(t, p.ca, devtls.Leaf{CommonName: "envoy", URIs: []string{envoySAN}, Client: true})

	// Each refusal is checked by the reason Tollgate logs, so a case cannot pass for another
	// one (a certificate from another CA silently not sent, say).
	refused := []struct {
		name, reason string
		creds        credentials.TransportCredentials
	}{
		{"plaintext", "first record does not look like a TLS handshake", insecure.NewCredentials()},
		{"no client certificate", "client didn't provide a certificate", clientCreds(p.pool)},
		{"certificate from another CA with the allowed SAN", "certificate signed by unknown authority", clientCreds(p.pool,
			p.client(t, p.other, devtls.Leaf{CommonName: "envoy", URIs: []string{envoySAN}, Client: true}))},
		{"certificate whose SAN is not allowed", "client certificate has no allowed SAN in listen.extproc_tls.allowed_sans (it has uri:spiffe://tollgate.test/ns/edge/sa/other)", clientCreds(p.pool,
			p.client(t, p.ca, devtls.Leaf{CommonName: envoySAN, URIs: []string{"spiffe://tollgate.test/ns/edge/sa/other"}, Client: true}))},
		{"allowed name only in the common name", "client certificate has no allowed SAN in listen.extproc_tls.allowed_sans (it has dns:x.edge.internal)", clientCreds(p.pool,
			p.client(t, p.ca, devtls.Leaf{CommonName: "envoy.edge.internal", DNSNames: []string{"x.edge.internal"}, Client: true}))},
		{"allowed SAN on a server-only certificate", "incompatible key usage", clientCreds(p.pool,
			p.client(t, p.ca, devtls.Leaf{CommonName: "envoy", URIs: []string{envoySAN}, Server: true}))},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			code, err := extprocCall(tr.extproc, tc.creds, key)
			require.Error(t, err, "a stream opened (status %d)", code)
			require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
			require.Eventually(t, func() bool { return strings.Contains(tr.logs.String(), tc.reason) },
				5*time.Second, 10*time.Millisecond, "refused for another reason; logs:\n%s", tr.logs)
		})
	}
	t.Run("TLS 1.3 client", func(t *testing.T) {
		cfg := clientTLS(p.pool, good)
		cfg.MinVersion = tls.VersionTLS13
		creds := credentials.NewTLS(cfg)
		code, err := extprocCall(tr.extproc, creds, key)
		require.NoError(t, err)
		require.Zero(t, code, "the demo key continues to the body phase")
	})
	t.Run("TLS 1.2 client with a DNS SAN", func(t *testing.T) {
		dns := p.client(t, p.ca, devtls.Leaf{DNSNames: []string{"Envoy.Edge.Internal"}, Client: true})
		cfg := clientTLS(p.pool, dns)
		cfg.MaxVersion = tls.VersionTLS12
		creds := credentials.NewTLS(cfg)
		code, err := extprocCall(tr.extproc, creds, key)
		require.NoError(t, err)
		require.Zero(t, code)
		code, err = extprocCall(tr.extproc, creds, "tgk_AAAAAAAAAAAA_"+strings.Repeat("b", 49))
		require.NoError(t, err)
		require.Equal(t, http.StatusUnauthorized, code, "the policy still runs behind mTLS")
	})

	m := tr.metrics(t)
	require.Regexp(t, `tollgate_tls_clients_refused_total\{listener="extproc",stage="handshake"\} [1-9]`, m)
	require.Contains(t, m, `tollgate_tls_cert_not_after_timestamp_seconds{listener="extproc"}`)
	require.Contains(t, tr.logs.String(), "tls client refused")
	require.Contains(t, tr.logs.String(), `"extproc_auth":"mtls"`)
	require.NotContains(t, tr.logs.String(), key)
}

// TestExtProcMTLSReload: a reload that removes the client's SAN refuses its next stream, even
// on the connection it already has; certificate files are re-read when they change; a
// reload changing the TLS files is refused until a restart.
func TestExtProcMTLSReload(t *testing.T) {
	tr := newTrial(t)
	p := newPKI(t, tr.dir)
	listen := func(sans ...string) string {
		return `{extproc: "` + tr.extproc + `", admin: "` + tr.admin + `", extproc_tls: ` + p.tlsBlock(sans...) + `}`
	}
	tr.setListen(t, listen(envoySAN), "")
	tr.start(t)
	key := tr.demoKey(t)

	var served atomicSerial
	cfg := clientTLS(p.pool, p.client(t, p.ca, devtls.Leaf{URIs: []string{envoySAN}, Client: true}))
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		served.set(cs.PeerCertificates[0].SerialNumber.String())
		return nil
	}
	creds := credentials.NewTLS(cfg)
	conn, err := grpc.NewClient(tr.extproc, grpc.WithTransportCredentials(creds))
	require.NoError(t, err)
	defer conn.Close()
	code, err := extprocCallOn(conn, key)
	require.NoError(t, err)
	require.Zero(t, code)
	first := served.get()

	t.Run("server certificate rotates without a restart", func(t *testing.T) {
		_, _, err := p.ca.IssueFiles(p.dir, "server", devtls.Leaf{CommonName: "tollgate", DNSNames: []string{"tollgate.test"}, Server: true}, time.Now())
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			_, err := extprocCall(tr.extproc, creds, key)
			return err == nil && served.get() != first
		}, 10*time.Second, 50*time.Millisecond, "new connections get the new certificate; logs:\n%s", tr.logs)
		require.Contains(t, tr.logs.String(), "tls certificate reloaded")
	})

	t.Run("a broken certificate file keeps the last good one", func(t *testing.T) {
		require.NoError(t, os.WriteFile(filepath.Join(p.dir, "server.crt"), []byte("not a certificate"), 0o644))
		require.Eventually(t, func() bool { return strings.Contains(tr.logs.String(), "tls reload refused") }, 10*time.Second, 20*time.Millisecond)
		_, err := extprocCall(tr.extproc, creds, key)
		require.NoError(t, err)
		_, _, err = p.ca.IssueFiles(p.dir, "server", devtls.Leaf{DNSNames: []string{"tollgate.test"}, Server: true}, time.Now())
		require.NoError(t, err)
	})

	t.Run("a reload changing the TLS files is refused", func(t *testing.T) {
		tr.setListen(t, strings.Replace(listen(envoySAN), "mtls/ca.crt", "mtls/other-ca.crt", 1), "")
		require.Eventually(t, func() bool {
			return strings.Contains(tr.logs.String(), "listen.extproc_tls.client_ca_file changed") &&
				strings.Contains(tr.logs.String(), "restart tollgate")
		}, 10*time.Second, 20*time.Millisecond, "logs:\n%s", tr.logs)
		code, err := extprocCallOn(conn, key)
		require.NoError(t, err)
		require.Zero(t, code)
	})

	t.Run("a SAN removed by a reload is refused on the open connection", func(t *testing.T) {
		tr.setListen(t, listen("spiffe://tollgate.test/ns/edge/sa/someone-else"), "")
		require.Eventually(t, func() bool {
			_, err := extprocCallOn(conn, key)
			return status.Code(err) == codes.PermissionDenied
		}, 10*time.Second, 50*time.Millisecond, "logs:\n%s", tr.logs)
		_, err := extprocCall(tr.extproc, creds, key)
		require.Error(t, err, "and new connections are refused at the handshake")
		require.Regexp(t, `tollgate_tls_clients_refused_total\{listener="extproc",stage="stream"\} [1-9]`, tr.metrics(t))
	})
}

// atomicSerial is the serial number of the server certificate last seen by a client.
type atomicSerial struct{ v atomic.Pointer[string] }

func (a *atomicSerial) set(s string) { a.v.Store(&s) }
func (a *atomicSerial) get() string {
	if p := a.v.Load(); p != nil {
		return *p
	}
	return ""
}

// TestServeRefusesUnauthenticatedSurfaces: serve does not start with a listener off
// loopback and no authentication, nor with TLS files it cannot load.
func TestServeRefusesUnauthenticatedSurfaces(t *testing.T) {
	tr := newTrial(t)
	p := newPKI(t, tr.dir)
	_, extPort, err := net.SplitHostPort(tr.extproc)
	require.NoError(t, err)
	_, adminPort, err := net.SplitHostPort(tr.admin)
	require.NoError(t, err)
	tests := []struct {
		name, listen, extra string
		want                []string
	}{
		{"ext_proc on every interface without mTLS", `{extproc: "0.0.0.0:` + extPort + `", admin: "` + tr.admin + `"}`, "",
			[]string{"listen.extproc: a non-loopback address needs mutual TLS"}},
		{"admin on every interface without auth", `{extproc: "` + tr.extproc + `", admin: "0.0.0.0:` + adminPort + `"}`, "",
			[]string{"listen.admin: a non-loopback address needs admin.token_sha256 or mutual TLS"}},
		{"mTLS with a missing certificate", `{extproc: "0.0.0.0:` + extPort + `", admin: "` + tr.admin + `", extproc_tls: ` +
			strings.Replace(p.tlsBlock(envoySAN), "mtls/server.crt", "mtls/missing.crt", 1) + `}`, "",
			[]string{"listen.extproc_tls.cert_file", "missing.crt"}},
		{"mTLS with a key that does not match", `{extproc: "0.0.0.0:` + extPort + `", admin: "` + tr.admin + `", extproc_tls: ` +
			strings.Replace(p.tlsBlock(envoySAN), "mtls/server.key", ".dev/tls/server.key", 1) + `}`, "",
			[]string{"listen.extproc_tls.cert_file/key_file", "private key does not match public key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr.setListen(t, tc.listen, tc.extra)
			var out syncBuffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := run(ctx, []string{"serve", "--config", tr.cfg}, &out, &out)
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			require.NotContains(t, out.String(), "tollgate serving")
			for _, addr := range []string{"127.0.0.1:" + extPort, "127.0.0.1:" + adminPort} {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err == nil {
					c.Close()
				}
				require.Error(t, err, "nothing listens on %s", addr)
			}
		})
	}
}

// TestReadmeSurfaceSnippets decodes README.md's listener and admin examples strictly and
// validates them: they must stay configs Tollgate accepts.
func TestReadmeSurfaceSnippets(t *testing.T) {
	blocks, _ := readmeBlocks(t)
	found := 0
	for _, b := range blocks["yaml"] {
		if !strings.HasPrefix(b, "listen:\n") {
			continue
		}
		found++
		var cfg policy.Config
		require.NoError(t, decodeYAMLBytes("README.md", []byte(b), &cfg), b)
		require.False(t, policy.IsLoopbackAddr(cfg.Listen.ExtProc) && policy.IsLoopbackAddr(cfg.Listen.Admin) && cfg.Listen.Admin != "",
			"the README examples show listeners off loopback:\n%s", b)
		cfg.ApplyDefaults()
		require.NoError(t, cfg.Validate(), b)
	}
	require.Equal(t, 2, found, "the ext_proc mTLS and the admin token examples")
}

func TestRefusalLogIsRateLimited(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	reg := prometheus.NewRegistry()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := &refusalLog{listener: "extproc", log: zap.New(core), metrics: newTLSMetrics(reg), every: 10 * time.Second,
		now: func() time.Time { return now }}
	for range 5 {
		h.refused(stageHandshake, "10.0.0.1:1", errNoClientCert)
	}
	h.refused(stageStream, "10.0.0.1:1", errClientNotAllowed)
	require.Equal(t, 1, logs.Len(), "one line per interval")
	now = now.Add(10 * time.Second)
	h.refused("", "", errors.New("http: some server error"))
	require.Equal(t, 2, logs.Len())
	last := logs.All()[1].ContextMap()
	require.EqualValues(t, 5, last["suppressed_since_last"])
	require.Equal(t, "admin server error", logs.All()[1].Message)
	require.Equal(t, "tls client refused", logs.All()[0].Message)
	counts := map[string]float64{}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "tollgate_tls_clients_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" {
					counts[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	require.Equal(t, map[string]float64{stageHandshake: 5, stageStream: 1}, counts, "every refusal is counted; other errors are not")
}
