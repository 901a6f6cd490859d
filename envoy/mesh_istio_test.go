package envoy_test

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

const istioDir = "../examples/istio"

// istioPatches returns the EnvoyFilter's config patches (examples/istio/envoyfilter.yaml).
func istioPatches(t *testing.T) []map[string]any {
	t.Helper()
	docs := yamlDocs(t, istioDir+"/envoyfilter.yaml")
	require.Len(t, docs, 1)
	require.Equal(t, "EnvoyFilter", at(t, docs[0], "kind"))
	var out []map[string]any
	for _, p := range at(t, docs[0], "spec", "configPatches").([]any) {
		out = append(out, p.(map[string]any))
	}
	return out
}

// TestIstioEnvoyFilter decodes the value of every patch of the Istio EnvoyFilter strictly with
// Envoy 1.40's protos (Istio passes it to Envoy as is) and checks that it carries
// envoy/envoy.yaml's settings: the ext_proc filter and its matcher, the header removal, the
// connection manager's path hygiene, idle timeout and error bodies, the ext_proc cluster and
// the request body buffer limit.
func TestIstioEnvoyFilter(t *testing.T) {
	shipped := shippedBootstrap(t)
	hcm := onlyHCM(t, shipped)
	seen := map[string]bool{}
	for _, p := range istioPatches(t) {
		applyTo, op := p["applyTo"].(string), at(t, p, "patch", "operation").(string)
		value := at(t, p, "patch", "value")
		require.Equal(t, "GATEWAY", at(t, p, "match", "context"), "%s %s applies to the gateway only", applyTo, op)
		key := applyTo + " " + op
		seen[key] = true
		switch key {
		case "NETWORK_FILTER MERGE":
			// Istio merges the patch into its own connection manager: the patch must decode,
			// and envoy.yaml's connection manager with the patch merged in must stay valid.
			a := &anypb.Any{}
			require.NoError(t, unmarshalStrict(at(t, value, "typed_config"), a))
			patch := &hcmv3.HttpConnectionManager{}
			require.NoError(t, a.UnmarshalTo(patch), "the merged typed_config is a connection manager")
			merged := proto.Clone(hcm).(*hcmv3.HttpConnectionManager)
			proto.Merge(merged, patch)
			require.NoError(t, validateDeep(merged))
			require.Equal(t, hcm.GetNormalizePath().GetValue(), patch.GetNormalizePath().GetValue())
			require.Equal(t, hcm.GetMergeSlashes(), patch.GetMergeSlashes())
			require.Equal(t, hcm.GetPathWithEscapedSlashesAction(), patch.GetPathWithEscapedSlashesAction())
			requireProtoEqual(t, hcm.GetStreamIdleTimeout(), patch.GetStreamIdleTimeout(), "stream_idle_timeout")
			require.Len(t, patch.GetEarlyHeaderMutationExtensions(), 1)
			requireProtoEqual(t, hcm.GetEarlyHeaderMutationExtensions()[0], patch.GetEarlyHeaderMutationExtensions()[0], "early header mutation")
			// The same error bodies and statuses as envoy.yaml, in the same order.
			want, got := hcm.GetLocalReplyConfig().GetMappers(), patch.GetLocalReplyConfig().GetMappers()
			require.Len(t, got, len(want))
			for i := range want {
				requireProtoEqual(t, want[i].GetBodyFormatOverride(), got[i].GetBodyFormatOverride(), "mapper body")
				requireProtoEqual(t, want[i].GetStatusCode(), got[i].GetStatusCode(), "mapper status")
			}
		case "HTTP_FILTER INSERT_FIRST":
			f := &hcmv3.HttpFilter{}
			decodeStrict(t, value, f)
			requireProtoEqual(t, httpFilter(t, hcm, "envoy.filters.http.header_mutation"), f, "x-tollgate-* removal filter")
		case "HTTP_FILTER INSERT_BEFORE":
			require.Equal(t, "envoy.filters.http.router", at(t, p, "match", "listener", "filterChain", "filter", "subFilter", "name"))
			f := &hcmv3.HttpFilter{}
			decodeStrict(t, value, f)
			// envoy.yaml disables the filter by default and enables it on its virtual host; the
			// dedicated gateway runs it for every request. Everything else is the same.
			want := proto.Clone(httpFilter(t, hcm, "envoy.filters.http.ext_proc")).(*hcmv3.HttpFilter)
			require.True(t, want.GetDisabled())
			want.Disabled = false
			withoutFallback(t, want)
			requireProtoEqual(t, want, f, "ext_proc filter (settings, processing mode, matcher)")
		case "CLUSTER ADD":
			c := &clusterv3.Cluster{}
			decodeStrict(t, value, c)
			want := proto.Clone(cluster(t, shipped, "ext_proc_grpc")).(*clusterv3.Cluster)
			setPipe(want, "/run/tollgate/extproc.sock")
			requireProtoEqual(t, want, c, "ext_proc cluster (on the sidecar's socket)")
		case "VIRTUAL_HOST MERGE":
			require.EqualValues(t, 443, at(t, p, "match", "routeConfiguration", "portNumber"), "the Gateway server's port")
			vh := &routev3.VirtualHost{}
			require.NoError(t, unmarshalStrict(value, vh))
			require.Equal(t, tollgateVhost(t, hcm).GetRequestBodyBufferLimit().GetValue(), vh.GetRequestBodyBufferLimit().GetValue())
		default:
			t.Fatalf("unexpected patch %s", key)
		}
	}
	require.Len(t, seen, 5, "every patch kind: %v", seen)
}

// setPipe points a cluster's one endpoint at a unix socket.
func setPipe(c *clusterv3.Cluster, path string) {
	c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().Address = &corev3.Address{
		Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: path}}}
}

// TestIstioMappersMatchRoutes: the local-reply mapper that turns the catch-all's 503 into the
// JSON 502 names the VirtualService route that Istio turns into that Envoy route.
func TestIstioMappersMatchRoutes(t *testing.T) {
	var expr string
	for _, p := range istioPatches(t) {
		if p["applyTo"] == "NETWORK_FILTER" {
			mappers := at(t, p, "patch", "value", "typed_config", "local_reply_config", "mappers").([]any)
			expr = at(t, mappers[1], "filter", "extension_filter", "typed_config", "expression").(string)
		}
	}
	require.Contains(t, expr, "xds.route_name == 'no_upstream_selected'")
	docs := yamlDocs(t, istioDir+"/virtualservice.yaml")
	routes := at(t, docs[0], "spec", "http").([]any)
	require.Equal(t, "no_upstream_selected", at(t, routes[len(routes)-1], "name"))
}
