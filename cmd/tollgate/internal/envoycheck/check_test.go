package envoycheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const fixtures = "../../testdata/check"

var testOpts = Options{
	RoutingHeader:     "x-tollgate-upstream",
	InternalPrefix:    "x-tollgate-",
	ExtProcAddr:       "127.0.0.1:50051",
	MetadataNamespace: "tollgate",
	ProviderRoutes:    map[string][]string{"mock": {"mock"}},
}

func fixture(t testing.TB, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fixtures, name))
	require.NoError(t, err)
	return string(raw)
}

// replaceOnce replaces old, which must occur exactly once, in s.
func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	require.Equal(t, 1, strings.Count(s, old), "%q", old)
	return strings.Replace(s, old, new, 1)
}

func idsOf(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Severity.String()+":"+f.ID)
	}
	return out
}

// TestCheckDecoding: the bootstrap is read the way Envoy reads it (JSON too, anchors and
// aliases, TypedStruct) and everything it holds is checked; what Envoy would refuse is a high
// finding, never a crash.
func TestCheckDecoding(t *testing.T) {
	good := fixture(t, "envoy-good.yaml")
	tests := []struct {
		name string
		in   string
		want []string // nil: no finding at all
	}{
		{name: "good", in: good},
		{name: "typed struct hides fail-open", in: replaceOnce(t, good, extProcBlock, typedStructBlock),
			want: []string{"high:failure-mode-allow"}},
		{name: "anchor and alias", in: replaceOnce(t, replaceOnce(t, good,
			"      socket_address: { address: 0.0.0.0, port_value: 8443 }",
			"      socket_address: { address: &any 0.0.0.0, port_value: 8443 }"),
			"              socket_address: { address: 127.0.0.1, port_value: 50051 }",
			"              socket_address: { address: *any, port_value: 50051 }"),
			want: []string{"high:extproc-plaintext", "medium:extproc-target"}},
		// Envoy's YAML loader does not merge "<<" keys; neither does the check.
		{name: "merge key", in: replaceOnce(t, replaceOnce(t, good,
			"    socket_address: { address: 127.0.0.1, port_value: 9901 }",
			"    socket_address: &loopback { address: 127.0.0.1, port_value: 9901 }"),
			"              socket_address: { address: 127.0.0.1, port_value: 50051 }",
			"              socket_address: { <<: *loopback, port_value: 50051 }"), want: []string{"high:envoy-decode"}},
		{name: "json", in: `{"admin": {"address": {"socket_address": {"address": "::", "port_value": 9901}}}}`,
			want: []string{"high:envoy-admin-exposed", "high:extproc-missing"}},
		{name: "empty file", in: "", want: []string{"high:extproc-missing"}},
		{name: "not a mapping", in: "- a\n- b\n", want: []string{"high:envoy-decode"}},
		{name: "bad yaml", in: "admin: [\n", want: []string{"high:envoy-decode"}},
		{name: "alias bomb", in: aliasBomb(), want: []string{"high:envoy-decode"}},
		{name: "wrong type", in: "admin: {address: {socket_address: {port_value: sk-ant-SECRET}}}\n", want: []string{"high:envoy-decode"}},
		{name: "unknown any type", in: "static_resources:\n  clusters:\n  - name: x\n    typed_extension_protocol_options:\n      k: {\"@type\": type.googleapis.com/acme.Widget}\n",
			want: []string{"high:extproc-missing", "medium:envoy-unknown-type"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Check([]byte(tc.in), testOpts)
			require.Equal(t, tc.want, idsOf(got), "%+v", got)
			for _, f := range got {
				require.NotContains(t, f.Problem, "sk-ant-SECRET")
			}
		})
	}
}

