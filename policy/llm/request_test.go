package llm

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// secret is planted in failing bodies; no error text may contain it.
const secret = "sk-SECRET-PROMPT"

func TestParseRequest(t *testing.T) {
	manyKeys := func(n int, dup string) string {
		var b strings.Builder
		b.WriteString(`{"model":"m"`)
		for i := range n {
			fmt.Fprintf(&b, `,"k%d":%d`, i, i)
		}
		if dup != "" {
			fmt.Fprintf(&b, `,%q:0`, dup)
		}
		b.WriteString("}")
		return b.String()
	}
	huge := strings.Repeat("QUJD", 1<<19) // 2 MiB of base64
	tests := []struct {
		name   string
		body   string
		model  string
		stream bool
		err    error
	}{
		{name: "minimal", body: `{"model":"gpt-4o"}`, model: "gpt-4o"},
		{name: "stream true", body: `{"model":"gpt-4o","stream":true}`, model: "gpt-4o", stream: true},
		{name: "stream false", body: `{"stream":false,"model":"gpt-4o"}`, model: "gpt-4o"},
		{name: "stream null", body: `{"model":"m","stream":null}`, model: "m"},
		{name: "whitespace", body: " \t\r\n{ \"model\" : \"m\" , \"stream\" :\ttrue }\n", model: "m", stream: true},
		{name: "escaped key", body: `{"mod\u0065l":"m","str\u0065am":true}`, model: "m", stream: true},
		{name: "escaped slash key", body: `{"\/":1,"model":"m"}`, model: "m"},
		{name: "escaped value", body: `{"model":"gpt\u002d4o"}`, model: "gpt-4o"},
		{name: "quote in value", body: `{"model":"a\"b\\c\/d"}`, model: `a"b\c/d`},
		{name: "control escapes", body: `{"model":"a\b\f\n\r\tz"}`, model: "a\b\f\n\r\tz"},
		{name: "non ascii value", body: `{"model":"模型-ü"}`, model: "模型-ü"},
		{name: "surrogate pair", body: `{"model":"\ud83d\ude00"}`, model: "😀"},
		{name: "nested model ignored", body: `{"messages":[{"model":"inner","stream":"x"}],"model":"outer","metadata":{"model":5,"stream":{}}}`, model: "outer"},
		{name: "all value types", body: `{"a":[1,-0.5e+10,2E-3,0,true,false,null,"s",{},[]],"model":"m","b":{"c":{"d":[]}}}`, model: "m"},
		{name: "huge string value", body: `{"model":"m","messages":[{"role":"user","content":"` + huge + `"}]}`, model: "m"},
		{name: "invalid utf-8 elsewhere", body: "{\"model\":\"m\",\"x\":\"\xff\xfe\"}", model: "m"},
		{name: "many keys", body: manyKeys(40, ""), model: "m"},
		{name: "deep nesting at limit", body: `{"model":"m","x":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `}`, model: "m"},
		{name: "messages depth at limit", body: `{"model":"m","messages":[` + strings.Repeat("[", MaxDepth-2) + strings.Repeat("]", MaxDepth-2) + `]}`, model: "m"},
		{name: "include depth at limit", body: `{"model":"m","include":[` + strings.Repeat("[", MaxDepth-2) + strings.Repeat("]", MaxDepth-2) + `]}`, model: "m"},

		{name: "duplicate model", body: `{"model":"a","model":"b"}`, err: ErrDuplicateKey},
		{name: "duplicate model escaped", body: `{"model":"a","mod\u0065l":"b"}`, err: ErrDuplicateKey},
		{name: "duplicate model escaped first", body: `{"\u006dodel":"a","model":"b"}`, err: ErrDuplicateKey},
		{name: "duplicate model wrong type", body: `{"model":"a","model":null}`, err: ErrDuplicateKey},
		{name: "duplicate stream", body: `{"stream":false,"model":"a","stream":true}`, err: ErrDuplicateKey},
		{name: "duplicate other key", body: `{"model":"a","x":1,"x":2}`, err: ErrDuplicateKey},
		{name: "duplicate after many keys", body: manyKeys(40, "k3"), err: ErrDuplicateKey},
		{name: "duplicate of first after many keys", body: manyKeys(40, "model"), err: ErrDuplicateKey},
		{name: "duplicate invalid utf-8 keys", body: "{\"model\":\"a\",\"\xff\":1,\"\xfe\":2}", err: ErrDuplicateKey},
		{name: "nested duplicates allowed", body: `{"model":"a","x":{"k":1,"k":2}}`, model: "a"},

		{name: "model number", body: `{"model":5}`, err: ErrInvalidField},
		{name: "model null", body: `{"model":null}`, err: ErrInvalidField},
		{name: "model array", body: `{"model":["a"]}`, err: ErrInvalidField},
		{name: "model object", body: `{"model":{"id":"a"}}`, err: ErrInvalidField},
		{name: "model bool", body: `{"model":true}`, err: ErrInvalidField},
		{name: "model invalid utf-8", body: "{\"model\":\"gpt\xff\"}", err: ErrInvalidField},
		{name: "model lone surrogate", body: `{"model":"gpt\ud800"}`, err: ErrInvalidField},
		{name: "model reversed surrogates", body: `{"model":"\udc00\ud800"}`, err: ErrInvalidField},
		{name: "stream string", body: `{"model":"m","stream":"true"}`, err: ErrInvalidField},
		{name: "stream number", body: `{"model":"m","stream":1}`, err: ErrInvalidField},
		{name: "stream object", body: `{"model":"m","stream":{}}`, err: ErrInvalidField},
		{name: "first field error wins", body: `{"stream":1,"model":"a","model":"b"}`, err: ErrInvalidField},

		{name: "missing model", body: `{"messages":[]}`, err: ErrMissingModel},
		{name: "empty object", body: `{}`, err: ErrMissingModel},
		{name: "empty model", body: `{"model":""}`, err: ErrMissingModel},
		{name: "only nested model", body: `{"x":{"model":"a"}}`, err: ErrMissingModel},
		{name: "a case variant of model is refused", body: `{"Model":"a"}`, err: ErrDuplicateKey},

		{name: "array", body: `[{"model":"a"}]`, err: ErrNotObject},
		{name: "string", body: `"model"`, err: ErrNotObject},
		{name: "number", body: ` 1 `, err: ErrNotObject},
		{name: "null", body: `null`, err: ErrNotObject},

		{name: "empty body", body: ``, err: ErrInvalidJSON},
		{name: "only whitespace", body: " \n", err: ErrInvalidJSON},
		{name: "truncated object", body: `{"model":"a"`, err: ErrInvalidJSON},
		{name: "truncated string", body: `{"model":"` + secret, err: ErrInvalidJSON},
		{name: "truncated key", body: `{"mod`, err: ErrInvalidJSON},
		{name: "truncated after colon", body: `{"model":`, err: ErrInvalidJSON},
		{name: "truncated nested", body: `{"model":"a","m":[{"c":"` + secret + `"}`, err: ErrInvalidJSON},
		{name: "open brace", body: `{`, err: ErrInvalidJSON},
		{name: "truncated array", body: `[1,`, err: ErrInvalidJSON},
		{name: "trailing comma object", body: `{"model":"a",}`, err: ErrInvalidJSON},
		{name: "trailing comma nested", body: `{"model":"a","x":[1,2,]}`, err: ErrInvalidJSON},
		{name: "leading comma", body: `{,"model":"a"}`, err: ErrInvalidJSON},
		{name: "double comma", body: `{"model":"a",,"b":1}`, err: ErrInvalidJSON},
		{name: "missing colon", body: `{"model" "a"}`, err: ErrInvalidJSON},
		{name: "missing comma", body: `{"model":"a" "b":1}`, err: ErrInvalidJSON},
		{name: "trailing garbage", body: `{"model":"a"} ` + secret, err: ErrInvalidJSON},
		{name: "two objects", body: `{"model":"a"}{"model":"b"}`, err: ErrInvalidJSON},
		{name: "extra brace", body: `{"model":"a"}}`, err: ErrInvalidJSON},
		{name: "single quotes", body: `{'model':'a'}`, err: ErrInvalidJSON},
		{name: "bare key", body: `{model:"a"}`, err: ErrInvalidJSON},
		{name: "invalid escape", body: `{"model":"a\x` + secret + `"}`, err: ErrInvalidJSON},
		{name: "short unicode escape", body: `{"model":"a\u12"}`, err: ErrInvalidJSON},
		{name: "bad hex", body: `{"model":"a\u12g4"}`, err: ErrInvalidJSON},
		{name: "raw newline in string", body: "{\"model\":\"a\nb\"}", err: ErrInvalidJSON},
		{name: "raw tab in key", body: "{\"mo\tdel\":\"a\"}", err: ErrInvalidJSON},
		{name: "raw nul", body: "{\"model\":\"a\x00\"}", err: ErrInvalidJSON},
		{name: "leading zero", body: `{"model":"a","n":01}`, err: ErrInvalidJSON},
		{name: "bare dot", body: `{"model":"a","n":1.}`, err: ErrInvalidJSON},
		{name: "leading dot", body: `{"model":"a","n":.5}`, err: ErrInvalidJSON},
		{name: "bare exponent", body: `{"model":"a","n":1e}`, err: ErrInvalidJSON},
		{name: "exponent sign only", body: `{"model":"a","n":1e+}`, err: ErrInvalidJSON},
		{name: "plus sign", body: `{"model":"a","n":+1}`, err: ErrInvalidJSON},
		{name: "minus only", body: `{"model":"a","n":-}`, err: ErrInvalidJSON},
		{name: "nan", body: `{"model":"a","n":NaN}`, err: ErrInvalidJSON},
		{name: "hex number", body: `{"model":"a","n":0x1}`, err: ErrInvalidJSON},
		{name: "bad literal", body: `{"model":"a","stream":tru}`, err: ErrInvalidJSON},
		{name: "literal suffix", body: `{"model":"a","stream":truex}`, err: ErrInvalidJSON},
		{name: "capital literal", body: `{"model":"a","stream":True}`, err: ErrInvalidJSON},
		{name: "comment", body: `{"model":"a" /* c */}`, err: ErrInvalidJSON},
		{name: "bom", body: "\xef\xbb\xbf{\"model\":\"a\"}", err: ErrInvalidJSON},
		{name: "vertical tab whitespace", body: "{\v\"model\":\"a\"}", err: ErrInvalidJSON},
		{name: "syntax beats field error", body: `{"model":5,` + secret, err: ErrInvalidJSON},
		{name: "syntax beats duplicate", body: `{"model":"a","model":"b"`, err: ErrInvalidJSON},
		{name: "array mismatched close", body: `{"model":"a","x":[1}`, err: ErrInvalidJSON},
		{name: "deep nesting over limit", body: `{"model":"m","x":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`, err: ErrTooDeep},
		{name: "messages depth over limit", body: `{"model":"m","messages":[` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `]}`, err: ErrTooDeep},
		{name: "input depth over limit", body: `{"model":"m","input":[{"a":` + strings.Repeat("[", MaxDepth-2) + strings.Repeat("]", MaxDepth-2) + `}]}`, err: ErrTooDeep},
		{name: "include depth over limit", body: `{"model":"m","include":[` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `]}`, err: ErrTooDeep},
		{name: "deep objects over limit", body: strings.Repeat(`{"a":`, MaxDepth+1) + `1` + strings.Repeat("}", MaxDepth+1), err: ErrTooDeep},
		{name: "deep non-object", body: strings.Repeat("[", 10000), err: ErrTooDeep},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			got, err := ParseRequest(body)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				require.Equal(t, Request{}, got)
				require.NotContains(t, err.Error(), secret)
				require.Equal(t, strings.ToLower(err.Error()), err.Error(), "error text is lowercase")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.model, got.Model)
			require.Equal(t, tc.stream, got.Stream)
			require.True(t, json.Valid(body))
		})
	}
}

