package envoy_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

const kubernetesDir = "../examples/kubernetes"

// kubernetesLayouts are the two Kubernetes layouts' Envoy ConfigMaps.
var kubernetesLayouts = []string{"sidecar", "service"}

// kubernetesEnvoyYAML returns envoy.yaml out of a layout's llm-gateway-envoy ConfigMap.
func kubernetesEnvoyYAML(t *testing.T, layout string) string {
	t.Helper()
	docs := yamlDocs(t, filepath.Join(kubernetesDir, layout, "envoy-config.yaml"))
	require.Len(t, docs, 1)
	require.Equal(t, "llm-gateway-envoy", at(t, docs[0], "metadata", "name"))
	return at(t, docs[0], "data", "envoy.yaml").(string)
}

func kubernetesBootstrap(t *testing.T, layout string) *bootstrapv3.Bootstrap {
	t.Helper()
	var v any
	require.NoError(t, yaml.Unmarshal([]byte(kubernetesEnvoyYAML(t, layout)), &v))
	return bootstrapFromYAML(t, v)
}

// TestKubernetesBootstraps: the Envoy bootstrap of each Kubernetes layout decodes strictly and
// is envoy/envoy.yaml minus the local trial: the same connection manager (filters, matcher,
// error bodies, path hygiene) with only the trial's routes gone, the same provider and
// catch-all clusters, and the same ext_proc cluster, on the pod's socket (sidecar) or on the
// tollgate Service over README.md's mutual-TLS transport socket (service).
func TestKubernetesBootstraps(t *testing.T) {
	shipped := shippedBootstrap(t)
	wantHCM := proto.Clone(onlyHCM(t, shipped)).(*hcmv3.HttpConnectionManager)
	vh := tollgateVhost(t, wantHCM)
	var routes []*routev3.Route
	for _, r := range vh.GetRoutes() {
		if n := r.GetName(); n != "mock" && n != "azure-openai" && n != "local" {
			routes = append(routes, r)
		}
	}
	vh.Routes = routes

	for _, layout := range kubernetesLayouts {
		t.Run(layout, func(t *testing.T) {
			bs := kubernetesBootstrap(t, layout)
			requireProtoEqual(t, wantHCM, onlyHCM(t, bs), "connection manager")
			require.Equal(t, "127.0.0.1", bs.GetAdmin().GetAddress().GetSocketAddress().GetAddress(), "Envoy admin on loopback")

			var names []string
			for _, c := range bs.GetStaticResources().GetClusters() {
				names = append(names, c.GetName())
			}
			sort.Strings(names)
			require.Equal(t, []string{"anthropic", "ext_proc_grpc", "no_upstream", "openai"}, names)
			for _, n := range []string{"openai", "anthropic", "no_upstream"} {
				requireProtoEqual(t, cluster(t, shipped, n), cluster(t, bs, n), n)
			}

			want := proto.Clone(cluster(t, shipped, "ext_proc_grpc")).(*clusterv3.Cluster)
			switch layout {
			case "sidecar":
				setPipe(want, "/run/tollgate/extproc.sock")
			case "service":
				const host = "tollgate.llm-gateway.svc.cluster.local"
				want.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
				want.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().Address = &corev3.Address{
					Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
						Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 50051}}}}
				var ts any
				require.NoError(t, yaml.Unmarshal([]byte(testutil.ExtProcTransportSocket(testutil.ExtProcTLS{
					CertFile: "/etc/envoy/tollgate-client/tls.crt", KeyFile: "/etc/envoy/tollgate-client/tls.key",
					CAFile: "/etc/envoy/tollgate-client/ca.crt", ServerName: host,
				})), &ts))
				want.TransportSocket = &corev3.TransportSocket{}
				decodeStrict(t, at(t, ts, "transport_socket"), want.TransportSocket)
			}
			requireProtoEqual(t, want, cluster(t, bs, "ext_proc_grpc"), "ext_proc cluster")
		})
	}
}

// TestKubernetesBootstrapsValidate runs `envoy --mode validate` on each layout's bootstrap,
// with its certificate paths pointed at throwaway files.
func TestKubernetesBootstrapsValidate(t *testing.T) {
	bin := testutil.EnvoyBinary(t)
	dir := devTLS(t)
	for _, layout := range kubernetesLayouts {
		t.Run(layout, func(t *testing.T) {
			cfg := kubernetesEnvoyYAML(t, layout)
			for _, prefix := range []string{"/etc/envoy/tls/", "/etc/envoy/tollgate-client/"} {
				cfg = strings.ReplaceAll(cfg, prefix+"tls.crt", filepath.Join(dir, devtls.CertFile))
				cfg = strings.ReplaceAll(cfg, prefix+"tls.key", filepath.Join(dir, devtls.KeyFile))
				cfg = strings.ReplaceAll(cfg, prefix+"ca.crt", filepath.Join(dir, devtls.CAFile))
			}
			require.NotContains(t, cfg, "/etc/envoy/")
			path := filepath.Join(t.TempDir(), "envoy.yaml")
			require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
			validate(t, bin, path)
		})
	}
}
