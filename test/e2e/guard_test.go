package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Fake secrets, assembled at run time so no complete one sits in the source. The AWS key is
// AWS's documented example key id.
var (
	fakeAWSKey = "AKIA" + "IOSFODNN7" + "EXAMPLE"
	fakeEmail  = "jane.doe" + "@example.com"
)

// sseText reassembles the content deltas of an OpenAI chat stream.
func sseText(t *testing.T, body io.Reader) string {
	t.Helper()
	var text strings.Builder
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || line == "[DONE]" {
			continue
		}
		var ev struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &ev), line)
		for _, c := range ev.Choices {
			text.WriteString(c.Delta.Content)
		}
	}
	require.NoError(t, sc.Err())
	return text.String()
}

func TestGuardrails(t *testing.T) {
	s := startStack(t)
	auth := []string{"authorization", "Bearer " + s.keys["demo"], "content-type", "application/json"}
	prompt := func(text string, stream bool) string {
		b, _ := json.Marshal(map[string]any{"model": "gpt-4o-mini", "stream": stream,
			"messages": []map[string]string{{"role": "user", "content": text}}})
		return string(b)
	}

	t.Run("an email is redacted before the provider sees it", func(t *testing.T) {
		s.mock.Reset()
		r := s.do(t, "POST", "/v1/chat/completions", prompt("Write to "+fakeEmail+" today", false), auth...)
		require.Equal(t, 200, r.status, "body: %s", r.body)
		up := s.mock.Requests()
		require.Len(t, up, 1)
		require.Contains(t, string(up[0].Body), "[EMAIL_1]")
		require.NotContains(t, string(up[0].Body), fakeEmail)
	})

	t.Run("an AWS key in a prompt is blocked with 403", func(t *testing.T) {
		s.mock.Reset()
		r := s.do(t, "POST", "/v1/chat/completions", prompt("deploy with "+fakeAWSKey, false), auth...)
		requireJSONError(t, r, 403)
		require.Contains(t, string(r.body), "aws-key", "the body names the rule")
		require.NotContains(t, string(r.body), fakeAWSKey, "never the matched text")
		require.Empty(t, s.mock.Requests())
	})

	t.Run("evasion: zero-width characters and escapes do not hide a secret", func(t *testing.T) {
		zw := fakeAWSKey[:6] + "\u200b" + fakeAWSKey[6:]
		r := s.do(t, "POST", "/v1/chat/completions", prompt("deploy with "+zw, false), auth...)
		requireJSONError(t, r, 403)
		escaped := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"mail jane.doe\u0040example.com"}]}`
		s.mock.Reset()
		r = s.do(t, "POST", "/v1/chat/completions", escaped, auth...)
		require.Equal(t, 200, r.status)
		require.NotContains(t, string(s.mock.Requests()[0].Body), "example.com")
	})

	t.Run("duplicate model keys are refused", func(t *testing.T) {
		r := s.do(t, "POST", "/v1/chat/completions", `{"model":"gpt-4o-mini","model":"fast","messages":[]}`, auth...)
		requireJSONError(t, r, 400)
		r = s.do(t, "POST", "/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[],"messages":[]}`, auth...)
		requireJSONError(t, r, 400)
	})

	t.Run("a disallowed model gets 403", func(t *testing.T) {
		r := s.do(t, "POST", "/v1/chat/completions", prompt("hi", false),
			"authorization", "Bearer "+s.keys["research"], "content-type", "application/json")
		requireJSONError(t, r, 403)
	})

	t.Run("a secret in a JSON response is redacted", func(t *testing.T) {
		s.mock.SetAnswer("Your key is ", fakeAWSKey, " and mail ", fakeEmail)
		defer s.mock.SetAnswer()
		r := s.do(t, "POST", "/v1/chat/completions", prompt("what is my key?", false), auth...)
		require.Equal(t, 200, r.status, "body: %s", r.body)
		require.NotContains(t, string(r.body), fakeAWSKey)
		require.NotContains(t, string(r.body), fakeEmail)
		require.True(t, json.Valid(r.body))
		require.Contains(t, string(r.body), "[AWS_ACCESS_KEY_1]")
	})

	t.Run("a secret split across two SSE events and two chunks is redacted in flight", func(t *testing.T) {
		// The key is cut in two events, and the flushGate also writes each event in two
		// flushes, so Envoy hands ext_proc the secret in pieces.
		s.mock.SetAnswer("Your key is AKIA", fakeAWSKey[4:11], fakeAWSKey[11:]+" and mail jane.", "doe@example.com ok")
		defer s.mock.SetAnswer()
		s.gate.SplitWrites(true)
		defer s.gate.SplitWrites(false)
		req, _ := http.NewRequest("POST", s.base+"/v1/chat/completions", strings.NewReader(prompt("stream my key", true)))
		for i := 0; i+1 < len(auth); i += 2 {
			req.Header.Set(auth[i], auth[i+1])
		}
		resp, err := s.client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		for _, piece := range []string{fakeAWSKey[4:11], fakeAWSKey[11:], "example.com"} {
			require.NotContains(t, string(raw), piece, "no piece of a secret reaches the client")
			require.Contains(t, string(s.gate.Last()), piece, "the upstream did send it")
		}
		text := sseText(t, strings.NewReader(string(raw)))
		require.Equal(t, "Your key is [AWS_ACCESS_KEY_1] and mail [EMAIL_1] ok", text)
	})

	t.Run("no guardrail evidence holds text", func(t *testing.T) {
		logs := s.logs()
		require.NotContains(t, logs, fakeAWSKey)
		require.NotContains(t, logs, "IOSFODNN7")
		require.NotContains(t, logs, fakeEmail)
		require.Contains(t, logs, `"aws-key"`, "findings are logged by rule id")
	})
}
