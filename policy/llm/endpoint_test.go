package llm

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		want   Endpoint
		err    error
	}{
		{"chat completions", "POST", "/v1/chat/completions", ChatCompletions, nil},
		{"completions", "POST", "/v1/completions", Completions, nil},
		{"embeddings", "POST", "/v1/embeddings", Embeddings, nil},
		{"responses", "POST", "/v1/responses", Responses, nil},
		{"models", "GET", "/v1/models", Models, nil},
		{"messages", "POST", "/v1/messages", Messages, nil},
		{"query string stripped", "POST", "/v1/chat/completions?api-version=2024-10-21", ChatCompletions, nil},
		{"empty query", "GET", "/v1/models?", Models, nil},
		{"beta query on messages", "POST", "/v1/messages?beta=true", Messages, nil},
		{"query with slash", "POST", "/v1/embeddings?x=/v1/models", Embeddings, nil},

		{"get on chat", "GET", "/v1/chat/completions", EndpointUnknown, ErrMethodNotAllowed},
		{"post on models", "POST", "/v1/models", EndpointUnknown, ErrMethodNotAllowed},
		{"head on models", "HEAD", "/v1/models", EndpointUnknown, ErrMethodNotAllowed},
		{"options on chat", "OPTIONS", "/v1/chat/completions", EndpointUnknown, ErrMethodNotAllowed},
		{"head on messages", "HEAD", "/v1/messages", EndpointUnknown, ErrMethodNotAllowed},
		{"put on messages", "PUT", "/v1/messages", EndpointUnknown, ErrMethodNotAllowed},
		{"delete on responses", "DELETE", "/v1/responses", EndpointUnknown, ErrMethodNotAllowed},
		{"lowercase method", "post", "/v1/chat/completions", EndpointUnknown, ErrMethodNotAllowed},
		{"empty method", "", "/v1/messages", EndpointUnknown, ErrMethodNotAllowed},

		{"trailing slash", "POST", "/v1/chat/completions/", EndpointUnknown, ErrUnknownEndpoint},
		{"suffix", "POST", "/v1/chat/completionsX", EndpointUnknown, ErrUnknownEndpoint},
		{"upper case", "POST", "/V1/chat/completions", EndpointUnknown, ErrUnknownEndpoint},
		{"double slash", "POST", "//v1/chat/completions", EndpointUnknown, ErrUnknownEndpoint},
		{"inner double slash", "POST", "/v1//chat/completions", EndpointUnknown, ErrUnknownEndpoint},
		{"dot segment", "POST", "/v1/./chat/completions", EndpointUnknown, ErrUnknownEndpoint},
		{"sub path", "POST", "/v1/messages/count_tokens", EndpointUnknown, ErrUnknownEndpoint},
		{"batches", "POST", "/v1/messages/batches", EndpointUnknown, ErrUnknownEndpoint},
		{"model by id", "GET", "/v1/models/gpt-4o", EndpointUnknown, ErrUnknownEndpoint},
		{"no version", "POST", "/chat/completions", EndpointUnknown, ErrUnknownEndpoint},
		{"percent encoded", "POST", "/v1/chat%2Fcompletions", EndpointUnknown, ErrUnknownEndpoint},
		{"fragment", "GET", "/v1/models#x", EndpointUnknown, ErrUnknownEndpoint},
		{"root", "GET", "/", EndpointUnknown, ErrUnknownEndpoint},
		{"empty", "GET", "", EndpointUnknown, ErrUnknownEndpoint},
		{"only query", "GET", "?/v1/models", EndpointUnknown, ErrUnknownEndpoint},
		{"unknown path wrong method", "HEAD", "/v2/models", EndpointUnknown, ErrUnknownEndpoint},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Classify(tc.method, tc.path)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestEndpointProperties(t *testing.T) {
	tests := []struct {
		e       Endpoint
		name    string
		hasBody bool
		dialect Dialect
		path    string
	}{
		{EndpointUnknown, "unknown", false, OpenAI, ""},
		{ChatCompletions, "chat_completions", true, OpenAI, "/v1/chat/completions"},
		{Completions, "completions", true, OpenAI, "/v1/completions"},
		{Embeddings, "embeddings", true, OpenAI, "/v1/embeddings"},
		{Responses, "responses", true, OpenAI, "/v1/responses"},
		{Models, "models", false, OpenAI, "/v1/models"},
		{Messages, "messages", true, Anthropic, "/v1/messages"},
		{Endpoint(-1), "unknown", false, OpenAI, ""},
		{Endpoint(99), "unknown", false, OpenAI, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.name, tc.e.String())
			require.Equal(t, tc.hasBody, tc.e.HasBody())
			require.Equal(t, tc.dialect, tc.e.Dialect())
			require.Equal(t, tc.path, tc.e.Spec().Path)
			if tc.path != "" {
				// The canonical path must classify back to the endpoint.
				method := "POST"
				if !tc.hasBody {
					method = "GET"
				}
				got, err := Classify(method, tc.path)
				require.NoError(t, err)
				require.Equal(t, tc.e, got)
			}
		})
	}
}