func TestParseRequestTooDeepIsInvalidJSON(t *testing.T) {
	body := []byte(`{"model":"m","x":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`)
	_, err := ParseRequest(body)
	require.ErrorIs(t, err, ErrInvalidJSON)
	require.ErrorIs(t, err, ErrTooDeep)
	require.False(t, ValidJSON(body))
	require.True(t, json.Valid(body), "only the depth cap rejects it")
}

func TestParseRequestErrorOffset(t *testing.T) {
	_, err := ParseRequest([]byte(`{"model":"a",}`))
	require.ErrorContains(t, err, "offset 13")
}

func TestValidJSON(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`{}`, true},
		{`[]`, true},
		{`0`, true},
		{`-0.0e-0`, true},
		{` "x" `, true},
		{`null`, true},
		{`[1,[2,{"a":[true,false,null]}]]`, true},
		{`"\ud800"`, true}, // lone surrogates are valid syntax
		{"\"\xff\"", true}, // UTF-8 is not checked, like encoding/json
		{``, false},
		{`[`, false},
		{`]`, false},
		{`[1 2]`, false},
		{`{"a"}`, false},
		{`{"a":}`, false},
		{`{1:2}`, false},
		{`"`, false},
		{`"\`, false},
		{`"\u"`, false},
		{`"\u00`, false},
		{`1 1`, false},
		{`-01`, false},
		{`1.e5`, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			require.Equal(t, tc.want, ValidJSON([]byte(tc.in)))
			require.Equal(t, json.Valid([]byte(tc.in)), ValidJSON([]byte(tc.in)))
		})
	}
}

