package guard

import (
	"strings"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// The dialect tables: for each API, the text members a client reads in a
// response. Each table builds the non-streaming response schema AND tells
// the stream redactor where the same text travels in events, so a member
// cannot be scanned in one form and missed in the other. Adding a member is
// adding a row; TestDialectTables fails until the row has a test case
// (JSON, stream and, where clients send it back, request).

// chatField is one text member of a chat completions message: of
// choices[].message in a JSON response and of choices[].delta in a stream
// chunk (one text per choice and member).
type chatField struct {
	// path is the member's path from the message, dot-separated. The one
	// path through "tool_calls[]" is the tool calls' arguments: one text
	// per tool call index in a stream.
	path string
	// leaf is the JSON node at path (nil: a string). A delta always
	// carries a string.
	leaf *node
}

// chatFields are the text members of a chat message and delta: content,
// refusal, the reasoning text of OpenAI-compatible servers (DeepSeek,
// vLLM, OpenRouter...), and function arguments.
var chatFields = []chatField{
	{path: "content", leaf: textOr(obj(f("text", textNode), f("refusal", textNode)))},
	{path: "refusal"},
	{path: "reasoning_content"},
	{path: "reasoning"},
	{path: "function_call.arguments"},
	{path: "tool_calls[].function.arguments"},
}

// completionsFields are the text members of a legacy completions choice,
// in a JSON response and in a stream chunk alike.
var completionsFields = []chatField{{path: "text"}}

// respField is one text of a Responses API output item, and the events that
// stream it: "<event>.delta" events carry pieces of it in "delta", and
// "<event>.done" repeats it whole in the member done.
type respField struct {
	item  string // the output item type it belongs to
	path  string // its path in the item; "x[].y": y of each element of x (a part)
	event string
	done  string
}

// respFields are the texts of Responses output items: message text and
// refusals, function and tool arguments, reasoning summaries and reasoning
// text, custom tool input, code interpreter code.
var respFields = []respField{
	{"message", "content[].text", "response.output_text", "text"},
	{"message", "content[].refusal", "response.refusal", "refusal"},
	{"function_call", "arguments", "response.function_call_arguments", "arguments"},
	{"reasoning", "summary[].text", "response.reasoning_summary_text", "text"},
	{"reasoning", "content[].text", "response.reasoning_text", "text"},
	{"custom_tool_call", "input", "response.custom_tool_call_input", "input"},
	{"mcp_call", "arguments", "response.mcp_call_arguments", "arguments"},
	{"code_interpreter_call", "code", "response.code_interpreter_call_code", "code"},
}

// blockField is one text member of an Anthropic content block: of content[]
// in a JSON response, of content_block_start's block, and of the
// content_block_delta events whose delta type is delta, in member ("": the
// block arrives whole in content_block_start).
type blockField struct {
	path   string // in the block; "x[]": each element of x
	leaf   *node  // nil: a string
	delta  string
	member string
	// whole: the delta member is an object, scanned whole (a citation),
	// rather than a piece of text streamed through a scanner.
	whole bool
}

// anCitation is a citation of a text block: the quoted text and what it
// names.
var anCitation = obj(f("cited_text", textNode), f("document_title", textNode), f("title", textNode), f("url", textNode))

// blockFields are the text members of Anthropic content blocks: text,
// thinking, tool input (every string in it; streamed as partial JSON),
// citations, and the content of server and MCP tool results (a string or
// text blocks).
var blockFields = []blockField{
	{path: "text", delta: "text_delta", member: "text"},
	{path: "thinking", delta: "thinking_delta", member: "thinking"},
	{path: "input", leaf: allNode, delta: "input_json_delta", member: "partial_json"},
	{path: "citations[]", leaf: anCitation, delta: "citations_delta", member: "citation", whole: true},
	{path: "content", leaf: textOr(obj(f("text", textNode)))},
}

// Logprobs repeat the completion token by token (and list alternatives),
// outside the text redaction rewrites: a profile that rewrites responses
// replaces them (see node.strip).
var (
	stripNull  = &node{strip: 'n'}
	stripEmpty = &node{strip: '['}
)

// Response and stream schemas, built from the tables in init.
var (
	chatMessage         *node // choices[].message
	chatResponse        *node
	completionsResponse *node
	// respPart is a content or summary part: content[] and summary[] of
	// an item, "part" of content_part and reasoning_summary_part events.
	respPart          *node
	respItem          *node // an output item: output[], "item" of output_item events
	responsesResponse *node
	// respEvent selects the text a Responses event repeats in full: a
	// done event's member, a part, an item, a response's output.
	respEvent    *node
	respDeltaAll *node // a delta event whose delta is not a string
	anRespBlock  *node // a content block
	// messagesResponse is a Messages response; msgStart and msgBlockStart
	// its message_start and content_block_start events.
	messagesResponse   *node
	msgStart           *node
	msgBlockStart      *node
	embeddingsResponse = obj() // vectors only: validated, nothing extracted
	// msgWhole holds, per blockFields row with whole set, the schema of its
	// content_block_delta event.
	msgWhole []*node
)

func init() {
	var chat []leafAt
	for _, c := range chatFields {
		chat = append(chat, leafAt(c))
	}
	chatMessage = tree(chat...)
	chatResponse = obj(f("choices", arr(obj(f("message", chatMessage), f("logprobs", stripNull)))))
	var cmpl []leafAt
	for _, c := range completionsFields {
		cmpl = append(cmpl, leafAt(c))
	}
	cmpl = append(cmpl, leafAt{"logprobs", stripNull})
	completionsResponse = obj(f("choices", arr(tree(cmpl...))))

	// Responses: parts are the elements of the items' arrays.
	var part, item []leafAt
	var done []field
	for _, r := range respFields {
		if name, sub, ok := strings.Cut(r.path, "[]."); ok {
			part = append(part, leafAt{sub, nil})
			item = append(item, leafAt{name + "[]", nil})
		} else {
			item = append(item, leafAt{r.path, nil})
		}
		done = append(done, f(r.done, textNode))
	}
	respPart = tree(append(part, leafAt{"logprobs", stripEmpty})...)
	respItem = tree(item...)
	for i := range respItem.fields {
		if respItem.fields[i].node.elem != nil {
			respItem.fields[i].node.elem = respPart
		}
	}
	responsesResponse = obj(f("output", arr(respItem)))
	respEvent = tree()
	respEvent.fields = append(uniqueFields(done), f("logprobs", stripEmpty), f("part", respPart), f("item", respItem),
		f("response", obj(f("output", arr(respItem)))))
	respDeltaAll = obj(f("delta", allNode), f("logprobs", stripEmpty))

	var block []leafAt
	for _, b := range blockFields {
		block = append(block, leafAt{b.path, b.leaf})
		if b.whole {
			msgWhole = append(msgWhole, obj(f("delta", obj(f(b.member, b.leaf)))))
		} else {
			msgWhole = append(msgWhole, nil)
		}
	}
	anRespBlock = tree(block...)
	messagesResponse = obj(f("content", textOr(anRespBlock)))
	msgStart = obj(f("message", messagesResponse))
	msgBlockStart = obj(f("content_block", anRespBlock))

	responseSchemas = [...]*node{
		llm.ShapeNone:        nil,
		llm.ShapeChat:        chatResponse,
		llm.ShapeCompletions: completionsResponse,
		llm.ShapeEmbeddings:  embeddingsResponse,
		llm.ShapeResponses:   responsesResponse,
		llm.ShapeMessages:    messagesResponse,
	}
}

// leafAt is a node at a dot-separated path of members ("x[]" for each
// element of the array x).
type leafAt struct {
	path string
	leaf *node // nil: textNode
}

// tree builds the object node holding each leaf at its path.
func tree(leaves ...leafAt) *node {
	root := obj()
	for _, l := range leaves {
		n := root
		segs := strings.Split(l.path, ".")
		for i, s := range segs {
			name, isArr := strings.CutSuffix(s, "[]")
			last := i == len(segs)-1
			c := n.field(name)
			if c == nil {
				switch {
				case last && l.leaf != nil && !isArr:
					c = l.leaf
				case last && !isArr:
					c = textNode
				case isArr:
					c = arr(obj())
					if last {
						c.elem = l.leaf
						if c.elem == nil {
							c.elem = textNode
						}
					}
				default:
					c = obj()
				}
				n.fields = append(n.fields, f(name, c))
			}
			if isArr {
				c = c.elem
			}
			n = c
		}
	}
	return root
}

// field returns the node of the member name, nil when n has none.
func (n *node) field(name string) *node {
	for i := range n.fields {
		if n.fields[i].name == name {
			return n.fields[i].node
		}
	}
	return nil
}

// uniqueFields drops later fields with a name already seen.
func uniqueFields(fs []field) []field {
	var out []field
	for _, x := range fs {
		dup := false
		for _, y := range out {
			dup = dup || y.name == x.name
		}
		if !dup {
			out = append(out, x)
		}
	}
	return out
}
