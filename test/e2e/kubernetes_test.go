package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// kubernetesDir is the Kubernetes example: one directory per layout.
const kubernetesDir = "examples/kubernetes"

// Names the service layout's certificates carry.
const (
	k8sTollgateHost = "tollgate.llm-gateway.svc.cluster.local"
	k8sGatewaySAN   = "spiffe://cluster.local/ns/llm-gateway/sa/llm-gateway"
)

// configMapData returns data[key] of the one ConfigMap in a manifest file.
func configMapData(t *testing.T, path, key string) string {
	t.Helper()
	var cm struct {
		Kind string            `yaml:"kind"`
		Data map[string]string `yaml:"data"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(readFile(t, path)), &cm))
	require.Equal(t, "ConfigMap", cm.Kind, path)
	require.Contains(t, cm.Data, key, path)
	return cm.Data[key]
}

// secretValue returns stringData[key] of the Secret named name in a manifest file.
func secretValue(t *testing.T, path, name, key string) string {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(readFile(t, path)))
	for {
		var s struct {
			Kind       string                `yaml:"kind"`
			Metadata   struct{ Name string } `yaml:"metadata"`
			StringData map[string]string     `yaml:"stringData"`
		}
		if err := dec.Decode(&s); err != nil {
			require.ErrorIs(t, err, io.EOF)
			t.Fatalf("%s has no Secret %s", path, name)
		}
		if s.Kind == "Secret" && s.Metadata.Name == name {
			require.Contains(t, s.StringData, key)
			return s.StringData[key]
		}
	}
}

// writeFile writes data to path, creating its directory.
func writeFile(t *testing.T, path, data string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(data), 0o600))
}

// startTLSProvider serves the stack's mock LLM over TLS as both api.openai.com and
// api.anthropic.com, so the example's provider clusters check SNI and SAN as they would
// against the real providers. It returns the port and the CA file.
func startTLSProvider(t *testing.T, s *stack) (int, string) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, devtls.Write(dir, []string{"api.openai.com", "api.anthropic.com"}, time.Now()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: s.gate, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ServeTLS(ln, filepath.Join(dir, devtls.CertFile), filepath.Join(dir, devtls.KeyFile)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port, filepath.Join(dir, devtls.CAFile)
}

// k8sDeployment is one Kubernetes layout run on this machine: Tollgate with the layout's
// ConfigMap config and Envoy with its ConfigMap bootstrap, every /etc path pointed at files
// made here, in front of the stack's mock and the example Redis.
type k8sDeployment struct {
	base, admin string // Envoy's https://localhost:PORT, Tollgate's https://127.0.0.1:PORT
	adminToken  string
	key         string // a virtual key of team platform
	tollgate    *testutil.Process
	envoy       *testutil.Process
}

// k8sShared is what both layouts use: the example Redis, the provider, the secrets.
type k8sShared struct {
	root, etc    string // repository root; the directory standing in for /etc
	adminCA      string // CA of the admin listener's certificate (the tollgate-admin-tls Secret)
	redis        *exampleRedis
	deployments  []*k8sDeployment
	providerPort int
	providerCA   string
}

func newK8sShared(t *testing.T, s *stack) *k8sShared {
	t.Helper()
	sh := &k8sShared{root: testutil.RepoRoot(t), etc: filepath.Join(t.TempDir(), "etc"), redis: startExampleRedis(t)}
	sh.providerPort, sh.providerCA = startTLSProvider(t, s)
	secrets := filepath.Join(sh.root, kubernetesDir, "secrets.yaml")
	tg := filepath.Join(sh.etc, "tollgate")
	// The Secrets of secrets.yaml, with real values; the key file as shipped (no keys yet).
	writeFile(t, filepath.Join(tg, "secrets", "pepper"), readFile(t, filepath.Join(s.dir, ".dev", "pepper")))
	writeFile(t, filepath.Join(tg, "secrets", "audit-chain-key"), randomHex(t, 32))
	writeFile(t, filepath.Join(tg, "providers", "openai"), s.openAIKey)
	writeFile(t, filepath.Join(tg, "redis", "password"), sh.redis.password)
	writeFile(t, filepath.Join(tg, "redis", "ca.crt"), readFile(t, sh.redis.caFile))
	writeFile(t, filepath.Join(tg, "keys", "keys.yaml"), secretValue(t, secrets, "tollgate-keys", "keys.yaml"))
	s.run(t, "secrets", "new-kek", "--out", filepath.Join(tg, "secrets", "kek-k1"))
	require.NoError(t, devtls.Write(filepath.Join(sh.etc, "admin-tls"), nil, time.Now()))
	sh.adminCA = filepath.Join(sh.etc, "admin-tls", devtls.CAFile)
	for from, to := range map[string]string{devtls.CertFile: "tls.crt", devtls.KeyFile: "tls.key"} {
		writeFile(t, filepath.Join(tg, "admin-tls", to), readFile(t, filepath.Join(sh.etc, "admin-tls", from)))
	}
	return sh
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// seal seals a provider key under the KEK k1, as README.md has you do.
func (sh *k8sShared) seal(t *testing.T, s *stack, secret string) string {
	t.Helper()
	cmd := exec.Command(s.bin, "secrets", "seal", "--kek-id", "k1", "--kek", "file:"+filepath.Join(sh.etc, "tollgate", "secrets", "kek-k1"))
	cmd.Stdin = strings.NewReader(secret)
	cmd.Env = cleanEnv()
	out, err := cmd.Output()
	require.NoError(t, err)
	sealed := strings.TrimSpace(string(out))
	require.True(t, strings.HasPrefix(sealed, "sealed:v1.k1."), "%s", out)
	return sealed
}

// startLayout renders and starts one layout. extra rewrites the config (plain Rewrite) or
// the bootstrap (k8sRewrite "envoy").
func (sh *k8sShared) startLayout(t *testing.T, s *stack, layout string, extra ...testutil.Rewrite) *k8sDeployment {
	t.Helper()
	d := &k8sDeployment{adminToken: randomHex(t, 32)}
	adminPort, listener := testutil.FreePort(t), testutil.FreePort(t)
	d.admin = "https://127.0.0.1:" + strconv.Itoa(adminPort)
	d.base = "https://localhost:" + strconv.Itoa(listener)
	dir := filepath.Join(sh.root, kubernetesDir, layout)
	work := t.TempDir()
	sum := sha256.Sum256([]byte(d.adminToken))

	cfg := strings.ReplaceAll(configMapData(t, filepath.Join(dir, "tollgate-config.yaml"), "config.yaml"), "/etc/tollgate/", filepath.Join(sh.etc, "tollgate")+"/")
	cfgPath := filepath.Join(work, "config.yaml")
	writeFile(t, cfgPath, cfg)
	rewrites := append([]testutil.Rewrite{
		{Old: "admin: 0.0.0.0:9090\n", New: "admin: 127.0.0.1:" + strconv.Itoa(adminPort) + "\n"},
		{Old: strings.Repeat("0", 64), New: hex.EncodeToString(sum[:])},
		{Old: `"rediss://redis.llm-gateway.svc.cluster.local:6379"`, New: `"rediss://` + sh.redis.addr() + `"`},
		{Old: "timeout: 250ms\n", New: "timeout: 2s\n"}, // see withExampleBudget
		{Old: "sealed:v1.k1.REPLACE-WITH-THE-OUTPUT-OF-tollgate-secrets-seal", New: sh.seal(t, s, s.anthropicKey)},
	}, extra...)
	cfgPath = testutil.RenderBootstrap(t, cfgPath, filterRewrites(rewrites, "config")...)

	// A virtual key of team platform, minted into the key file as README.md says.
	out := s.run(t, "keys", "new", "--config", cfgPath, "--team", "platform", "--name", "k8s-"+layout,
		"--append", filepath.Join(sh.etc, "tollgate", "keys", "keys.yaml"))
	d.key = tokenRE.FindString(out)
	require.NotEmpty(t, d.key)
	s.keys["k8s-"+layout] = d.key

	cmd := exec.Command(s.bin, "serve", "--config", cfgPath)
	cmd.Env = cleanEnv()
	d.tollgate = testutil.StartProcess(t, "tollgate-k8s-"+layout, cmd)
	testutil.WaitHTTP(t, d.admin+"/readyz", 20*time.Second)

	envoyCfg := filepath.Join(work, "envoy.yaml")
	devTLS := filepath.Join(s.dir, ".dev", "tls")
	writeFile(t, envoyCfg, strings.ReplaceAll(configMapData(t, filepath.Join(dir, "envoy-config.yaml"), "envoy.yaml"),
		"/etc/ssl/certs/ca-certificates.crt", sh.providerCA))
	envoyCfg = testutil.RenderBootstrap(t, envoyCfg, append([]testutil.Rewrite{
		testutil.SocketRewrite("0.0.0.0", 8443, listener),
		testutil.SocketRewrite("127.0.0.1", 9901, testutil.FreePort(t)),
		testutil.SocketRewrite("api.openai.com", 443, sh.providerPort),
		testutil.SocketRewrite("api.anthropic.com", 443, sh.providerPort),
		{Old: "/etc/envoy/tls/tls.crt", New: filepath.Join(devTLS, devtls.CertFile)},
		{Old: "/etc/envoy/tls/tls.key", New: filepath.Join(devTLS, devtls.KeyFile)},
	}, filterRewrites(rewrites, "envoy")...)...)
	d.envoy = testutil.StartEnvoy(t, testutil.EnvoyBinary(t), envoyCfg)

	// tollgate check passes the pair: no high or medium finding.
	check := exec.Command(s.bin, "check", "--config", cfgPath, "--envoy", envoyCfg, "--json")
	check.Env = cleanEnv()
	js, _ := check.Output()
	var rep struct {
		Counts struct{ High, Medium int } `json:"counts"`
	}
	require.NoError(t, json.Unmarshal(js, &rep), "%s", js)
	require.Zero(t, rep.Counts.High+rep.Counts.Medium, "tollgate check: %s", js)
	sh.deployments = append(sh.deployments, d)
	return d
}

// A k8sRewrite is a testutil.Rewrite for one of the two files: its Old starts with
// "config:" or "envoy:".
func k8sRewrite(file, old, new string) testutil.Rewrite {
	return testutil.Rewrite{Old: file + ":" + old, New: new}
}

func filterRewrites(rs []testutil.Rewrite, file string) []testutil.Rewrite {
	var out []testutil.Rewrite
	for _, r := range rs {
		switch {
		case strings.HasPrefix(r.Old, file+":"):
			out = append(out, testutil.Rewrite{Old: strings.TrimPrefix(r.Old, file+":"), New: r.New})
		case file == "config" && !strings.HasPrefix(r.Old, "envoy:"):
			out = append(out, r)
		}
	}
	return out
}

// TestKubernetesExample runs both layouts of examples/kubernetes on this machine: Tollgate
// with the layout's ConfigMap config (its Secrets, the sealed Anthropic key opened with the KEK,
// the example Redis over TLS with its ACL user, admin over TLS with a token) and Envoy with the
// layout's ConfigMap bootstrap, ext_proc over the unix socket (sidecar) or over mutual TLS to
// the address of the tollgate Service (service). Requests reach both providers with the
// provider keys, denials and probes behave as README.md says, and `tollgate check` passes.
func TestKubernetesExample(t *testing.T) {
	s := startStack(t)
	sh := newK8sShared(t, s)

	run := func(t *testing.T, d *k8sDeployment) {
		t.Run("providers get their keys", func(t *testing.T) {
			s.mock.Reset()
			r := k8sDo(t, s, d.base, "POST", "/v1/chat/completions", chatBody("gpt-4o-mini", false),
				"authorization", "Bearer "+d.key, "content-type", "application/json", "x-tollgate-upstream", "anthropic")
			require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
			r = k8sDo(t, s, d.base, "POST", "/v1/messages",
				`{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"`+promptMarker+`"}]}`,
				"x-api-key", d.key, "anthropic-version", "2023-06-01", "content-type", "application/json")
			require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
			up := s.mock.Requests()
			require.Len(t, up, 2)
			require.Equal(t, "Bearer "+s.openAIKey, up[0].Header.Get("authorization"))
			require.Equal(t, s.anthropicKey, up[1].Header.Get("x-api-key"), "the sealed key, opened with the KEK")
			for _, u := range up {
				require.Empty(t, u.Header.Values("x-tollgate-upstream"))
				require.NotContains(t, u.Header.Get("authorization")+u.Header.Get("x-api-key"), d.key)
			}
		})
		t.Run("denials", func(t *testing.T) {
			r := k8sDo(t, s, d.base, "POST", "/v1/chat/completions", chatBody("gpt-4o-mini", false),
				"authorization", "Bearer tgk_AAAAAAAAAAAA_"+strings.Repeat("b", 49), "content-type", "application/json")
			requireJSONError(t, r, http.StatusUnauthorized)
			// A valid key of the trial stack, but not in this deployment's key file.
			r = k8sDo(t, s, d.base, "POST", "/v1/chat/completions", chatBody("gpt-4o-mini", false),
				"authorization", "Bearer "+s.keys["demo"], "content-type", "application/json")
			requireJSONError(t, r, http.StatusUnauthorized)
		})
		t.Run("probes and admin", func(t *testing.T) {
			c := testutil.TLSClient(sh.adminCA)
			for _, p := range []string{"/healthz", "/readyz"} {
				resp, err := c.Get(d.admin + p)
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode, "%s answers a kubelet probe without a token", p)
			}
			resp, err := c.Get(d.admin + "/metrics")
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			req, err := http.NewRequest("GET", d.admin+"/metrics", nil)
			require.NoError(t, err)
			req.Header.Set("authorization", "Bearer "+d.adminToken)
			resp, err = c.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Contains(t, string(b), "tollgate_requests_total")
			resp, err = s.client.Get(d.base + "/healthz")
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode, "Envoy's own probe route")
		})
	}

	t.Run("sidecar: ext_proc over the pod's unix socket", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "extproc.sock")
		d := sh.startLayout(t, s, "sidecar",
			testutil.Rewrite{Old: "extproc: unix:/run/tollgate/extproc.sock\n", New: "extproc: unix:" + sock + "\n"},
			k8sRewrite("envoy", "pipe: { path: /run/tollgate/extproc.sock }", "pipe: { path: "+sock+" }"))
		run(t, d)
	})

	t.Run("service: ext_proc over mutual TLS", func(t *testing.T) {
		now := time.Now()
		pki := t.TempDir()
		ca, err := devtls.NewCA("k8s example CA", now)
		require.NoError(t, err)
		caFile := filepath.Join(pki, "ca.crt")
		require.NoError(t, ca.WriteCert(caFile))
		srvCert, srvKey, err := ca.IssueFiles(pki, "tollgate", devtls.Leaf{CommonName: "tollgate", DNSNames: []string{k8sTollgateHost}, Server: true}, now)
		require.NoError(t, err)
		cliCert, cliKey, err := ca.IssueFiles(pki, "gateway", devtls.Leaf{CommonName: "llm-gateway", URIs: []string{k8sGatewaySAN}, Client: true}, now)
		require.NoError(t, err)
		// The tollgate-extproc-tls and llm-gateway-tollgate-client Secrets.
		tg := filepath.Join(sh.etc, "tollgate", "extproc-tls")
		writeFile(t, filepath.Join(tg, "tls.crt"), readFile(t, srvCert))
		writeFile(t, filepath.Join(tg, "tls.key"), readFile(t, srvKey))
		writeFile(t, filepath.Join(tg, "ca.crt"), readFile(t, caFile))
		port := testutil.FreePort(t)
		d := sh.startLayout(t, s, "service",
			testutil.Rewrite{Old: "extproc: 0.0.0.0:50051\n", New: "extproc: 127.0.0.1:" + strconv.Itoa(port) + "\n"},
			k8sRewrite("envoy", "socket_address: { address: "+k8sTollgateHost+", port_value: 50051 }",
				"socket_address: { address: 127.0.0.1, port_value: "+strconv.Itoa(port)+" }"),
			k8sRewrite("envoy", "/etc/envoy/tollgate-client/tls.crt", cliCert),
			k8sRewrite("envoy", "/etc/envoy/tollgate-client/tls.key", cliKey),
			k8sRewrite("envoy", "/etc/envoy/tollgate-client/ca.crt", caFile))
		require.Contains(t, d.tollgate.Logs(), `"extproc_auth":"mtls"`)
		run(t, d)
	})

	t.Run("no secret in any log", func(t *testing.T) {
		all := s.logs()
		for _, d := range sh.deployments {
			all += d.tollgate.Logs() + d.envoy.Logs()
		}
		secrets := s.secrets()
		secrets["redis password"] = sh.redis.password
		for _, d := range sh.deployments {
			secrets["admin token"] = d.adminToken
		}
		for name, v := range secrets {
			require.NotContains(t, all, v, name)
		}
	})
}

// k8sDo sends one request through an example Envoy.
func k8sDo(t *testing.T, s *stack, base, method, path, body string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return result{resp.StatusCode, resp.Header, b}
}
