package policy_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// adminToken is a test bearer token; adminHash is its admin.token_sha256.
const adminToken = "test-admin-token-0123456789abcdef0123456789"

var adminHash = func() string { s := sha256.Sum256([]byte(adminToken)); return hex.EncodeToString(s[:]) }()

func fullMTLS() policy.TLSListenerConfig {
	return policy.TLSListenerConfig{CertFile: "tls/extproc.crt", KeyFile: "tls/extproc.key", ClientCAFile: "tls/envoy-ca.crt",
		AllowedSANs: []string{"spiffe://mesh.example/ns/edge/sa/envoy", "envoy.edge.internal"}}
}

func TestValidateSurfaces(t *testing.T) {
	without := func(edit func(*policy.TLSListenerConfig)) policy.TLSListenerConfig {
		c := fullMTLS()
		edit(&c)
		return c
	}
	tests := []struct {
		name    string
		listen  policy.ListenConfig
		admin   policy.AdminConfig
		wantErr []string // field paths (and text) that must be reported; none: valid
	}{
		{name: "loopback defaults", listen: policy.ListenConfig{ExtProc: "127.0.0.1:50051", Admin: "127.0.0.1:9090"}},
		{name: "unix socket and ::1", listen: policy.ListenConfig{ExtProc: "unix:/run/tollgate/extproc.sock", Admin: "[::1]:9090"}},
		{name: "localhost", listen: policy.ListenConfig{ExtProc: "localhost:50051", Admin: "localhost:9090"}},
		{name: "loopback ext_proc may use mTLS too", listen: policy.ListenConfig{ExtProc: "127.0.0.1:50051", ExtProcTLS: fullMTLS(), Admin: "127.0.0.1:9090"}},

		{name: "ext_proc on every interface without mTLS", listen: policy.ListenConfig{ExtProc: "0.0.0.0:50051", Admin: "127.0.0.1:9090"},
			wantErr: []string{"listen.extproc: a non-loopback address needs mutual TLS (listen.extproc_tls)", "provider key"}},
		{name: "ext_proc with empty host without mTLS", listen: policy.ListenConfig{ExtProc: ":50051", Admin: "127.0.0.1:9090"},
			wantErr: []string{"listen.extproc: a non-loopback address needs mutual TLS"}},
		{name: "ext_proc on a pod IP without mTLS", listen: policy.ListenConfig{ExtProc: "10.1.2.3:50051", Admin: "127.0.0.1:9090"},
			wantErr: []string{"listen.extproc: a non-loopback address needs mutual TLS"}},
		{name: "ext_proc on a name without mTLS", listen: policy.ListenConfig{ExtProc: "tollgate.internal:50051", Admin: "127.0.0.1:9090"},
			wantErr: []string{"listen.extproc: a non-loopback address needs mutual TLS"}},
		{name: "ext_proc on every interface with complete mTLS", listen: policy.ListenConfig{ExtProc: "0.0.0.0:50051", ExtProcTLS: fullMTLS(), Admin: "127.0.0.1:9090"}},
		{name: "ext_proc mTLS 1.3 only", listen: policy.ListenConfig{ExtProc: "0.0.0.0:50051",
			ExtProcTLS: without(func(c *policy.TLSListenerConfig) { c.MinVersion = "1.3" }), Admin: "127.0.0.1:9090"}},
		{name: "ext_proc mTLS without client CA", listen: policy.ListenConfig{ExtProc: "0.0.0.0:50051",
			ExtProcTLS: without(func(c *policy.TLSListenerConfig) { c.ClientCAFile = "" }), Admin: "127.0.0.1:9090"},
			wantErr: []string{"listen.extproc_tls.client_ca_file: is required: a client certificate is always required"}},
		{name: "ext_proc mTLS without allow-list", listen: policy.ListenConfig{ExtProc: "0.0.0.0:50051",
			ExtProcTLS: without(func(c *policy.TLSListenerConfig) { c.AllowedSANs = nil }), Admin: "127.0.0.1:9090"},
			wantErr: []string{"listen.extproc_tls.allowed_sans: is required"}},
		{name: "ext_proc mTLS without cert and key", listen: policy.ListenConfig{ExtProc: "0.0.0.0:50051",
			ExtProcTLS: without(func(c *policy.TLSListenerConfig) { c.CertFile, c.KeyFile = "", "" }), Admin: "127.0.0.1:9090"},
			wantErr: []string{"listen.extproc_tls.cert_file: is required", "listen.extproc_tls.key_file: is required"}},
		{name: "ext_proc mTLS with TLS 1.1", listen: policy.ListenConfig{ExtProc: "0.0.0.0:50051",
			ExtProcTLS: without(func(c *policy.TLSListenerConfig) { c.MinVersion = "1.1" }), Admin: "127.0.0.1:9090"},
			wantErr: []string{`listen.extproc_tls.min_version: must be "1.2" or "1.3"`}},
		{name: "ext_proc allow-list with wildcards, IPs and junk", listen: policy.ListenConfig{ExtProc: "0.0.0.0:50051",
			ExtProcTLS: without(func(c *policy.TLSListenerConfig) {
				c.AllowedSANs = []string{"*.edge.internal", "10.0.0.7", "", "spiffe://", "bad_name", "spiffe://mesh/*"}
			}), Admin: "127.0.0.1:9090"},
			wantErr: []string{"allowed_sans[0]: must be an exact DNS name or URI", "allowed_sans[1]: IP SANs are not matched",
				"allowed_sans[2]: is empty", "allowed_sans[3]: is not a valid URI", "allowed_sans[4]: is not a valid DNS name",
				"allowed_sans[5]: must be an exact"}},
		{name: "ext_proc only a min_version set counts as a partial mTLS block", listen: policy.ListenConfig{ExtProc: "0.0.0.0:50051",
			ExtProcTLS: policy.TLSListenerConfig{MinVersion: "1.3"}, Admin: "127.0.0.1:9090"},
			wantErr: []string{"listen.extproc_tls.cert_file", "listen.extproc_tls.client_ca_file", "listen.extproc_tls.allowed_sans"}},
		{name: "malformed ext_proc address", listen: policy.ListenConfig{ExtProc: "50051", Admin: "127.0.0.1:9090"},
			wantErr: []string{"listen.extproc: must be host:port or unix:/path"}},
		{name: "empty unix socket", listen: policy.ListenConfig{ExtProc: "unix:", Admin: "127.0.0.1:9090"},
			wantErr: []string{"listen.extproc: unix socket path is empty"}},

		{name: "admin on every interface without auth", listen: policy.ListenConfig{ExtProc: "127.0.0.1:50051", Admin: "0.0.0.0:9090"},
			wantErr: []string{"listen.admin: a non-loopback address needs admin.token_sha256 or mutual TLS"}},
		{name: "admin with server-only TLS is not authentication", listen: policy.ListenConfig{ExtProc: "127.0.0.1:50051", Admin: "0.0.0.0:9090"},
			admin:   policy.AdminConfig{TLS: policy.TLSListenerConfig{CertFile: "a.crt", KeyFile: "a.key"}},
			wantErr: []string{"listen.admin: a non-loopback address needs admin.token_sha256"}},
		{name: "admin on every interface with a token", listen: policy.ListenConfig{ExtProc: "127.0.0.1:50051", Admin: "0.0.0.0:9090"},
			admin: policy.AdminConfig{TokenSHA256: adminHash}},
		{name: "admin on every interface with a token and server TLS", listen: policy.ListenConfig{ExtProc: "127.0.0.1:50051", Admin: "0.0.0.0:9090"},
			admin: policy.AdminConfig{TokenSHA256: strings.ToUpper(adminHash), TLS: policy.TLSListenerConfig{CertFile: "a.crt", KeyFile: "a.key", MinVersion: "1.3"}}},
		{name: "admin on every interface with mTLS", listen: policy.ListenConfig{ExtProc: "127.0.0.1:50051", Admin: "0.0.0.0:9090"},
			admin: policy.AdminConfig{TLS: fullMTLS()}},
		{name: "admin loopback with a token", listen: policy.ListenConfig{ExtProc: "127.0.0.1:50051", Admin: "127.0.0.1:9090"},
			admin: policy.AdminConfig{TokenSHA256: adminHash}},
		{name: "admin token pasted instead of its hash", listen: policy.ListenConfig{ExtProc: "127.0.0.1:50051", Admin: "0.0.0.0:9090"},
			admin:   policy.AdminConfig{TokenSHA256: adminToken},
			wantErr: []string{"admin.token_sha256: must be the 64-character hex SHA-256"}},
		{name: "admin allow-list without client CA", listen: policy.ListenConfig{ExtProc: "127.0.0.1:50051", Admin: "0.0.0.0:9090"},
			admin:   policy.AdminConfig{TokenSHA256: adminHash, TLS: without(func(c *policy.TLSListenerConfig) { c.ClientCAFile = "" })},
			wantErr: []string{"admin.tls.client_ca_file: is required with allowed_sans"}},
		{name: "admin client CA without allow-list", listen: policy.ListenConfig{ExtProc: "127.0.0.1:50051", Admin: "0.0.0.0:9090"},
			admin:   policy.AdminConfig{TokenSHA256: adminHash, TLS: without(func(c *policy.TLSListenerConfig) { c.AllowedSANs = nil })},
			wantErr: []string{"admin.tls.allowed_sans: is required"}},
		{name: "admin on a unix socket", listen: policy.ListenConfig{ExtProc: "127.0.0.1:50051", Admin: "unix:/tmp/admin.sock"},
			wantErr: []string{"listen.admin: must be host:port"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := policytest.BaseConfig()
			cfg.ApplyDefaults()
			cfg.Listen, cfg.Admin = tc.listen, tc.admin
			cfg.Listen.DrainTimeout = policy.DefaultDrainTimeout
			err := cfg.Validate()
			if len(tc.wantErr) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, want := range tc.wantErr {
				require.Contains(t, err.Error(), want)
			}
			require.NotContains(t, err.Error(), adminToken, "a pasted token is never echoed")
		})
	}
}

func TestIsLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:1": true, "127.9.9.9:1": true, "[::1]:1": true, "localhost:1": true, "unix:/x.sock": true,
		"0.0.0.0:1": false, ":1": false, "[::]:1": false, "10.0.0.1:1": false, "example.com:1": false, "garbage": false,
	} {
		require.Equal(t, want, policy.IsLoopbackAddr(addr), addr)
	}
}

func TestSANAllowList(t *testing.T) {
	spiffe, err := url.Parse("spiffe://mesh.example/ns/edge/sa/envoy")
	require.NoError(t, err)
	other, err := url.Parse("spiffe://mesh.example/ns/edge/sa/other")
	require.NoError(t, err)
	list := policy.NewSANAllowList(fullMTLS().AllowedSANs)
	tests := []struct {
		name string
		leaf *x509.Certificate
		want bool
	}{
		{"allowed URI SAN", &x509.Certificate{URIs: []*url.URL{spiffe}}, true},
		{"allowed DNS SAN, any case", &x509.Certificate{DNSNames: []string{"Envoy.Edge.Internal"}}, true},
		{"one allowed among others", &x509.Certificate{DNSNames: []string{"x.example"}, URIs: []*url.URL{other, spiffe}}, true},
		{"other URI", &x509.Certificate{URIs: []*url.URL{other}}, false},
		{"DNS name equal to a listed URI's host", &x509.Certificate{DNSNames: []string{"mesh.example"}}, false},
		{"suffix of an allowed name", &x509.Certificate{DNSNames: []string{"evil-envoy.edge.internal"}}, false},
		{"common name only", &x509.Certificate{}, false},
		{"no certificate", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, list.Allows(tc.leaf))
		})
	}
	var none *policy.SANAllowList
	require.False(t, none.Allows(&x509.Certificate{URIs: []*url.URL{spiffe}}), "a nil list allows nothing")
	require.Equal(t, "dns:a,uri:spiffe://mesh.example/ns/edge/sa/envoy",
		policy.DescribeSANs(&x509.Certificate{DNSNames: []string{"a"}, URIs: []*url.URL{spiffe}}))
	require.Equal(t, "none", policy.DescribeSANs(&x509.Certificate{}))
	many := &x509.Certificate{DNSNames: []string{"a", "b", "c", "d", "e", strings.Repeat("x", 300)}}
	require.Equal(t, "dns:a,dns:b,dns:c,dns:d,... (2 more)", policy.DescribeSANs(many))
}

