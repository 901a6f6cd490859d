package llm

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// Request is what Tollgate reads from a request body: the fields policy
// decisions depend on, and where the model sits so it can be rewritten.
type Request struct {
	// Model is the decoded top-level "model" string; never empty on success.
	Model string
	// Stream is the top-level "stream" flag; false when absent or null.
	Stream bool
	// MaxTokens is the largest of the top-level output caps max_tokens,
	// max_completion_tokens (OpenAI Chat) and max_output_tokens (OpenAI
	// Responses) that are present; 0 when none is (or all are null).
	MaxTokens int64
	// MaxTokensField names the field MaxTokens came from (one of the
	// FieldMax* constants; the first in the body on a tie), or "".
	MaxTokensField string
	// IncludeUsage reports that the top-level "stream_options" object has
	// "include_usage": true, so an OpenAI stream will end with a usage chunk.
	IncludeUsage bool
	// Logprobs reports a top-level logprobs (true, or a positive count on legacy completions)
	// or top_logprobs request, or a Responses "include" entry asking for logprobs
	// ("message.output_text.logprobs"): per-token text the response would carry outside the
	// content.
	Logprobs bool
	// LogprobsField names the first member that asked for logprobs, for error messages.
	LogprobsField string
	// Choices is how many completions the provider generates and bills for this request: the
	// largest of 1 and the top-level counts n (chat and legacy completions) and best_of
	// (legacy completions, generated server-side and billed though not returned). Every
	// choice may produce up to MaxTokens output tokens.
	Choices int64
	// Messages counts the elements of the top-level "messages" array (chat,
	// Anthropic) or "input" array (Responses); 0 when absent or not an array.
	Messages int
	// StoredInput names the first member that makes the provider add input Tollgate never
	// sees, which the body's size cannot bound: at the top level "previous_response_id" or
	// "conversation" (not null: a stored conversation, billed as input) or "prompt" as an
	// object (a stored prompt template); at any depth a file by id or URL ("file_id",
	// "file_url") or an image or document by URL ("image_url", "url"; see unseenInput).
	// "" when there is none.
	StoredInput string
	// HostedTool names the first tool the provider runs itself (web search, file search,
	// code execution, remote MCP...), billed beyond tokens and for as many rounds as the
	// model wants, so nothing in the request bounds its cost: a "tools" entry's type, or a
	// top-level member (web_search_options, mcp_servers, container) that is not null. "" when
	// there is none.
	HostedTool string
	// Tools counts the entries of the top-level "tools" array, and DefinedTools those of
	// an Anthropic-defined client type (bash_*, text_editor_*, computer_*, memory_*). A
	// provider adds prompt tokens of its own for them (see policy's tool allowance).
	Tools, DefinedTools int
	// ServiceTier is the top-level "service_tier" string (OpenAI: auto, default, flex,
	// priority, scale; Anthropic: auto, standard_only), "" when absent or null. A tier
	// other than the standard one is billed at other prices than the catalog's.
	ServiceTier string

	// modelStart and modelEnd delimit the model's JSON string in the body,
	// quotes included.
	modelStart, modelEnd int
	// edits records where the budgeting fields sit, for the rewrite
	// helpers.
	edits editSpans
}

