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

// Endpoint is a client-facing API operation that Tollgate accepts.
type Endpoint int

// Endpoints Tollgate accepts. Anything else is denied by Classify.
const (
	// EndpointUnknown is the zero value; Classify never returns it with a nil
	// error.
	EndpointUnknown Endpoint = iota
	// ChatCompletions is POST /v1/chat/completions (OpenAI).
	ChatCompletions
	// Completions is POST /v1/completions (OpenAI legacy completions).
	Completions
	// Embeddings is POST /v1/embeddings (OpenAI).
	Embeddings
	// Responses is POST /v1/responses (OpenAI Responses API).
	Responses
	// Models is GET /v1/models. OpenAI and Anthropic share this path.
	Models
	// Messages is POST /v1/messages (Anthropic).
	Messages
)

// endpointInfo is the fixed description of one Endpoint.
type endpointInfo struct {
	name   string
	method string
	path   string
}

// endpoints is indexed by Endpoint; EndpointUnknown has no method or path.
var endpoints = [...]endpointInfo{
	EndpointUnknown: {name: "unknown"},
	ChatCompletions: {name: "chat_completions", method: http.MethodPost, path: "/v1/chat/completions"},
	Completions:     {name: "completions", method: http.MethodPost, path: "/v1/completions"},
	Embeddings:      {name: "embeddings", method: http.MethodPost, path: "/v1/embeddings"},
	Responses:       {name: "responses", method: http.MethodPost, path: "/v1/responses"},
	Models:          {name: "models", method: http.MethodGet, path: "/v1/models"},
	Messages:        {name: "messages", method: http.MethodPost, path: "/v1/messages"},
}

func (e Endpoint) info() endpointInfo {
	if e <= EndpointUnknown || int(e) >= len(endpoints) {
		return endpoints[EndpointUnknown]
	}
	return endpoints[e]
}

// String returns a stable snake_case name ("chat_completions", "messages",
// ...) for logs and metrics labels; out-of-range values are "unknown".
func (e Endpoint) String() string { return e.info().name }

// HasBody reports whether requests to the endpoint carry a JSON body that
// Tollgate must read before forwarding.
func (e Endpoint) HasBody() bool { return e.info().method == http.MethodPost }

// Dialect returns the dialect of the endpoint's clients. Models is served to
// both dialects on one path; it reports OpenAI, and a caller answering an
// Anthropic client (one that sent anthropic-version) should use GuessDialect.
func (e Endpoint) Dialect() Dialect {
	if e == Messages {
		return Anthropic
	}
	return OpenAI
}

// UpstreamPath returns the canonical path of the endpoint, such as
// "/v1/chat/completions", or "" for EndpointUnknown. It carries no query
// string: the client's query is not forwarded.
func (e Endpoint) UpstreamPath() string { return e.info().path }

// Classify maps Envoy's :method and :path to an Endpoint. The query string is
// ignored; the path itself must match exactly, because Envoy has already
// normalized it and any leniency here (prefixes, trailing slashes, case) would
// let a request reach the provider under a name the policy did not check.
// An unknown path gives ErrUnknownEndpoint; a known path with another method
// (HEAD and OPTIONS included) gives ErrMethodNotAllowed.
func Classify(method, path string) (Endpoint, error) {
	p := stripQuery(path)
	for e := ChatCompletions; int(e) < len(endpoints); e++ {
		info := endpoints[e]
		if p != info.path {
			continue
		}
		// HTTP methods are case-sensitive (RFC 9110 9.1), so "post" is not
		// POST.
		if method != info.method {
			return EndpointUnknown, ErrMethodNotAllowed
		}
		return e, nil
	}
	return EndpointUnknown, ErrUnknownEndpoint
}

// GuessDialect picks the dialect for an error body when the request did not
// classify: Anthropic for paths under /v1/messages or when the client sent an
// anthropic-version header, OpenAI otherwise.
func GuessDialect(path string, hasAnthropicVersion bool) Dialect {
	if hasAnthropicVersion || strings.HasPrefix(stripQuery(path), "/v1/messages") {
		return Anthropic
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
