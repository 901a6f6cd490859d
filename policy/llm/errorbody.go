package llm

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// APIError describes an error Tollgate returns to a client in place of the
// provider. Message is shown to the client: keep it generic and never put a
// key, a secret or request content in it.
type APIError struct {
	// Status is the HTTP status code of the reply.
	Status int
	// Type is the provider error type; empty means DefaultType(d, Status).
	Type string
	// Code is OpenAI's machine-readable code (for example
	// "model_not_found"); empty means null. Anthropic bodies have no code.
	Code string
	// Message is the human-readable text; empty means the status text.
	Message string
	// Param names the offending request parameter for OpenAI; empty means
	// null. Anthropic bodies have no param.
	Param string
}

// DefaultType returns the error type a provider uses for an HTTP status.
// Anthropic's types are documented per status; OpenAI uses
// invalid_request_error for client errors (including bad keys), so only rate
// limits and server errors get their own type.
func DefaultType(d Dialect, status int) string {
	if d == Anthropic {
		switch status {
		case http.StatusUnauthorized:
			return "authentication_error"
		case http.StatusPaymentRequired:
			return "billing_error"
		case http.StatusForbidden:
			return "permission_error"
		case http.StatusNotFound:
			return "not_found_error"
		case http.StatusRequestEntityTooLarge:
			return "request_too_large"
		case http.StatusTooManyRequests:
			return "rate_limit_error"
		case http.StatusServiceUnavailable, 529: // 529: Anthropic's "overloaded"
			return "overloaded_error"
		case http.StatusGatewayTimeout:
			return "timeout_error"
		}
		if status >= 400 && status < 500 {
			return "invalid_request_error"
		}
		return "api_error"
	}
	switch {
	case status == http.StatusTooManyRequests:
		return "rate_limit_exceeded"
	case status >= 400 && status < 500:
		return "invalid_request_error"
	default:
		return "server_error"
	}
}

type openAIErrorBody struct {
	Error openAIError `json:"error"`
}

type openAIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

type anthropicErrorBody struct {
	Type      string         `json:"type"`
	Error     anthropicError `json:"error"`
	RequestID string         `json:"request_id,omitempty"`
}

type anthropicError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// ErrorBody returns a JSON error body shaped like the provider's, so client
// SDKs raise their usual exceptions:
//
//	OpenAI:    {"error":{"message":...,"type":...,"param":null,"code":null}}
//	Anthropic: {"type":"error","error":{"type":...,"message":...},"request_id":...}
//
// requestID appears only in the Anthropic body (omitted when empty); OpenAI
// carries it in the x-request-id header, which the caller sets. Invalid UTF-8
// in any field is replaced, so the result is always valid JSON.
func ErrorBody(d Dialect, e APIError, requestID string) []byte {
	typ := e.Type
	if typ == "" {
		typ = DefaultType(d, e.Status)
	}
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
		if msg == "" {
			msg = "request failed"
		}
	}
	var v any
	if d == Anthropic {
		v = anthropicErrorBody{
			Type:      "error",
			Error:     anthropicError{Type: typ, Message: msg},
			RequestID: requestID,
		}
	} else {
		v = openAIErrorBody{Error: openAIError{
			Message: msg,
			Type:    typ,
			Param:   nullIfEmpty(e.Param),
			Code:    nullIfEmpty(e.Code),
		}}
	}
	b, err := marshal(v)
	if err != nil {
		// Unreachable: the values are plain strings. Still answer with
		// valid JSON rather than nothing.
		if d == Anthropic {
			return []byte(`{"type":"error","error":{"type":"api_error","message":"internal error"}}`)
		}
		return []byte(`{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}`)
	}
	return b
}

// nullIfEmpty maps "" to a JSON null.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// marshal encodes v without HTML escaping (bodies go to API clients, not
// browsers; "<" stays readable) and without the encoder's trailing newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
