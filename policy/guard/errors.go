package guard

import "errors"

// Sentinel errors. Callers match them with errors.Is. The wrapped text adds at
// most a byte offset, a config field path or a name Tollgate defines; it never
// carries request or response content, and never a matched value.
var (
	// ErrInvalidJSON means a body is not exactly one well-formed JSON value.
	ErrInvalidJSON = errors.New("invalid json")
	// ErrTooDeep means a body nests objects and arrays deeper than MaxDepth.
	// It is always wrapped together with ErrInvalidJSON.
	ErrTooDeep = errors.New("json nesting too deep")
	// ErrNotObject means a body is valid JSON but not an object.
	ErrNotObject = errors.New("body is not a json object")
	// ErrDuplicateKey means some object in the body repeats a key. JSON
	// parsers disagree on which duplicate wins, so Tollgate could scan one
	// value while the provider reads another; such bodies are refused.
	ErrDuplicateKey = errors.New("duplicate key")

	// ErrUnknownShape means a request member that carries text has a JSON
	// kind the endpoint's schema does not know (messages[].content as an
	// object, say). The provider might read text there that Tollgate did not
	// scan the way the provider reads it, so such bodies are refused (400)
	// for every profile. The wrapped text names the member by its schema
	// path and the kind found, never a value.
	ErrUnknownShape = errors.New("unknown body shape")

	// ErrUnknownProfile means a scan named a profile the engine does not have.
	ErrUnknownProfile = errors.New("unknown guardrail profile")
	// ErrUnsupportedEndpoint means the endpoint has no body the engine knows
	// how to read (for example GET /v1/models).
	ErrUnsupportedEndpoint = errors.New("endpoint has no scannable body")

	// ErrScanLimit means the text to scan exceeded the profile's
	// MaxScanBytes. It is a scan failure: each rule's fail mode decides.
	ErrScanLimit = errors.New("text exceeds scan limit")
	// ErrUnreadableResponse means a response body could not be read as JSON
	// (ErrInvalidJSON, ErrDuplicateKey and friends are wrapped with it). It is
	// a scan failure: each rule's fail mode decides.
	ErrUnreadableResponse = errors.New("response body not scannable")

	// ErrInvalidConfig wraps every configuration problem Compile reports;
	// each problem names its field path.
	ErrInvalidConfig = errors.New("invalid guardrail config")
)
