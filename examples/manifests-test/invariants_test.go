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
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

const (
	namespace    = "llm-gateway"
	socketDir    = "/run/tollgate"
	socketPath   = socketDir + "/extproc.sock"
	extprocPort  = 50051
	adminPort    = 9090
	redisPort    = 6379
	monitoringNS = "monitoring"
	ledgerLabel  = "tollgate.ai/ledger-client"
)

// externalSecrets are Secrets the READMEs have you create (certificates from your CA); every
// other Secret or ConfigMap a pod mounts must be defined in the examples.
var externalSecrets = map[string]bool{
	"llm-gateway-tls": true, "tollgate-admin-tls": true, "tollgate-extproc-tls": true,
	"llm-gateway-tollgate-client": true, "redis-tls": true,
}

// set is the manifests of one way to deploy: a layout's files plus what it shares.
type set struct {
	name string
	docs []Doc
}

func loadSets(t *testing.T) []set {
	t.Helper()
	load := func(files ...string) []Doc {
		var out []Doc
		for _, f := range files {
			d, err := DecodeFile(f)
			require.NoError(t, err)
			out = append(out, d...)
		}
		return out
	}
	shared := []string{"../kubernetes/namespace.yaml", "../kubernetes/secrets.yaml", "../replicas/redis.yaml"}
	sidecarCfg := "../kubernetes/sidecar/tollgate-config.yaml"
	return []set{
		{"kubernetes/sidecar", load(append(shared, sidecarCfg, "../kubernetes/sidecar/envoy-config.yaml", "../kubernetes/sidecar/gateway.yaml")...)},
		{"kubernetes/service", load(append(shared, "../kubernetes/service/tollgate-config.yaml", "../kubernetes/service/envoy-config.yaml",
			"../kubernetes/service/gateway.yaml", "../kubernetes/service/tollgate.yaml")...)},
		{"istio", load(append(shared, sidecarCfg, "../istio/gateway.yaml", "../istio/envoyfilter.yaml", "../istio/providers.yaml", "../istio/virtualservice.yaml")...)},
		{"envoy-gateway", load(append(shared, sidecarCfg, "../envoy-gateway/gateway.yaml", "../envoy-gateway/extension-policy.yaml", "../envoy-gateway/routes.yaml")...)},
	}
}

// pod is a pod template of a workload, or what Envoy Gateway adds to its proxy pods.
type pod struct {
	owner  string
	labels map[string]string
	spec   corev1.PodSpec
	// partial: only the parts an EnvoyProxy adds (Envoy Gateway owns the rest).
	partial bool
}

func (s set) pods() []pod {
	var out []pod
	for _, d := range s.docs {
		switch o := d.Object.(type) {
		case *appsv1.Deployment:
			out = append(out, pod{owner: "Deployment/" + o.Name, labels: o.Spec.Template.Labels, spec: o.Spec.Template.Spec})
		case *appsv1.StatefulSet:
			p := pod{owner: "StatefulSet/" + o.Name, labels: o.Spec.Template.Labels, spec: *o.Spec.Template.Spec.DeepCopy()}
			for _, c := range o.Spec.VolumeClaimTemplates {
				p.spec.Volumes = append(p.spec.Volumes, corev1.Volume{Name: c.Name,
					VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name}}})
			}
			out = append(out, p)
		case *egv1a1.EnvoyProxy:
			dep := o.Spec.Provider.Kubernetes.EnvoyDeployment
			p := pod{owner: "EnvoyProxy/" + o.Name, partial: true, labels: dep.Pod.Labels}
			p.spec.Volumes = dep.Pod.Volumes
			p.spec.InitContainers = dep.InitContainers
			p.spec.Containers = []corev1.Container{{Name: "envoy", VolumeMounts: dep.Container.VolumeMounts}}
			out = append(out, p)
		}
	}
	return out
}

func (s set) configMaps() map[string]*corev1.ConfigMap {
	out := map[string]*corev1.ConfigMap{}
	for _, d := range s.docs {
		if c, ok := d.Object.(*corev1.ConfigMap); ok {
			out[c.Name] = c
		}
	}
	return out
}

func (s set) secrets() map[string]*corev1.Secret {
	out := map[string]*corev1.Secret{}
	for _, d := range s.docs {
		if c, ok := d.Object.(*corev1.Secret); ok {
			out[c.Name] = c
		}
	}
	return out
}

func isTollgate(c corev1.Container) bool { return c.Name == "tollgate" }

