package guard

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
	"github.com/tollgate-ai/tollgate/policy/llm"
)

// extracted walks body with schema and returns path=value for each string
// that may be rewritten.
func extracted(t *testing.T, schema *node, body string) []string {
	t.Helper()
	text, _ := extractedAll(t, schema, body)
	return text
}

// extractedAll walks body with schema and returns path=value for each
// string that may be rewritten (text) and for each one only scanned (keep).
func extractedAll(t *testing.T, schema *node, body string) (text, keep []string) {
	t.Helper()
	var w walker
	require.NoError(t, w.walk([]byte(body), schema))
	for _, l := range w.locs {
		v, _ := jsonlex.Unquote(nil, []byte(body[l.start+1:l.end-1]))
		s := w.pathString(l.path) + "=" + string(v)
		if l.keep {
			keep = append(keep, s)
		} else {
			text = append(text, s)
		}
	}
	return text, keep
}

// Requests: every string the provider reads is extracted, rewritable text
// and keep (names, ids, roles, types, unknown keys) apart; base64 data is
// skipped, its data URL header kept.
func TestExtractRequests(t *testing.T) {
	tests := []struct {
		name       string
		ep         llm.Endpoint
		body       string
		want, keep []string
	}{
		{"chat string and parts", llm.ChatCompletions,
			`{"model":"m","messages":[{"role":"system","content":"sys"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}`,
			[]string{"messages[0].content=sys", "messages[1].content[0].text=hi"},
			[]string{"model=m", "messages[0].role=system", "messages[1].role=user", "messages[1].content[0].type=text", "messages[1].content[1].type=image_url",
				"messages[1].content[1].image_url.url=data:image/png;base64,"}},
		{"chat tools and tool calls", llm.ChatCompletions,
			`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"q\":1}"}}]},{"role":"tool","tool_call_id":"c1","content":"out"}],"tools":[{"type":"function","function":{"name":"f","description":"desc","parameters":{"type":"object","properties":{"q":{"type":"string","description":"pdesc"}}}}}]}`,
			[]string{`messages[0].tool_calls[0].function.arguments={"q":1}`, "messages[1].content=out", "tools[0].function.description=desc",
				"tools[0].function.parameters=object", "tools[0].function.parameters=string", "tools[0].function.parameters=pdesc"},
			[]string{"model=m", "messages[0].role=assistant", "messages[0].tool_calls[0].id=c1", "messages[0].tool_calls[0].type=function",
				"messages[0].tool_calls[0].function.name=f", "messages[1].role=tool", "messages[1]=tool_call_id", "messages[1]=c1",
				"tools[0].type=function", "tools[0].function.name=f", "tools[0].function.parameters=type", "tools[0].function.parameters=properties",
				"tools[0].function.parameters=q", "tools[0].function.parameters=type", "tools[0].function.parameters=description"}},
		{"chat audio and file data are not text", llm.ChatCompletions,
			`{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}},{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0=","filename":"a.pdf"}}]}]}`,
			[]string{"messages[0].content[0].input_audio=wav", "messages[0].content[1].file=a.pdf"},
			[]string{"model=m", "messages[0].role=user", "messages[0].content[0].type=input_audio", "messages[0].content[0].input_audio=format",
				"messages[0].content[1].type=file", "messages[0].content[1].file.file_data=data:application/pdf;base64,", "messages[0].content[1].file=filename"}},
		{"chat stray members, name, user and metadata", llm.ChatCompletions,
			`{"model":"m","messages":[{"role":"user","name":"n","content":[{"type":"text","text":"t","content":"stray"}]}],"user":"u","metadata":{"k":"v"},"stop":["s"]}`,
			[]string{"messages[0].content[0].text=t", "messages[0].content[0]=stray", "user=u", "metadata=v", "(body)=s"},
			[]string{"model=m", "messages[0].role=user", "messages[0].name=n", "messages[0].content[0].type=text", "messages[0].content[0]=content", "metadata=k", "(body)=stop"}},
		{"data that is not base64 is text", llm.ChatCompletions,
			`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x.example/a.png"}},{"type":"input_audio","input_audio":{"data":"not base64!"}},{"type":"image_url","image_url":"data:text/plain,hello"}]}]}`,
			[]string{"messages[0].content[0].image_url.url=https://x.example/a.png", "messages[0].content[1].input_audio.data=not base64!", "messages[0].content[2].image_url=data:text/plain,hello"},
			[]string{"model=m", "messages[0].role=user", "messages[0].content[0].type=image_url", "messages[0].content[1].type=input_audio", "messages[0].content[2].type=image_url"}},
		{"completions prompt array", llm.Completions,
			`{"model":"m","prompt":["a","b",[1,2]],"suffix":"s"}`,
			[]string{"prompt[0]=a", "prompt[1]=b", "suffix=s"}, []string{"model=m"}},
		{"completions prompt string", llm.Completions, `{"model":"m","prompt":"p"}`, []string{"prompt=p"}, []string{"model=m"}},
		{"embeddings", llm.Embeddings, `{"model":"m","input":["x","y"],"user":"u"}`, []string{"input[0]=x", "input[1]=y", "user=u"}, []string{"model=m"}},
		{"responses string", llm.Responses, `{"model":"m","input":"hello","instructions":"be brief"}`,
			[]string{"input=hello", "instructions=be brief"}, []string{"model=m"}},
		{"responses items", llm.Responses,
			`{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"q"},{"type":"input_image","image_url":"data:image/jpeg;base64,/9j/"}]},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"r"},{"role":"assistant","content":[{"type":"output_text","text":"a"}]},{"type":"reasoning","summary":[{"type":"summary_text","text":"s"}],"encrypted_content":"gAAAA"}],"tools":[{"type":"function","name":"f","description":"d"}]}`,
			[]string{"input[0].content[0].text=q", "input[1].arguments={}", "input[2].output=r", "input[3].content[0].text=a", "input[4].summary[0].text=s", "tools[0].description=d"},
			[]string{"model=m", "input[0].role=user", "input[0].content[0].type=input_text", "input[0].content[1].type=input_image",
				"input[0].content[1].image_url=data:image/jpeg;base64,", "input[1].type=function_call", "input[1]=call_id", "input[1]=c", "input[1].name=f",
				"input[2].type=function_call_output", "input[2]=call_id", "input[2]=c", "input[3].role=assistant", "input[3].content[0].type=output_text",
				"input[4].type=reasoning", "input[4].summary[0].type=summary_text", "input[4].encrypted_content=gAAAA", "tools[0].type=function", "tools[0].name=f"}},
		{"anthropic", llm.Messages,
			`{"model":"m","system":[{"type":"text","text":"sys"}],"messages":[{"role":"user","content":"u"},{"role":"assistant","content":[{"type":"text","text":"t"},{"type":"tool_use","id":"x","name":"n","input":{"k":"v","n":[{"deep":"d"}]}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":"res"},{"type":"tool_result","tool_use_id":"y","content":[{"type":"text","text":"res2"}]},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}],"tools":[{"name":"n","description":"td","input_schema":{"type":"object"}}]}`,
			[]string{"system[0].text=sys", "messages[0].content=u", "messages[1].content[0].text=t", "messages[1].content[1].input=v",
				"messages[1].content[1].input=d", "messages[2].content[0].content=res", "messages[2].content[1].content[0].text=res2",
				"messages[2].content[2].source=image/png", "tools[0].description=td", "tools[0].input_schema=object"},
			[]string{"model=m", "system[0].type=text", "messages[0].role=user", "messages[1].role=assistant", "messages[1].content[0].type=text",
				"messages[1].content[1].type=tool_use", "messages[1].content[1].id=x", "messages[1].content[1].name=n", "messages[1].content[1].input=k",
				"messages[1].content[1].input=n", "messages[1].content[1].input=deep", "messages[2].role=user", "messages[2].content[0].type=tool_result",
				"messages[2].content[0]=tool_use_id", "messages[2].content[0]=x", "messages[2].content[1].type=tool_result", "messages[2].content[1]=tool_use_id",
				"messages[2].content[1]=y", "messages[2].content[1].content[0].type=text", "messages[2].content[2].type=image", "messages[2].content[2].source.type=base64",
				"messages[2].content[2].source=media_type", "tools[0].name=n", "tools[0].input_schema=type"}},
		{"anthropic documents, thinking and metadata", llm.Messages,
			`{"model":"m","system":"s","metadata":{"user_id":"u1"},"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"doc"},"title":"ti","context":"cx"},{"type":"document","source":{"type":"content","content":[{"type":"text","text":"c1"}]}},{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}]},{"role":"assistant","content":[{"type":"thinking","thinking":"th","signature":"c2ln"},{"type":"redacted_thinking","data":"ZW5j"}]}]}`,
			[]string{"system=s", "metadata=u1", "messages[0].content[0].source=text/plain", "messages[0].content[0].source.data=doc", "messages[0].content[0].title=ti",
				"messages[0].content[0].context=cx", "messages[0].content[1].source.content[0].text=c1", "messages[0].content[2].source=application/pdf",
				"messages[1].content[0].thinking=th"},
			[]string{"model=m", "metadata=user_id", "messages[0].role=user", "messages[0].content[0].type=document", "messages[0].content[0].source.type=text",
				"messages[0].content[0].source=media_type", "messages[0].content[1].type=document", "messages[0].content[1].source.type=content",
				"messages[0].content[1].source.content[0].type=text", "messages[0].content[2].type=document", "messages[0].content[2].source.type=base64",
				"messages[0].content[2].source=media_type", "messages[1].role=assistant", "messages[1].content[0].type=thinking",
				"messages[1].content[0].signature=c2ln", "messages[1].content[1].type=redacted_thinking"}},
		{"anthropic system string", llm.Messages, `{"model":"m","system":"s","messages":[]}`, []string{"system=s"}, []string{"model=m"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text, keep := extractedAll(t, requestSchema(tc.ep), tc.body)
			require.Equal(t, tc.want, text)
			require.Equal(t, tc.keep, keep)
		})
	}
}

