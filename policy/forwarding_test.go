package policy_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// TestForwardedHeadersAllowList: every client header off the provider's allow-list is
// removed, and the organization and project billed come from the config (issue 8 item 6).
func TestForwardedHeadersAllowList(t *testing.T) {
	fx := policytest.NewWith(t, func(c *policy.Config) {
		c.Providers[0].Organization = "org-config"
		c.Providers[0].Project = "proj-config"
		c.Providers[1].ForwardHeaders = []string{"anthropic-beta"}
	})
	client := []string{
		":authority", "gw", ":scheme", "https", "host", "gw",
		"openai-organization", "org-client", "openai-project", "proj-client", "cookie", "a=b",
		"proxy-authorization", "Basic x", "x-forwarded-for", "203.0.113.7", "x-forwarded-proto", "https",
		"x-envoy-external-address", "203.0.113.7", "traceparent", "00-a-b-01", "x-tollgate-debug", "1",
		"x-tollgate-upstream", "anthropic", "anthropic-beta", "context-1m", "anthropic-version", "2023-06-01",
		"accept", "application/json", "user-agent", "sdk/1", "x-request-id", "rid", "content-length", "60",
	}
	a := admit(t, fx, "valid", "/v1/chat/completions", client...)
	f, rep := fx.Snapshot.Route(a, []byte(`{"model":"gpt-4o-mini","messages":[]}`))
	require.Nil(t, rep)
	org, _ := header(f, "openai-organization")
	proj, _ := header(f, "openai-project")
	require.Equal(t, "org-config", org)
	require.Equal(t, "proj-config", proj)
	require.ElementsMatch(t, []string{"x-api-key", "api-key", "cookie", "proxy-authorization", "x-forwarded-for",
		"traceparent", "x-tollgate-debug", "anthropic-beta", "anthropic-version"}, f.RemoveHeaders,
		"set headers (authorization, openai-organization, openai-project, the routing header) are overwritten, not removed;"+
			" pseudo-headers, host, x-envoy-* and x-forwarded-proto are Envoy's")

	a = admit(t, fx, "valid", "/v1/messages", client...)
	f, rep = fx.Snapshot.Route(a, []byte(`{"model":"claude-haiku","max_tokens":5,"messages":[]}`))
	require.Nil(t, rep)
	require.ElementsMatch(t, []string{"authorization", "api-key", "cookie", "proxy-authorization", "x-forwarded-for",
		"traceparent", "x-tollgate-debug", "openai-organization", "openai-project"}, f.RemoveHeaders,
		"anthropic-version is Anthropic's, anthropic-beta is opted in by config")
	_, ok := header(f, "openai-organization")
	require.False(t, ok)
}

func TestForwardHeadersConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		mutate func(*policy.ProviderConfig)
		want   string
	}{
		{func(p *policy.ProviderConfig) { p.ForwardHeaders = []string{"Authorization"} }, "providers[0].forward_headers[0]: must be a lower-case header name"},
		{func(p *policy.ProviderConfig) { p.ForwardHeaders = []string{"x-api-key"} }, "credential headers are never forwarded"},
		{func(p *policy.ProviderConfig) { p.ForwardHeaders = []string{"x-tollgate-upstream"} }, "internal headers"},
		{func(p *policy.ProviderConfig) { p.ForwardHeaders = []string{"x-envoy-original-path"} }, "internal headers"},
		{func(p *policy.ProviderConfig) { p.ForwardHeaders = []string{"openai-organization"} }, "set providers[].organization"},
		{func(p *policy.ProviderConfig) { p.ForwardHeaders = []string{"cookie"} }, "managed by the gateway"},
		{func(p *policy.ProviderConfig) { p.ForwardHeaders = []string{"x-forwarded-for"} }, "managed by the gateway"},
		{func(p *policy.ProviderConfig) { p.Organization = "org with spaces" }, "providers[0].organization: must be"},
		{func(p *policy.ProviderConfig) { p.Type = policy.ProviderAnthropic; p.Project = "p1" }, "providers[0].project: is only used by openai"},
	} {
		cfg := policytest.BaseConfig()
		tc.mutate(&cfg.Providers[0])
		cfg.ApplyDefaults()
		require.ErrorContains(t, cfg.Validate(), tc.want)
	}
}

// TestQueryStrings: a query string is refused unless the endpoint allows it (issue 8 item 7).
func TestQueryStrings(t *testing.T) {
	fx := policytest.New(t)
	for path, ok := range map[string]bool{
		"/v1/chat/completions":                  true,
		"/v1/chat/completions?":                 true,
		"/v1/chat/completions?api-version=1":    false,
		"/v1/chat/completions?beta=true":        false,
		"/v1/responses?x":                       false,
		"/v1/embeddings?%zz":                    false,
		"/v1/messages?beta=true":                true,
		"/v1/messages?beta=false":               true,
		"/v1/messages?b%65ta=true":              true,
		"/v1/messages?beta=1":                   false,
		"/v1/messages?beta=true&anthropic=2023": false,
	} {
		h := hdrs("POST", path, false, "authorization", "Bearer "+fx.Keys["valid"], "content-type", "application/json")
		_, rep := fx.Snapshot.Admit(fx.Now, h)
		if ok {
			require.Nil(t, rep, path)
			continue
		}
		require.NotNil(t, rep, path)
		require.Equal(t, 400, rep.Status, path)
		require.Contains(t, string(rep.Body), "query parameters are not supported", path)
	}
	h := hdrs("GET", "/v1/models?limit=20&after_id=x", true, "authorization", "Bearer "+fx.Keys["valid"])
	_, rep := fx.Snapshot.Admit(fx.Now, h)
	require.Equal(t, 200, rep.Status, "the model list is answered locally and ignores paging")
}

