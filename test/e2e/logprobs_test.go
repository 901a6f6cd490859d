package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestResponsesLogprobsNeverLeakRedactedText: Responses logprobs repeat the answer token by
// token outside the text redaction rewrites; the review saw [EMAIL_1] in a delta while
// logprobs[].token still held the address (issue 8 item 3). A request asking for them is
// refused under response guardrails, and logprobs a provider sends unasked are removed: no
// field of what reaches the client holds any part of the redacted value.
func TestResponsesLogprobsNeverLeakRedactedText(t *testing.T) {
	s := startStack(t)
	auth := []string{"authorization", "Bearer " + s.keys["demo"], "content-type", "application/json"}

	for _, body := range []string{
		`{"model":"gpt-4o-mini","input":"hi","include":["message.output_text.logprobs"]}`,
		`{"model":"gpt-4o-mini","input":"hi","top_logprobs":3}`,
	} {
		r := s.do(t, "POST", "/v1/responses", body, auth...)
		requireJSONError(t, r, 400)
		require.Contains(t, string(r.body), "logprobs")
	}

	s.mock.SetLogprobs(true)
	s.mock.SetAnswer("Write to jane.", "doe@exa", "mple.com today")
	defer s.mock.SetLogprobs(false)
	defer s.mock.SetAnswer()
	for _, stream := range []bool{true, false} {
		body, _ := json.Marshal(map[string]any{"model": "gpt-4o-mini", "input": "hi", "stream": stream})
		r := s.do(t, "POST", "/v1/responses", string(body), auth...)
		require.Equal(t, 200, r.status, "body: %s", r.body)
		got := string(r.body)
		require.Contains(t, string(s.gate.Last()), `"token":"doe@exa"`, "the upstream did send logprobs with the address")
		require.Contains(t, got, "[EMAIL_1]")
		for _, piece := range []string{"jane.doe", "doe@exa", "mple.com", "example.com"} {
			require.NotContains(t, got, piece, "stream=%v: part of the redacted address reached the client", stream)
		}
		require.NotContains(t, got, `"token"`, "stream=%v: logprobs reached the client", stream)
		if !stream {
			require.True(t, json.Valid(r.body))
		} else {
			require.True(t, strings.Contains(got, "response.completed"))
		}
	}
}
