package policy_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/llm"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

// hdrs builds RequestHeaders from lower-case name/value pairs, as Envoy sends them.
func hdrs(method, path string, eos bool, kv ...string) policy.RequestHeaders {
	m := map[string]string{":method": method, ":path": path}
	names := []string{":method", ":path"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
		names = append(names, kv[i])
	}
	return policy.RequestHeaders{Method: method, Path: path, EndOfStream: eos, Names: names,
		Get: func(n string) string { return m[n] }}
}

func header(f *policy.Forward, name string) (string, bool) {
	for _, h := range f.SetHeaders {
		if h.Key == name {
			return string(h.Value), true
		}
	}
	return "", false
}

func TestAdmitDenials(t *testing.T) {
	fx := policytest.New(t)
	bearer := func(name string) string { return "Bearer " + fx.Keys[name] }
	valid := fx.Keys["valid"]
	// A key with a broken checksum: same length and alphabet, last character changed.
	last := byte('a')
	if valid[len(valid)-1] == 'a' {
		last = 'b'
	}
	broken := valid[:len(valid)-1] + string(last)
	tests := []struct {
		name   string
		h      policy.RequestHeaders
		status int
		reason policy.Reason
	}{
		{"unknown path", hdrs("POST", "/v1/admin", false, "authorization", bearer("valid")), 404, policy.ReasonUnknownEndpoint},
		{"wrong method", hdrs("GET", "/v1/chat/completions", true, "authorization", bearer("valid")), 405, policy.ReasonMethodNotAllowed},
		{"no key", hdrs("POST", "/v1/chat/completions", false, "content-type", "application/json"), 401, policy.ReasonNoCredential},
		{"malformed key", hdrs("POST", "/v1/chat/completions", false, "authorization", "Bearer sk-not-a-tollgate-key"), 401, policy.ReasonInvalidKey},
		{"bad checksum", hdrs("POST", "/v1/chat/completions", false, "authorization", "Bearer "+broken), 401, policy.ReasonInvalidKey},
		{"disabled", hdrs("POST", "/v1/chat/completions", false, "authorization", bearer("disabled")), 401, policy.ReasonKeyDisabled},
		{"expired", hdrs("POST", "/v1/chat/completions", false, "x-api-key", fx.Keys["expired"]), 401, policy.ReasonKeyExpired},
		{"ambiguous", hdrs("POST", "/v1/chat/completions", false, "authorization", bearer("valid"), "x-api-key", fx.Keys["research"]), 401, policy.ReasonAmbiguousCredential},
		{"team disabled", hdrs("POST", "/v1/chat/completions", false, "authorization", bearer("frozen")), 403, policy.ReasonTeamDisabled},
		{"no body", hdrs("POST", "/v1/chat/completions", true, "authorization", bearer("valid"), "content-type", "application/json"), 400, policy.ReasonMissingBody},
		{"wrong content type", hdrs("POST", "/v1/chat/completions", false, "authorization", bearer("valid"), "content-type", "text/plain"), 415, policy.ReasonUnsupportedMediaType},
		{"too large", hdrs("POST", "/v1/chat/completions", false, "authorization", bearer("valid"), "content-type", "application/json", "content-length", strconv.Itoa(1<<20)), 413, policy.ReasonBodyTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, rep := fx.Snapshot.Admit(fx.Now, tc.h)
			require.Nil(t, a)
			require.NotNil(t, rep)
			require.Equal(t, tc.status, rep.Status)
			require.Equal(t, tc.reason, rep.Reason)
			require.True(t, json.Valid(rep.Body), "body must be JSON: %s", rep.Body)
			require.Equal(t, "content-type", rep.Headers[0].Key)
			require.Equal(t, "application/json", string(rep.Headers[0].Value))
			for _, k := range fx.Keys {
				require.NotContains(t, string(rep.Body), k, "a denial must never echo a key")
			}
		})
	}
}

