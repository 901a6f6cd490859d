package llm

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseRequestBudgetFields(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name    string
		body    string
		max     int64
		field   string
		include bool
		err     error
	}{
		{name: "none", body: `{"model":"m"}`},
		{name: "max_tokens", body: `{"model":"m","max_tokens":1024}`, max: 1024, field: FieldMaxTokens},
		{name: "max_completion_tokens", body: `{"max_completion_tokens":50,"model":"m"}`, max: 50, field: FieldMaxCompletionTokens},
		{name: "max_output_tokens", body: `{"model":"m","max_output_tokens":4096}`, max: 4096, field: FieldMaxOutputTokens},
		{name: "largest wins", body: `{"model":"m","max_tokens":100,"max_completion_tokens":300,"max_output_tokens":200}`, max: 300, field: FieldMaxCompletionTokens},
		{name: "tie keeps first", body: `{"model":"m","max_completion_tokens":5,"max_tokens":5}`, max: 5, field: FieldMaxCompletionTokens},
		{name: "zero is present", body: `{"model":"m","max_tokens":0}`, max: 0, field: FieldMaxTokens},
		{name: "null is absent", body: `{"model":"m","max_tokens":null}`},
		{name: "null and value", body: `{"model":"m","max_tokens":null,"max_output_tokens":9}`, max: 9, field: FieldMaxOutputTokens},
		{name: "int64 max", body: `{"model":"m","max_tokens":9223372036854775807}`, max: 1<<63 - 1, field: FieldMaxTokens},
		{name: "escaped key", body: `{"model":"m","max_tok\u0065ns":7}`, max: 7, field: FieldMaxTokens},
		{name: "nested ignored", body: `{"model":"m","x":{"max_tokens":7,"max_tokens":"a"},"messages":[{"max_tokens":-1}]}`},
		{name: "whitespace", body: "{\"model\":\"m\",\"max_tokens\" :\t 12 }", max: 12, field: FieldMaxTokens},

		{name: "overflow", body: `{"model":"m","max_tokens":9223372036854775808}`, err: ErrInvalidField},
		{name: "negative", body: `{"model":"m","max_tokens":-1}`, err: ErrInvalidField},
		{name: "minus zero", body: `{"model":"m","max_tokens":-0}`, err: ErrInvalidField},
		{name: "fraction", body: `{"model":"m","max_tokens":1.5}`, err: ErrInvalidField},
		{name: "integral fraction", body: `{"model":"m","max_output_tokens":100.0}`, err: ErrInvalidField},
		{name: "exponent", body: `{"model":"m","max_completion_tokens":1e3}`, err: ErrInvalidField},
		{name: "string", body: `{"model":"m","max_tokens":"` + secret + `"}`, err: ErrInvalidField},
		{name: "bool", body: `{"model":"m","max_tokens":true}`, err: ErrInvalidField},
		{name: "object", body: `{"model":"m","max_tokens":{"n":1}}`, err: ErrInvalidField},
		{name: "array", body: `{"model":"m","max_tokens":[1]}`, err: ErrInvalidField},
		{name: "duplicate max", body: `{"model":"m","max_tokens":1,"max_tokens":2}`, err: ErrDuplicateKey},
		{name: "duplicate max escaped", body: `{"model":"m","max_tokens":1,"max_tok\u0065ns":null}`, err: ErrDuplicateKey},
		{name: "syntax beats field", body: `{"model":"m","max_tokens":-1,` + secret, err: ErrInvalidJSON},
		{name: "bad number", body: `{"model":"m","max_tokens":01}`, err: ErrInvalidJSON},
		{name: "truncated number", body: `{"model":"m","max_tokens":`, err: ErrInvalidJSON},

		{name: "include true", body: `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`, include: true},
		{name: "include false", body: `{"model":"m","stream_options":{"include_usage":false}}`},
		{name: "include null", body: `{"model":"m","stream_options":{"include_usage":null}}`},
		{name: "include string", body: `{"model":"m","stream_options":{"include_usage":"true"}}`},
		{name: "include among others", body: `{"model":"m","stream_options":{"include_obfuscation":false,"x":{"include_usage":false}, "include_usage" : true }}`, include: true},
		{name: "include escaped key", body: `{"model":"m","stream_options":{"include_\u0075sage":true}}`, include: true},
		{name: "include deeper ignored", body: `{"model":"m","stream_options":{"x":{"include_usage":true}}}`},
		{name: "include top-level ignored", body: `{"model":"m","include_usage":true}`},
		{name: "options empty", body: `{"model":"m","stream_options":{}}`},
		{name: "options null", body: `{"model":"m","stream_options":null}`},
		{name: "options string", body: `{"model":"m","stream_options":"include_usage"}`},
		{name: "options array", body: `{"model":"m","stream_options":[{"include_usage":true}]}`},
		{name: "options nested duplicates allowed", body: `{"model":"m","stream_options":{"a":1,"a":2,"include_usage":true}}`, include: true},
		{name: "options depth at limit", body: `{"model":"m","stream_options":{"x":` + deep(MaxDepth-2) + `}}`},
		{name: "options depth over limit", body: `{"model":"m","stream_options":{"x":` + deep(MaxDepth-1) + `}}`, err: ErrTooDeep},
		{name: "duplicate include", body: `{"model":"m","stream_options":{"include_usage":false,"include_usage":true}}`, err: ErrDuplicateKey},
		{name: "duplicate include escaped", body: `{"model":"m","stream_options":{"include_usage":true,"\u0069nclude_usage":true}}`, err: ErrDuplicateKey},
		{name: "duplicate options", body: `{"model":"m","stream_options":{},"stream_options":{"include_usage":true}}`, err: ErrDuplicateKey},
		{name: "options trailing comma", body: `{"model":"m","stream_options":{"include_usage":true,}}`, err: ErrInvalidJSON},
		{name: "options missing value", body: `{"model":"m","stream_options":{"include_usage"}}`, err: ErrInvalidJSON},
		{name: "options bare key", body: `{"model":"m","stream_options":{include_usage:true}}`, err: ErrInvalidJSON},
		{name: "options unterminated", body: `{"model":"m","stream_options":{"include_usage":true`, err: ErrInvalidJSON},
		{name: "options bad literal", body: `{"model":"m","stream_options":{"include_usage":tru}}`, err: ErrInvalidJSON},
		{name: "missing model still reported", body: `{"stream_options":{"include_usage":true},"max_tokens":5}`, err: ErrMissingModel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			got, err := ParseRequest(body)
			require.Equal(t, json.Valid(body) && tc.err != ErrTooDeep, ValidJSON(body))
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				require.Equal(t, Request{}, got)
				require.NotContains(t, err.Error(), secret)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "m", got.Model)
			require.Equal(t, tc.max, got.MaxTokens)
			require.Equal(t, tc.field, got.MaxTokensField)
			require.Equal(t, tc.include, got.IncludeUsage)
		})
	}
}

