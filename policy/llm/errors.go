package llm

import "errors"

// Sentinel errors. Callers match them with errors.Is; the wrapped text adds at
// most a field name defined by Tollgate or a byte offset, never body content.
var (
	// ErrUnknownEndpoint means the path is not one Tollgate serves.
	ErrUnknownEndpoint = errors.New("unknown endpoint")
	// ErrMethodNotAllowed means the path is known but the method is not the
	// one the endpoint accepts.
	ErrMethodNotAllowed = errors.New("method not allowed")
	// ErrUnsupportedEndpoint means the endpoint has no mapping for the
	// requested upstream (for example Models on Azure OpenAI).
	ErrUnsupportedEndpoint = errors.New("endpoint not supported by upstream")
	// ErrInvalidDeployment means an Azure deployment name is empty or would
	// change the meaning of the upstream path ("." or "..").
	ErrInvalidDeployment = errors.New("invalid azure deployment name")
	// ErrMissingAPIVersion means an Azure deployment path was requested
	// without an api-version.
	ErrMissingAPIVersion = errors.New("missing azure api version")

	// ErrInvalidJSON means the body is not exactly one well-formed JSON value.
	ErrInvalidJSON = errors.New("invalid json")
	// ErrTooDeep means the body nests objects and arrays deeper than
	// MaxDepth. It is always wrapped together with ErrInvalidJSON, so callers
	// that only check ErrInvalidJSON treat it as a malformed body.
	ErrTooDeep = errors.New("json nesting too deep")
	// ErrNotObject means the body is valid JSON but not an object.
	ErrNotObject = errors.New("request body is not a json object")
	// ErrMissingModel means the top-level model is absent or empty.
	ErrMissingModel = errors.New("missing model")
	// ErrInvalidField means a top-level field Tollgate reads has the wrong
	// JSON type or an undecodable value.
	ErrInvalidField = errors.New("invalid field")
	// ErrDuplicateKey means a top-level key appears more than once. Parsers
	// disagree on which duplicate wins, so Tollgate and the provider could
	// read different models; such bodies are refused.
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrBodyMismatch means a rewrite helper was given a body other than
	// the one its Request was parsed from, so its recorded offsets do not
	// apply.
	ErrBodyMismatch = errors.New("body does not match parsed request")
)
