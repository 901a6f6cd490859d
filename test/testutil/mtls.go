package testutil

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// ExtProcTLS is Envoy's side of mutual TLS to Tollgate's ext_proc listener.
type ExtProcTLS struct {
	// CertFile and KeyFile are Envoy's client certificate and key (PEM). Both empty: Envoy
	// speaks TLS without a client certificate (to prove Tollgate refuses that).
	CertFile, KeyFile string
	// CAFile is the CA Tollgate's server certificate must chain to.
	CAFile string
	// ServerName is sent as SNI and must be a DNS SAN of Tollgate's certificate.
	ServerName string
}

// ExtProcTransportSocket renders the transport_socket block that turns envoy.yaml's
// ext_proc_grpc cluster into mutual TLS, indented as a key of that cluster. README.md shows
// the same block (a test keeps them identical).
func ExtProcTransportSocket(c ExtProcTLS) string {
	var b strings.Builder
	b.WriteString(`    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: ` + c.ServerName + `
        common_tls_context:
          alpn_protocols: [h2]             # gRPC: Tollgate refuses connections without h2 by ALPN
          tls_params:                      # Envoy's upstream default stops at TLS 1.2
            tls_minimum_protocol_version: TLSv1_3
            tls_maximum_protocol_version: TLSv1_3
`)
	if c.CertFile != "" || c.KeyFile != "" {
		b.WriteString(`          tls_certificates:                # the client certificate Tollgate's allowed_sans names
          - certificate_chain: { filename: ` + c.CertFile + ` }
            private_key: { filename: ` + c.KeyFile + ` }
`)
	}
	b.WriteString(`          validation_context:              # and Envoy checks Tollgate's certificate in turn
            trusted_ca: { filename: ` + c.CAFile + ` }
            match_typed_subject_alt_names:
            - san_type: DNS
              matcher: { exact: ` + c.ServerName + ` }
`)
	return b.String()
}

// EnableExtProcTLS rewrites the rendered Envoy bootstrap at path (see RenderEnvoyConfig) so
// its ext_proc_grpc cluster connects to Tollgate with TLS as c describes. It fails the test
// when the cluster is not found exactly once or already has a transport socket, so the
// rewrite cannot silently drift from envoy.yaml.
func EnableExtProcTLS(t testing.TB, path string, c ExtProcTLS) {
	t.Helper()
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	out, err := addTransportSocket(string(in), "ext_proc_grpc", ExtProcTransportSocket(c))
	if err != nil {
		t.Fatalf("testutil: %s: %v", path, err)
	}
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatalf("testutil: %v", err)
	}
}

// addTransportSocket appends block to the cluster named name in a bootstrap written as
// envoy.yaml is: clusters are "  - name: X" items under "  clusters:", their keys indented
// by four spaces.
func addTransportSocket(in, name, block string) (string, error) {
	lines := strings.SplitAfter(in, "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimRight(l, " \n") == "  - name: "+name {
			if start >= 0 {
				return "", fmt.Errorf("cluster %q appears twice", name)
			}
			start = i
		}
	}
	if start < 0 {
		return "", fmt.Errorf("cluster %q not found as %q", name, "  - name: "+name)
	}
	// The cluster ends before the next line indented by less than four spaces (the next item,
	// a comment between items, or the next top-level key); blank lines and comments at its
	// end stay after the block.
	end := len(lines)
	for i := start + 1; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\n")
		if strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "    ") {
			end = i
			break
		}
	}
	for end > start+1 && (strings.TrimSpace(lines[end-1]) == "" || strings.HasPrefix(strings.TrimSpace(lines[end-1]), "#")) {
		end--
	}
	for _, l := range lines[start+1 : end] {
		if strings.HasPrefix(l, "    transport_socket:") {
			return "", errors.New("cluster " + name + " already has a transport_socket")
		}
	}
	if !strings.HasSuffix(lines[end-1], "\n") {
		lines[end-1] += "\n"
	}
	out := strings.Join(lines[:end], "") + block + strings.Join(lines[end:], "")
	return out, nil
}