// ParseRequest reads a JSON request body in one pass without building a
// tree, so a body of megabytes of base64 costs no allocations beyond the model
// string. It checks that body is exactly one RFC 8259 value nested at most
// MaxDepth deep, that the value is an object, and that its top-level keys are
// unique after unescaping; it extracts "model" (a non-empty string),
// "stream" (a bool, or null meaning false), the output caps max_tokens,
// max_completion_tokens and max_output_tokens (each a non-negative integer
// written without fraction or exponent, or null meaning absent), and
// stream_options.include_usage. Keys in nested objects are ignored, except
// that a duplicated include_usage inside stream_options is ErrDuplicateKey
// like a top-level duplicate; stream_options itself may hold any value (the
// provider judges it), and only a literal true include_usage counts.
//
// Errors, all matched with errors.Is: ErrInvalidJSON (with ErrTooDeep for
// excessive nesting), ErrNotObject, ErrDuplicateKey, ErrInvalidField,
// ErrMissingModel. A syntax error anywhere takes precedence over a field
// error, so a malformed body always reports ErrInvalidJSON; among field errors
// the first in the body wins.
//
// A model that is not valid UTF-8, or that holds an unpaired surrogate escape,
// is ErrInvalidField: JSON parsers disagree on how to decode such strings, and
// Tollgate must not check one model while the provider serves another.
func ParseRequest(body []byte) (Request, error) {
	// Built in place: a composite literal would assemble the large
	// requestParser in a temporary and copy it, a measurable cost on small
	// bodies.
	var p requestParser
	p.s.Reset(body, ErrInvalidJSON, ErrTooDeep)
	p.s.SkipWS()
	if p.s.Pos < len(body) && body[p.s.Pos] != '{' {
		if p.s.Value(0) && p.s.End() {
			return Request{}, ErrNotObject
		}
		return Request{}, p.s.Err
	}
	if !p.topObject() || !p.s.End() {
		return Request{}, p.s.Err
	}
	if p.req.StoredInput == "" {
		p.req.StoredInput = unseenInput(body)
	}
	return p.finish()
}

// requestParser holds the state of one ParseRequest call. It lives on the
// stack; keys holds sub-slices of the body, not copies.
type requestParser struct {
	s          scanner
	req        Request
	fieldErr   error // first field error; reported only if the syntax is valid
	haveModel  bool
	haveMax    bool // a max token field with a number was seen
	modelFlags uint8
	keys       keySet
}

// setFieldErr records err unless an earlier field error is already known.
func (p *requestParser) setFieldErr(err error) {
	if p.fieldErr == nil {
		p.fieldErr = err
	}
}

// topObject scans the top-level object, extracting model and stream and
// checking key uniqueness. Nested values go through the generic scanner.
func (p *requestParser) topObject() bool {
	s := &p.s
	if s.Pos >= len(s.B) {
		return s.Fail("unexpected end of input")
	}
	p.req.edits.bodyLen = len(s.B)
	p.req.edits.open = s.Pos
	o := s.Object()
	for o.Next() {
		if !p.member(o.Key(), o.KeyStart) {
			return false
		}
		p.req.edits.last = s.Pos
	}
	return o.Done()
}

