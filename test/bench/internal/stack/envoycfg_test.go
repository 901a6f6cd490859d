package stack

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

var testPorts = Ports{D: 10001, N: 10002, F: 10003, EnvoyAdmin: 10004, Tollgate: 10005, Noop: 10006, Upstream: 10007}

func readRepo(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", rel))
	require.NoError(t, err)
	return b
}

func listenerByName(t *testing.T, doc map[string]any, name string) map[string]any {
	t.Helper()
	for _, l := range mapAt(doc, "static_resources")["listeners"].([]any) {
		if m := l.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("listener %s missing", name)
	return nil
}

func extProcConfig(l map[string]any) map[string]any {
	fs, i := httpFilters(l)
	if i < 0 {
		return nil
	}
	return mapAt(fs[i].(map[string]any), "typed_config", "extension_config", "typed_config")
}

func catchAll(l map[string]any) string {
	for _, r := range tollgateVHost(l)["routes"].([]any) {
		if m := r.(map[string]any); m["name"] == catchAllRoute {
			return mapAt(m, "route")["cluster"].(string)
		}
	}
	return ""
}

// TestEnvoyBootstrapFromEnvoyYAML: F is envoy.yaml's listener (ext_proc settings unchanged)
// in plaintext on its port; N differs only in its ext_proc cluster and catch-all route; D has
// no ext_proc filter; the three share mock_llm pointed at the upstream.
func TestEnvoyBootstrapFromEnvoyYAML(t *testing.T) {
	src := readRepo(t, "envoy/envoy.yaml")
	out, err := EnvoyBootstrap(src, testPorts)
	require.NoError(t, err)
	var doc, orig map[string]any
	require.NoError(t, yaml.Unmarshal(out, &doc))
	require.NoError(t, yaml.Unmarshal(src, &orig))

	origExtProc := extProcConfig(listenerByName(t, orig, srcListener))
	require.NotNil(t, origExtProc)
	tests := []struct {
		name, listener string
		port           int
		extProcCluster string // "" = no ext_proc filter
		catchAll       string
	}{
		{"F is envoy.yaml's listener", "bench_f", testPorts.F, extProcCluster, catchAllCluster},
		{"N talks to the do-nothing server", "bench_n", testPorts.N, noopCluster, upstreamCluster},
		{"D has no ext_proc", "bench_d", testPorts.D, "", upstreamCluster},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := listenerByName(t, doc, tc.listener)
			sa := mapAt(l, "address", "socket_address")
			require.Equal(t, "127.0.0.1", sa["address"])
			require.Equal(t, tc.port, sa["port_value"])
			require.NotContains(t, l["filter_chains"].([]any)[0].(map[string]any), "transport_socket")
			require.Equal(t, tc.catchAll, catchAll(l))
			ep := extProcConfig(l)
			if tc.extProcCluster == "" {
				require.Nil(t, ep)
				require.NotContains(t, tollgateVHost(l), "typed_per_filter_config")
				return
			}
			require.Equal(t, tc.extProcCluster, mapAt(ep, "grpc_service", "envoy_grpc")["cluster_name"])
			// Everything but the cluster is what users run.
			want := deepCopy(origExtProc).(map[string]any)
			mapAt(want, "grpc_service", "envoy_grpc")["cluster_name"] = tc.extProcCluster
			require.Equal(t, want, ep)
		})
	}
	clusters := map[string]map[string]any{}
	for _, c := range mapAt(doc, "static_resources")["clusters"].([]any) {
		m := c.(map[string]any)
		clusters[m["name"].(string)] = m
	}
	for name, port := range map[string]int{extProcCluster: testPorts.Tollgate, noopCluster: testPorts.Noop, upstreamCluster: testPorts.Upstream} {
		eps := mapAt(clusters[name], "load_assignment")["endpoints"].([]any)
		sa := mapAt(eps[0].(map[string]any)["lb_endpoints"].([]any)[0].(map[string]any), "endpoint", "address", "socket_address")
		require.Equal(t, port, sa["port_value"], name)
	}
	require.Equal(t, testPorts.EnvoyAdmin, mapAt(doc, "admin", "address", "socket_address")["port_value"])
	require.NotContains(t, string(out), "0.0.0.0")
}

