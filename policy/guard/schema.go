package guard

import "github.com/tollgate-ai/tollgate/policy/llm"

// Schemas: where each endpoint's bodies carry text a model reads. They err on
// the side of scanning: a string the provider might read is extracted even if
// a typical client never sends it there. Image, audio and file data are never
// selected (they sit under other member names), and neither are names of
// tools or functions, whose rewriting would break tool calling.

// obj builds an object node; arr an array node; textOr a node that extracts
// a string or walks an array of elem.
func obj(fields ...field) *node { return &node{fields: fields} }
func arr(elem *node) *node      { return &node{elem: elem} }
func textOr(elem *node) *node   { return &node{text: true, elem: elem} }
func f(name string, n *node) field {
	return field{name: name, node: n}
}

var (
	textNode = &node{text: true}
	allNode  = &node{all: true}

	// OpenAI chat completions: content is a string or an array of parts
	// ({"type":"text","text":...}, {"type":"refusal","refusal":...}).
	oaContent = textOr(obj(f("text", textNode), f("refusal", textNode)))
	oaFunc    = obj(f("arguments", textNode))
	oaMessage = obj(
		f("content", oaContent),
		f("refusal", textNode),
		f("tool_calls", arr(obj(f("function", oaFunc)))),
		f("function_call", oaFunc),
	)
	oaFuncDef = obj(f("description", textNode), f("parameters", allNode))

	chatRequest = obj(
		f("messages", arr(oaMessage)),
		f("tools", arr(obj(f("function", oaFuncDef)))),
		f("functions", arr(oaFuncDef)),
		f("response_format", obj(f("json_schema", obj(f("description", textNode), f("schema", allNode))))),
		f("prediction", obj(f("content", oaContent))),
	)

	// Legacy completions: prompt and suffix. Token-id arrays are numbers
	// and are skipped.
	completionsRequest = obj(f("prompt", textOr(textNode)), f("suffix", textNode))

	// Embeddings: input is a string or an array of strings (or token ids).
	embeddingsRequest = obj(f("input", textOr(textNode)))

	// Responses API: input is a string or an array of items; a message
	// item's content is a string or parts (input_text / output_text carry
	// "text"); function_call items carry arguments and function_call_output
	// items an output string or parts.
	respContent      = textOr(obj(f("text", textNode), f("refusal", textNode)))
	respItem         = &node{text: true, fields: []field{f("content", respContent), f("output", respContent), f("arguments", textNode)}}
	respTool         = obj(f("description", textNode), f("parameters", allNode))
	respTextFmt      = obj(f("format", obj(f("description", textNode), f("schema", allNode))))
	responsesRequest = obj(
		f("input", textOr(respItem)),
		f("instructions", textNode),
		f("tools", arr(respTool)),
		f("text", respTextFmt),
	)

	// Anthropic messages: system is a string or text blocks; content is a
	// string or blocks: text, tool_use (every string in input), tool_result
	// (content is a string or text blocks).
	anTextBlocks    = textOr(obj(f("text", textNode)))
	anContent       = textOr(obj(f("text", textNode), f("input", allNode), f("content", anTextBlocks)))
	messagesRequest = obj(
		f("system", anTextBlocks),
		f("messages", arr(obj(f("content", anContent)))),
		f("tools", arr(obj(f("description", textNode), f("input_schema", allNode)))),
	)

	// Non-streaming responses. Chat completions and legacy completions share
	// choices[]; message.content, tool-call arguments and refusals for chat,
	// text for completions.
	choicesResponse   = obj(f("choices", arr(obj(f("message", oaMessage), f("text", textNode)))))
	responsesResponse = obj(f("output", arr(obj(f("content", arr(obj(f("text", textNode), f("refusal", textNode)))), f("arguments", textNode)))))
	messagesResponse  = obj(f("content", anContent))
	// embeddingsResponse holds only vectors: validated, nothing extracted.
	embeddingsResponse = obj()
)

// requestSchema returns the request schema of an endpoint, nil when it has
// no body.
func requestSchema(ep llm.Endpoint) *node {
	switch ep {
	case llm.ChatCompletions:
		return chatRequest
	case llm.Completions:
		return completionsRequest
	case llm.Embeddings:
		return embeddingsRequest
	case llm.Responses:
		return responsesRequest
	case llm.Messages:
		return messagesRequest
	default:
		return nil
	}
}

// responseSchema returns the non-streaming response schema of an endpoint,
// nil when it has none.
func responseSchema(ep llm.Endpoint) *node {
	switch ep {
	case llm.ChatCompletions, llm.Completions:
		return choicesResponse
	case llm.Embeddings:
		return embeddingsResponse
	case llm.Responses:
		return responsesResponse
	case llm.Messages:
		return messagesResponse
	default:
		return nil
	}
}