// checkRewrite asserts that out is valid JSON, parses, and keeps the
// fields the rewrite did not target.
func checkRewrite(t *testing.T, r Request, out []byte) Request {
	t.Helper()
	require.True(t, json.Valid(out), "%s", out)
	r2, err := ParseRequest(out)
	require.NoError(t, err, "%s", out)
	require.Equal(t, r.Model, r2.Model)
	require.Equal(t, r.Stream, r2.Stream)
	return r2
}

func TestWithIncludeUsage(t *testing.T) {
	const iu = `"include_usage":true`
	tests := []struct {
		name string
		body string
		want string // "" means: body itself is returned
		err  error
	}{
		{name: "absent", body: `{"model":"m","stream":true}`, want: `{"model":"m","stream":true,"stream_options":{` + iu + `}}`},
		{name: "absent spaced", body: `{ "model" : "m" , "stream" : true }`, want: `{ "model" : "m" , "stream" : true,"stream_options":{` + iu + `} }`},
		{name: "absent pretty", body: "{\n  \"model\": \"m\",\n  \"messages\": []\n}\n", want: "{\n  \"model\": \"m\",\n  \"messages\": [],\"stream_options\":{" + iu + "}\n}\n"},
		{name: "null", body: `{"model":"m","stream_options":null,"stream":true}`, want: `{"model":"m","stream_options":{` + iu + `},"stream":true}`},
		{name: "empty object", body: `{"model":"m","stream_options":{}}`, want: `{"model":"m","stream_options":{` + iu + `}}`},
		{name: "empty object spaced", body: `{"model":"m","stream_options": { } }`, want: `{"model":"m","stream_options": {` + iu + ` } }`},
		{name: "other member", body: `{"model":"m","stream_options":{"include_obfuscation":false}}`, want: `{"model":"m","stream_options":{"include_obfuscation":false,` + iu + `}}`},
		{name: "other member spaced", body: `{"model":"m","stream_options":{ "a" : [1, {"include_usage":false}] } }`, want: `{"model":"m","stream_options":{ "a" : [1, {"include_usage":false}],` + iu + ` } }`},
		{name: "false", body: `{"stream_options":{"include_usage":false},"model":"m"}`, want: `{"stream_options":{"include_usage":true},"model":"m"}`},
		{name: "false spaced", body: `{"stream_options":{ "include_usage" : false , "x":1},"model":"m"}`, want: `{"stream_options":{ "include_usage" : true , "x":1},"model":"m"}`},
		{name: "null value", body: `{"model":"m","stream_options":{"include_usage":null}}`, want: `{"model":"m","stream_options":{` + iu + `}}`},
		{name: "string value", body: `{"model":"m","stream_options":{"include_usage":"yes"}}`, want: `{"model":"m","stream_options":{` + iu + `}}`},
		{name: "escaped keys kept", body: `{"model":"m","stream_opti\u006fns":{"include_\u0075sage":false}}`, want: `{"model":"m","stream_opti\u006fns":{"include_\u0075sage":true}}`},
		{name: "already true", body: `{"model":"m","stream_options":{"include_usage":true}}`},
		{name: "already true spaced", body: `{"model":"m","stream_options":{ "include_usage" :true}}`},
		{name: "string options", body: `{"model":"m","stream_options":"x"}`, err: ErrInvalidField},
		{name: "array options", body: `{"model":"m","stream_options":[]}`, err: ErrInvalidField},
		{name: "number options", body: `{"model":"m","stream_options":1}`, err: ErrInvalidField},
		{name: "bool options", body: `{"model":"m","stream_options":false}`, err: ErrInvalidField},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			r, err := ParseRequest(body)
			require.NoError(t, err)
			out, err := r.WithIncludeUsage(body)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				require.Nil(t, out)
				return
			}
			require.NoError(t, err)
			if tc.want == "" {
				require.Same(t, &body[0], &out[0])
				require.Len(t, out, len(body))
				return
			}
			require.Equal(t, tc.want, string(out))
			r2 := checkRewrite(t, r, out)
			require.True(t, r2.IncludeUsage)
			require.Equal(t, tc.body, string(body), "input untouched")
		})
	}
}