// TestStringScanBoundaries moves quotes, escapes and control bytes across
// every position of the eight-byte fast path.
func TestStringScanBoundaries(t *testing.T) {
	for pad := range 24 {
		prefix := strings.Repeat("a", pad)
		for _, tail := range []string{`"`, `\"x"`, `\u0041"`, "\x01\"", "\xc3\xa9\"", `\\"`, `\q"`} {
			body := []byte(`{"model":"` + prefix + tail + `}`)
			require.Equal(t, json.Valid(body), ValidJSON(body), "pad %d tail %q", pad, tail)
			r, err := ParseRequest(body)
			if err == nil {
				var m map[string]any
				require.NoError(t, json.Unmarshal(body, &m))
				require.Equal(t, m["model"], r.Model)
			}
		}
	}
}

func TestWithModel(t *testing.T) {
	bodies := []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true}`,
		`{ "messages" : [ ] ,  "model" :  "gpt-4o"  }`,
		`{"mod\u0065l":"gpt\u002d4o","x":{"model":"inner"}}`,
		"{\"model\":\"m\u00fcnchen\",\"t\":\"\xff\"}",
	}
	models := []string{
		"claude-3-5-sonnet", `a"b`, `back\slash`, "new\nline", "nul\x00", "tab\tand\x1f",
		"ünïcødé-模型", "line\u2028sep", "emoji😀", "x", strings.Repeat("long-", 1000),
	}
	for _, body := range bodies {
		for _, model := range models {
			t.Run(fmt.Sprintf("%.20s/%.20q", body, model), func(t *testing.T) {
				b := []byte(body)
				r, err := ParseRequest(b)
				require.NoError(t, err)
				out := r.WithModel(b, model)
				require.True(t, json.Valid(out))
				// Everything outside the model value is byte-identical.
				require.Equal(t, b[:r.modelStart], out[:r.modelStart])
				require.Equal(t, b[r.modelEnd:], out[len(out)-(len(b)-r.modelEnd):])
				r2, err := ParseRequest(out)
				require.NoError(t, err)
				require.Equal(t, model, r2.Model)
				require.Equal(t, r.Stream, r2.Stream)
				var m map[string]any
				require.NoError(t, json.Unmarshal(out, &m))
				require.Equal(t, model, m["model"])
			})
		}
	}
}

