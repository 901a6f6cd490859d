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

// TestGuardShapes: the guardrails read every string a provider reads, in
// every body shape, refuse the shapes they do not know, refuse a Tollgate
// key in any body whatever the profile, and keep Responses sequence numbers
// unique when they hold text back (issue 14, items 2 and 5).
func TestGuardShapes(t *testing.T) {
	s := startStack(t)
	openai := func(key string) []string {
		return []string{"authorization", "Bearer " + s.keys[key], "content-type", "application/json"}
	}
	anthropic := func(key string) []string {
		return []string{"x-api-key", s.keys[key], "anthropic-version", "2023-06-01", "content-type", "application/json"}
	}
	const (
		chat     = "/v1/chat/completions"
		messages = "/v1/messages"
	)
	aws, mail := fakeAWSKey, fakeEmail

	t.Run("every shape and field is refused or redacted before the provider", func(t *testing.T) {
		cases := []struct {
			name, path, body string
			status           int // 200: forwarded with the email redacted
		}{
			{"chat content as an object", chat,
				`{"model":"gpt-4o-mini","messages":[{"role":"user","content":{"type":"text","text":"deploy with ` + aws + `"}}]}`, 400},
			{"messages content as an object", messages,
				`{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":{"type":"text","text":"deploy with ` + aws + `"}}]}`, 400},
			{"anthropic system as an object", messages,
				`{"model":"claude-haiku-4-5","max_tokens":16,"system":{"type":"text","text":"` + aws + `"},"messages":[{"role":"user","content":"hi"}]}`, 400},
			{"responses input as an object", "/v1/responses",
				`{"model":"gpt-4o-mini","input":{"role":"user","content":"deploy with ` + aws + `"}}`, 400},
			{"embeddings input as an object", "/v1/embeddings",
				`{"model":"text-embedding-3-small","input":{"text":"` + aws + `"}}`, 400},
			{"a stray content in a text part", chat,
				`{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":"hi","content":"deploy with ` + aws + `"}]}]}`, 403},
			{"the chat message name", chat,
				`{"model":"gpt-4o-mini","messages":[{"role":"user","name":"` + aws + `","content":"hi"}]}`, 403},
			{"an email in the chat message name cannot be redacted", chat,
				`{"model":"gpt-4o-mini","messages":[{"role":"user","name":"` + mail + `","content":"hi"}]}`, 403},
			{"top-level user", chat,
				`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"user":"` + aws + `"}`, 403},
			{"metadata", chat,
				`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"metadata":{"note":"` + aws + `"}}`, 403},
			{"anthropic metadata", messages,
				`{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"` + aws + `"}}`, 403},
			{"an email in a stray content", chat,
				`{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":"hi","content":"mail ` + mail + `"}]}]}`, 200},
			{"an email in user", chat,
				`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"user":"` + mail + `"}`, 200},
			{"an email in metadata", chat,
				`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"metadata":{"owner":"` + mail + `"}}`, 200},
			{"an email in an anthropic text document", messages,
				`{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"mail ` + mail + `"},"title":"` + mail + `"},{"type":"text","text":"summarize"}]}]}`, 200},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				hdr := openai("demo")
				if tc.path == messages {
					hdr = anthropic("demo")
				}
				s.mock.Reset()
				r := s.do(t, "POST", tc.path, tc.body, hdr...)
				if tc.status != 200 {
					requireJSONError(t, r, tc.status)
					require.NotContains(t, string(r.body), aws)
					require.NotContains(t, string(r.body), mail)
					require.Empty(t, s.mock.Requests(), "the provider saw nothing")
					return
				}
				require.Equal(t, 200, r.status, "body: %s", r.body)
				up := s.mock.Requests()
				require.Len(t, up, 1)
				require.NotContains(t, string(up[0].Body), mail)
				require.Contains(t, string(up[0].Body), "[EMAIL_1]")
			})
		}
	})

	t.Run("a Tollgate key in a body is refused whatever the profile", func(t *testing.T) {
		other := s.keys["research"]
		escaped := `\u0074gk_` + other[4:]
		for _, who := range []string{"demo", "raw"} {
			for name, tc := range map[string]struct{ path, body string }{
				"user":               {chat, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"user":"` + other + `"}`},
				"metadata":           {chat, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"metadata":{"k":"` + other + `"}}`},
				"metadata, escaped":  {chat, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"metadata":{"k":"` + escaped + `"}}`},
				"anthropic metadata": {messages, `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"` + other + `"}}`},
			} {
				hdr := openai(who)
				if tc.path == messages {
					hdr = anthropic(who)
				}
				s.mock.Reset()
				r := s.do(t, "POST", tc.path, tc.body, hdr...)
				requireJSONError(t, r, 400)
				if tc.path == chat {
					require.Contains(t, string(r.body), "virtual_key_in_body", "%s %s", who, name)
				}
				require.NotContains(t, string(r.body), other[17:], "the error never echoes the key")
				require.Empty(t, s.mock.Requests(), "%s %s: the provider saw nothing", who, name)
			}
		}
		// The same request without the key goes through, for both keys.
		for _, who := range []string{"demo", "raw"} {
			s.mock.Reset()
			r := s.do(t, "POST", chat, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"user":"u-1"}`, openai(who)...)
			require.Equal(t, 200, r.status, "%s: %s", who, r.body)
			require.Len(t, s.mock.Requests(), 1)
		}
	})

	t.Run("a guarded Responses stream keeps sequence numbers unique and increasing", func(t *testing.T) {
		s.mock.SetAnswer("Write to jane.", "doe@example.com", " and use ", aws[:9], aws[9:], " today, thanks")
		defer s.mock.SetAnswer()
		req, err := http.NewRequest("POST", s.base+"/v1/responses",
			strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"input":"what is my key?"}`))
		require.NoError(t, err)
		for h := openai("demo"); len(h) > 1; h = h[2:] {
			req.Header.Set(h[0], h[1])
		}
		resp, err := s.client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NotContains(t, string(raw), "example.com")
		require.NotContains(t, string(raw), aws[4:])

		seqs, text := responsesEvents(t, string(raw))
		upstream, _ := responsesEvents(t, string(s.gate.Last()))
		require.Greater(t, len(seqs), len(upstream), "held text went out in synthesized events")
		for i := 1; i < len(seqs); i++ {
			require.Greater(t, seqs[i], seqs[i-1], "sequence numbers: %v", seqs)
		}
		require.Equal(t, "Write to [EMAIL_1] and use [AWS_ACCESS_KEY_1] today, thanks", text)
	})
}

// responsesEvents reads a Responses stream: the sequence number of each
// event, and the text its output_text deltas assemble.
func responsesEvents(t *testing.T, stream string) ([]int, string) {
	t.Helper()
	var seqs []int
	var text strings.Builder
	sc := bufio.NewScanner(strings.NewReader(stream))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev struct {
			Type           string `json:"type"`
			SequenceNumber *int   `json:"sequence_number"`
			Delta          string `json:"delta"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &ev), line)
		require.NotNil(t, ev.SequenceNumber, line)
		seqs = append(seqs, *ev.SequenceNumber)
		if ev.Type == "response.output_text.delta" {
			text.WriteString(ev.Delta)
		}
	}
	require.NoError(t, sc.Err())
	return seqs, text.String()
}
