package mockllm

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
)

// fields is a request body's top-level object. Keys match exactly (encoding/json struct
// decoding would also accept "Model"); a JSON null counts as absent.
type fields map[string]json.RawMessage

// fieldErr says why a field could not be read.
type fieldErr int

const (
	fieldOK fieldErr = iota
	fieldMissing
	fieldWrongType
)

func (f fields) raw(name string) (json.RawMessage, bool) {
	v, ok := f[name]
	if !ok || string(v) == "null" {
		return nil, false
	}
	return v, true
}

// str reads a non-empty string.
func (f fields) str(name string) (string, fieldErr) {
	v, ok := f.raw(name)
	if !ok {
		return "", fieldMissing
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", fieldWrongType
	}
	if s == "" {
		return "", fieldMissing
	}
	return s, fieldOK
}

// boolean reads an optional boolean; absent is false.
func (f fields) boolean(name string) (bool, fieldErr) {
	v, ok := f.raw(name)
	if !ok {
		return false, fieldMissing
	}
	var b bool
	if json.Unmarshal(v, &b) != nil {
		return false, fieldWrongType
	}
	return b, fieldOK
}

// integer reads a JSON integer.
func (f fields) integer(name string) (int64, fieldErr) {
	v, ok := f.raw(name)
	if !ok {
		return 0, fieldMissing
	}
	var n int64
	if json.Unmarshal(v, &n) != nil {
		return 0, fieldWrongType
	}
	return n, fieldOK
}

// array reads a JSON array.
func (f fields) array(name string) ([]json.RawMessage, fieldErr) {
	v, ok := f.raw(name)
	if !ok {
		return nil, fieldMissing
	}
	var a []json.RawMessage
	if json.Unmarshal(v, &a) != nil {
		return nil, fieldWrongType
	}
	return a, fieldOK
}

// object reads a JSON object.
func (f fields) object(name string) (fields, fieldErr) {
	v, ok := f.raw(name)
	if !ok {
		return nil, fieldMissing
	}
	var o fields
	if json.Unmarshal(v, &o) != nil || o == nil {
		return nil, fieldWrongType
	}
	return o, fieldOK
}

// openAIFieldError words a field problem like the OpenAI API.
func openAIFieldError(name string, fe fieldErr, want string) apiError {
	if fe == fieldMissing {
		return errParam(name, fmt.Sprintf("Missing required parameter: '%s'.", name))
	}
	return errParam(name, fmt.Sprintf("Invalid type for '%s': expected %s.", name, want))
}

// anthropicFieldError words a field problem like the Anthropic API.
func anthropicFieldError(name string, fe fieldErr, want string) apiError {
	if fe == fieldMissing {
		return errParam(name, name+": Field required")
	}
	return errParam(name, fmt.Sprintf("%s: Input should be %s", name, want))
}

// parseJSON checks the content type and parses body as a JSON object. On failure it has
// written the 400 and returns false.
func parseJSON(w http.ResponseWriter, r *http.Request, d dialect, body []byte) (fields, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, d, http.StatusBadRequest, errContentType)
		return nil, false
	}
	var f fields
	if json.Unmarshal(body, &f) != nil || f == nil {
		writeError(w, d, http.StatusBadRequest, errBadJSON)
		return nil, false
	}
	return f, true
}

// streamOptions reads "stream" and "stream_options.include_usage" of an OpenAI request.
func streamOptions(f fields) (stream, includeUsage bool, e *apiError) {
	stream, fe := f.boolean("stream")
	if fe == fieldWrongType {
		ae := openAIFieldError("stream", fe, "a boolean")
		return false, false, &ae
	}
	so, fe := f.object("stream_options")
	if fe == fieldWrongType {
		ae := openAIFieldError("stream_options", fe, "an object")
		return false, false, &ae
	}
	includeUsage, fe = so.boolean("include_usage")
	if fe == fieldWrongType {
		ae := openAIFieldError("stream_options.include_usage", fe, "a boolean")
		return false, false, &ae
	}
	return stream, includeUsage, nil
}

// openAIAuthorized checks "Authorization: Bearer <key>" or, Azure style, "api-key: <key>".
// On failure it has written the 401 and returns false. The key is never echoed.
func (s *Server) openAIAuthorized(w http.ResponseWriter, r *http.Request) bool {
	want := s.opts.OpenAIKey
	if want == "" {
		return true
	}
	auth := r.Header.Get("Authorization")
	azure := r.Header.Get("Api-Key")
	if auth == "" && azure == "" {
		writeError(w, dialectOpenAI, http.StatusUnauthorized, errOpenAIKeyMissing)
		return false
	}
	if scheme, token, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "Bearer") && keyEqual(strings.TrimSpace(token), want) {
		return true
	}
	if azure != "" && keyEqual(azure, want) {
		return true
	}
	writeError(w, dialectOpenAI, http.StatusUnauthorized, errOpenAIKeyWrong)
	return false
}

// anthropicAuthorized checks "x-api-key: <key>". On failure it has written the 401.
func (s *Server) anthropicAuthorized(w http.ResponseWriter, r *http.Request) bool {
	want := s.opts.AnthropicKey
	if want == "" || keyEqual(r.Header.Get("X-Api-Key"), want) {
		return true
	}
	writeError(w, dialectAnthropic, http.StatusUnauthorized, errAnthropicKey)
	return false
}

// keyEqual compares in constant time; the mock is a test double, but it costs nothing to
// model what a provider does.
func keyEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