// TestPodsAreLockedDown: every container of every example runs as non-root on a read-only
// root filesystem, without privilege escalation or capabilities, under the runtime's seccomp
// profile, with CPU and memory requests and a memory limit; and every object is in the
// example's namespace.
func TestPodsAreLockedDown(t *testing.T) {
	for _, s := range loadSets(t) {
		for _, p := range s.pods() {
			all := append(append([]corev1.Container{}, p.spec.InitContainers...), p.spec.Containers...)
			require.NotEmpty(t, all)
			for _, c := range all {
				if p.partial && !isTollgate(c) {
					continue // Envoy Gateway's own container: its settings are Envoy Gateway's
				}
				where := fmt.Sprintf("%s %s container %s", s.name, p.owner, c.Name)
				sc := c.SecurityContext
				require.NotNil(t, sc, where)
				nonRoot := sc.RunAsNonRoot
				if nonRoot == nil && p.spec.SecurityContext != nil {
					nonRoot = p.spec.SecurityContext.RunAsNonRoot
				}
				require.True(t, nonRoot != nil && *nonRoot, "%s: runAsNonRoot", where)
				require.True(t, sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem, "%s: readOnlyRootFilesystem", where)
				require.True(t, sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation, "%s: allowPrivilegeEscalation", where)
				require.NotNil(t, sc.Capabilities, where)
				require.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, "%s: capabilities", where)
				require.Empty(t, sc.Capabilities.Add, where)
				seccomp := sc.SeccompProfile
				if seccomp == nil && p.spec.SecurityContext != nil {
					seccomp = p.spec.SecurityContext.SeccompProfile
				}
				require.NotNil(t, seccomp, "%s: seccompProfile", where)
				require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, seccomp.Type, where)
				for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					require.Contains(t, c.Resources.Requests, r, "%s: requests.%s", where, r)
				}
				require.Contains(t, c.Resources.Limits, corev1.ResourceMemory, "%s: limits.memory", where)
			}
		}
		for _, d := range s.docs {
			if ns, ok := d.Object.(interface{ GetNamespace() string }); ok && d.Kind != "v1/Namespace" {
				require.Equal(t, namespace, ns.GetNamespace(), "%s %s (%s)", s.name, d.Kind, d.File)
			}
			if io, ok := d.Object.(*IstioObject); ok {
				require.Equal(t, namespace, io.Namespace, "%s %s (%s)", s.name, d.Kind, d.File)
			}
		}
	}
}

// TestTollgateContainers: every Tollgate container is probed as README.md says (startup and
// liveness on /healthz, readiness on /readyz, over HTTPS on the admin port, since admin.tls is
// set), runs `serve` with the mounted config, and a pod running Tollgate may reach Redis.
func TestTollgateContainers(t *testing.T) {
	found := 0
	for _, s := range loadSets(t) {
		for _, p := range s.pods() {
			for _, c := range append(append([]corev1.Container{}, p.spec.InitContainers...), p.spec.Containers...) {
				if !isTollgate(c) {
					continue
				}
				found++
				where := s.name + " " + p.owner
				require.Equal(t, []string{"serve", "--config", "/etc/tollgate/config/config.yaml"}, c.Args, where)
				require.Contains(t, c.Ports, corev1.ContainerPort{Name: "admin", ContainerPort: adminPort}, where)
				for probe, want := range map[*corev1.Probe]string{c.StartupProbe: "/healthz", c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
					require.NotNil(t, probe, "%s: a probe is missing", where)
					require.NotNil(t, probe.HTTPGet, where)
					require.Equal(t, want, probe.HTTPGet.Path, where)
					require.Equal(t, "admin", probe.HTTPGet.Port.String(), where)
					require.Equal(t, corev1.URISchemeHTTPS, probe.HTTPGet.Scheme, where)
				}
				require.Equal(t, "true", p.labels[ledgerLabel], "%s: the pod must be allowed to reach Redis", where)
				if len(p.spec.InitContainers) > 0 && p.spec.InitContainers[0].Name == "tollgate" {
					require.NotNil(t, c.RestartPolicy, "%s: a native sidecar", where)
					require.Equal(t, corev1.ContainerRestartPolicyAlways, *c.RestartPolicy, where)
				}
			}
		}
	}
	require.Equal(t, 4, found, "one Tollgate container per layout")
}