// member scans the value of one top-level member whose canonical key is key.
func (p *requestParser) member(key []byte, keyStart int) bool {
	s := &p.s
	dup := p.keys.add(key)
	// Go's encoding/json (Ollama and other Go servers) matches keys case-insensitively, so
	// "Model" could be read upstream while Tollgate checks "model". A key that folds to a
	// field Tollgate decides on must be spelled exactly.
	if f, ok := foldKnown(key); ok && string(key) != f {
		p.setFieldErr(fmt.Errorf("%w: %q spelled with different case", ErrDuplicateKey, f))
	}
	switch string(key) {
	case "model":
		if dup {
			p.setFieldErr(fmt.Errorf("%w: %q", ErrDuplicateKey, "model"))
		}
		if s.Pos >= len(s.B) || s.B[s.Pos] != '"' {
			p.setFieldErr(fmt.Errorf("%w: %q must be a string", ErrInvalidField, "model"))
			return s.Value(1)
		}
		start := s.Pos
		flags, ok := s.Str()
		if ok && !dup {
			p.req.modelStart, p.req.modelEnd = start, s.Pos
			p.modelFlags = flags
			p.haveModel = true
		}
		return ok
	case "stream":
		if dup {
			p.setFieldErr(fmt.Errorf("%w: %q", ErrDuplicateKey, "stream"))
		}
		if s.Pos < len(s.B) {
			switch s.B[s.Pos] {
			case 't':
				p.req.Stream = true
				return s.Literal("true")
			case 'f':
				return s.Literal("false")
			case 'n':
				// OpenAI documents stream as "boolean or null" and
				// OpenAI-compatible servers treat null as the default.
				return s.Literal("null")
			}
		}
		p.setFieldErr(fmt.Errorf("%w: %q must be a boolean", ErrInvalidField, "stream"))
		return s.Value(1)
	case FieldMaxTokens, FieldMaxCompletionTokens, FieldMaxOutputTokens:
		return p.maxTokens(maxFieldIndex(string(key)), dup)
	case "stream_options":
		return p.streamOptions(dup)
	case "n", "best_of":
		return p.choices(string(key), dup)
	case "include":
		if dup {
			p.setFieldErr(fmt.Errorf("%w: %q", ErrDuplicateKey, "include"))
		}
		return p.include()
	case "logprobs", "top_logprobs":
		if dup {
			p.setFieldErr(fmt.Errorf("%w: %q", ErrDuplicateKey, string(key)))
		}
		start := s.Pos
		if !s.Value(1) {
			return false
		}
		v := string(s.B[start:s.Pos])
		if v != "false" && v != "null" && v != "0" {
			p.wantLogprobs(string(key))
		}
		return true
	case "tools":
		if dup {
			p.setFieldErr(fmt.Errorf("%w: %q", ErrDuplicateKey, "tools"))
		}
		start := s.Pos
		if !s.Value(1) {
			return false
		}
		hosted, n, defined := hostedTool(s.B[start:s.Pos])
		if !dup {
			p.req.Tools, p.req.DefinedTools = n, defined
		}
		if p.req.HostedTool == "" {
			p.req.HostedTool = hosted
		}
		return true
	case "service_tier":
		if dup {
			p.setFieldErr(fmt.Errorf("%w: %q", ErrDuplicateKey, "service_tier"))
		}
		if s.Pos < len(s.B) && s.B[s.Pos] == '"' {
			v, ok := s.StrValue()
			if !ok {
				return false
			}
			p.req.ServiceTier = string(v)
			if p.req.ServiceTier == "" {
				p.req.ServiceTier = `""`
			}
			return true
		}
		if s.Pos < len(s.B) && s.B[s.Pos] != 'n' {
			p.setFieldErr(fmt.Errorf("%w: %q must be a string", ErrInvalidField, "service_tier"))
		}
		return s.Value(1)
	case "web_search_options", "mcp_servers", "container":
		// Chat Completions web search, Anthropic's MCP connector and code-execution
		// container: tools the provider runs (see HostedTool).
		if dup {
			p.setFieldErr(fmt.Errorf("%w: %q", ErrDuplicateKey, string(key)))
		}
		if s.Pos < len(s.B) && s.B[s.Pos] != 'n' && p.req.HostedTool == "" {
			p.req.HostedTool = string(key)
		}
		return s.Value(1)
	case "previous_response_id", "conversation", "prompt":
		if dup {
			p.setFieldErr(fmt.Errorf("%w: %q", ErrDuplicateKey, string(key)))
		}
		if s.Pos < len(s.B) && s.B[s.Pos] != 'n' && (string(key) != "prompt" || s.B[s.Pos] == '{') && p.req.StoredInput == "" {
			// A legacy completions prompt is text (a string or an array): only an object
			// refers to a stored prompt.
			p.req.StoredInput = string(key)
		}
		return s.Value(1)
	case "messages", "input":
		if dup {
			p.setFieldErr(fmt.Errorf("%w: %q", ErrDuplicateKey, string(key)))
		}
		if s.Pos < len(s.B) && s.B[s.Pos] == '[' {
			n, ok := s.countArray()
			p.req.Messages = max(p.req.Messages, n)
			return ok
		}
		return s.Value(1)
	default:
		if dup {
			p.setFieldErr(fmt.Errorf("%w: top-level key at offset %d", ErrDuplicateKey, keyStart))
		}
		return s.Value(1)
	}
}

// wantLogprobs records that field asks for per-token log probabilities.
func (p *requestParser) wantLogprobs(field string) {
	if !p.req.Logprobs {
		p.req.Logprobs, p.req.LogprobsField = true, field
	}
}