func TestWithModelUnchangedReturnsSameSlice(t *testing.T) {
	body := []byte(`{"model":"gpt-4o"}`)
	r, err := ParseRequest(body)
	require.NoError(t, err)
	out := r.WithModel(body, "gpt-4o")
	require.Same(t, &body[0], &out[0])
	require.Len(t, out, len(body))
}

func TestWithModelInvalidUTF8(t *testing.T) {
	body := []byte(`{"model":"a"}`)
	r, err := ParseRequest(body)
	require.NoError(t, err)
	out := r.WithModel(body, "b\xffc")
	require.Equal(t, `{"model":"b\ufffdc"}`, string(out))
	r2, err := ParseRequest(out)
	require.NoError(t, err)
	require.Equal(t, "b\uFFFDc", r2.Model)
}

func TestWithModelMismatchedBody(t *testing.T) {
	body := []byte(`{"model":"gpt-4o"}`)
	r, err := ParseRequest(body)
	require.NoError(t, err)
	tests := []struct {
		name string
		r    Request
		body []byte
	}{
		{"zero request", Request{}, body},
		{"shorter body", r, body[:10]},
		{"other body", r, []byte(`{"x":1,"model":"gpt-4o"}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Nil(t, tc.r.WithModel(tc.body, "other"))
		})
	}
}

func TestParseRequestCountsMessages(t *testing.T) {
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"model":"m","messages":[]}`, 0},
		{`{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":[1,[2]]}]}`, 2},
		{`{"model":"m","input":[{"role":"user"},{"role":"user"},"x"]}`, 3},
		{`{"model":"m","input":"just text"}`, 0},
		{`{"model":"m","x":{"messages":[1,2,3]}}`, 0},
	} {
		r, err := ParseRequest([]byte(tc.body))
		require.NoError(t, err, tc.body)
		require.Equal(t, tc.want, r.Messages, tc.body)
	}
	_, err := ParseRequest([]byte(`{"model":"m","messages":[],"messages":[1]}`))
	require.ErrorIs(t, err, ErrDuplicateKey)
}

func TestParseRequestRefusesCaseVariantsOfKnownFields(t *testing.T) {
	for _, body := range []string{
		`{"model":"cheap","Model":"expensive"}`,
		`{"MODEL":"expensive"}`,
		`{"model":"m","Stream":true}`,
		`{"model":"m","max_tokens":5,"MAX_TOKENS":50000}`,
		`{"model":"m","meſſages":[]}`,
		"{\"model\":\"m\",\"max_to\u212aens\":9}",
	} {
		_, err := ParseRequest([]byte(body))
		require.ErrorIs(t, err, ErrDuplicateKey, body)
	}
	_, err := ParseRequest([]byte(`{"model":"m","Temperature":1,"temperature":2}`))
	require.NoError(t, err, "unknown fields are the provider's business")
}

func TestParseRequestLogprobs(t *testing.T) {
	for body, want := range map[string]bool{
		`{"model":"m"}`: false,
		`{"model":"m","logprobs":false,"top_logprobs":0}`: false,
		`{"model":"m","logprobs":null}`:                   false,
		`{"model":"m","logprobs":true}`:                   true,
		`{"model":"m","logprobs":5}`:                      true,
		`{"model":"m","logprobs":false,"top_logprobs":3}`: true,
		// Responses asks for logprobs through include (issue 8 item 3).
		`{"model":"m","include":["message.output_text.logprobs"]}`:                               true,
		`{"model":"m","include":["reasoning.encrypted_content","message.output_text.logprobs"]}`: true,
		`{"model":"m","include":["message.output_text.\u006cogprobs"]}`:                          true,
		`{"model":"m","include":["message.output_text.LOGPROBS"]}`:                               true,
		`{"model":"m","include":"message.output_text.logprobs"}`:                                 true,
		`{"model":"m","include":[{"x":1}]}`:                                                      true,
		`{"model":"m","include":["reasoning.encrypted_content"]}`:                                false,
		`{"model":"m","include":[]}`:                                                             false,
		`{"model":"m","include":null}`:                                                           false,
	} {
		r, err := ParseRequest([]byte(body))
		require.NoError(t, err, body)
		require.Equal(t, want, r.Logprobs, body)
	}
}

func TestParseRequestLogprobsDuplicatesRefused(t *testing.T) {
	for _, body := range []string{
		`{"model":"m","logprobs":false,"logprobs":true}`,
		`{"model":"m","top_logprobs":0,"top_logprobs":5}`,
		`{"model":"m","include":[],"include":["message.output_text.logprobs"]}`,
		`{"model":"m","Include":["message.output_text.logprobs"]}`,
		`{"model":"m","Logprobs":true}`,
	} {
		_, err := ParseRequest([]byte(body))
		require.ErrorIs(t, err, ErrDuplicateKey, body)
	}
}

// TestParseRequestChoices: n and best_of multiply what a request may generate (issue 8
// item 2); every form a provider could read differently is refused.
func TestParseRequestChoices(t *testing.T) {
	for body, want := range map[string]int64{
		`{"model":"m"}`:                   1,
		`{"model":"m","n":null}`:          1,
		`{"model":"m","n":0}`:             1,
		`{"model":"m","n":50}`:            50,
		`{"model":"m","n":2,"best_of":7}`: 7,
		`{"model":"m","best_of":3,"n":2}`: 3,
		`{"model":"m","n":128}`:           128,
		`{"model":"m","n" : 4 }`:          4,
	} {
		r, err := ParseRequest([]byte(body))
		require.NoError(t, err, body)
		require.Equal(t, want, r.Choices, body)
	}
	for _, body := range []string{
		`{"model":"m","n":50.0}`, `{"model":"m","n":5e1}`, `{"model":"m","n":-1}`, `{"model":"m","n":"50"}`,
		`{"model":"m","n":129}`, `{"model":"m","best_of":true}`, `{"model":"m","n":99999999999999999999}`,
	} {
		_, err := ParseRequest([]byte(body))
		require.ErrorIs(t, err, ErrInvalidField, body)
	}
	for _, body := range []string{`{"model":"m","n":1,"n":50}`, `{"model":"m","N":50}`, `{"model":"m","Best_of":50}`} {
		_, err := ParseRequest([]byte(body))
		require.ErrorIs(t, err, ErrDuplicateKey, body)
	}
}

// TestParseRequestStoredInput: members that make the provider add input Tollgate never sees
// (a stored conversation, a stored prompt) are named, so the budget can refuse or bound them.
func TestParseRequestStoredInput(t *testing.T) {
	for _, tc := range []struct {
		body, want string
	}{
		{`{"model":"m","input":"hi","previous_response_id":"resp_123"}`, "previous_response_id"},
		{`{"model":"m","input":"hi","conversation":"conv_1"}`, "conversation"},
		{`{"model":"m","input":"hi","conversation":{"id":"conv_1"}}`, "conversation"},
		{`{"model":"m","prompt":{"id":"pmpt_1","version":"2"}}`, "prompt"},
		{`{"model":"m","prompt":{"id":"pmpt_1"},"previous_response_id":"r"}`, "prompt"},
		{`{"model":"m", "previous_response_id" : "resp_123"}`, "previous_response_id"},
		// null is absent; a legacy completions prompt is text.
		{`{"model":"m","input":"hi","previous_response_id":null,"conversation":null}`, ""},
		{`{"model":"m","prompt":"Say hi"}`, ""},
		{`{"model":"m","prompt":["Say hi",[1,2]]}`, ""},
		{`{"model":"m","metadata":{"previous_response_id":"r"}}`, ""},
		// Files and media the provider fetches, at any depth.
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`, "file_id"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_url":"https://e.com/a.pdf"}]}]}`, "file_url"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://e.com/a.png"}}]}]}`, "url"},
		{`{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"HTTP://e.com/a.png"}]}]}`, "image_url"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://e.com/a.pdf"}}]}]}`, "url"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"file_1"}}]}]}`, "file_id"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":" gs://bucket/a.png"}}]}]}`, "url"},
		{`{"model":"m","file_id":"file-1"}`, "file_id"},
		// A key written with escapes is the same key to the provider.
		{`{"model":"m","messages":[{"content":[{"file":{"file\u005fid":"file-1"}}]}]}`, "file_id"},
		{`{"model":"m","messages":[{"content":[{"image_url":{"\u0075rl":"https://e.com/a.png"}}]}]}`, "url"},
		// Inline data, null ids and urls elsewhere are counted by their bytes or not read.
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}`, ""},
		{`{"model":"m","input":[{"type":"input_image","image_url":"DATA:image/png;base64,iVBO"}]}`, ""},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":null,"file_data":"data:application/pdf;base64,JVBE"}}]}]}`, ""},
		{`{"model":"m","messages":[{"role":"assistant","content":[{"type":"text","text":"x","annotations":[{"type":"url_citation","url":"https://e.com"}]}]}]}`, ""},
		{`{"model":"m","tools":[{"type":"function","function":{"name":"f","parameters":{"properties":{"url":{"type":"string"},"file_id":{"type":"string"}}}}}]}`, ""},
		{`{"model":"m","metadata":{"file_id":"f","image_url":"https://e.com"},"user":"u","messages":[]}`, ""},
	} {
		t.Run(tc.body, func(t *testing.T) {
			req, err := ParseRequest([]byte(tc.body))
			require.NoError(t, err)
			require.Equal(t, tc.want, req.StoredInput)
		})
	}
	// A case variant (read by servers that match keys case-insensitively) is refused.
	_, err := ParseRequest([]byte(`{"model":"m","Previous_Response_Id":"r"}`))
	require.ErrorIs(t, err, ErrDuplicateKey)
	_, err = ParseRequest([]byte(`{"model":"m","conversation":"a","conversation":"b"}`))
	require.ErrorIs(t, err, ErrDuplicateKey)
}

