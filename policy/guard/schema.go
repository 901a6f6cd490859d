package guard

import (
	"bytes"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// Schemas: where each endpoint's bodies carry text. Request and response
// schemas differ in their default:
//
//   - A request schema scans every string the provider reads. Its objects
//     (req) name only what needs care: the kinds a text-bearing member may
//     have (another kind is ErrUnknownShape), where binary data may sit,
//     and the structural members (requestMember) whose strings are scanned
//     but never rewritten. Every other member, known to the provider or
//     not, is free text: each string in it is scanned and redactable, and
//     each object key in it is scanned (as keep).
//   - A response schema selects the text a client reads: it is built from
//     the dialect tables in dialects.go, which the stream redactor reads
//     too, so the JSON and SSE paths cannot drift apart. Other members are
//     validated only.

// node describes where text sits in one JSON value, so the walker can pick
// out what the provider will read in the same pass that validates the body.
// A nil node means "validate only".
type node struct {
	// text: a string value here is extracted.
	text bool
	// all: every string value in this subtree is extracted (tool-call
	// inputs, JSON schemas, members a request schema does not name). In a
	// request, object keys in it are extracted too, as keep.
	all bool
	// keep: a string value here (every one, with all) is extracted but never
	// rewritten: names, ids, signatures. A match of a redact or block rule
	// in it blocks the request (see profile.decide).
	keep bool
	// req marks an object of a request schema: its members that fields do
	// not name are read by requestMember (free text, keep or binary) rather
	// than validated only, and their keys are extracted (as keep).
	req bool
	// bin: a string value here that is binary data of this kind is skipped
	// (its data URL header is still extracted, as keep); any other string
	// is text.
	bin binKind
	// kinds are the JSON kinds a value here may have (0: any). In a request
	// another kind is ErrUnknownShape; in a response the value is read as a
	// free subtree (every string in it extracted), so no text hides there.
	kinds uint8
	// strip: in a response, the value is replaced by null ('n') or an empty
	// array ('[') when the profile rewrites responses (logprobs, which
	// repeat the text token by token).
	strip byte
	// elem is the node for each element when the value is an array.
	elem *node
	// fields are the members read when the value is an object; other
	// members are validated only (or, with req, read by requestMember).
	fields []field
}

// JSON kinds, for node.kinds.
const (
	kStr uint8 = 1 << iota
	kArr
	kObj
	kNull
	kNum
	kBool
)

// kindNames names the kinds in ErrUnknownShape errors.
var kindNames = map[uint8]string{kStr: "a string", kArr: "an array", kObj: "an object", kNull: "null", kNum: "a number", kBool: "a boolean"}

// binKind says when a string is binary data rather than text.
type binKind uint8

const (
	binNone binKind = iota
	// binURL: a data URL with a base64 payload ("data:image/png;base64,…").
	// Its header (up to the comma) is extracted as keep; a URL of any other
	// kind (https://…) is text.
	binURL
	// binRaw: plain base64 (input_audio data).
	binRaw
	// binTyped: plain base64, and only when the object holding it has type
	// "base64" or "redacted_thinking" (Anthropic sources and opaque
	// thinking): a "text" source's data is text.
	binTyped
)

// field is one named member of an object node.
type field struct {
	name string
	node *node
}

// child returns the node for the member key, the path segment to push
// ("" in all-mode, where paths stop at the subtree root, and for members a
// request schema does not name) and whether the key itself is extracted
// (in a request: every key that is not a name Tollgate knows). Names match
// case-insensitively, with Unicode simple folding (so "ſ" is "s" and the
// Kelvin sign "k"): that is how Go's encoding/json, used by some
// OpenAI-compatible servers, matches struct fields, and such a server would
// read "Messages" or "meſſages" as messages.
func (n *node) child(key []byte, req bool) (*node, string, bool) {
	if n == nil {
		return nil, "", false
	}
	if n.all {
		return n.free(), "", req
	}
	// An ASCII key folds only to names of its length (folding changes the
	// length only through non-ASCII runes such as "ſ").
	ascii := isASCII(key)
	for i := range n.fields {
		name := n.fields[i].name
		if (!ascii || len(key) == len(name)) && bytes.EqualFold(key, []byte(name)) {
			return n.fields[i].node, name, false
		}
	}
	if n.req {
		c, name := requestMember(key, ascii)
		return c, name, name == "" || name == idSuffix
	}
	return nil, "", false
}

// free returns the node of the values inside the free subtree n: every
// string extracted, keep when n is.
func (n *node) free() *node {
	if n.keep {
		return keepNode
	}
	return allNode
}

// obj builds a response object node; arr an array node; textOr a node
// that extracts a string or walks an array of elem.
func obj(fields ...field) *node { return &node{fields: fields} }
func arr(elem *node) *node      { return &node{elem: elem} }
func textOr(elem *node) *node {
	return &node{text: true, kinds: kStr | kArr | kNull, elem: elem}
}
func f(name string, n *node) field { return field{name: name, node: n} }

// robj builds a request object node; rarr a request array node.
func robj(fields ...field) *node { return &node{req: true, kinds: kObj | kNull, fields: fields} }
func rarr(elem *node) *node      { return &node{kinds: kArr | kNull, elem: elem} }

var (
	// textNode extracts a string (null carries no text). Any other kind is
	// ErrUnknownShape in a request and free text in a response.
	textNode = &node{text: true, kinds: kStr | kNull}
	// allNode extracts every string below it.
	allNode = &node{all: true}
	// keepNode extracts every string below it, never to be rewritten.
	keepNode = &node{all: true, keep: true}
	// freeObj is an object (or null) of free text: metadata.
	freeObj = &node{all: true, kinds: kObj | kNull}
	// Binary positions (see binKind).
	urlNode   = &node{text: true, bin: binURL, req: true, kinds: kStr | kObj | kNull}
	rawNode   = &node{text: true, bin: binRaw, kinds: kStr | kNull}
	typedNode = &node{text: true, bin: binTyped, kinds: kStr | kNull}
)

// idSuffix is the name requestMember reports for a member matched by its
// "_id" or "_ids" suffix: not a name Tollgate knows, so the key is scanned
// and no path segment is pushed.
const idSuffix = "*_id"

// requestMembers are the structural members of request objects, by name.
// Their strings are scanned but never rewritten: a rewritten tool name, id,
// role or signature would break the request or change what it refers to.
// Binary members are skipped when they hold base64.
var requestMembers = []field{
	f("type", keepNode), f("role", keepNode), f("name", keepNode), f("id", keepNode),
	f("model", keepNode), f("object", keepNode), f("status", keepNode),
	f("signature", keepNode), f("encrypted_content", keepNode),
	f("image_url", urlNode), f("url", urlNode), f("file_data", urlNode),
	f("data", typedNode), f("input_audio", robj(f("data", rawNode))),
}

// requestMember returns the node of a member that a request object's
// schema does not name, and the name to report it under ("" for free text).
func requestMember(key []byte, ascii bool) (*node, string) {
	for i := range requestMembers {
		name := requestMembers[i].name
		if (!ascii || len(key) == len(name)) && bytes.EqualFold(key, []byte(name)) {
			return requestMembers[i].node, requestMembers[i].name
		}
	}
	if n := len(key); (n > 3 && bytes.EqualFold(key[n-3:], []byte("_id"))) || (n > 4 && bytes.EqualFold(key[n-4:], []byte("_ids"))) {
		return keepNode, idSuffix
	}
	return allNode, ""
}

var (
	// OpenAI chat completions: content is a string or parts (text,
	// refusal, image_url, input_audio, file).
	chatPart     = robj(f("text", textNode), f("refusal", textNode), f("file", robj()))
	chatContent  = &node{text: true, kinds: kStr | kArr | kNull, elem: chatPart}
	chatFuncCall = robj(f("arguments", textNode))
	chatFuncDef  = robj(f("description", textNode), f("parameters", allNode))
	chatRequest  = robj(
		f("messages", rarr(robj(
			f("content", chatContent),
			f("refusal", textNode), f("reasoning_content", textNode), f("reasoning", textNode),
			f("tool_calls", rarr(robj(f("function", chatFuncCall)))),
			f("function_call", chatFuncCall),
		))),
		f("tools", rarr(robj(f("function", chatFuncDef)))),
		f("functions", rarr(chatFuncDef)),
		f("response_format", robj(f("json_schema", robj(f("description", textNode), f("schema", allNode))))),
		f("prediction", robj(f("content", chatContent))),
		f("user", textNode),
		f("metadata", freeObj),
	)

	// Legacy completions prompt and embeddings input: a string, or an
	// array of strings, token ids or arrays of token ids.
	promptNode = &node{text: true, kinds: kStr | kArr, elem: &node{text: true, kinds: kStr | kNum | kArr, elem: &node{kinds: kNum}}}

	completionsRequest = robj(f("prompt", promptNode), f("suffix", textNode), f("user", textNode))
	embeddingsRequest  = robj(f("input", promptNode), f("user", textNode))

	// Responses API: input is a string or items. A message item's content
	// is a string or parts (input_text, output_text, refusal, input_image,
	// input_file); function_call_output output is a string, parts or an
	// object (a computer screenshot); reasoning items carry summary and
	// content parts.
	respInPart   = robj(f("text", textNode), f("refusal", textNode))
	respInOutput = &node{text: true, req: true, kinds: kStr | kArr | kObj | kNull, elem: respInPart}
	respInItem   = robj(
		f("content", &node{text: true, kinds: kStr | kArr | kNull, elem: respInPart}),
		f("output", respInOutput),
		f("summary", rarr(respInPart)),
		f("arguments", textNode), f("input", textNode), f("code", textNode),
	)
	respInput        = &node{text: true, kinds: kStr | kArr | kNull, elem: respInItem}
	responsesRequest = robj(
		f("input", respInput),
		f("instructions", respInput),
		f("tools", rarr(robj(f("description", textNode), f("parameters", allNode)))),
		f("text", robj(f("format", robj(f("description", textNode), f("schema", allNode))))),
		f("user", textNode),
		f("metadata", freeObj),
	)

	// Anthropic messages: system and content are a string or blocks. A
	// block: text (and its citations), thinking, tool_use input,
	// tool_result content (string or blocks), image and document sources
	// (base64 data, plain text data, content blocks, URLs), document title
	// and context. anBlock refers to itself; see init.
	anBlock         = robj(f("text", textNode), f("thinking", textNode), f("input", allNode), f("title", textNode), f("context", textNode), f("citations", allNode))
	anBlocks        = &node{text: true, kinds: kStr | kArr | kNull, elem: anBlock}
	messagesRequest = robj(
		f("system", anBlocks),
		f("messages", rarr(robj(f("content", anBlocks)))),
		f("tools", rarr(robj(f("description", textNode), f("input_schema", allNode)))),
		f("metadata", freeObj),
	)
)

func init() {
	anBlock.fields = append(anBlock.fields, f("content", anBlocks), f("source", robj(f("content", anBlocks))))
}

// requestSchemas holds the request schema of each body shape
// (llm.Spec.Guard); ShapeNone has none.
var requestSchemas = [...]*node{
	llm.ShapeNone:        nil,
	llm.ShapeChat:        chatRequest,
	llm.ShapeCompletions: completionsRequest,
	llm.ShapeEmbeddings:  embeddingsRequest,
	llm.ShapeResponses:   responsesRequest,
	llm.ShapeMessages:    messagesRequest,
}

// responseSchemas holds the response schema of each body shape, built
// from the dialect tables by dialects.go's init.
var responseSchemas [len(requestSchemas)]*node

// requestSchema returns the request schema of an endpoint, nil when it has
// no body.
func requestSchema(ep llm.Endpoint) *node {
	if sh := ep.Spec().Guard; int(sh) < len(requestSchemas) {
		return requestSchemas[sh]
	}
	return nil
}

// responseSchema returns the non-streaming response schema of an endpoint,
// nil when it has none.
func responseSchema(ep llm.Endpoint) *node {
	if sh := ep.Spec().Guard; int(sh) < len(responseSchemas) {
		return responseSchemas[sh]
	}
	return nil
}
