package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

var fuzzBodies = []string{
	`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true}`,
	`{"mod\u0065l":"a\"b","stream":null,"x":{"model":1}}`,
	`{"model":"a","model":"b"}`,
	`{"model":"\ud83d\ude00","n":-1.5e+3,"a":[true,false,null,{}]}`,
	`{"model":"\ud800"}`,
	"{\"model\":\"\xff\",\"\xfe\":1,\"\xfd\":2}",
	`[{"model":"a"}]`,
	`{"model":"a",}`,
	`{"model":"a"} x`,
	` {"stream":false , "model" : "m" } `,
	`{"a":[[[[[[[[[[]]]]]]]]]],"model":"m"}`,
	`{"model":"a\u0000\n\t\/"}`,
}

// topLevelKeys counts the members of a valid top-level object with
// encoding/json's tokenizer (duplicates included).
func topLevelKeys(t *testing.T, body []byte) int {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok)
	n := 0
	for dec.More() {
		_, err := dec.Token()
		require.NoError(t, err)
		var v json.RawMessage
		require.NoError(t, dec.Decode(&v))
		n++
	}
	return n
}

// maxDepth returns the container nesting depth of valid JSON.
func maxDepth(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// hasCaseVariant reports whether a top-level key is spelled differently from a known field
// it folds to (ParseRequest reports that as ErrDuplicateKey: encoding/json would merge them).
func hasCaseVariant(m map[string]json.RawMessage) bool {
	for k := range m {
		if f, ok := foldKnown([]byte(k)); ok && f != k {
			return true
		}
	}
	return false
}

func FuzzParseRequest(f *testing.F) {
	for _, b := range fuzzBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		valid := json.Valid(body)
		deepOK := !valid || maxDepth(body) <= MaxDepth
		require.Equal(t, valid && deepOK, ValidJSON(body))

		r, err := ParseRequest(body)
		if err != nil {
			require.Equal(t, Request{}, r)
			if errors.Is(err, ErrInvalidJSON) {
				require.False(t, valid && deepOK, "valid body reported as invalid json: %v", err)
				if valid {
					require.ErrorIs(t, err, ErrTooDeep)
				}
			} else {
				require.True(t, valid, "field error on malformed body: %v", err)
			}
			if errors.Is(err, ErrDuplicateKey) {
				var m map[string]json.RawMessage
				require.NoError(t, json.Unmarshal(body, &m))
				require.True(t, topLevelKeys(t, body) > len(m) || hasCaseVariant(m),
					"duplicate reported where encoding/json sees none and no key is a case variant of a known field")
			}
			return
		}
		require.True(t, valid)
		require.NotEmpty(t, r.Model)
		require.True(t, utf8.ValidString(r.Model))

		var m map[string]any
		require.NoError(t, json.Unmarshal(body, &m))
		require.Equal(t, topLevelKeys(t, body), len(m), "duplicate key accepted")
		require.Equal(t, r.Model, m["model"])
		stream, _ := m["stream"].(bool)
		require.Equal(t, stream, r.Stream)
		if s, ok := m["stream"]; ok {
			require.True(t, s == nil || s == true || s == false)
		}
		require.Equal(t, byte('"'), body[r.modelStart])
		require.Equal(t, byte('"'), body[r.modelEnd-1])
		// Whatever encoding/json sees the provider fetch, the parser names (it may name more:
		// it checks every copy of a duplicated key, the provider reads the last).
		if refStoredInput(m) {
			require.NotEmpty(t, r.StoredInput, "input the body does not carry went unnoticed")
		}
		if refHostedTool(m) {
			require.NotEmpty(t, r.HostedTool, "a tool the provider runs went unnoticed")
		}
	})
}

// refHostedTool is Request.HostedTool's rule on the decoded body.
func refHostedTool(m map[string]any) bool {
	for _, k := range []string{"web_search_options", "mcp_servers", "container"} {
		if v, ok := m[k]; ok && v != nil {
			return true
		}
	}
	tools, _ := m["tools"].([]any)
	for _, tool := range tools {
		o, _ := tool.(map[string]any)
		if typ, ok := o["type"].(string); ok && !isClientTool(typ) {
			return true
		}
	}
	return false
}