// finish turns a syntactically valid body into the result or a field error.
func (p *requestParser) finish() (Request, error) {
	if p.fieldErr != nil {
		return Request{}, p.fieldErr
	}
	if !p.haveModel {
		return Request{}, ErrMissingModel
	}
	raw := p.s.B[p.req.modelStart+1 : p.req.modelEnd-1]
	switch {
	case p.modelFlags == 0:
		p.req.Model = string(raw)
	case p.modelFlags == jsonlex.NonASCII:
		if !utf8.Valid(raw) {
			return Request{}, fmt.Errorf("%w: %q is not valid utf-8", ErrInvalidField, "model")
		}
		p.req.Model = string(raw)
	default:
		dec, lossy := jsonlex.Unquote(make([]byte, 0, len(raw)), raw)
		if lossy {
			return Request{}, fmt.Errorf("%w: %q is not valid utf-8", ErrInvalidField, "model")
		}
		p.req.Model = string(dec)
	}
	if p.req.Model == "" {
		return Request{}, ErrMissingModel
	}
	p.req.Choices = max(p.req.Choices, 1)
	return p.req, nil
}

// keySet detects duplicate top-level keys. Request bodies have a handful of
// top-level keys, compared linearly without allocation; past smallKeys it
// switches to a map so that a body with many keys stays linear in time.
type keySet struct {
	small [smallKeys][]byte
	n     int
	big   map[string]struct{}
}

const smallKeys = 16

// add records k and reports whether it was already present.
func (ks *keySet) add(k []byte) bool {
	if ks.big != nil {
		if _, ok := ks.big[string(k)]; ok {
			return true
		}
		ks.big[string(k)] = struct{}{}
		return false
	}
	for _, o := range ks.small[:ks.n] {
		if bytes.Equal(o, k) {
			return true
		}
	}
	if ks.n < smallKeys {
		ks.small[ks.n] = k
		ks.n++
		return false
	}
	ks.big = make(map[string]struct{}, 4*smallKeys)
	for _, o := range ks.small {
		ks.big[string(o)] = struct{}{}
	}
	ks.big[string(k)] = struct{}{}
	return false
}

// WithModel returns body with the model value replaced by model, encoded as a
// JSON string; every other byte is unchanged. If model equals r.Model it
// returns body itself. body must be the slice r was parsed from: if r's model
// position does not fit body (for example a zero Request), WithModel returns
// nil rather than forward a body whose model was not rewritten. An empty model
// produces a body that ParseRequest would refuse.
func (r Request) WithModel(body []byte, model string) []byte {
	if model == r.Model {
		return body
	}
	start, end := r.modelStart, r.modelEnd
	if start < 0 || end > len(body) || end-start < 2 || body[start] != '"' || body[end-1] != '"' {
		return nil
	}
	// Each byte of model encodes to at most 6 bytes (\u00XX or \ufffd), so
	// this capacity needs one allocation.
	out := make([]byte, 0, len(body)-(end-start)+2+6*len(model))
	out = append(out, body[:start]...)
	out = jsonlex.AppendQuoted(out, model)
	return append(out, body[end:]...)
}

// knownFields are the top-level keys policy decisions read.
var knownFields = [...]string{"model", "stream", "stream_options", "messages", "input",
	FieldMaxTokens, FieldMaxCompletionTokens, FieldMaxOutputTokens,
	"n", "best_of", "logprobs", "top_logprobs", "include", "previous_response_id", "conversation", "prompt",
	"tools", "web_search_options", "mcp_servers", "container", "service_tier"}

// foldKnown folds key the way encoding/json matches field names (ASCII case, plus the
// Kelvin sign and long s that fold to k and s) and reports the known field it equals.
func foldKnown(key []byte) (string, bool) {
	var buf [32]byte
	n := 0
	for i := 0; i < len(key); i++ {
		if n == len(buf) {
			return "", false
		}
		c := key[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == 0xC5 && i+1 < len(key) && key[i+1] == 0xBF: // U+017F long s
			c, i = 's', i+1
		case c == 0xE2 && i+2 < len(key) && key[i+1] == 0x84 && key[i+2] == 0xAA: // U+212A Kelvin
			c, i = 'k', i+2
		case c >= 0x80:
			return "", false
		}
		buf[n] = c
		n++
	}
	for _, f := range knownFields {
		if string(buf[:n]) == f {
			return f, true
		}
	}
	return "", false
}