func TestWithMaxTokens(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		field string
		n     int64
		want  string // "" means: body itself is returned
		max   int64  // MaxTokens after re-parsing
	}{
		{"insert", `{"model":"m"}`, FieldMaxTokens, 100, `{"model":"m","max_tokens":100}`, 100},
		{"insert spaced", "{ \"model\" : \"m\" \n}", FieldMaxOutputTokens, 7, "{ \"model\" : \"m\",\"max_output_tokens\":7 \n}", 7},
		{"replace", `{"model":"m","max_tokens":4096,"x":1}`, FieldMaxTokens, 1024, `{"model":"m","max_tokens":1024,"x":1}`, 1024},
		{"replace spaced", `{"model":"m" , "max_output_tokens" : 10 }`, FieldMaxOutputTokens, 20000, `{"model":"m" , "max_output_tokens" : 20000 }`, 20000},
		{"replace null", `{"model":"m","max_completion_tokens":null}`, FieldMaxCompletionTokens, 256, `{"model":"m","max_completion_tokens":256}`, 256},
		{"replace escaped key", `{"max_tok\u0065ns":5,"model":"m"}`, FieldMaxTokens, 0, `{"max_tok\u0065ns":0,"model":"m"}`, 0},
		{"insert beside other cap", `{"model":"m","max_tokens":10}`, FieldMaxCompletionTokens, 5, `{"model":"m","max_tokens":10,"max_completion_tokens":5}`, 10},
		{"int64 max", `{"model":"m","max_tokens":1}`, FieldMaxTokens, 1<<63 - 1, `{"model":"m","max_tokens":9223372036854775807}`, 1<<63 - 1},
		{"unchanged", `{"model":"m","max_tokens":64}`, FieldMaxTokens, 64, "", 64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			r, err := ParseRequest(body)
			require.NoError(t, err)
			out := r.WithMaxTokens(body, tc.field, tc.n)
			if tc.want == "" {
				require.Same(t, &body[0], &out[0])
				return
			}
			require.Equal(t, tc.want, string(out))
			r2 := checkRewrite(t, r, out)
			require.Equal(t, tc.max, r2.MaxTokens)
			require.Equal(t, r.IncludeUsage, r2.IncludeUsage)
		})
	}
}

func TestRewriteMismatchedBody(t *testing.T) {
	body := []byte(`{"model":"m","stream_options":{"include_usage":false},"max_tokens":9}`)
	r, err := ParseRequest(body)
	require.NoError(t, err)
	other := []byte(`{"model":"m","x":"` + strings.Repeat("y", len(body)-len(`{"model":"m","x":""}`)) + `"}`)
	require.Len(t, other, len(body))
	tests := []struct {
		name string
		r    Request
		body []byte
	}{
		{"zero request", Request{}, body},
		{"shorter body", r, body[:20]},
		{"empty body", r, nil},
		{"other body of same length", r, other},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.r.WithIncludeUsage(tc.body)
			require.ErrorIs(t, err, ErrBodyMismatch)
			require.Nil(t, out)
			require.Nil(t, tc.r.WithMaxTokens(tc.body, FieldMaxTokens, 1))
		})
	}
	require.Nil(t, r.WithMaxTokens(body, "temperature", 1), "unknown field")
	require.Nil(t, r.WithMaxTokens(body, FieldMaxTokens, -1), "negative")
}

// TestRewriteChain applies both rewrites as a gateway would, re-parsing in
// between.
func TestRewriteChain(t *testing.T) {
	body := []byte(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":8000}`)
	r, err := ParseRequest(body)
	require.NoError(t, err)
	require.Equal(t, int64(8000), r.MaxTokens)
	out, err := r.WithIncludeUsage(body)
	require.NoError(t, err)
	r, err = ParseRequest(out)
	require.NoError(t, err)
	out = r.WithMaxTokens(out, r.MaxTokensField, 2000)
	r, err = ParseRequest(out)
	require.NoError(t, err)
	require.Equal(t, `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":2000,"stream_options":{"include_usage":true}}`, string(out))
	require.True(t, r.IncludeUsage)
	require.Equal(t, int64(2000), r.MaxTokens)
}