// A request member that carries text but has a kind its schema does not
// know is refused with ErrUnknownShape, naming the member by its schema
// path, for every profile.
func TestUnknownShapes(t *testing.T) {
	e := newEngine(t, ProfileConfig{Name: "empty"})
	tests := []struct {
		ep   llm.Endpoint
		body string
		path string
	}{
		{llm.ChatCompletions, `{"model":"m","messages":[{"role":"user","content":{"text":"x"}}]}`, "messages[0].content is an object"},
		{llm.ChatCompletions, `{"model":"m","messages":{"role":"user"}}`, "messages is an object"},
		{llm.ChatCompletions, `{"model":"m","messages":["x"]}`, "messages[0] is a string"},
		{llm.ChatCompletions, `{"model":"m","messages":[{"content":[{"type":"text","text":{"v":"x"}}]}]}`, "messages[0].content[0].text is an object"},
		{llm.ChatCompletions, `{"model":"m","messages":[],"user":{"id":"x"}}`, "user is an object"},
		{llm.ChatCompletions, `{"model":"m","messages":[],"metadata":"x"}`, "metadata is a string"},
		{llm.Messages, `{"model":"m","system":{"text":"x"},"messages":[]}`, "system is an object"},
		{llm.Messages, `{"model":"m","messages":[{"role":"user","content":{"type":"text","text":"x"}}]}`, "messages[0].content is an object"},
		{llm.Responses, `{"model":"m","input":{"role":"user","content":"x"}}`, "input is an object"},
		{llm.Responses, `{"model":"m","input":[{"role":"user","content":7}]}`, "input[0].content is a number"},
		{llm.Embeddings, `{"model":"m","input":{"text":"x"}}`, "input is an object"},
		{llm.Embeddings, `{"model":"m","input":[{"text":"x"}]}`, "input[0] is an object"},
		{llm.Completions, `{"model":"m","prompt":true}`, "prompt is a boolean"},
	}
	for _, tc := range tests {
		_, err := e.ScanRequest("empty", tc.ep, []byte(tc.body))
		require.ErrorIs(t, err, ErrUnknownShape, tc.body)
		require.Equal(t, "unknown body shape: "+tc.path, err.Error())
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
		`{"model":"a","model" "b"}`:    ErrInvalidJSON, // a key's colon is read before its duplicate is checked
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
