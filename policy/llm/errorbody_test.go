package llm

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaultType(t *testing.T) {
	tests := []struct {
		status    int
		openai    string
		anthropic string
	}{
		{400, "invalid_request_error", "invalid_request_error"},
		{401, "invalid_request_error", "authentication_error"},
		{402, "invalid_request_error", "billing_error"},
		{403, "invalid_request_error", "permission_error"},
		{404, "invalid_request_error", "not_found_error"},
		{405, "invalid_request_error", "invalid_request_error"},
		{413, "invalid_request_error", "request_too_large"},
		{415, "invalid_request_error", "invalid_request_error"},
		{429, "rate_limit_exceeded", "rate_limit_error"},
		{500, "server_error", "api_error"},
		{502, "server_error", "api_error"},
		{503, "server_error", "overloaded_error"},
		{504, "server_error", "timeout_error"},
		{529, "server_error", "overloaded_error"},
		{0, "server_error", "api_error"},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			require.Equal(t, tc.openai, DefaultType(OpenAI, tc.status))
			require.Equal(t, tc.anthropic, DefaultType(Anthropic, tc.status))
		})
	}
}

func TestErrorBodyOpenAI(t *testing.T) {
	tests := []struct {
		name string
		e    APIError
		want string
	}{
		{
			name: "all fields",
			e:    APIError{Status: 404, Type: "invalid_request_error", Code: "model_not_found", Message: "The model does not exist.", Param: "model"},
			want: `{"error":{"message":"The model does not exist.","type":"invalid_request_error","param":"model","code":"model_not_found"}}`,
		},
		{
			name: "nulls and default type",
			e:    APIError{Status: 401, Message: "Invalid API key."},
			want: `{"error":{"message":"Invalid API key.","type":"invalid_request_error","param":null,"code":null}}`,
		},
		{
			name: "default message",
			e:    APIError{Status: 429, Code: "budget_exceeded"},
			want: `{"error":{"message":"Too Many Requests","type":"rate_limit_exceeded","param":null,"code":"budget_exceeded"}}`,
		},
		{
			name: "escaping",
			e:    APIError{Status: 400, Message: "bad \"x\" <y>\n\\"},
			want: `{"error":{"message":"bad \"x\" <y>\n\\","type":"invalid_request_error","param":null,"code":null}}`,
		},
		{
			name: "unknown status",
			e:    APIError{Status: 999},
			want: `{"error":{"message":"request failed","type":"server_error","param":null,"code":null}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ErrorBody(OpenAI, tc.e, "req-123")
			require.True(t, json.Valid(got))
			require.JSONEq(t, tc.want, string(got))
			require.NotContains(t, string(got), "req-123", "OpenAI carries the request id in a header")
		})
	}
}

func TestErrorBodyAnthropic(t *testing.T) {
	tests := []struct {
		name      string
		e         APIError
		requestID string
		want      string
	}{
		{
			name:      "with request id",
			e:         APIError{Status: 401, Message: "invalid x-api-key"},
			requestID: "req_011",
			want:      `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_011"}`,
		},
		{
			name: "no request id, explicit type, code and param dropped",
			e:    APIError{Status: 400, Type: "invalid_request_error", Code: "c", Param: "p", Message: "bad"},
			want: `{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}`,
		},
		{
			name: "overloaded default message",
			e:    APIError{Status: 503},
			want: `{"type":"error","error":{"type":"overloaded_error","message":"Service Unavailable"}}`,
		},
		{
			name: "too large",
			e:    APIError{Status: 413, Message: "request body too large"},
			want: `{"type":"error","error":{"type":"request_too_large","message":"request body too large"}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ErrorBody(Anthropic, tc.e, tc.requestID)
			require.True(t, json.Valid(got))
			require.JSONEq(t, tc.want, string(got))
		})
	}
}

func TestErrorBodyInvalidUTF8(t *testing.T) {
	for _, d := range []Dialect{OpenAI, Anthropic} {
		t.Run(d.String(), func(t *testing.T) {
			got := ErrorBody(d, APIError{Status: 400, Type: "\xff", Code: "\xfe", Message: "a\xc3", Param: "\x80"}, "\xff")
			require.True(t, json.Valid(got))
			var m map[string]any
			require.NoError(t, json.Unmarshal(got, &m))
		})
	}
}

func TestModelsBody(t *testing.T) {
	models := []ModelInfo{
		{ID: "gpt-4o", OwnedBy: "openai", Created: 1715367049},
		{ID: "claude-sonnet-4-5", OwnedBy: "anthropic", Created: 1759104000},
	}
	tests := []struct {
		name   string
		d      Dialect
		models []ModelInfo
		want   string
	}{
		{
			name:   "openai",
			d:      OpenAI,
			models: models,
			want: `{"object":"list","data":[
				{"id":"gpt-4o","object":"model","created":1715367049,"owned_by":"openai"},
				{"id":"claude-sonnet-4-5","object":"model","created":1759104000,"owned_by":"anthropic"}]}`,
		},
		{
			name:   "openai empty",
			d:      OpenAI,
			models: nil,
			want:   `{"object":"list","data":[]}`,
		},
		{
			name:   "anthropic",
			d:      Anthropic,
			models: models,
			want: `{"data":[
				{"type":"model","id":"gpt-4o","display_name":"gpt-4o","created_at":"2024-05-10T18:50:49Z"},
				{"type":"model","id":"claude-sonnet-4-5","display_name":"claude-sonnet-4-5","created_at":"2025-09-29T00:00:00Z"}],
				"has_more":false,"first_id":"gpt-4o","last_id":"claude-sonnet-4-5"}`,
		},
		{
			name:   "anthropic empty",
			d:      Anthropic,
			models: []ModelInfo{},
			want:   `{"data":[],"has_more":false,"first_id":null,"last_id":null}`,
		},
		{
			name:   "anthropic one",
			d:      Anthropic,
			models: []ModelInfo{{ID: "m\"x"}},
			want:   `{"data":[{"type":"model","id":"m\"x","display_name":"m\"x","created_at":"1970-01-01T00:00:00Z"}],"has_more":false,"first_id":"m\"x","last_id":"m\"x"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ModelsBody(tc.d, tc.models)
			require.True(t, json.Valid(got))
			require.JSONEq(t, tc.want, string(got))
		})
	}
}

func TestModelsBodyCreatedAtIsRFC3339(t *testing.T) {
	got := ModelsBody(Anthropic, []ModelInfo{{ID: "m", Created: 1700000000}})
	var l struct {
		Data []struct {
			CreatedAt string `json:"created_at"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(got, &l))
	ts, err := time.Parse(time.RFC3339, l.Data[0].CreatedAt)
	require.NoError(t, err)
	require.Equal(t, int64(1700000000), ts.Unix())
}
