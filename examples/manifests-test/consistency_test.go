package manifests

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	"github.com/stretchr/testify/require"
	istionetv1alpha3 "istio.io/api/networking/v1alpha3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

// tollgateConfig reads config.yaml out of a tollgate-config ConfigMap.
func tollgateConfig(t *testing.T, file string) (string, map[string]any) {
	t.Helper()
	docs, err := DecodeFile(file)
	require.NoError(t, err)
	require.Len(t, docs, 1)
	cm := docs[0].Object.(*corev1.ConfigMap)
	require.Equal(t, "tollgate-config", cm.Name)
	raw := cm.Data["config.yaml"]
	require.NotEmpty(t, raw)
	var cfg map[string]any
	require.NoError(t, yaml.UnmarshalStrict([]byte(raw), &cfg))
	return raw, cfg
}

func envoyBootstrap(t *testing.T, file string) map[string]any {
	t.Helper()
	docs, err := DecodeFile(file)
	require.NoError(t, err)
	require.Len(t, docs, 1)
	cm := docs[0].Object.(*corev1.ConfigMap)
	require.Equal(t, "llm-gateway-envoy", cm.Name)
	var bs map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(cm.Data["envoy.yaml"]), &bs))
	return bs
}

// routedValues collects the exact x-tollgate-upstream values Envoy routes on in a bootstrap.
func routedValues(v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		if x["name"] == "x-tollgate-upstream" {
			if sm, ok := x["string_match"].(map[string]any); ok {
				out[fmt.Sprint(sm["exact"])] = true
			}
		}
		for _, e := range x {
			routedValues(e, out)
		}
	case []any:
		for _, e := range x {
			routedValues(e, out)
		}
	}
}