// TestEnvoyBootstrapUnixSockets: with socket paths, both ext_proc clusters use a pipe.
func TestEnvoyBootstrapUnixSockets(t *testing.T) {
	p := testPorts
	p.TollgateSock, p.NoopSock = "/tmp/t.sock", "/tmp/n.sock"
	out, err := EnvoyBootstrap(readRepo(t, "envoy/envoy.yaml"), p)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(out, &doc))
	got := map[string]any{}
	for _, c := range mapAt(doc, "static_resources")["clusters"].([]any) {
		m := c.(map[string]any)
		if eps, ok := mapAt(m, "load_assignment")["endpoints"].([]any); ok && len(eps) == 1 {
			got[m["name"].(string)] = mapAt(eps[0].(map[string]any)["lb_endpoints"].([]any)[0].(map[string]any), "endpoint", "address")
		}
	}
	require.Equal(t, map[string]any{"pipe": map[string]any{"path": "/tmp/t.sock"}}, got[extProcCluster])
	require.Equal(t, map[string]any{"pipe": map[string]any{"path": "/tmp/n.sock"}}, got[noopCluster])
	require.Contains(t, got[upstreamCluster], "socket_address")
}

// TestEnvoyBootstrapRefusesDrift: when envoy.yaml no longer has what the bench edits, the
// bootstrap is refused instead of measuring something else.
func TestEnvoyBootstrapRefusesDrift(t *testing.T) {
	src := string(readRepo(t, "envoy/envoy.yaml"))
	tests := []struct{ name, old, new, want string }{
		{"listener renamed", "name: tollgate_https", "name: other", "listener tollgate_https not found"},
		{"catch-all renamed", "name: no_upstream_selected", "name: fallback", "route no_upstream_selected found 0 times"},
		{"ext_proc cluster renamed", "  envoy_grpc:\n                      cluster_name: ext_proc_grpc", "  envoy_grpc:\n                      cluster_name: tollgate_grpc",
			"ext_proc cluster is tollgate_grpc"},
		{"no TLS", "transport_socket:\n        name: envoy.transport_sockets.tls", "xtransport_socket:\n        name: envoy.transport_sockets.tls", "no transport_socket"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, 1, strings.Count(src, tc.old), "test edit must match once")
			_, err := EnvoyBootstrap([]byte(strings.Replace(src, tc.old, tc.new, 1)), testPorts)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestEnvoyBootstrapValidates runs `envoy --mode validate` on the generated bootstrap when an
// Envoy binary is given (ENVOY_BIN).
func TestEnvoyBootstrapValidates(t *testing.T) {
	bin := os.Getenv("ENVOY_BIN")
	if bin == "" {
		t.Skip("ENVOY_BIN not set")
	}
	out, err := EnvoyBootstrap(readRepo(t, "envoy/envoy.yaml"), testPorts)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "bench.yaml")
	require.NoError(t, os.WriteFile(path, out, 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msg, err := exec.CommandContext(ctx, bin, "--mode", "validate", "--use-dynamic-base-id", "-c", path).CombinedOutput()
	require.NoError(t, err, "%s", msg)
}

// TestTollgateConfig: examples/config.yaml with the bench's ports and team; a changed
// example is refused.
func TestTollgateConfig(t *testing.T) {
	src := string(readRepo(t, "examples/config.yaml"))
	out, err := TollgateConfig([]byte(src), "127.0.0.1:20001", 20002)
	require.NoError(t, err)
	var cfg struct {
		Listen struct{ Extproc, Admin string }
		Teams  []struct{ Name string }
	}
	require.NoError(t, yaml.Unmarshal(out, &cfg))
	require.Equal(t, "127.0.0.1:20001", cfg.Listen.Extproc)
	require.Equal(t, "127.0.0.1:20002", cfg.Listen.Admin)
	require.Equal(t, BenchTeam, cfg.Teams[0].Name)
	require.Len(t, cfg.Teams, strings.Count(src, "\n  - name: ")-strings.Count(src[:strings.Index(src, "\nteams:")], "\n  - name: ")+1)

	_, err = TollgateConfig([]byte(strings.Replace(src, "default_profile: standard", "default_profile: none", 1)), "127.0.0.1:1", 2)
	require.ErrorContains(t, err, "default_profile: standard")
	_, err = TollgateConfig([]byte(strings.Replace(src, "127.0.0.1:50051", "127.0.0.1:50055", 1)), "127.0.0.1:1", 2)
	require.ErrorContains(t, err, "occurs 0 times")
}

func TestKeyFrom(t *testing.T) {
	k, err := keyFrom("Virtual key (shown once; tollgate stores only its hash):\n\n  tgk_abc_def\n\nAppended key abc to x.\n")
	require.NoError(t, err)
	require.Equal(t, "tgk_abc_def", k)
	_, err = keyFrom("nothing here")
	require.Error(t, err)
}