func TestDialectString(t *testing.T) {
	require.Equal(t, "openai", OpenAI.String())
	require.Equal(t, "anthropic", Anthropic.String())
}

func TestGuessDialect(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		version bool
		want    Dialect
	}{
		{"messages", "/v1/messages", false, Anthropic},
		{"count tokens", "/v1/messages/count_tokens", false, Anthropic},
		{"messages query", "/v1/messages?beta=true", false, Anthropic},
		{"header", "/v1/complete", true, Anthropic},
		{"header on models", "/v1/models", true, Anthropic},
		{"openai path", "/v1/chat/completions/", false, OpenAI},
		{"unknown", "/admin", false, OpenAI},
		{"messages only in query", "/x?/v1/messages", false, OpenAI},
		{"empty", "", false, OpenAI},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, GuessDialect(tc.path, tc.version))
		})
	}
}

func TestIsJSONContentType(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{"application/json", true},
		{"Application/JSON", true},
		{"application/json; charset=utf-8", true},
		{"application/json;charset=UTF-8", true},
		{`application/json; charset="utf-8"`, true},
		{"application/json ; charset=utf8", true},
		{" application/json", true},
		{"application/json; boundary=x", true},
		{"application/json; charset=iso-8859-1", false},
		{"application/json; charset=utf-16", false},
		{"application/problem+json", false},
		{"application/vnd.api+json", false},
		{"text/json", false},
		{"application/jsonl", false},
		{"application/x-ndjson", false},
		{"multipart/form-data; boundary=x", false},
		{"application/json, text/plain", false},
		{"application/json; charset", false},
		{"", false},
	}
	for _, tc := range tests {
		t.Run(tc.v, func(t *testing.T) {
			require.Equal(t, tc.want, IsJSONContentType(tc.v))
		})
	}
}

func TestAzurePath(t *testing.T) {
	tests := []struct {
		name       string
		e          Endpoint
		deployment string
		version    string
		want       string
		err        error
	}{
		{"chat", ChatCompletions, "gpt-4o-prod", "2024-10-21", "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21", nil},
		{"completions", Completions, "davinci", "2024-10-21", "/openai/deployments/davinci/completions?api-version=2024-10-21", nil},
		{"embeddings", Embeddings, "emb", "2024-02-01", "/openai/deployments/emb/embeddings?api-version=2024-02-01", nil},
		{"preview version", ChatCompletions, "d", "2025-04-01-preview", "/openai/deployments/d/chat/completions?api-version=2025-04-01-preview", nil},
		{"responses v1", Responses, "ignored", "2024-10-21", "/openai/v1/responses", nil},
		{"responses no deployment", Responses, "", "", "/openai/v1/responses", nil},
		{"deployment escaped", ChatCompletions, "a/b?c#d e", "v", "/openai/deployments/a%2Fb%3Fc%23d%20e/chat/completions?api-version=v", nil},
		{"version escaped", ChatCompletions, "d", "1&x=2 3", "/openai/deployments/d/chat/completions?api-version=1%26x%3D2+3", nil},
		{"dot dot", ChatCompletions, "..", "v", "", ErrInvalidDeployment},
		{"dot", Embeddings, ".", "v", "", ErrInvalidDeployment},
		{"empty deployment", ChatCompletions, "", "v", "", ErrInvalidDeployment},
		{"empty version", ChatCompletions, "d", "", "", ErrMissingAPIVersion},
		{"models", Models, "d", "v", "", ErrUnsupportedEndpoint},
		{"messages", Messages, "d", "v", "", ErrUnsupportedEndpoint},
		{"unknown", EndpointUnknown, "d", "v", "", ErrUnsupportedEndpoint},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AzurePath(tc.e, tc.deployment, tc.version)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				require.Empty(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