// extProcBlock is Tollgate's filter in envoy-good.yaml; typedStructBlock is the same filter
// written as a TypedStruct, failing open.
const (
	extProcBlock = `          - name: envoy.filters.http.ext_proc
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
              grpc_service:
                envoy_grpc: { cluster_name: ext_proc_grpc }
              failure_mode_allow: false
              message_timeout: 2s
              processing_mode:
                request_header_mode: SEND
                request_body_mode: BUFFERED
                response_header_mode: SEND
                response_body_mode: STREAMED
`
	typedStructBlock = `          - name: envoy.filters.http.ext_proc
            typed_config:
              "@type": type.googleapis.com/xds.type.v3.TypedStruct
              type_url: type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
              value:
                grpc_service:
                  envoy_grpc: { cluster_name: ext_proc_grpc }
                failure_mode_allow: true
                message_timeout: 2s
                processing_mode: { request_body_mode: BUFFERED, response_body_mode: STREAMED }
`
)

// aliasBomb is a billion-laughs document: a few lines that expand to billions of nodes.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		prev := "*a" + string(rune('0'+i-1))
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(prev)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// TestSkipMatcher: a matcher may skip ext_proc only for replies to requests Tollgate never
// forwarded; anything decided on the request is a bypass, and a response condition that does
// not exclude providers' responses loses their usage.
func TestSkipMatcher(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"envoy-skip-own-replies.yaml", nil},
		{"envoy-skip-responses.yaml", []string{"medium:extproc-skippable"}},
		{"envoy-skip-matcher.yaml", []string{"high:extproc-skippable"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			require.Equal(t, tc.want, idsOf(Check([]byte(fixture(t, tc.file)), testOpts)))
		})
	}
}

// TestJudgeOperator covers the access log operators one by one.
func TestJudgeOperator(t *testing.T) {
	tests := []struct {
		op   string
		want string // "" for harmless
	}{
		{"%REQ(X-REQUEST-ID)%", ""},
		{"%REQ(authorization)%", "access-log-credentials"},
		{"%REQ(Cookie):100%", "access-log-credentials"},
		{"%REQ(X-FORWARDED-FOR?X-API-KEY)%", "access-log-credentials"},
		{"%REQ_WITHOUT_QUERY(api-key)%", "access-log-credentials"},
		{"%RESP(set-cookie)%", "access-log-credentials"},
		{"%CEL(request.headers['x-api-key'])%", "access-log-credentials"},
		{"%CEL(request.headers)%", "access-log-credentials"},
		{"%CEL(request.body)%", "access-log-body"},
		{"%CEL(response.code)%", ""},
		{"%REQUEST_BODY%", "access-log-body"},
		{"%RESPONSE_BODY(model)%", "access-log-body"},
		{"%LOCAL_REPLY_BODY%", ""},
		{"%DYNAMIC_METADATA(envoy.filters.http.json_to_metadata:model)%", "access-log-body"},
		{"%DYNAMIC_METADATA(tollgate)%", ""},
		{"%SECRET(token)%", "access-log-secret"},
		{"%FILE_CONTENT(/etc/key)%", "access-log-secret"},
		{"%REQ(:PATH)%", "access-log-query"},
		{"%REQ_WITHOUT_QUERY(:PATH)%", ""},
	}
	for _, tc := range tests {
		t.Run(tc.op, func(t *testing.T) {
			m := operator.FindStringSubmatch(tc.op)
			require.NotNil(t, m)
			id, _, _, _ := judgeOperator(m[1], m[2])
			require.Equal(t, tc.want, id)
		})
	}
}

// TestShippedEnvoyDecodes: every typed config in the shipped bootstrap resolves with the
// extension packages this build registers (an unknown type would be a finding).
func TestShippedEnvoyDecodes(t *testing.T) {
	raw, err := os.ReadFile("../../../../envoy/envoy.yaml")
	require.NoError(t, err)
	for _, f := range Check(raw, testOpts) {
		require.NotContains(t, []string{"envoy-decode", "envoy-invalid", "envoy-unknown-type"}, f.ID, "%+v", f)
	}
}
