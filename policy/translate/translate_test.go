package translate_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/llm"
	"github.com/tollgate-ai/tollgate/policy/translate"
)

// TestFind: the table serves chat completions on Anthropic through Messages, and nothing
// else (providers that serve an endpoint themselves need no translation).
func TestFind(t *testing.T) {
	tr := translate.Find(llm.ChatCompletions, "anthropic")
	require.NotNil(t, tr)
	require.Equal(t, llm.Messages, tr.Upstream)
	require.Equal(t, llm.ChatCompletions, tr.Client)
	for _, p := range []string{"openai", "azure-openai", "openai-compatible", ""} {
		require.Nil(t, translate.Find(llm.ChatCompletions, p), p)
	}
	for _, e := range llm.Endpoints() {
		if e != llm.ChatCompletions {
			require.Nil(t, translate.Find(e, "anthropic"), e.String())
		}
	}
}

// TestFieldError: a refusal names the field and unwraps to its class, and never echoes a
// client's unusual key.
func TestFieldError(t *testing.T) {
	_, err := translate.ChatToMessages([]byte(`{"model":"m","messages":[],"n":3}`), translate.RequestOptions{})
	var fe *translate.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "n", fe.Field)
	require.ErrorIs(t, err, translate.ErrUntranslatable)

	_, err = translate.ChatToMessages([]byte(`{"model":"m","messages":[],"AKIAIOSFODNN7EXAMPLE secret":1}`), translate.RequestOptions{})
	require.ErrorAs(t, err, &fe)
	require.NotContains(t, err.Error(), "AKIA")
}

// TestRequestDefaults: the default output cap is written when the client sets none, and
// never below 1 (Anthropic refuses 0).
func TestRequestDefaults(t *testing.T) {
	tests := []struct {
		name string
		max  int64
		body string
		want string
	}{
		{"model cap", 333, `{"model":"m","messages":[]}`, `"max_tokens":333`},
		{"client cap kept", 333, `{"model":"m","messages":[],"max_tokens":5}`, `"max_tokens":5`},
		{"null is absent", 333, `{"model":"m","messages":[],"max_tokens":null}`, `"max_tokens":333`},
		{"never 0", 0, `{"model":"m","messages":[]}`, `"max_tokens":1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := translate.ChatToMessages([]byte(tc.body), translate.RequestOptions{MaxTokens: tc.max})
			require.NoError(t, err)
			require.Contains(t, string(r.Body), tc.want)
		})
	}
}

// TestResponseBounds: a single event over llm.MaxSSEEventSize, a JSON body over
// MaxBufferedBody and an oversized message id fail the translation; an oversized error
// body becomes a generic error.
func TestResponseBounds(t *testing.T) {
	start := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"x\"}}\n\n"
	big := "data: {\"type\":\"ping\",\"pad\":\"" + strings.Repeat("a", llm.MaxSSEEventSize) + "\"}\n\n"
	_, err := feedAll(translate.NewChatResponse(200, true, translate.ResponseOptions{}), [][]byte{[]byte(start), []byte(big)})
	require.ErrorIs(t, err, translate.ErrTooLarge)

	longID := "data: {\"type\":\"message_start\",\"message\":{\"id\":\"" + strings.Repeat("i", 600) + "\",\"model\":\"x\"}}\n\n"
	_, err = feedAll(translate.NewChatResponse(200, true, translate.ResponseOptions{}), [][]byte{[]byte(longID)})
	require.ErrorIs(t, err, translate.ErrUpstream)

	huge := bytes.Repeat([]byte(" "), translate.MaxBufferedBody+1)
	_, err = feedAll(translate.NewChatResponse(200, false, translate.ResponseOptions{}), [][]byte{huge})
	require.ErrorIs(t, err, translate.ErrTooLarge)

	out, err := feedAll(translate.NewChatResponse(500, false, translate.ResponseOptions{}), [][]byte{huge})
	require.NoError(t, err)
	require.JSONEq(t, `{"error":{"message":"the provider answered with HTTP status 500","type":"server_error","param":null,"code":null}}`, string(out))
}

// TestStreamStopsAfterError: after a failure, later chunks release nothing and report the
// same error.
func TestStreamStopsAfterError(t *testing.T) {
	r := translate.NewChatResponse(200, true, translate.ResponseOptions{})
	_, err := r.Feed([]byte("data: {\"type\":\"message_stop\"}\n\n"))
	require.ErrorIs(t, err, translate.ErrUpstream)
	out, err2 := r.Feed([]byte("data: {\"type\":\"message_start\",\"message\":{}}\n\n"))
	require.Empty(t, out)
	require.True(t, errors.Is(err2, translate.ErrUpstream))
	_, err2 = r.Finish()
	require.ErrorIs(t, err2, translate.ErrUpstream)
}
