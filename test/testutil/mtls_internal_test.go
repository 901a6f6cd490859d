package testutil

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAddTransportSocket(t *testing.T) {
	const block = "    transport_socket: {}\n"
	const two = `static_resources:
  clusters:
  # --- first
  - name: a
    type: STATIC
    load_assignment:
      cluster_name: a

  # --- second
  - name: b
    type: STATIC
admin:
  address: {}
`
	tests := []struct {
		name, in, cluster string
		want, wantErr     string
	}{
		{name: "before the comment of the next cluster", in: two, cluster: "a",
			want: strings.Replace(two, "      cluster_name: a\n", "      cluster_name: a\n"+block, 1)},
		{name: "before the next top-level key", in: two, cluster: "b",
			want: strings.Replace(two, "    type: STATIC\nadmin:", "    type: STATIC\n"+block+"admin:", 1)},
		{name: "at the end of the file without a newline", in: strings.TrimSuffix("  - name: c\n    type: STATIC", "\n"), cluster: "c",
			want: "  - name: c\n    type: STATIC\n" + block},
		{name: "missing", in: two, cluster: "ext_proc_grpc", wantErr: `cluster "ext_proc_grpc" not found`},
		{name: "twice", in: two + "  - name: b\n", cluster: "b", wantErr: "appears twice"},
		{name: "already TLS", in: "  - name: a\n    transport_socket:\n      name: x\n", cluster: "a", wantErr: "already has a transport_socket"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := addTransportSocket(tc.in, tc.cluster, block)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestAddTransportSocketToEnvoyYAML(t *testing.T) {
	out, err := renderEnvoyConfig(readEnvoyYAML(t), testPorts, "/tmp/tls")
	require.NoError(t, err)
	got, err := addTransportSocket(string(out), "ext_proc_grpc", ExtProcTransportSocket(ExtProcTLS{
		CertFile: "/m/envoy.crt", KeyFile: "/m/envoy.key", CAFile: "/m/ca.crt", ServerName: "tollgate.test"}))
	require.NoError(t, err)
	require.Equal(t, strings.Count(string(out), "transport_socket:")+1, strings.Count(got, "transport_socket:"))
	// The block lands inside ext_proc_grpc, after its endpoint and before the next cluster.
	cluster := got[strings.Index(got, "  - name: ext_proc_grpc\n"):]
	cluster = cluster[:strings.Index(cluster[1:], "\n  - name: ")+1]
	require.Contains(t, cluster, "port_value: 20003 }")
	require.Contains(t, cluster, "    transport_socket:\n      name: envoy.transport_sockets.tls\n")
	require.Contains(t, cluster, "certificate_chain: { filename: /m/envoy.crt }")
	require.Contains(t, cluster, "matcher: { exact: tollgate.test }")

	noCert := ExtProcTransportSocket(ExtProcTLS{CAFile: "/m/ca.crt", ServerName: "tollgate.test"})
	require.NotContains(t, noCert, "tls_certificates")
	require.Contains(t, noCert, "trusted_ca: { filename: /m/ca.crt }")
}