// pipes collects the unix socket paths a bootstrap's clusters connect to.
func pipes(v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		if p, ok := x["pipe"].(map[string]any); ok {
			out[fmt.Sprint(p["path"])] = true
		}
		for _, e := range x {
			pipes(e, out)
		}
	case []any:
		for _, e := range x {
			pipes(e, out)
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestRoutesMatchProviders: every layout routes exactly the x-tollgate-upstream values that
// Tollgate's config sets (providers[].route): plain Envoy in both Kubernetes layouts, the
// Istio VirtualService and the Envoy Gateway HTTPRoutes.
func TestRoutesMatchProviders(t *testing.T) {
	_, cfg := tollgateConfig(t, "../kubernetes/sidecar/tollgate-config.yaml")
	want := map[string]bool{}
	for _, p := range cfg["providers"].([]any) {
		want[fmt.Sprint(p.(map[string]any)["route"])] = true
	}
	require.Equal(t, []string{"anthropic", "openai"}, keys(want))

	// Plain Envoy also routes the plans of models with fallback targets (fallback-2 to
	// fallback-4, as envoy/envoy.yaml), each attempt to the cluster of its provider
	// (providers[].cluster). The Istio and Envoy Gateway examples do not offer fallback.
	clusters := map[string]bool{}
	for _, p := range cfg["providers"].([]any) {
		clusters[fmt.Sprint(p.(map[string]any)["cluster"])] = true
	}
	require.Equal(t, []string{"anthropic", "openai"}, keys(clusters))
	plain := append(keys(want), "fallback-2", "fallback-3", "fallback-4")
	sort.Strings(plain)
	for _, f := range []string{"../kubernetes/sidecar/envoy-config.yaml", "../kubernetes/service/envoy-config.yaml"} {
		got := map[string]bool{}
		bs := envoyBootstrap(t, f)
		routedValues(bs, got)
		require.Equal(t, plain, keys(got), f)
		names := map[string]bool{}
		for _, c := range bs["static_resources"].(map[string]any)["clusters"].([]any) {
			names[fmt.Sprint(c.(map[string]any)["name"])] = true
		}
		for c := range clusters {
			require.True(t, names[c], "%s: providers[].cluster %s", f, c)
		}
	}

	istio := map[string]bool{}
	docs, err := DecodeFile("../istio/virtualservice.yaml")
	require.NoError(t, err)
	vs := docs[0].Object.(*IstioObject).Spec.(*istionetv1alpha3.VirtualService)
	require.Equal(t, "no_upstream_selected", vs.Http[len(vs.Http)-1].Name, "the catch-all comes last")
	require.Empty(t, vs.Http[len(vs.Http)-1].Match, "the catch-all matches everything")
	for _, r := range vs.Http[:len(vs.Http)-1] {
		require.Len(t, r.Match, 1, r.Name)
		m := r.Match[0].Headers["x-tollgate-upstream"]
		require.NotNil(t, m, r.Name)
		exact := m.GetExact()
		require.Equal(t, r.Name, exact, "route name and header value")
		istio[exact] = true
		require.Equal(t, "0s", r.Timeout.AsDuration().String(), "%s: no overall timeout", r.Name)
		require.Equal(t, int32(1), r.Retries.Attempts, r.Name)
		require.Equal(t, "connect-failure,refused-stream,reset-before-request", r.Retries.RetryOn, "%s: never retry 5xx", r.Name)
		require.Contains(t, r.Headers.Request.Remove, "x-tollgate-upstream", r.Name)
	}
	require.Equal(t, keys(want), keys(istio))

	eg := map[string]bool{}
	docs, err = DecodeFile("../envoy-gateway/routes.yaml")
	require.NoError(t, err)
	for _, d := range docs {
		hr, ok := d.Object.(*gwapiv1.HTTPRoute)
		if !ok {
			continue
		}
		for _, rule := range hr.Spec.Rules {
			for _, m := range rule.Matches {
				for _, h := range m.Headers {
					if h.Name == "x-tollgate-upstream" {
						require.Equal(t, gwapiv1.HeaderMatchExact, *h.Type, hr.Name)
						eg[h.Value] = true
					}
				}
			}
		}
	}
	require.Equal(t, keys(want), keys(eg))
}

// TestLayoutsAgree: the two Kubernetes configs differ only in listen; their budget section is
// examples/replicas/budget.yaml; the socket Tollgate listens on in the sidecar layout is the
// one plain Envoy, the Istio EnvoyFilter and the Envoy Gateway Backend connect to, in the
// directory every sidecar pod shares; and the service layout's Envoy reaches the headless
// Service with the identity Tollgate allows.
func TestLayoutsAgree(t *testing.T) {
	sidecarRaw, sidecar := tollgateConfig(t, "../kubernetes/sidecar/tollgate-config.yaml")
	serviceRaw, service := tollgateConfig(t, "../kubernetes/service/tollgate-config.yaml")
	sl, vl := sidecar["listen"].(map[string]any), service["listen"].(map[string]any)
	delete(sidecar, "listen")
	delete(service, "listen")
	require.Equal(t, sidecar, service, "the layouts' configs differ only in listen")

	budget, err := os.ReadFile("../replicas/budget.yaml")
	require.NoError(t, err)
	_, block, ok := strings.Cut(string(budget), "\nbudget:\n")
	require.True(t, ok)
	for name, raw := range map[string]string{"sidecar": sidecarRaw, "service": serviceRaw} {
		require.Contains(t, raw, "\nbudget:\n"+block, "%s: the budget section is examples/replicas/budget.yaml's", name)
	}

	require.Equal(t, "unix:"+socketPath, sl["extproc"])
	got := map[string]bool{}
	pipes(envoyBootstrap(t, "../kubernetes/sidecar/envoy-config.yaml"), got)
	require.Equal(t, []string{socketPath}, keys(got), "plain Envoy")
	docs, err := DecodeFile("../istio/envoyfilter.yaml")
	require.NoError(t, err)
	ef := docs[0].Object.(*IstioObject).Spec.(*istionetv1alpha3.EnvoyFilter)
	got = map[string]bool{}
	for _, cp := range ef.ConfigPatches {
		pipes(cp.Patch.Value.AsMap(), got)
	}
	require.Equal(t, []string{socketPath}, keys(got), "Istio EnvoyFilter")
	docs, err = DecodeFile("../envoy-gateway/extension-policy.yaml")
	require.NoError(t, err)
	backend := docs[1].Object.(*egv1a1.Backend)
	require.Equal(t, "tollgate-extproc", backend.Name)
	require.Equal(t, socketPath, backend.Spec.Endpoints[0].Unix.Path, "Envoy Gateway Backend")
	for _, s := range loadSets(t) {
		for _, p := range s.pods() {
			for _, c := range append(append([]corev1.Container{}, p.spec.InitContainers...), p.spec.Containers...) {
				if s.name == "kubernetes/service" {
					continue
				}
				mounted := false
				for _, m := range c.VolumeMounts {
					mounted = mounted || (m.Name == "extproc-socket" && m.MountPath == socketDir)
				}
				if isTollgate(c) || c.Name == "envoy" || c.Name == "istio-proxy" {
					require.True(t, mounted, "%s %s container %s shares %s", s.name, p.owner, c.Name, socketDir)
				}
			}
		}
	}

	// Service layout.
	require.Equal(t, fmt.Sprintf("0.0.0.0:%d", extprocPort), vl["extproc"])
	tlsCfg := vl["extproc_tls"].(map[string]any)
	require.Equal(t, []any{"spiffe://cluster.local/ns/" + namespace + "/sa/llm-gateway"}, tlsCfg["allowed_sans"])
	svcHost := "tollgate." + namespace + ".svc.cluster.local"
	mtls, err := DecodeFile("../kubernetes/service/envoy-config.yaml")
	require.NoError(t, err)
	envoyYAML := mtls[0].Object.(*corev1.ConfigMap).Data["envoy.yaml"]
	require.Contains(t, envoyYAML, "socket_address: { address: "+svcHost+fmt.Sprintf(", port_value: %d }", extprocPort))
	require.Contains(t, envoyYAML, "sni: "+svcHost+"\n")
	require.Contains(t, envoyYAML, "matcher: { exact: "+svcHost+" }")
	for _, d := range loadSets(t)[1].docs {
		switch o := d.Object.(type) {
		case *corev1.Service:
			if o.Name == "tollgate" {
				require.Equal(t, corev1.ClusterIPNone, o.Spec.ClusterIP, "headless: Envoy balances over the pods")
			}
		case *appsv1.Deployment:
			if o.Name == "llm-gateway" {
				require.Equal(t, "llm-gateway", o.Spec.Template.Spec.ServiceAccountName, "the SPIFFE id names this service account")
			}
		}
	}
}

// TestRedisManifestMatchesFiles: the Redis the Kubernetes layouts use runs exactly
// examples/replicas/redis.conf and users.acl (the files test/e2e runs), at the address of the
// budget section.
func TestRedisManifestMatchesFiles(t *testing.T) {
	docs, err := DecodeFile("../replicas/redis.yaml")
	require.NoError(t, err)
	conf, err := os.ReadFile("../replicas/redis.conf")
	require.NoError(t, err)
	acl, err := os.ReadFile("../replicas/users.acl")
	require.NoError(t, err)
	var checked int
	for _, d := range docs {
		switch o := d.Object.(type) {
		case *corev1.ConfigMap:
			require.Equal(t, string(conf), o.Data["redis.conf"])
			checked++
		case *corev1.Secret:
			require.Equal(t, string(acl), o.StringData["users.acl"])
			checked++
		case *corev1.Service:
			require.Equal(t, "redis", o.Name)
			require.Equal(t, int32(redisPort), o.Spec.Ports[0].Port)
			checked++
		case *appsv1.StatefulSet:
			require.Equal(t, []string{"redis-server", "/etc/redis/config/redis.conf"}, o.Spec.Template.Spec.Containers[0].Command)
			require.Len(t, o.Spec.VolumeClaimTemplates, 1, "the AOF lives on a persistent volume")
			checked++
		}
	}
	require.Equal(t, 4, checked)
	budget, err := os.ReadFile("../replicas/budget.yaml")
	require.NoError(t, err)
	require.Contains(t, string(budget), fmt.Sprintf(`"rediss://redis.%s.svc.cluster.local:%d"`, namespace, redisPort))
}

// TestNoSecretValues: the example Secrets hold placeholders only, which Tollgate refuses, and
// the ACL file's password hash is the hash of nothing.
func TestNoSecretValues(t *testing.T) {
	docs, err := DecodeFile("../kubernetes/secrets.yaml")
	require.NoError(t, err)
	for _, d := range docs {
		s := d.Object.(*corev1.Secret)
		require.Empty(t, s.Data, s.Name)
		for k, v := range s.StringData {
			if k == "keys.yaml" {
				require.Equal(t, "keys: []\n", v)
				continue
			}
			require.Equal(t, "CHANGE-ME", v, "%s.%s", s.Name, k)
		}
	}
	acl, err := os.ReadFile("../replicas/users.acl")
	require.NoError(t, err)
	require.Contains(t, string(acl), " #"+strings.Repeat("0", 64)+" ")
	_, cfg := tollgateConfig(t, "../kubernetes/sidecar/tollgate-config.yaml")
	require.Equal(t, strings.Repeat("0", 64), cfg["admin"].(map[string]any)["token_sha256"])
}