func TestAdmitAnthropicShapedErrors(t *testing.T) {
	fx := policytest.New(t)
	_, rep := fx.Snapshot.Admit(fx.Now, hdrs("POST", "/v1/messages", false, "x-api-key", "nope", "x-request-id", "req-1"))
	require.Equal(t, http.StatusUnauthorized, rep.Status)
	var body struct {
		Type  string `json:"type"`
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
		RequestID string `json:"request_id"`
	}
	require.NoError(t, json.Unmarshal(rep.Body, &body))
	require.Equal(t, "error", body.Type)
	require.Equal(t, "authentication_error", body.Error.Type)
	require.Equal(t, "req-1", body.RequestID)
}

func admit(t *testing.T, fx *policytest.Fixture, key, path string, kv ...string) *policy.Admission {
	t.Helper()
	h := hdrs("POST", path, false, append([]string{"authorization", "Bearer " + fx.Keys[key], "content-type", "application/json"}, kv...)...)
	a, rep := fx.Snapshot.Admit(fx.Now, h)
	require.Nil(t, rep)
	require.NotNil(t, a)
	return a
}

func TestRouteOpenAI(t *testing.T) {
	fx := policytest.New(t)
	a := admit(t, fx, "valid", "/v1/chat/completions", "x-tollgate-upstream", "anthropic", "x-tollgate-debug", "1")
	body := []byte(`{"model":"fast","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	f, rep := fx.Snapshot.Route(a, body)
	require.Nil(t, rep)
	require.Equal(t, "openai", f.Route)
	require.Equal(t, "gpt-4o-mini", f.UpstreamModel)
	require.True(t, f.Stream)
	auth, ok := header(f, "authorization")
	require.True(t, ok)
	require.Equal(t, "Bearer "+policytest.OpenAIKey, auth)
	up, _ := header(f, policy.RoutingHeader)
	require.Equal(t, "openai", up, "tollgate overwrites a client-sent routing header")
	ae, _ := header(f, "accept-encoding")
	require.Equal(t, "identity", ae)
	require.ElementsMatch(t, []string{"x-api-key", "api-key", "x-tollgate-debug"}, f.RemoveHeaders)
	// The alias is rewritten, and include_usage is added so the stream can be settled; the rest
	// stays byte-identical.
	require.Equal(t, `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}`, string(f.Body))
	cl, _ := header(f, "content-length")
	require.Equal(t, strconv.Itoa(len(f.Body)), cl)
}

func TestRouteUnchangedBodyKeepsContentLength(t *testing.T) {
	fx := policytest.New(t)
	a := admit(t, fx, "valid", "/v1/chat/completions")
	f, rep := fx.Snapshot.Route(a, []byte(`{"model":"gpt-4o-mini","messages":[]}`))
	require.Nil(t, rep)
	require.Nil(t, f.Body)
	_, ok := header(f, "content-length")
	require.False(t, ok)
}

func TestRouteAnthropic(t *testing.T) {
	fx := policytest.New(t)
	for _, tc := range []struct {
		name, version string
		wantVersion   bool
	}{{"client version kept", "2024-01-01", false}, {"default version added", "", true}} {
		t.Run(tc.name, func(t *testing.T) {
			kv := []string{}
			if tc.version != "" {
				kv = append(kv, "anthropic-version", tc.version)
			}
			a := admit(t, fx, "research", "/v1/messages", kv...)
			f, rep := fx.Snapshot.Route(a, []byte(`{"model":"claude-haiku","max_tokens":10,"messages":[]}`))
			require.Nil(t, rep)
			k, _ := header(f, "x-api-key")
			require.Equal(t, policytest.AnthropicKey, k)
			_, has := header(f, "anthropic-version")
			require.Equal(t, tc.wantVersion, has)
			require.ElementsMatch(t, []string{"authorization", "api-key"}, f.RemoveHeaders)
		})
	}
}

func TestRouteAzureAndCompatible(t *testing.T) {
	fx := policytest.New(t)
	a := admit(t, fx, "valid", "/v1/chat/completions")
	f, rep := fx.Snapshot.Route(a, []byte(`{"model":"azure-mini"}`))
	require.Nil(t, rep)
	p, _ := header(f, ":path")
	require.Equal(t, "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21", p)
	k, _ := header(f, "api-key")
	require.Equal(t, policytest.AzureKey, k)

	f, rep = fx.Snapshot.Route(a, []byte(`{"model":"llama"}`))
	require.Nil(t, rep)
	require.Equal(t, "local", f.Route)
	require.ElementsMatch(t, []string{"authorization", "x-api-key", "api-key"}, f.RemoveHeaders)
}

func TestRouteDenials(t *testing.T) {
	fx := policytest.New(t)
	tests := []struct {
		name, key, path, body string
		status                int
		reason                policy.Reason
	}{
		{"invalid json", "valid", "/v1/chat/completions", `{"model":`, 400, policy.ReasonInvalidJSON},
		{"not an object", "valid", "/v1/chat/completions", `["model"]`, 400, policy.ReasonInvalidJSON},
		{"missing model", "valid", "/v1/chat/completions", `{"messages":[]}`, 400, policy.ReasonMissingModel},
		{"duplicate model", "valid", "/v1/chat/completions", `{"model":"gpt-4o-mini","model":"llama"}`, 400, policy.ReasonInvalidRequest},
		{"unknown model", "valid", "/v1/chat/completions", `{"model":"gpt-5-secret"}`, 404, policy.ReasonUnknownModel},
		{"key allow-list", "limited", "/v1/chat/completions", `{"model":"llama"}`, 403, policy.ReasonModelNotAllowed},
		{"team allow-list", "research", "/v1/chat/completions", `{"model":"gpt-4o-mini"}`, 403, policy.ReasonModelNotAllowed},
		{"anthropic model on embeddings path", "valid", "/v1/embeddings", `{"model":"claude-haiku","input":"x"}`, 400, policy.ReasonWrongAPI},
		{"openai model on messages path", "valid", "/v1/messages", `{"model":"gpt-4o-mini"}`, 400, policy.ReasonWrongAPI},
		{"provider not configured", "valid", "/v1/chat/completions", `{"model":"offline"}`, 503, policy.ReasonProviderUnavailable},
		{"empty body", "valid", "/v1/chat/completions", ``, 400, policy.ReasonMissingBody},
		{"too large", "valid", "/v1/chat/completions", `{"model":"gpt-4o-mini","x":"` + strings.Repeat("a", 64<<10) + `"}`, 413, policy.ReasonBodyTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := admit(t, fx, tc.key, tc.path)
			f, rep := fx.Snapshot.Route(a, []byte(tc.body))
			require.Nil(t, f)
			require.NotNil(t, rep)
			require.Equal(t, tc.status, rep.Status)
			require.Equal(t, tc.reason, rep.Reason)
			require.True(t, json.Valid(rep.Body))
			require.NotContains(t, string(rep.Body), "gpt-5-secret", "errors never echo request content")
		})
	}
}

func TestModelListIsFilteredByKey(t *testing.T) {
	fx := policytest.New(t)
	list := func(key string, kv ...string) []string {
		h := hdrs("GET", "/v1/models", true, append([]string{"authorization", "Bearer " + fx.Keys[key]}, kv...)...)
		a, rep := fx.Snapshot.Admit(fx.Now, h)
		require.Nil(t, a)
		require.Equal(t, 200, rep.Status)
		var body struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(rep.Body, &body))
		var ids []string
		for _, d := range body.Data {
			ids = append(ids, d.ID)
		}
		return ids
	}
	require.Equal(t, []string{"gpt-4o-mini", "gpt-alias-up", "claude-haiku", "azure-mini", "llama"}, list("valid"))
	require.Equal(t, []string{"gpt-4o-mini"}, list("limited"))
	require.Equal(t, []string{"claude-haiku"}, list("research", "anthropic-version", "2023-06-01"))
	_ = llm.Anthropic
}