// TestParseRequestHostedTool: tools the provider runs itself (billed beyond tokens, for as
// many rounds as the model wants) are named; tools the client runs are not.
func TestParseRequestHostedTool(t *testing.T) {
	for _, tc := range []struct {
		body, want string
	}{
		{`{"model":"m","input":"hi","tools":[{"type":"web_search"}]}`, "web_search"},
		{`{"model":"m","input":"hi","tools":[{"type":"function","name":"f"},{"type":"file_search","vector_store_ids":["vs_1"]}]}`, "file_search"},
		{`{"model":"m","input":"hi","tools":[{"type":"mcp","server_url":"https://e.com"}]}`, "mcp"},
		{`{"model":"m","max_tokens":5,"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":5}]}`, "web_search_20250305"},
		{`{"model":"m","max_tokens":5,"messages":[],"tools":[{"type":"code_execution_20250825","name":"code_execution"}]}`, "code_execution_20250825"},
		{`{"model":"m","input":"hi","tools":[{"type":"some_tool_from_next_year"}]}`, "some_tool_from_next_year"},
		{`{"model":"m","input":"hi","tools":[{"t\u0079pe":"web_search"}]}`, "web_search"},
		{`{"model":"m","input":"hi","tools":[{"type":""}]}`, `""`},
		{`{"model":"m","messages":[],"web_search_options":{}}`, "web_search_options"},
		{`{"model":"m","max_tokens":5,"messages":[],"mcp_servers":[{"type":"url","url":"https://e.com/sse","name":"x"}]}`, "mcp_servers"},
		{`{"model":"m","max_tokens":5,"messages":[],"container":"container_1"}`, "container"},
		// The client runs these: one request is one model call.
		{`{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}`, ""},
		{`{"model":"m","max_tokens":5,"messages":[],"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}`, ""},
		{`{"model":"m","max_tokens":5,"messages":[],"tools":[{"type":"custom","name":"x","input_schema":{}},{"type":"bash_20250124","name":"bash"},{"type":"text_editor_20250728","name":"str_replace_based_edit_tool"}]}`, ""},
		{`{"model":"m","input":"hi","tools":[{"type":"computer_use_preview","display_width":1024,"display_height":768,"environment":"linux"},{"type":"local_shell"},{"type":"custom","name":"x"}]}`, ""},
		{`{"model":"m","messages":[],"tools":[],"web_search_options":null,"mcp_servers":null,"container":null}`, ""},
	} {
		t.Run(tc.body, func(t *testing.T) {
			req, err := ParseRequest([]byte(tc.body))
			require.NoError(t, err)
			require.Equal(t, tc.want, req.HostedTool)
		})
	}
	_, err := ParseRequest([]byte(`{"model":"m","tools":[],"Tools":[{"type":"web_search"}]}`))
	require.ErrorIs(t, err, ErrDuplicateKey)
}