// TestCompressedBodyRefused: a body labelled compressed cannot be scanned, and a rewrite
// would corrupt it (issue 14 item 4).
func TestCompressedBodyRefused(t *testing.T) {
	fx := policytest.New(t)
	for _, enc := range []string{"br", "gzip", "GZIP", "deflate", "zstd", "gzip, br"} {
		h := hdrs("POST", "/v1/chat/completions", false, "authorization", "Bearer "+fx.Keys["valid"],
			"content-type", "application/json", "content-encoding", enc)
		_, rep := fx.Snapshot.Admit(fx.Now, h)
		require.NotNil(t, rep, enc)
		require.Equal(t, 415, rep.Status, enc)
		require.Contains(t, string(rep.Body), "compressed request bodies", enc)
	}
	h := hdrs("POST", "/v1/chat/completions", false, "authorization", "Bearer "+fx.Keys["valid"],
		"content-type", "application/json", "content-encoding", "identity")
	_, rep := fx.Snapshot.Admit(fx.Now, h)
	require.Nil(t, rep)
}

// TestBodyErrorsSayWhy: a compressed body and an over-deep one both said "not valid JSON"
// (issue 14 item 7); each now has its own message.
func TestBodyErrorsSayWhy(t *testing.T) {
	fx := policytest.New(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(`{"model":"gpt-4o-mini","messages":[]}`))
	require.NoError(t, zw.Close())
	var zl bytes.Buffer
	zlw := zlib.NewWriter(&zl)
	_, _ = zlw.Write([]byte(`{"model":"gpt-4o-mini","messages":[]}`))
	require.NoError(t, zlw.Close())
	deep := `{"model":"gpt-4o-mini","messages":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`
	for _, tc := range []struct {
		name, body string
		status     int
		msg        string
	}{
		{"gzip", gz.String(), 415, "appears to be compressed"},
		{"zlib", zl.String(), 415, "appears to be compressed"},
		{"zstd", "\x28\xb5\x2f\xfd\x00\x00", 415, "appears to be compressed"},
		{"too deep", deep, 400, "more than 128 levels deep"},
		{"not JSON", "model=gpt", 400, "not valid JSON"},
	} {
		a := admit(t, fx, "valid", "/v1/chat/completions")
		_, rep := fx.Snapshot.Route(a, []byte(tc.body))
		require.NotNil(t, rep, tc.name)
		require.Equal(t, tc.status, rep.Status, tc.name)
		require.Contains(t, string(rep.Body), tc.msg, tc.name)
	}
}

// TestVirtualKeyOutsideCredentialHeaders: a Tollgate key in a header the provider receives
// would reach it: refused without being echoed. One in a header that is removed anyway never
// leaves, and does not refuse the request.
func TestVirtualKeyOutsideCredentialHeaders(t *testing.T) {
	fx := policytest.New(t)
	key := fx.Keys["valid"]
	route := func(path, body string, hdr ...string) *policy.Reply {
		a := admit(t, fx, "valid", path, hdr...)
		_, rep := fx.Snapshot.Route(a, []byte(body))
		return rep
	}
	chat := `{"model":"gpt-4o-mini","messages":[]}`
	for _, hdr := range [][2]string{
		{"user-agent", "sdk/1 " + key},
		{"accept", "application/json;k=" + key},
		{"user-agent", "TGK_" + key[4:]},
		{"user-agent", "tgk%5F" + key[4:]},
	} {
		rep := route("/v1/chat/completions", chat, hdr[0], hdr[1])
		require.NotNil(t, rep, hdr[0])
		require.Equal(t, 400, rep.Status, hdr[0])
		require.Contains(t, string(rep.Body), "not in "+hdr[0])
		require.NotContains(t, string(rep.Body), key[17:], "never echoed")
	}
	rep := route("/v1/messages", `{"model":"claude-haiku","max_tokens":5,"messages":[]}`, "anthropic-version", "2023-06-01 "+key)
	require.NotNil(t, rep, "anthropic-version reaches Anthropic")
	require.Equal(t, 400, rep.Status)

	require.Nil(t, route("/v1/chat/completions", chat, "x-anything", key, "cookie", "s="+key),
		"removed headers never reach the provider: no refusal")
	require.Nil(t, route("/v1/chat/completions", chat, "user-agent", "a tgk-like word: tgkx_y"))
}

// TestUnknownBodyShapeSaysWhere: a text-bearing member of a kind the API does not define is
// refused as a client error that names the member, never its content.
func TestUnknownBodyShapeSaysWhere(t *testing.T) {
	fx := policytest.NewWith(t, policytest.Guarded)
	a := admit(t, fx, "valid", "/v1/chat/completions")
	_, rep := fx.Snapshot.Route(a, []byte(`{"model":"fast","messages":[{"role":"user","content":{"secret":"AKIAIOSFODNN7EXAMPLE"}}]}`))
	require.NotNil(t, rep)
	require.Equal(t, 400, rep.Status)
	require.Equal(t, policy.ReasonInvalidRequest, rep.Reason)
	require.Contains(t, string(rep.Body), "messages[0].content")
	require.NotContains(t, string(rep.Body), "AKIA")
}
