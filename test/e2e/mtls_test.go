package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// e2eEnvoySAN is the identity Tollgate's ext_proc listener allows in.
const e2eEnvoySAN = "spiffe://tollgate.test/ns/edge/sa/envoy"

// TestExtProcMTLSEndToEnd runs ext_proc over TCP with mutual TLS between a real Envoy and
// Tollgate: the stack's Envoy presents an allowed client certificate and traffic flows;
// Envoys presenting a certificate from another CA, none at all, or speaking plaintext h2c
// (envoy.yaml as shipped) fail closed: the client gets the JSON 503 and the mock LLM sees
// nothing.
func TestExtProcMTLSEndToEnd(t *testing.T) {
	now := time.Now()
	pki := t.TempDir()
	ca, err := devtls.NewCA("tollgate e2e CA", now)
	require.NoError(t, err)
	other, err := devtls.NewCA("some other CA", now)
	require.NoError(t, err)
	caFile := filepath.Join(pki, "ca.crt")
	require.NoError(t, ca.WriteCert(caFile))
	srvCert, srvKey, err := ca.IssueFiles(pki, "tollgate", devtls.Leaf{CommonName: "tollgate", DNSNames: []string{"tollgate.test"}, Server: true}, now)
	require.NoError(t, err)
	envoyCert, envoyKey, err := ca.IssueFiles(pki, "envoy", devtls.Leaf{CommonName: "envoy", URIs: []string{e2eEnvoySAN}, Client: true}, now)
	require.NoError(t, err)
	rogueCert, rogueKey, err := other.IssueFiles(pki, "rogue", devtls.Leaf{CommonName: "envoy", URIs: []string{e2eEnvoySAN}, Client: true}, now)
	require.NoError(t, err)

	s := startStack(t, stackOptions{
		edit: func(cfg string) string {
			return replaceOnce(t, cfg, "listen:\n", "listen:\n  extproc_tls: {cert_file: "+srvCert+", key_file: "+srvKey+
				", client_ca_file: "+caFile+`, allowed_sans: ["`+e2eEnvoySAN+`"], min_version: "1.3"}`+"\n")
		},
		envoy: func(t *testing.T, cfg string) {
			testutil.EnableExtProcTLS(t, cfg, testutil.ExtProcTLS{CertFile: envoyCert, KeyFile: envoyKey, CAFile: caFile, ServerName: "tollgate.test"})
		},
	})
	require.Contains(t, s.tollgate.Logs(), `"extproc_auth":"mtls"`)
	bearer := []string{"authorization", "Bearer " + s.keys["demo"], "content-type", "application/json"}

	t.Run("an Envoy with the allowed certificate: traffic flows", func(t *testing.T) {
		s.mock.Reset()
		r := s.do(t, "POST", "/v1/chat/completions", chatBody("fast", false), bearer...)
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		r = s.do(t, "POST", "/v1/chat/completions", chatBody("fast", true), bearer...)
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		require.Contains(t, string(r.body), "data: [DONE]")
		reqs := s.mock.Requests()
		require.Len(t, reqs, 2)
		for _, up := range reqs {
			require.Equal(t, "Bearer "+s.openAIKey, up.Header.Get("Authorization"), "the provider key was swapped in over mTLS")
		}
		r = s.do(t, "POST", "/v1/chat/completions", chatBody("fast", false), "authorization", "Bearer tgk_AAAAAAAAAAAA_"+strings.Repeat("b", 49))
		requireJSONError(t, r, http.StatusUnauthorized)
	})

	refused := []struct {
		name string
		tls  *testutil.ExtProcTLS // nil: the shipped plaintext cluster
	}{
		{"an Envoy with a certificate from another CA", &testutil.ExtProcTLS{CertFile: rogueCert, KeyFile: rogueKey, CAFile: caFile, ServerName: "tollgate.test"}},
		{"an Envoy without a client certificate", &testutil.ExtProcTLS{CAFile: caFile, ServerName: "tollgate.test"}},
		{"an Envoy speaking plaintext h2c", nil},
	}
	for _, tc := range refused {
		t.Run(tc.name+" fails closed", func(t *testing.T) {
			before := handshakeFailures(t, s)
			base := s.startSideEnvoy(t, tc.tls)
			s.mock.Reset()
			for _, stream := range []bool{false, true} {
				req, err := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(chatBody("fast", stream)))
				require.NoError(t, err)
				req.Header.Set("authorization", "Bearer "+s.keys["demo"])
				req.Header.Set("content-type", "application/json")
				resp, err := s.client.Do(req)
				require.NoError(t, err)
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				r := result{resp.StatusCode, resp.Header, body}
				requireJSONError(t, r, http.StatusServiceUnavailable)
				var eb testutil.ErrorBody
				require.NoError(t, json.Unmarshal(body, &eb))
				require.Equal(t, "gateway_unavailable", eb.Error.Code)
			}
			require.Empty(t, s.mock.Requests(), "nothing reaches the upstream")
			require.Greater(t, handshakeFailures(t, s), before, "tollgate refused the connection at the handshake")
		})
	}
	require.Contains(t, s.tollgate.Logs(), "certificate signed by unknown authority", "the first refusal is logged with its reason")

	logs := s.logs() + s.envoy.Logs()
	for name, secret := range s.secrets() {
		require.NotContains(t, logs, secret, "%s in the logs", name)
	}
}

// startSideEnvoy starts a second Envoy in front of the stack's Tollgate and mock, with its
// own listener and admin ports, its ext_proc cluster speaking TLS as c says (nil: as
// envoy.yaml ships it, plaintext). It returns the listener's base URL.
func (s *stack) startSideEnvoy(t *testing.T, c *testutil.ExtProcTLS) string {
	t.Helper()
	ports := s.ports
	ports.Listener, ports.Admin = testutil.FreePort(t), testutil.FreePort(t)
	cfg := testutil.RenderEnvoyConfig(t, filepath.Join(s.root, "envoy", "envoy.yaml"), ports, filepath.Dir(s.ca))
	if c != nil {
		testutil.EnableExtProcTLS(t, cfg, *c)
	}
	testutil.StartEnvoy(t, testutil.EnvoyBinary(t), cfg)
	return "https://localhost:" + strconv.Itoa(ports.Listener)
}

var handshakeFailuresRE = regexp.MustCompile(`(?m)^tollgate_tls_clients_refused_total\{listener="extproc",stage="handshake"\} (\d+)$`)

// handshakeFailures reads Tollgate's count of refused ext_proc handshakes.
func handshakeFailures(t *testing.T, s *stack) int {
	t.Helper()
	resp, err := http.Get(s.admin + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := handshakeFailuresRE.FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(string(m[1]))
	require.NoError(t, err)
	return n
}
