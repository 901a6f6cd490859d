package manifests

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"strconv"

	"github.com/stretchr/testify/require"
)

// manifestGlobs are every manifest of the examples: each YAML file in these places is made
// of Kubernetes, Istio or Envoy Gateway documents only.
var manifestGlobs = []string{
	"../kubernetes/*.yaml",
	"../kubernetes/*/*.yaml",
	"../istio/*.yaml",
	"../envoy-gateway/*.yaml",
	"../replicas/redis.yaml",
}

func manifestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, g := range manifestGlobs {
		m, err := filepath.Glob(g)
		require.NoError(t, err)
		require.NotEmpty(t, m, "no manifest matches %s", g)
		files = append(files, m...)
	}
	sort.Strings(files)
	return files
}

func decodeAll(t *testing.T) []Doc {
	t.Helper()
	var docs []Doc
	for _, f := range manifestFiles(t) {
		d, err := DecodeFile(f)
		require.NoError(t, err)
		require.NotEmpty(t, d, "%s has no document", f)
		docs = append(docs, d...)
	}
	return docs
}

// TestManifestsDecodeStrictly: every document of every example manifest decodes into its
// API type with no unknown field, and the examples hold the resources their READMEs promise.
func TestManifestsDecodeStrictly(t *testing.T) {
	count := map[string]int{}
	for _, d := range decodeAll(t) {
		count[strings.TrimPrefix(d.File, "../")+" "+d.Kind]++
	}
	for _, want := range []string{
		"istio/envoyfilter.yaml networking.istio.io/v1alpha3/EnvoyFilter",
		"istio/gateway.yaml networking.istio.io/v1/Gateway",
		"istio/virtualservice.yaml networking.istio.io/v1/VirtualService",
		"istio/gateway.yaml apps/v1/Deployment",
		"envoy-gateway/envoy-gateway.yaml gateway.envoyproxy.io/v1alpha1/EnvoyGateway",
		"envoy-gateway/gateway.yaml gateway.envoyproxy.io/v1alpha1/EnvoyProxy",
		"envoy-gateway/gateway.yaml gateway.networking.k8s.io/v1/Gateway",
		"envoy-gateway/gateway.yaml gateway.envoyproxy.io/v1alpha1/ClientTrafficPolicy",
		"envoy-gateway/extension-policy.yaml gateway.envoyproxy.io/v1alpha1/EnvoyExtensionPolicy",
		"envoy-gateway/extension-policy.yaml gateway.envoyproxy.io/v1alpha1/Backend",
		"envoy-gateway/routes.yaml gateway.envoyproxy.io/v1alpha1/HTTPRouteFilter",
		"kubernetes/namespace.yaml v1/Namespace",
		"kubernetes/sidecar/gateway.yaml apps/v1/Deployment",
		"kubernetes/sidecar/gateway.yaml networking.k8s.io/v1/NetworkPolicy",
		"kubernetes/sidecar/gateway.yaml policy/v1/PodDisruptionBudget",
		"kubernetes/sidecar/tollgate-config.yaml v1/ConfigMap",
		"kubernetes/sidecar/envoy-config.yaml v1/ConfigMap",
		"kubernetes/service/tollgate.yaml apps/v1/Deployment",
		"kubernetes/service/tollgate.yaml v1/Service",
		"kubernetes/service/tollgate.yaml networking.k8s.io/v1/NetworkPolicy",
		"kubernetes/service/tollgate.yaml policy/v1/PodDisruptionBudget",
		"kubernetes/service/gateway.yaml apps/v1/Deployment",
		"replicas/redis.yaml apps/v1/StatefulSet",
		"replicas/redis.yaml networking.k8s.io/v1/NetworkPolicy",
	} {
		require.Positive(t, count[want], "missing: %s", want)
	}
	require.Equal(t, 2, count["istio/providers.yaml networking.istio.io/v1/DestinationRule"], "one per provider")
	require.Equal(t, 3, count["istio/providers.yaml networking.istio.io/v1/ServiceEntry"], "two providers and no-upstream")
	require.Equal(t, 3, count["envoy-gateway/routes.yaml gateway.networking.k8s.io/v1/HTTPRoute"], "two providers and the catch-all")
	require.Equal(t, 2, count["envoy-gateway/routes.yaml gateway.envoyproxy.io/v1alpha1/Backend"], "one per provider")
	require.Equal(t, 4, count["kubernetes/secrets.yaml v1/Secret"])
}

// TestDecoderRefusesUnknownFields proves the decoder strict for every document of the examples:
// the same document with one unknown field added, at the top or inside its spec, is refused.
// Without this a lenient decoder (Istio's own UnmarshalJSON accepts unknown fields) would make
// TestManifestsDecodeStrictly pass on anything.
func TestDecoderRefusesUnknownFields(t *testing.T) {
	for _, f := range manifestFiles(t) {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		docs, err := splitDocs(raw)
		require.NoError(t, err)
		for i, doc := range docs {
			d, err := Decode(doc)
			require.NoError(t, err)
			t.Run(strings.TrimPrefix(f, "../")+"/"+d.Kind+"/"+strconv.Itoa(i), func(t *testing.T) {
				_, err := Decode(append(append([]byte{}, doc...), "\ntollgateBogus: 1\n"...))
				require.ErrorIs(t, err, ErrUnknownField, "an unknown top-level field")
				if spec := strings.Index(string(doc), "\nspec:\n"); spec >= 0 {
					bad := string(doc[:spec]) + "\nspec:\n  tollgateBogus: 1" + string(doc[spec+len("\nspec:"):])
					_, err := Decode([]byte(bad))
					require.ErrorIs(t, err, ErrUnknownField, "an unknown field in the spec")
				}
			})
		}
	}
}

// TestDecoderRefusesNestedMistakes: typical slips deep inside a spec are refused, including
// an Istio field written with its proto name (snake_case), which the CRD schema does not have.
func TestDecoderRefusesNestedMistakes(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      error
	}{
		{"container field typo", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
      - name: c
        image: i
        readinessprobe: {httpGet: {path: /readyz, port: 9090}}
`, ErrUnknownField},
		{"duplicate field", `
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data: {a: b}
data: {c: d}
`, ErrUnknownField},
		{"Envoy Gateway ext_proc field typo", `
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyExtensionPolicy
metadata: {name: x}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: g}]
  extProc:
  - backendRefs: [{name: b}]
    failopen: false
`, ErrUnknownField},
		{"Gateway API header match typo", `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: x}
spec:
  rules:
  - matches:
    - headers: [{type: Exact, name: x-tollgate-upstream, values: openai}]
`, ErrUnknownField},
		{"Istio nested typo", `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: x}
spec:
  hosts: [a]
  http:
  - route: [{destination: {host: a}}]
    retry: {attempts: 1}
`, ErrUnknownField},
		{"Istio proto name instead of JSON name", `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: x}
spec:
  host: a
  traffic_policy: {tls: {mode: SIMPLE}}
`, ErrUnknownField},
		{"Istio EnvoyFilter patch typo outside the free-form value", `
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: x}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    patch: {operation: INSERT_FIRST, valu: {name: f}}
`, ErrUnknownField},
		{"Istio metadata typo", `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: x, namspace: y}
spec: {hosts: [a]}
`, ErrUnknownField},
		{"unknown kind", `
apiVersion: networking.istio.io/v1
kind: Sidecarr
metadata: {name: x}
`, ErrUnknownKind},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.doc))
			require.ErrorIs(t, err, tc.want)
		})
	}
}