// refStoredInput is Request.StoredInput's rule on the decoded body: the oracle FuzzParseRequest
// holds the one-pass parser to.
func refStoredInput(m map[string]any) bool {
	for _, k := range []string{"previous_response_id", "conversation"} {
		if v, ok := m[k]; ok && v != nil {
			return true
		}
	}
	if _, ok := m["prompt"].(map[string]any); ok {
		return true
	}
	var walk func(v any, parent string) bool
	walk = func(v any, parent string) bool {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				if walk(e, "") {
					return true
				}
			}
		case map[string]any:
			for k, e := range x {
				s, isStr := e.(string)
				remote := isStr && !strings.HasPrefix(strings.ToLower(strings.TrimLeft(s, " \t\r\n")), "data:")
				switch {
				case (k == "file_id" || k == "file_url") && isStr,
					k == "image_url" && remote,
					k == "url" && remote && (parent == "image_url" || parent == "source"):
					return true
				}
				if walk(e, k) {
					return true
				}
			}
		}
		return false
	}
	top := map[string]any{}
	for k, v := range m {
		if k != "metadata" && k != "user" {
			top[k] = v
		}
	}
	return walk(top, "")
}

func FuzzWithModel(f *testing.F) {
	for _, b := range fuzzBodies {
		f.Add([]byte(b), "claude-3-5-sonnet")
		f.Add([]byte(b), "a\"b\\c\x00\n\u2028\xff")
	}
	f.Fuzz(func(t *testing.T, body []byte, model string) {
		r, err := ParseRequest(body)
		if err != nil {
			return
		}
		requireEditsMatchChain(t, r, body, []editOp{{kind: 'm', model: model}})
		requireEditsMatchChain(t, r, body, []editOp{{kind: 'c', n: 1 + int64(len(model)), field: FieldMaxTokens}, {kind: 'm', model: model}, {kind: 'u'}})
		out := r.WithModel(body, model)
		require.True(t, json.Valid(out))
		if model == r.Model {
			require.Same(t, &body[0], &out[0])
			return
		}
		require.Equal(t, body[:r.modelStart], out[:r.modelStart])
		require.Equal(t, body[r.modelEnd:], out[len(out)-(len(body)-r.modelEnd):])
		r2, err := ParseRequest(out)
		if model == "" {
			require.ErrorIs(t, err, ErrMissingModel)
			return
		}
		require.NoError(t, err)
		require.Equal(t, r.Stream, r2.Stream)
		if utf8.ValidString(model) {
			require.Equal(t, model, r2.Model)
		}
	})
}

func FuzzErrorBody(f *testing.F) {
	f.Add(400, "", "", "bad request", "", "")
	f.Add(401, "authentication_error", "invalid_api_key", "Invalid key \"x\"", "model", "req_1")
	f.Add(529, "t\x00", "\xff", "<script>\u2028", "p\n", "\xfe")
	f.Fuzz(func(t *testing.T, status int, typ, code, msg, param, requestID string) {
		e := APIError{Status: status, Type: typ, Code: code, Message: msg, Param: param}
		for _, d := range []Dialect{OpenAI, Anthropic} {
			out := ErrorBody(d, e, requestID)
			require.True(t, json.Valid(out), "%s: %q", d, out)
			var v struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal(out, &v))
			require.NotEmpty(t, v.Error.Type)
			require.NotEmpty(t, v.Error.Message)
			if d == Anthropic {
				require.Equal(t, "error", v.Type)
			}
			if msg != "" && utf8.ValidString(msg) {
				require.Equal(t, msg, v.Error.Message)
			}
		}
	})
}

// FuzzClassify: whatever path Envoy passes, Classify never panics, and an accepted request is
// exactly one of the endpoint paths (its query string aside): no prefix, case or trailing
// leniency could let a request reach the provider under a name policy did not check.
func FuzzClassify(f *testing.F) {
	for _, p := range []string{"/v1/chat/completions", "/v1/chat/completions?x=1", "//v1/chat/completions",
		"/v1/chat/completions/", "/V1/messages", "/v1/chat%2Fcompletions", "/v1/models?limit=2", "", "?", "/v1/messages#x"} {
		f.Add("POST", p)
		f.Add("GET", p)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		e, err := Classify(method, path)
		if err != nil {
			if e != EndpointUnknown {
				t.Fatalf("error with endpoint %v", e)
			}
			return
		}
		if stripQuery(path) != e.Spec().Path {
			t.Fatalf("%q classified as %v (%s)", path, e, e.Spec().Path)
		}
		if method != http.MethodGet && method != http.MethodPost {
			t.Fatalf("method %q accepted", method)
		}
	})
}
