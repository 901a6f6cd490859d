package envoy_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

var update = flag.Bool("update", false, "rewrite examples/envoy-gateway/extproc-filter.json")

const (
	envoyGatewayDir = "../examples/envoy-gateway"
	// egFilterGolden is the ext_proc filter Envoy Gateway generates from extension-policy.yaml;
	// test/e2e runs it in a real Envoy.
	egFilterGolden = envoyGatewayDir + "/extproc-filter.json"
	// egGrpcTimeout is the GrpcService timeout Envoy Gateway sets on every external service
	// (defaultExtServiceRequestTimeout in internal/xds/translator/utils.go, v1.9.1).
	egGrpcTimeout = 10 * time.Second
)

// egExtProc is the part of an EnvoyExtensionPolicy's extProc entry that reaches Envoy.
type egExtProc struct {
	BackendRefs []struct {
		Group     string  `json:"group"`
		Kind      string  `json:"kind"`
		Name      string  `json:"name"`
		Namespace *string `json:"namespace"`
		Port      *int    `json:"port"`
	} `json:"backendRefs"`
	FailOpen       *bool   `json:"failOpen"`
	StatusOnError  *int32  `json:"statusOnError"`
	MessageTimeout *string `json:"messageTimeout"`
	ShadowMode     *bool   `json:"shadowMode"`
	ProcessingMode *struct {
		Request *struct {
			Body       *string  `json:"body"`
			Attributes []string `json:"attributes"`
		} `json:"request"`
		Response *struct {
			Body       *string  `json:"body"`
			Attributes []string `json:"attributes"`
		} `json:"response"`
		AllowModeOverride bool `json:"allowModeOverride"`
	} `json:"processingMode"`
	Metadata *struct {
		AccessibleNamespaces []string `json:"accessibleNamespaces"`
		WritableNamespaces   []string `json:"writableNamespaces"`
	} `json:"metadata"`
}

// egBodyModes maps Envoy Gateway's body modes to Envoy's.
var egBodyModes = map[string]extprocv3.ProcessingMode_BodySendMode{
	"Buffered":           extprocv3.ProcessingMode_BUFFERED,
	"BufferedPartial":    extprocv3.ProcessingMode_BUFFERED_PARTIAL,
	"Streamed":           extprocv3.ProcessingMode_STREAMED,
	"FullDuplexStreamed": extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED,
}

// envoyGatewayExtProc builds the ExternalProcessor Envoy Gateway v1.9.1 generates for the
// idx-th extProc entry of an EnvoyExtensionPolicy, following its translator
// (internal/gatewayapi/envoyextensionpolicy.go buildExtProc, internal/xds/translator/extproc.go
// extProcConfig and buildProcessingMode): headers are sent only for a direction that is
// present, trailers are skipped, and the gRPC service gets a 10 s timeout.
func envoyGatewayExtProc(t *testing.T, ns, policy string, idx int, ep egExtProc) *extprocv3.ExternalProcessor {
	t.Helper()
	require.NotEmpty(t, ep.BackendRefs)
	ref := ep.BackendRefs[0]
	refNS := ns
	if ref.Namespace != nil {
		refNS = *ref.Namespace
	}
	authority := ref.Name + "." + refNS
	if ref.Port != nil {
		authority = fmt.Sprintf("%s:%d", authority, *ref.Port)
	}
	cfg := &extprocv3.ExternalProcessor{
		GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{
				ClusterName: strings.ToLower(fmt.Sprintf("envoyextensionpolicy/%s/%s/extproc/%d", ns, policy, idx)),
				Authority:   authority,
			}},
			Timeout: durationpb.New(egGrpcTimeout),
		},
		ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode:   extprocv3.ProcessingMode_SKIP,
			ResponseHeaderMode:  extprocv3.ProcessingMode_SKIP,
			RequestTrailerMode:  extprocv3.ProcessingMode_SKIP,
			ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
		},
	}
	if pm := ep.ProcessingMode; pm != nil {
		if pm.Request != nil {
			cfg.ProcessingMode.RequestHeaderMode = extprocv3.ProcessingMode_SEND
			if pm.Request.Body != nil {
				cfg.ProcessingMode.RequestBodyMode = egBodyModes[*pm.Request.Body]
			}
			cfg.RequestAttributes = pm.Request.Attributes
		}
		if pm.Response != nil {
			cfg.ProcessingMode.ResponseHeaderMode = extprocv3.ProcessingMode_SEND
			if pm.Response.Body != nil {
				cfg.ProcessingMode.ResponseBodyMode = egBodyModes[*pm.Response.Body]
			}
			cfg.ResponseAttributes = pm.Response.Attributes
		}
		cfg.AllowModeOverride = pm.AllowModeOverride
	}
	if ep.ShadowMode != nil {
		cfg.ObservabilityMode = *ep.ShadowMode
	}
	if ep.FailOpen != nil {
		cfg.FailureModeAllow = *ep.FailOpen
	}
	if ep.MessageTimeout != nil {
		d, err := time.ParseDuration(*ep.MessageTimeout)
		require.NoError(t, err)
		cfg.MessageTimeout = durationpb.New(d)
	}
	if m := ep.Metadata; m != nil && (m.AccessibleNamespaces != nil || m.WritableNamespaces != nil) {
		cfg.MetadataOptions = &extprocv3.MetadataOptions{}
		if m.AccessibleNamespaces != nil {
			cfg.MetadataOptions.ForwardingNamespaces = &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: m.AccessibleNamespaces}
		}
		if m.WritableNamespaces != nil {
			cfg.MetadataOptions.ReceivingNamespaces = &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: m.WritableNamespaces}
		}
	}
	if ep.StatusOnError != nil {
		cfg.StatusOnError = &typev3.HttpStatus{Code: typev3.StatusCode(*ep.StatusOnError)}
	}
	return cfg
}

