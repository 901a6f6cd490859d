package llm

import (
	"mime"
	"net/http"
	"strings"
)

// Dialect is the wire format a client speaks: it decides the shape of error
// bodies and model lists.
type Dialect int

// Dialects Tollgate serves. OpenAI also covers Azure OpenAI and
// OpenAI-compatible servers, whose client-facing shapes are the same.
const (
	OpenAI Dialect = iota
	Anthropic
)

// String returns "openai" or "anthropic", stable for logs and metrics labels.
func (d Dialect) String() string {
	if d == Anthropic {
		return "anthropic"
	}
	return "openai"
}

// Endpoint is a client-facing API operation that Tollgate accepts: an index into the table
// of registered Specs (see spec.go). The built-in endpoints are declared one family per file
// (dialect_*.go); Register adds one.
type Endpoint int

// EndpointUnknown is the zero value; Classify never returns it with a nil error.
const EndpointUnknown Endpoint = 0

// String returns a stable snake_case name ("chat_completions", "messages",
// ...) for logs and metrics labels; out-of-range values are "unknown".
func (e Endpoint) String() string { return e.Spec().Name }

// HasBody reports whether requests to the endpoint carry a JSON body that
// Tollgate must read before forwarding.
func (e Endpoint) HasBody() bool { return e.Spec().Method == http.MethodPost }

// Dialect returns the dialect of the endpoint's clients. An endpoint served to
// both dialects on one path (the model list) reports OpenAI; a caller
// answering an Anthropic client (one that sent anthropic-version) should use
// GuessDialect.
func (e Endpoint) Dialect() Dialect { return e.Spec().Dialect }

// Classify maps Envoy's :method and :path to an Endpoint. The query string is
// ignored; the path itself must match exactly, because Envoy has already
// normalized it and any leniency here (prefixes, trailing slashes, case) would
// let a request reach the provider under a name the policy did not check.
// An unknown path gives ErrUnknownEndpoint; a known path with another method
// (HEAD and OPTIONS included) gives ErrMethodNotAllowed.
func Classify(method, path string) (Endpoint, error) {
	p := stripQuery(path)
	all := specs()
	for i := 1; i < len(all); i++ {
		sp := &all[i]
		if p != sp.Path {
			continue
		}
		// HTTP methods are case-sensitive (RFC 9110 9.1), so "post" is not
		// POST.
		if method != sp.Method {
			return EndpointUnknown, ErrMethodNotAllowed
		}
		return Endpoint(i), nil
	}
	return EndpointUnknown, ErrUnknownEndpoint
}

// GuessDialect picks the dialect for an error body when the request did not
// classify: Anthropic for paths under an Anthropic endpoint's path (/v1/messages)
// or when the client sent an anthropic-version header, OpenAI otherwise.
func GuessDialect(path string, hasAnthropicVersion bool) Dialect {
	if hasAnthropicVersion {
		return Anthropic
	}
	p := stripQuery(path)
	all := specs()
	for i := 1; i < len(all); i++ {
		if sp := &all[i]; sp.Dialect == Anthropic && strings.HasPrefix(p, sp.Path) {
			return Anthropic
		}
	}
	return OpenAI
}

// stripQuery returns path without its query string.
func stripQuery(path string) string {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		return path[:i]
	}
	return path
}

// IsJSONContentType reports whether a content-type header value is
// application/json, case-insensitively, with optional parameters. A charset
// parameter other than UTF-8 is refused: RFC 8259 JSON exchanged between
// systems is UTF-8, and the body scanner assumes it. Structured-syntax types
// such as application/problem+json are not accepted.
func IsJSONContentType(v string) bool {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "utf8")
}
