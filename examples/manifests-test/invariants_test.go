package manifests

import (
	"fmt"
	"testing"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
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
