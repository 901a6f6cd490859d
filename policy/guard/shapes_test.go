package guard

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// Every string of a request is scanned, wherever a client puts it: members
// the schema names, members it does not, keys. Rewritable text is
// redacted; a match in a string that must stay as it is (names, ids,
// keys, a data URL's header) blocks; a shape the schema does not know is
// refused.
func TestRequestShapes(t *testing.T) {
	e := allEngine(t)
	mail := sseEmail
	b64 := strings.Repeat("iVBORw0KGgo", 100)
	tests := []struct {
		name    string
		ep      llm.Endpoint
		body    string
		want    Decision // DecisionRedact: NewBody holds no secret; DecisionBlock: BlockedBy the email rule
		blockBy string
	}{
		{"chat stray content in a text part", llm.ChatCompletions,
			`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi","content":"mail ` + mail + `"}]}]}`, DecisionRedact, ""},
		{"chat top-level user", llm.ChatCompletions, `{"model":"m","messages":[],"user":"` + mail + `"}`, DecisionRedact, ""},
		{"chat metadata value", llm.ChatCompletions, `{"model":"m","messages":[],"metadata":{"owner":"` + mail + `"}}`, DecisionRedact, ""},
		{"chat unknown member", llm.ChatCompletions, `{"model":"m","messages":[],"x_note":{"deep":["` + mail + `"]}}`, DecisionRedact, ""},
		{"chat stop sequences", llm.ChatCompletions, `{"model":"m","messages":[],"stop":["` + mail + `"]}`, DecisionRedact, ""},
		{"chat message name", llm.ChatCompletions, `{"model":"m","messages":[{"role":"user","name":"` + mail + `","content":"hi"}]}`, DecisionBlock, "r.pii.email"},
		{"chat metadata key", llm.ChatCompletions, `{"model":"m","messages":[],"metadata":{"` + mail + `":"x"}}`, DecisionBlock, "r.pii.email"},
		{"chat tool name", llm.ChatCompletions, `{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"` + fakeAWS + `"}}]}`, DecisionBlock, "r.secret.aws_access_key"},
		{"chat tool call id", llm.ChatCompletions, `{"model":"m","messages":[{"role":"tool","tool_call_id":"` + fakeAWS + `","content":"x"}]}`, DecisionBlock, "r.secret.aws_access_key"},
		{"chat data URL header", llm.ChatCompletions,
			`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:` + mail + `;base64,` + b64 + `"}}]}]}`, DecisionBlock, "r.pii.email"},
		{"chat image URL that is not data", llm.ChatCompletions,
			`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x.example/?to=` + mail + `"}}]}]}`, DecisionRedact, ""},
		{"chat audio data that is not base64", llm.ChatCompletions,
			`{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"mail ` + mail + `","format":"wav"}}]}]}`, DecisionRedact, ""},
		{"responses user and metadata", llm.Responses, `{"model":"m","input":"hi","user":"` + mail + `","metadata":{"a":"` + mail + `"}}`, DecisionRedact, ""},
		{"responses function call name", llm.Responses, `{"model":"m","input":[{"type":"function_call","call_id":"c","name":"` + fakeAWS + `","arguments":"{}"}]}`, DecisionBlock, "r.secret.aws_access_key"},
		{"embeddings user", llm.Embeddings, `{"model":"m","input":"x","user":"` + mail + `"}`, DecisionRedact, ""},
		{"anthropic metadata", llm.Messages, `{"model":"m","messages":[],"metadata":{"user_id":"` + mail + `"}}`, DecisionRedact, ""},
		{"anthropic text document", llm.Messages,
			`{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"mail ` + mail + `"}}]}]}`, DecisionRedact, ""},
		{"anthropic text document without spaces", llm.Messages,
			`{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"data":"` + fakeAWS + `","type":"text"}}]}]}`, DecisionRedact, ""},
		{"anthropic content document", llm.Messages,
			`{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"content","content":[{"type":"text","text":"mail ` + mail + `"}]}}]}]}`, DecisionRedact, ""},
		{"anthropic document title and context", llm.Messages,
			`{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","data":"x"},"title":"` + mail + `","context":"` + mail + `"}]}]}`, DecisionRedact, ""},
		{"anthropic base64 data that is not base64", llm.Messages,
			`{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"mail ` + mail + `"}}]}]}`, DecisionRedact, ""},
		{"anthropic tool_use name", llm.Messages,
			`{"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"` + fakeAWS + `","input":{}}]}]}`, DecisionBlock, "r.secret.aws_access_key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.ScanRequest("redact", tc.ep, []byte(tc.body))
			require.NoError(t, err)
			require.Equal(t, tc.want, r.Decision)
			if tc.want == DecisionBlock {
				require.Equal(t, tc.blockBy, r.BlockedBy)
				require.Nil(t, r.NewBody)
				require.Equal(t, Block, r.Findings[0].Action, "a redact rule that cannot rewrite blocks, and says so")
				return
			}
			require.NotContains(t, string(r.NewBody), "example.com")
			require.NotContains(t, string(r.NewBody), fakeAWS)
			require.Regexp(t, `\[(EMAIL|AWS_ACCESS_KEY)_1\]`, string(r.NewBody))
		})
	}
}

// Base64 image, audio, file and opaque data is skipped: it counts against
// no scan limit, whatever its size, and a match inside it blocks nothing.
func TestRequestBinarySkipped(t *testing.T) {
	e := newEngine(t, ProfileConfig{Name: "p", MaxScanBytes: 256, Rules: []RuleConfig{{ID: "aws", Detector: "secret.aws_access_key", Action: "block"}}})
	b64 := strings.Repeat("iVBORw0KGgo+", 2000) + fakeAWS + "+" + strings.Repeat("A", 100)
	bodies := map[llm.Endpoint]string{
		llm.ChatCompletions: `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,` + b64 + `"}},{"type":"input_audio","input_audio":{"data":"` + b64 + `","format":"wav"}},{"type":"file","file":{"file_data":"data:application/pdf;base64,` + b64 + `"}}]}]}`,
		llm.Responses:       `{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,` + b64 + `"},{"type":"input_file","file_data":"data:application/pdf;base64,` + b64 + `"}]}]}`,
		llm.Messages:        `{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"data":"` + b64 + `","type":"base64","media_type":"image/png"}},{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"` + b64 + `"}}]},{"role":"assistant","content":[{"type":"redacted_thinking","data":"` + b64 + `"}]}]}`,
	}
	for ep, body := range bodies {
		r, err := e.ScanRequest("p", ep, []byte(body))
		require.NoError(t, err, ep)
		require.Nil(t, r.ScanErr, ep)
		require.Equal(t, DecisionAllow, r.Decision, ep)
	}
}