// TestParseRequestServiceTier reads the service tier, which changes what a request costs.
func TestParseRequestServiceTier(t *testing.T) {
	for body, want := range map[string]string{
		`{"model":"m","service_tier":"priority"}`:      "priority",
		`{"model":"m","service_tier":"pr\u0069ority"}`: "priority",
		`{"model":"m","service_tier":"flex"}`:          "flex",
		`{"model":"m","service_tier":""}`:              `""`,
		`{"model":"m","service_tier":null}`:            "",
		`{"model":"m"}`:                                "",
	} {
		req, err := ParseRequest([]byte(body))
		require.NoError(t, err, body)
		require.Equal(t, want, req.ServiceTier, body)
	}
	_, err := ParseRequest([]byte(`{"model":"m","service_tier":1}`))
	require.ErrorIs(t, err, ErrInvalidField)
	_, err = ParseRequest([]byte(`{"model":"m","service_tier":"auto","Service_Tier":"priority"}`))
	require.ErrorIs(t, err, ErrDuplicateKey)
}

// TestParseRequestCountsTools counts the tools and the Anthropic-defined ones among them.
func TestParseRequestCountsTools(t *testing.T) {
	req, err := ParseRequest([]byte(`{"model":"m","tools":[{"name":"f"},{"type":"bash_20250124","name":"bash"},{"type":"computer_20250124","name":"computer"},{"type":"function"}]}`))
	require.NoError(t, err)
	require.Equal(t, 4, req.Tools)
	require.Equal(t, 2, req.DefinedTools)
	req, err = ParseRequest([]byte(`{"model":"m","tools":null}`))
	require.NoError(t, err)
	require.Zero(t, req.Tools)
}