// envoyGatewayFilter reads examples/envoy-gateway/extension-policy.yaml and returns the
// ext_proc filter Envoy Gateway makes of its one extProc entry.
func envoyGatewayFilter(t *testing.T) *extprocv3.ExternalProcessor {
	t.Helper()
	var policy map[string]any
	for _, d := range yamlDocs(t, envoyGatewayDir+"/extension-policy.yaml") {
		if at(t, d, "kind") == "EnvoyExtensionPolicy" {
			require.Nil(t, policy, "one EnvoyExtensionPolicy")
			policy = d.(map[string]any)
		}
	}
	require.NotNil(t, policy)
	entries := at(t, policy, "spec", "extProc").([]any)
	require.Len(t, entries, 1)
	raw, err := json.Marshal(entries[0])
	require.NoError(t, err)
	var ep egExtProc
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&ep), "only fields this mapping knows (the manifests module decodes the rest)")
	return envoyGatewayExtProc(t, at(t, policy, "metadata", "namespace").(string), at(t, policy, "metadata", "name").(string), 0, ep)
}

// TestEnvoyGatewayExtProc: the ext_proc filter Envoy Gateway generates from the example's
// EnvoyExtensionPolicy is valid Envoy 1.40 config, is exactly extproc-filter.json (which
// test/e2e runs), and has envoy/envoy.yaml's settings where Envoy Gateway exposes them. The
// settings it does not expose are listed, so a change in either shows up here.
func TestEnvoyGatewayExtProc(t *testing.T) {
	got := envoyGatewayFilter(t)
	require.NoError(t, validateDeep(got))

	a, err := anypb.New(got)
	require.NoError(t, err)
	if *update {
		js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(a)
		require.NoError(t, err)
		var tree any // protojson's spacing is deliberately unstable; encoding/json's is not
		require.NoError(t, json.Unmarshal(js, &tree))
		js, err = json.MarshalIndent(tree, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(egFilterGolden, append(js, '\n'), 0o644))
	}
	golden, err := os.ReadFile(egFilterGolden)
	require.NoError(t, err)
	var gv any
	require.NoError(t, json.Unmarshal(golden, &gv))
	fromGolden := &anypb.Any{}
	decodeStrict(t, gv, fromGolden)
	inner, err := fromGolden.UnmarshalNew()
	require.NoError(t, err)
	requireProtoEqual(t, got, inner, "extproc-filter.json (go test ./envoy/ -run TestEnvoyGatewayExtProc -update)")

	// Compare with envoy.yaml's filter: equal once the settings Envoy Gateway does not expose
	// (or names itself) are set to its values.
	ewm := &matchingv3.ExtensionWithMatcher{}
	require.NoError(t, httpFilter(t, onlyHCM(t, shippedBootstrap(t)), "envoy.filters.http.ext_proc").GetTypedConfig().UnmarshalTo(ewm))
	shipped := &extprocv3.ExternalProcessor{}
	require.NoError(t, ewm.GetExtensionConfig().GetTypedConfig().UnmarshalTo(shipped))
	want := proto.Clone(shipped).(*extprocv3.ExternalProcessor)
	want.StatPrefix = ""                                                                               // Envoy Gateway's stats prefix
	want.GrpcService.GetEnvoyGrpc().ClusterName = got.GetGrpcService().GetEnvoyGrpc().GetClusterName() // its cluster name
	want.GrpcService.GetEnvoyGrpc().Authority = got.GetGrpcService().GetEnvoyGrpc().GetAuthority()
	want.GrpcService.GetEnvoyGrpc().MaxReceiveMessageLength = nil // unlimited
	want.GrpcService.Timeout = durationpb.New(egGrpcTimeout)      // does not cut streams: test/e2e TestEnvoyGatewayExtProcFilter
	want.MaxMessageTimeout = nil                                  // Tollgate never asks for more time
	want.MutationRules = nil                                      // defaults: routing and x-envoy-* headers stay immutable; a rejected mutation is dropped, not an error
	stripFallbackNamespaces(want)                                 // no fallback across providers here (see withoutFallback)
	requireProtoEqual(t, want, got, "envoy.yaml's filter with Envoy Gateway's fixed settings")
}

// TestEnvoyGatewayCatchAll: the catch-all HTTPRoute's direct response is envoy.yaml's JSON 502.
func TestEnvoyGatewayCatchAll(t *testing.T) {
	var body string
	for _, d := range yamlDocs(t, envoyGatewayDir+"/routes.yaml") {
		if at(t, d, "kind") == "HTTPRouteFilter" {
			require.EqualValues(t, 502, at(t, d, "spec", "directResponse", "statusCode"))
			body = at(t, d, "spec", "directResponse", "body", "inline").(string)
		}
	}
	mappers := onlyHCM(t, shippedBootstrap(t)).GetLocalReplyConfig().GetMappers()
	require.Equal(t, mappers[1].GetBodyFormatOverride().GetTextFormatSource().GetInlineString(), body)
	require.EqualValues(t, 502, mappers[1].GetStatusCode().GetValue())
}