// TestMountsResolve: every volume mount names a volume of its pod, and every ConfigMap or
// Secret a volume names is defined in the examples (or is a certificate the README has you
// create).
func TestMountsResolve(t *testing.T) {
	for _, s := range loadSets(t) {
		cms, secs := s.configMaps(), s.secrets()
		for _, p := range s.pods() {
			vols := map[string]bool{}
			for _, v := range p.spec.Volumes {
				vols[v.Name] = true
				switch {
				case v.ConfigMap != nil:
					require.Contains(t, cms, v.ConfigMap.Name, "%s %s volume %s", s.name, p.owner, v.Name)
				case v.Secret != nil:
					require.True(t, secs[v.Secret.SecretName] != nil || externalSecrets[v.Secret.SecretName],
						"%s %s volume %s: Secret %s is defined nowhere", s.name, p.owner, v.Name, v.Secret.SecretName)
				}
			}
			for _, c := range append(append([]corev1.Container{}, p.spec.InitContainers...), p.spec.Containers...) {
				for _, m := range c.VolumeMounts {
					require.True(t, vols[m.Name], "%s %s container %s mounts %s, which is no volume of the pod", s.name, p.owner, c.Name, m.Name)
				}
			}
		}
	}
}

// TestSelectorsMatchPods: every Service, PodDisruptionBudget and NetworkPolicy of a layout
// selects pods of that layout (a typo would leave it selecting nothing, silently).
func TestSelectorsMatchPods(t *testing.T) {
	for _, s := range loadSets(t) {
		pods := s.pods()
		matches := func(sel map[string]string) bool {
			for _, p := range pods {
				if !p.partial && len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(p.labels)) {
					return true
				}
			}
			return false
		}
		for _, d := range s.docs {
			switch o := d.Object.(type) {
			case *corev1.Service:
				require.True(t, matches(o.Spec.Selector), "%s Service %s selects no pod", s.name, o.Name)
			case *policyv1.PodDisruptionBudget:
				require.True(t, matches(o.Spec.Selector.MatchLabels), "%s PDB %s selects no pod", s.name, o.Name)
				require.NotNil(t, o.Spec.MaxUnavailable, "%s PDB %s: maxUnavailable, so a one-replica rollout cannot block drains", s.name, o.Name)
			case *networkingv1.NetworkPolicy:
				require.True(t, matches(o.Spec.PodSelector.MatchLabels), "%s NetworkPolicy %s selects no pod", s.name, o.Name)
			}
		}
	}
}

// TestNetworkPolicies: only the gateway's pods may open ext_proc streams, only the monitoring
// namespace may reach Tollgate's admin port, only ledger clients may reach Redis, and a
// policy opening a port to everyone opens only the gateway's listener (and Istio's health
// port).
func TestNetworkPolicies(t *testing.T) {
	gatewayPods := map[string]string{"app.kubernetes.io/name": "llm-gateway"}
	public := map[int]bool{8443: true, 15021: true}
	seen := map[int]bool{}
	for _, s := range loadSets(t) {
		for _, d := range s.docs {
			np, ok := d.Object.(*networkingv1.NetworkPolicy)
			if !ok {
				continue
			}
			require.Contains(t, np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress, np.Name)
			require.Contains(t, np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress, np.Name)
			for _, rule := range np.Spec.Ingress {
				require.NotEmpty(t, rule.Ports, "%s %s: a rule without ports opens every port", s.name, np.Name)
				for _, port := range rule.Ports {
					n := port.Port.IntValue()
					seen[n] = true
					where := fmt.Sprintf("%s NetworkPolicy %s port %d", s.name, np.Name, n)
					switch n {
					case extprocPort:
						require.Len(t, rule.From, 1, where)
						require.Nil(t, rule.From[0].NamespaceSelector, where)
						require.Nil(t, rule.From[0].IPBlock, where)
						require.Equal(t, gatewayPods, rule.From[0].PodSelector.MatchLabels, where)
					case adminPort, 15090:
						require.Len(t, rule.From, 1, where)
						require.Nil(t, rule.From[0].PodSelector, where)
						require.Nil(t, rule.From[0].IPBlock, where)
						require.Equal(t, map[string]string{"kubernetes.io/metadata.name": monitoringNS}, rule.From[0].NamespaceSelector.MatchLabels, where)
					case redisPort:
						require.Len(t, rule.From, 1, where)
						require.Nil(t, rule.From[0].NamespaceSelector, where)
						require.Equal(t, map[string]string{ledgerLabel: "true"}, rule.From[0].PodSelector.MatchLabels, where)
					default:
						require.True(t, public[n], "%s: unexpected port", where)
						require.Empty(t, rule.From, "%s: the listener is for everyone", where)
					}
				}
			}
		}
	}
	for _, p := range []int{extprocPort, adminPort, redisPort, 8443} {
		require.True(t, seen[p], "no NetworkPolicy covers port %d", p)
	}
}

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

	for _, f := range []string{"../kubernetes/sidecar/envoy-config.yaml", "../kubernetes/service/envoy-config.yaml"} {
		got := map[string]bool{}
		routedValues(envoyBootstrap(t, f), got)
		require.Equal(t, keys(want), keys(got), f)
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
