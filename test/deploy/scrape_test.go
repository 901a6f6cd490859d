package deploy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

// exported is what a /metrics scrape holds: each series name as Prometheus stores it
// (histograms as NAME_bucket, NAME_sum and NAME_count) with the label names seen on it.
type exported map[string]map[string]bool

// sampleRE is one sample line of the text exposition format: name, optional labels, value.
var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+\S+(\s+\S+)?$`)

// labelPairRE finds the label names in a sample's {...}: a name followed by ="; values are
// skipped with their escapes.
var labelPairRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"`)

// parseExposition reads a Prometheus text-format scrape.
func parseExposition(t *testing.T, text string) exported {
	t.Helper()
	out := exported{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleRE.FindStringSubmatch(line)
		require.NotNil(t, m, "not a sample line: %q", line)
		labels := out[m[1]]
		if labels == nil {
			labels = map[string]bool{}
			out[m[1]] = labels
		}
		for _, p := range labelPairRE.FindAllStringSubmatch(m[2], -1) {
			labels[p[1]] = true
		}
	}
	return out
}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = map[string]bool{"job": true, "instance": true}

// synthetic are series Prometheus records for every target itself.
var synthetic = exported{"up": {}}

// scrapeAll starts Tollgate as the image does (the Dockerfile's binary, `serve --config`),
// drives requests through ext_proc so that every labelled series exists, and returns the
// union of what its /metrics endpoints export. Two gateways run: one with every feature the
// dashboard shows (mutual TLS on ext_proc, per-key series, guardrails, limits, an audit
// file, certificate reloads), and one whose Redis ledger does not answer (the fail-closed
// series).
func scrapeAll(t *testing.T) exported {
	t.Helper()
	bin, _ := buildImageBinary(t)
	dir := t.TempDir()
	dev := filepath.Join(dir, ".dev")
	out, err := exec.Command(bin, "dev", "init", "--dir", dev).CombinedOutput()
	require.NoError(t, err, "%s", out)
	key := strings.TrimSpace(readFile(t, filepath.Join(dev, "demo-key")))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "state"), 0o700))

	// mTLS material: Tollgate's server certificate and Envoy's client certificate.
	const envoySAN = "spiffe://tollgate.test/ns/edge/sa/envoy"
	now := time.Now()
	ca, err := devtls.NewCA("tollgate deploy test CA", now)
	require.NoError(t, err)
	mtls := filepath.Join(dir, "mtls")
	serverLeaf := devtls.Leaf{CommonName: "tollgate", DNSNames: []string{"tollgate.test"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Server: true}
	_, _, err = ca.IssueFiles(mtls, "server", serverLeaf, now)
	require.NoError(t, err)
	require.NoError(t, ca.WriteCert(filepath.Join(mtls, "ca.crt")))
	certPEM, keyPEM, err := ca.Issue(devtls.Leaf{CommonName: "envoy", URIs: []string{envoySAN}, Client: true}, now)
	require.NoError(t, err)
	clientCert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	envoyCreds := credentials.NewTLS(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientCert},
		ServerName: "tollgate.test", MinVersion: tls.VersionTLS12})

	common := `security: {pepper: "file:.dev/pepper"}
reload_interval: 100ms
providers:
  - {name: mock, type: openai-compatible, route: mock, credential: "file:.dev/mock-openai-key"}
models:
  - {name: gpt-4o-mini, provider: mock}
key_files: [.dev/keys.yaml]
`
	full := startGateway(t, bin, dir, "full", `listen:
  extproc: "`+freeAddr(t)+`"
  admin: "`+freeAddr(t)+`"
  extproc_tls: {cert_file: mtls/server.crt, key_file: mtls/server.key, client_ca_file: mtls/ca.crt, allowed_sans: ["`+envoySAN+`"]}
metrics: {per_key_labels: true}
budget: {embedded: {path: state/ledger.json}}
guardrails:
  default_profile: standard
  profiles:
    - name: standard
      rules:
        - {id: email, detector: pii.email, action: redact}
teams:
  - {name: platform, limits: {requests_per_minute: 4}}
audit:
  chain_key: file:.dev/audit-chain-key
  checkpoint_key: file:.dev/audit-checkpoint.pem
  file: {path: state/audit.log}
`+common, "/readyz")
	down := startGateway(t, bin, dir, "ledger-down", `listen: {extproc: "`+freeAddr(t)+`", admin: "`+freeAddr(t)+`"}
budget: {ledger: redis, redis: {addrs: ["`+freeAddr(t)+`"], timeout: 100ms}}
teams:
  - {name: platform, limits: {requests_per_minute: 100}}
`+common, "/healthz") // not ready: the ledger does not answer

	// The full gateway: a priced request with usage, a guardrail finding, then requests until
	// the team's rate limit refuses one.
	conn, err := grpc.NewClient(full.extproc, grpc.WithTransportCredentials(envoyCreds))
	require.NoError(t, err)
	defer conn.Close()
	chat := `{"model":"gpt-4o-mini","max_tokens":10,"messages":[{"role":"user","content":"%s"}]}`
	require.Equal(t, 0, exchange(t, conn, key, strings.Replace(chat, "%s", "hello", 1)))
	require.Equal(t, 0, exchange(t, conn, key, strings.Replace(chat, "%s", "mail jane.doe@example.com", 1)))
	limited := false
	for range 6 {
		if st := exchange(t, conn, key, strings.Replace(chat, "%s", "again", 1)); st == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	require.True(t, limited, "requests_per_minute: 4 refuses a request within 6")
	// A client without TLS is refused at the handshake.
	plain, err := grpc.NewClient(full.extproc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if s, err := extprocv3.NewExternalProcessorClient(plain).Process(ctx); err == nil {
		_, _ = s.Recv()
	}
	cancel()
	plain.Close()
	// A broken certificate file is refused, then a new certificate is reloaded.
	require.NoError(t, os.WriteFile(filepath.Join(mtls, "server.crt"), []byte("not a certificate\n"), 0o600))
	full.waitFor(t, `tollgate_tls_reload_failures_total{listener="extproc"} 1`)
	_, _, err = ca.IssueFiles(mtls, "server", serverLeaf, time.Now())
	require.NoError(t, err)
	full.waitFor(t, `tollgate_tls_reloads_total{listener="extproc"} 1`)
	full.waitFor(t, `tollgate_tls_clients_refused_total{listener="extproc",stage="handshake"}`)
	full.waitFor(t, `tollgate_audit_events_written_total `)

	// The gateway whose ledger is down refuses a request under a limit.
	downConn, err := grpc.NewClient(down.extproc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer downConn.Close()
	require.Equal(t, http.StatusServiceUnavailable, exchange(t, downConn, key, strings.Replace(chat, "%s", "hello", 1)))
	down.waitFor(t, `tollgate_budget_ledger_unavailable_total{decision="refused"} 1`)

	all := exported{}
	for _, g := range []*gateway{full, down} {
		for name, labels := range parseExposition(t, g.metrics(t)) {
			if all[name] == nil {
				all[name] = map[string]bool{}
			}
			for l := range labels {
				all[name][l] = true
			}
		}
	}
	return all
}

// gateway is one running `tollgate serve`.
type gateway struct {
	extproc, admin string
	proc           *testutil.Process
}

// startGateway writes cfg into dir as NAME.yaml and serves it until the test ends, waiting
// for the admin listener's ready path.
func startGateway(t *testing.T, bin, dir, name, cfg, ready string) *gateway {
	t.Helper()
	path := filepath.Join(dir, name+".yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	g := &gateway{
		extproc: regexp.MustCompile(`extproc: "([^"]+)"`).FindStringSubmatch(cfg)[1],
		admin:   regexp.MustCompile(`admin: "([^"]+)"`).FindStringSubmatch(cfg)[1],
	}
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Dir = dir
	g.proc = testutil.StartProcess(t, "tollgate-"+name, cmd)
	testutil.WaitHTTP(t, "http://"+g.admin+ready, 20*time.Second)
	return g
}

func (g *gateway) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	return string(b)
}

// waitFor polls /metrics until it contains want.
func (g *gateway) waitFor(t *testing.T, want string) {
	t.Helper()
	require.Eventually(t, func() bool { return strings.Contains(g.metrics(t), want) },
		15*time.Second, 50*time.Millisecond, "/metrics never showed %q; logs:\n%s", want, g.proc.Logs())
}