func TestAdminToken(t *testing.T) {
	h, err := policy.HashAdminToken(adminToken)
	require.NoError(t, err)
	require.Equal(t, adminHash, h, "known answer: hex SHA-256 of the token")
	tok, err := policy.ParseAdminToken(h)
	require.NoError(t, err)

	tests := []struct {
		name      string
		presented string
		want      bool
	}{
		{"the token", adminToken, true},
		{"empty", "", false},
		{"first byte differs", "X" + adminToken[1:], false},
		{"last byte differs", adminToken[:len(adminToken)-1] + "X", false},
		{"a prefix", adminToken[:len(adminToken)-1], false},
		{"with a suffix", adminToken + "x", false},
		{"the stored hash itself", h, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tok.Verify(tc.presented))
		})
	}
	var none *policy.AdminToken
	require.False(t, none.Verify(adminToken))

	for _, weak := range []string{"", "short", strings.Repeat("a", 31), strings.Repeat("a", 40) + " b", strings.Repeat("é", 20), strings.Repeat("a", 600)} {
		_, err := policy.HashAdminToken(weak)
		require.ErrorIs(t, err, policy.ErrWeakToken)
		if weak != "" {
			require.NotContains(t, err.Error(), weak)
		}
	}
	for _, bad := range []string{"", adminToken, h[:63], h + "0", strings.Repeat("g", 64)} {
		_, err := policy.ParseAdminToken(bad)
		require.ErrorIs(t, err, policy.ErrBadTokenHash)
	}
}

// BenchmarkAdminTokenVerify shows that verifying a wrong token costs the same whether it
// differs in its first or its last byte, or has another length (compare the sub-benchmarks):
// the presented token is hashed and the digests are compared in constant time.
func BenchmarkAdminTokenVerify(b *testing.B) {
	tok, err := policy.ParseAdminToken(adminHash)
	require.NoError(b, err)
	for name, presented := range map[string]string{
		"right":             adminToken,
		"first_byte_wrong":  "X" + adminToken[1:],
		"last_byte_wrong":   adminToken[:len(adminToken)-1] + "X",
		"short":             "x",
		"hash_of_the_token": adminHash,
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				tok.Verify(presented)
			}
		})
	}
}
