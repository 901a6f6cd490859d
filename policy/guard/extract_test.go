package guard

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// extracted walks body with schema and returns path=value for each string.
func extracted(t *testing.T, schema *node, body string) []string {
	t.Helper()
	var w walker
	require.NoError(t, w.walk([]byte(body), schema))
	var out []string
	for _, l := range w.locs {
		var v string
		require.NoError(t, json.Unmarshal([]byte(body[l.start:l.end]), &v))
		out = append(out, w.pathString(l.path)+"="+v)
	}
	return out
}

func TestExtractRequests(t *testing.T) {
	tests := []struct {
		name string
		ep   llm.Endpoint
		body string
		want []string
	}{
		{"chat string and parts", llm.ChatCompletions,
			`{"model":"m","messages":[{"role":"system","content":"sys"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}`,
			[]string{"messages[0].content=sys", "messages[1].content[0].text=hi"}},
		{"chat tools and tool calls", llm.ChatCompletions,
			`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"q\":1}"}}]},{"role":"tool","tool_call_id":"c1","content":"out"}],"tools":[{"type":"function","function":{"name":"f","description":"desc","parameters":{"type":"object","properties":{"q":{"type":"string","description":"pdesc"}}}}}]}`,
			[]string{`messages[0].tool_calls[0].function.arguments={"q":1}`, "messages[1].content=out", "tools[0].function.description=desc",
				"tools[0].function.parameters=object", "tools[0].function.parameters=string", "tools[0].function.parameters=pdesc"}},
		{"chat audio is not text", llm.ChatCompletions,
			`{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}`,
			nil},
		{"completions prompt array", llm.Completions,
			`{"model":"m","prompt":["a","b",[1,2]],"suffix":"s"}`,
			[]string{"prompt[0]=a", "prompt[1]=b", "suffix=s"}},
		{"completions prompt string", llm.Completions, `{"model":"m","prompt":"p"}`, []string{"prompt=p"}},
		{"embeddings", llm.Embeddings, `{"model":"m","input":["x","y"]}`, []string{"input[0]=x", "input[1]=y"}},
		{"responses string", llm.Responses, `{"model":"m","input":"hello","instructions":"be brief"}`,
			[]string{"input=hello", "instructions=be brief"}},
		{"responses items", llm.Responses,
			`{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"q"},{"type":"input_image","image_url":"u"}]},{"type":"function_call","arguments":"{}"},{"type":"function_call_output","output":"r"},{"role":"assistant","content":[{"type":"output_text","text":"a"}]}],"tools":[{"type":"function","name":"f","description":"d"}]}`,
			[]string{"input[0].content[0].text=q", "input[1].arguments={}", "input[2].output=r", "input[3].content[0].text=a", "tools[0].description=d"}},
		{"anthropic", llm.Messages,
			`{"model":"m","system":[{"type":"text","text":"sys"}],"messages":[{"role":"user","content":"u"},{"role":"assistant","content":[{"type":"text","text":"t"},{"type":"tool_use","id":"x","name":"n","input":{"k":"v","n":[{"deep":"d"}]}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":"res"},{"type":"tool_result","tool_use_id":"y","content":[{"type":"text","text":"res2"}]},{"type":"image","source":{"type":"base64","data":"AAAA"}}]}],"tools":[{"name":"n","description":"td","input_schema":{"type":"object"}}]}`,
			[]string{"system[0].text=sys", "messages[0].content=u", "messages[1].content[0].text=t", "messages[1].content[1].input=v",
				"messages[1].content[1].input=d", "messages[2].content[0].content=res", "messages[2].content[1].content[0].text=res2",
				"tools[0].description=td", "tools[0].input_schema=object"}},
		{"anthropic system string", llm.Messages, `{"model":"m","system":"s","messages":[]}`, []string{"system=s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, extracted(t, requestSchema(tc.ep), tc.body))
		})
	}
}

func TestExtractResponses(t *testing.T) {
	tests := []struct {
		name string
		ep   llm.Endpoint
		body string
		want []string
	}{
		{"chat", llm.ChatCompletions,
			`{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"c","tool_calls":[{"function":{"name":"f","arguments":"a"}}]}}],"usage":{}}`,
			[]string{"choices[0].message.content=c", "choices[0].message.tool_calls[0].function.arguments=a"}},
		{"completions", llm.Completions, `{"choices":[{"text":"t"}]}`, []string{"choices[0].text=t"}},
		{"responses", llm.Responses,
			`{"output":[{"type":"message","content":[{"type":"output_text","text":"o"}]},{"type":"function_call","arguments":"a"}]}`,
			[]string{"output[0].content[0].text=o", "output[1].arguments=a"}},
		{"anthropic", llm.Messages, `{"content":[{"type":"text","text":"t"},{"type":"tool_use","input":{"x":"y"}}]}`,
			[]string{"content[0].text=t", "content[1].input=y"}},
		{"embeddings", llm.Embeddings, `{"data":[{"embedding":[0.1]}]}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, extracted(t, responseSchema(tc.ep), tc.body))
		})
	}
}

// Duplicate keys are refused anywhere in the body, including keys that only
// collide after unescaping, for every profile (even one without rules).
func TestDuplicateKeys(t *testing.T) {
	e := newEngine(t, ProfileConfig{Name: "empty"}, ProfileConfig{Name: "all", Rules: allRules("audit")})
	bodies := []string{
		`{"model":"a","model":"b","messages":[]}`,
		`{"model":"a","messages":[],"messages":[{"role":"user","content":"x"}]}`,
		`{"model":"a","messages":[{"role":"user","content":"x","content":"y"}]}`,
		`{"model":"a","messages":[{"role":"user","content":[{"type":"text","text":"x","text":"y"}]}]}`,
		`{"model":"a","metadata":{"k":1,"k":2}}`,
		`{"model":"a","m\u006fdel":"b"}`,
		`{"model":"a","tools":[{"function":{"parameters":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12,"m":13,"n":14,"o":15,"p":16,"q":17,"r":18,"a":19}}}]}`,
	}
	for _, profile := range []string{"empty", "all"} {
		for _, b := range bodies {
			_, err := e.ScanRequest(profile, llm.ChatCompletions, []byte(b))
			require.ErrorIs(t, err, ErrDuplicateKey, "%s: %s", profile, b)
			require.NotContains(t, err.Error(), "model")
		}
	}
}

func TestMalformedBodies(t *testing.T) {
	e := newEngine(t, ProfileConfig{Name: "p"})
	for body, want := range map[string]error{
		`{"model":"a",}`:               ErrInvalidJSON,
		`{"model":"a"} x`:              ErrInvalidJSON,
		`[1]`:                          ErrNotObject,
		``:                             ErrInvalidJSON,
		strings.Repeat("[", 200) + "]": ErrInvalidJSON,
		`{"a":` + strings.Repeat(`{"a":`, 130) + `1` + strings.Repeat("}", 131): ErrTooDeep,
	} {
		_, err := e.ScanRequest("p", llm.ChatCompletions, []byte(body))
		require.ErrorIs(t, err, want, "%.40q", body)
	}
	_, err := e.ScanRequest("nope", llm.ChatCompletions, []byte(`{}`))
	require.ErrorIs(t, err, ErrUnknownProfile)
	_, err = e.ScanRequest("p", llm.Models, []byte(`{}`))
	require.ErrorIs(t, err, ErrUnsupportedEndpoint)
}
