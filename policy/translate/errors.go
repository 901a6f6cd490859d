package translate

import "errors"

// Sentinel errors, matched with errors.Is. The wrapped text adds at most a field path built
// from Tollgate's own names and array indices, or a byte offset: never body content.
var (
	// ErrUntranslatable means a request field has no faithful equivalent in the upstream API.
	// The request is refused rather than sent without it (FieldError names the field).
	ErrUntranslatable = errors.New("field cannot be translated")
	// ErrInvalidRequest means a request field has the wrong JSON type or shape for the client
	// API (FieldError names the field).
	ErrInvalidRequest = errors.New("invalid request field")
	// ErrInvalidJSON means a body or an event is not exactly one well-formed JSON value.
	ErrInvalidJSON = errors.New("invalid json")
	// ErrTooDeep means JSON nests deeper than jsonlex.MaxDepth; always wrapped together with
	// ErrInvalidJSON.
	ErrTooDeep = errors.New("json nesting too deep")
	// ErrDuplicateKey means an object repeats a key: parsers disagree on which one wins, so
	// what was checked and what is sent could differ.
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrUpstream means the provider's response has a shape the translation does not know:
	// the stream is failed (closed) rather than passed on in a shape the client did not ask
	// for, or translated with parts left out.
	ErrUpstream = errors.New("upstream response cannot be translated")
	// ErrTooLarge means a response body or a single event outgrew what a translation holds
	// (MaxBufferedBody, llm.MaxSSEEventSize).
	ErrTooLarge = errors.New("upstream response too large to translate")
)

// FieldError names the request field a translation refused. Field is a JSON path of field
// names and indices (messages[2].content[0].image_url.detail); a client's own unknown key is
// named only when it is a plain identifier. Reason is fixed text.
type FieldError struct {
	Field  string
	Reason string
	Err    error // ErrUntranslatable or ErrInvalidRequest
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap returns the sentinel.
func (e *FieldError) Unwrap() error { return e.Err }

// untranslatable builds the refusal of a field with no faithful equivalent.
func untranslatable(field, reason string) error {
	return &FieldError{Field: field, Reason: reason, Err: ErrUntranslatable}
}

// invalid builds the refusal of a field of the wrong type or shape.
func invalid(field, reason string) error {
	return &FieldError{Field: field, Reason: reason, Err: ErrInvalidRequest}
}
