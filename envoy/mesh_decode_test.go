package envoy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	// Every typed config the examples use, so protojson resolves their Anys (an Any of a type
	// not registered here is an error, as it would be for Envoy).
	_ "github.com/cncf/xds/go/xds/type/matcher/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/matcher/action/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/upstream_codec/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/formatter/req_without_query/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/matching/common_inputs/network/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/matching/input_matchers/metadata/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/router/cluster_specifiers/priority_group/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// yamlDocs reads every document of a YAML file as generic values (maps, lists, scalars).
func yamlDocs(t *testing.T, path string) []any {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var out []any
	for {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err, path)
		if doc != nil {
			out = append(out, doc)
		}
	}
}

// at walks maps by key and lists by int index; it fails the test when a step is missing.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			require.True(t, ok, "not a mapping at %q", k)
			v, ok = m[k]
			require.True(t, ok, "no key %q", k)
		case int:
			l, ok := v.([]any)
			require.True(t, ok && k < len(l), "no element %d", k)
			v = l[k]
		}
	}
	return v
}

// decodeStrict decodes a generic YAML value into m with Envoy 1.40's protos: every field must
// exist and every typed Any must resolve. It then runs Envoy's validation rules on m and on
// every message inside its Anys.
func decodeStrict(t *testing.T, v any, m proto.Message) {
	t.Helper()
	require.NoError(t, unmarshalStrict(v, m))
	require.NoError(t, validateDeep(m))
}

// unmarshalStrict is decodeStrict without the validation rules, for partial messages (an
// Istio MERGE patch holds only the fields it changes).
func unmarshalStrict(v any, m proto.Message) error {
	js, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return protojson.Unmarshal(js, m) // DiscardUnknown is false: unknown fields are errors
}

// validateDeep runs ValidateAll (protoc-gen-validate, the rules Envoy applies at load) on m and,
// recursively, on the message inside every Any.
func validateDeep(m proto.Message) error {
	var errs []error
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		errs = append(errs, v.ValidateAll())
	}
	forEachAny(m.ProtoReflect(), func(a *anypb.Any) {
		inner, err := a.UnmarshalNew()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.GetTypeUrl(), err))
			return
		}
		errs = append(errs, validateDeep(inner))
	})
	return errors.Join(errs...)
}

func forEachAny(m protoreflect.Message, fn func(*anypb.Any)) {
	if a, ok := m.Interface().(*anypb.Any); ok {
		fn(a)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				forEachAny(v.List().Get(i).Message(), fn)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				forEachAny(mv.Message(), fn)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			forEachAny(v.Message(), fn)
		}
		return true
	})
}

// bootstrapFromYAML decodes a whole bootstrap strictly.
func bootstrapFromYAML(t *testing.T, v any) *bootstrapv3.Bootstrap {
	t.Helper()
	bs := &bootstrapv3.Bootstrap{}
	decodeStrict(t, v, bs)
	return bs
}

// shippedBootstrap is envoy/envoy.yaml, decoded strictly.
func shippedBootstrap(t *testing.T) *bootstrapv3.Bootstrap {
	t.Helper()
	docs := yamlDocs(t, "envoy.yaml")
	require.Len(t, docs, 1)
	return bootstrapFromYAML(t, docs[0])
}

// onlyHCM returns the bootstrap's one HTTP connection manager.
func onlyHCM(t *testing.T, bs *bootstrapv3.Bootstrap) *hcmv3.HttpConnectionManager {
	t.Helper()
	ls := bs.GetStaticResources().GetListeners()
	require.Len(t, ls, 1)
	fs := ls[0].GetFilterChains()[0].GetFilters()
	require.Len(t, fs, 1)
	hcm := &hcmv3.HttpConnectionManager{}
	require.NoError(t, fs[0].GetTypedConfig().UnmarshalTo(hcm))
	return hcm
}

// httpFilter returns the HCM's HTTP filter named name.
func httpFilter(t *testing.T, hcm *hcmv3.HttpConnectionManager, name string) *hcmv3.HttpFilter {
	t.Helper()
	for _, f := range hcm.GetHttpFilters() {
		if f.GetName() == name {
			return f
		}
	}
	t.Fatalf("no HTTP filter %s", name)
	return nil
}

// cluster returns the bootstrap's cluster named name.
func cluster(t *testing.T, bs *bootstrapv3.Bootstrap, name string) *clusterv3.Cluster {
	t.Helper()
	for _, c := range bs.GetStaticResources().GetClusters() {
		if c.GetName() == name {
			return c
		}
	}
	t.Fatalf("no cluster %s", name)
	return nil
}

// tollgateVhost returns the virtual host named tollgate.
func tollgateVhost(t *testing.T, hcm *hcmv3.HttpConnectionManager) *routev3.VirtualHost {
	t.Helper()
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		if vh.GetName() == "tollgate" {
			return vh
		}
	}
	t.Fatal("no virtual host tollgate")
	return nil
}

// requireProtoEqual compares two messages and shows both as JSON when they differ.
func requireProtoEqual(t *testing.T, want, got proto.Message, msg string) {
	t.Helper()
	if !proto.Equal(want, got) {
		o := protojson.MarshalOptions{Multiline: true}
		require.Equal(t, o.Format(want), o.Format(got), msg)
		t.Fatalf("%s: messages differ", msg)
	}
}

// withoutFallback removes from Tollgate's ext_proc HTTP filter (wrapped in its matcher) the
// metadata namespaces of fallback across providers. Fallback needs envoy.yaml's fallback-N
// routes and Tollgate's upstream filter chain on every provider cluster; the Istio and Envoy
// Gateway examples generate their routes and provider clusters from their own resources and
// ship neither, so their filter carries only the tollgate namespace. A model with fallback
// targets is not offered there: Tollgate routes it to fallback-N, which no route matches, and
// the catch-all answers the JSON 502 (README, "Fallback across providers").
func withoutFallback(t *testing.T, hf *hcmv3.HttpFilter) {
	t.Helper()
	ewm := &matchingv3.ExtensionWithMatcher{}
	require.NoError(t, hf.GetTypedConfig().UnmarshalTo(ewm))
	ep := &extprocv3.ExternalProcessor{}
	require.NoError(t, ewm.GetExtensionConfig().GetTypedConfig().UnmarshalTo(ep))
	stripFallbackNamespaces(ep)
	inner, err := anypb.New(ep)
	require.NoError(t, err)
	ewm.ExtensionConfig.TypedConfig = inner
	outer, err := anypb.New(ewm)
	require.NoError(t, err)
	hf.ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: outer}
}

// stripFallbackNamespaces keeps only the tollgate namespace in ep's metadata options.
func stripFallbackNamespaces(ep *extprocv3.ExternalProcessor) {
	mo := ep.GetMetadataOptions()
	mo.ForwardingNamespaces = nil
	var keep []string
	for _, ns := range mo.GetReceivingNamespaces().GetUntyped() {
		if ns != "tollgate.fallback" && ns != "tollgate.plan" {
			keep = append(keep, ns)
		}
	}
	mo.ReceivingNamespaces.Untyped = keep
}
