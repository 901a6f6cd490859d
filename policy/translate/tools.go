package translate

import "github.com/tollgate-ai/tollgate/policy/internal/jsonlex"

// appendQuoted appends s as a JSON string token.
func appendQuoted[S ~string | ~[]byte](dst []byte, s S) []byte { return jsonlex.AppendQuoted(dst, s) }

// assistantTurn writes an assistant message: its text, then its tool calls as tool_use
// blocks. An assistant message with tool calls keeps its text as a leading text block (an
// empty text is not a block: Anthropic refuses empty text blocks, and it carries nothing).
func (b *builder) assistantTurn(msg chatMessage) error {
	if msg.toolCallID != nil {
		return untranslatable(path(msg.field, "tool_call_id"), "only tool messages carry a tool_call_id")
	}
	field := path(msg.field, "content")
	var texts [][]byte
	plain := false
	switch {
	case isNull(msg.content):
		if msg.toolCalls == nil {
			return invalid(field, "is required without tool_calls")
		}
	default:
		var err error
		if texts, plain, err = textParts(msg.content, field); err != nil {
			return err
		}
	}
	b.raw(`{"role":"assistant","content":`)
	if msg.toolCalls == nil && plain {
		b.out = append(b.out, texts[0]...)
		b.raw("}")
		return nil
	}
	b.raw("[")
	n := 0
	for _, t := range texts {
		if msg.toolCalls != nil && emptyString(t) {
			continue
		}
		if n > 0 {
			b.raw(",")
		}
		b.textBlock(t)
		n++
	}
	if msg.toolCalls != nil {
		field := path(msg.field, "tool_calls")
		if !isArray(msg.toolCalls) {
			return invalid(field, "must be an array")
		}
		for j, tc := range elements(msg.toolCalls) {
			if n > 0 {
				b.raw(",")
			}
			if err := b.toolUse(tc, index(field, j)); err != nil {
				return err
			}
			n++
		}
	}
	b.raw("]}")
	return nil
}

// toolUse writes one assistant tool call as a tool_use block. The arguments, a string that
// holds a JSON object, become the block's input object.
func (b *builder) toolUse(tc []byte, field string) error {
	if !isObject(tc) {
		return invalid(field, "must be an object")
	}
	var id, typ, fn []byte
	unknown := ""
	for _, m := range members(tc) {
		switch m.key {
		case "id":
			id = m.val
		case "type":
			typ = m.val
		case "function":
			fn = m.val
		default:
			if unknown == "" {
				unknown = m.key
			}
		}
	}
	if !strIs(typ, "function") {
		return untranslatable(path(field, "type"), "only function tool calls can be translated")
	}
	if unknown != "" {
		return untranslatable(path(field, unknown), "unknown field")
	}
	if !isString(id) {
		return invalid(path(field, "id"), "must be a string")
	}
	field = path(field, "function")
	if !isObject(fn) {
		return invalid(field, "must be an object")
	}
	var name, args []byte
	for _, m := range members(fn) {
		switch m.key {
		case "name":
			name = m.val
		case "arguments":
			args = m.val
		default:
			return untranslatable(path(field, m.key), "unknown field")
		}
	}
	if !isString(name) {
		return invalid(path(field, "name"), "must be a string")
	}
	a, ok := str(args)
	if !ok {
		return invalid(path(field, "arguments"), "must be a string")
	}
	input := trimWS([]byte(a))
	if len(input) == 0 {
		input = []byte("{}") // a call without arguments
	} else if check(input) != nil || !isObject(input) {
		return untranslatable(path(field, "arguments"), "must hold a JSON object (without duplicate keys) to become the tool_use input")
	}
	b.raw(`{"type":"tool_use","id":`)
	b.out = append(b.out, id...)
	b.raw(`,"name":`)
	b.out = append(b.out, name...)
	b.raw(`,"input":`)
	b.out = append(b.out, input...)
	b.raw("}")
	return nil
}

// toolResult writes a tool message as a tool_result block.
func (b *builder) toolResult(msg chatMessage) error {
	if msg.toolCalls != nil {
		return untranslatable(path(msg.field, "tool_calls"), "only assistant messages carry tool calls")
	}
	if !isString(msg.toolCallID) {
		return invalid(path(msg.field, "tool_call_id"), "must be a string")
	}
	texts, plain, err := textParts(msg.content, path(msg.field, "content"))
	if err != nil {
		return err
	}
	b.raw(`{"type":"tool_result","tool_use_id":`)
	b.out = append(b.out, msg.toolCallID...)
	b.raw(`,"content":`)
	b.textContent(texts, plain)
	b.raw("}")
	return nil
}

// tools writes "tools" and "tool_choice". parallel false (parallel_tool_calls: false)
// becomes disable_parallel_tool_use on the tool choice, which is then written even when the
// client left it to the default (auto); it means nothing without tools or with tool_choice
// none, where no call is made.
func (b *builder) tools(tools, choice []byte, noParallel bool) error {
	if tools != nil {
		b.raw(`,"tools":[`)
		for i, t := range elements(tools) {
			if i > 0 {
				b.raw(",")
			}
			if err := b.tool(t, index("tools", i)); err != nil {
				return err
			}
		}
		b.raw("]")
	}
	noParallel = noParallel && tools != nil && len(elements(tools)) > 0
	if choice == nil && !noParallel {
		return nil
	}
	typ, name := "auto", []byte(nil)
	switch {
	case choice == nil:
	case isString(choice):
		s, _ := str(choice)
		switch s {
		case "none", "auto":
			typ = s
		case "required":
			typ = "any"
		default:
			return untranslatable("tool_choice", "only none, auto, required or a named function can be translated")
		}
	case isObject(choice):
		t, fn, unknown := typed(choice, "function")
		if !strIs(t, "function") {
			return untranslatable("tool_choice.type", "only a named function can be translated")
		}
		if unknown != "" {
			return untranslatable(path("tool_choice", unknown), "unknown field")
		}
		if !isObject(fn) {
			return invalid("tool_choice.function", "must be an object")
		}
		for _, m := range members(fn) {
			if m.key != "name" {
				return untranslatable(path("tool_choice.function", m.key), "unknown field")
			}
			name = m.val
		}
		if !isString(name) {
			return invalid("tool_choice.function.name", "must be a string")
		}
		typ = "tool"
	default:
		return invalid("tool_choice", "must be a string or an object")
	}
	b.raw(`,"tool_choice":{"type":"`)
	b.raw(typ)
	b.raw(`"`)
	if name != nil {
		b.raw(`,"name":`)
		b.out = append(b.out, name...)
	}
	if noParallel && typ != "none" {
		b.raw(`,"disable_parallel_tool_use":true`)
	}
	b.raw("}")
	return nil
}

// tool writes one function tool: name, description and parameters (the input schema; an
// empty object schema when absent, since Anthropic requires one).
func (b *builder) tool(t []byte, field string) error {
	if !isObject(t) {
		return invalid(field, "must be an object")
	}
	typ, fn, unknown := typed(t, "function")
	if !strIs(typ, "function") {
		return untranslatable(path(field, "type"), "only function tools can be translated")
	}
	if unknown != "" {
		return untranslatable(path(field, unknown), "unknown field")
	}
	field = path(field, "function")
	if !isObject(fn) {
		return invalid(field, "must be an object")
	}
	var name, desc, params []byte
	for _, m := range members(fn) {
		switch m.key {
		case "name":
			name = m.val
		case "description":
			if !isNull(m.val) && !isString(m.val) {
				return invalid(path(field, "description"), "must be a string")
			}
			if !isNull(m.val) {
				desc = m.val
			}
		case "parameters":
			if !isNull(m.val) && !isObject(m.val) {
				return invalid(path(field, "parameters"), "must be an object")
			}
			if !isNull(m.val) {
				params = m.val
			}
		case "strict":
			if !isNull(m.val) && string(m.val) != "false" {
				return untranslatable(path(field, "strict"), "strict schema adherence is not translated")
			}
		default:
			return untranslatable(path(field, m.key), "unknown field")
		}
	}
	if !isString(name) {
		return invalid(path(field, "name"), "must be a string")
	}
	b.raw(`{"name":`)
	b.out = append(b.out, name...)
	if desc != nil {
		b.raw(`,"description":`)
		b.out = append(b.out, desc...)
	}
	b.raw(`,"input_schema":`)
	if params != nil {
		b.out = append(b.out, params...)
	} else {
		b.raw(`{"type":"object","properties":{}}`)
	}
	b.raw("}")
	return nil
}

// typed reads an object of the shape {"type": ..., body: ...}: its type, the value of the
// member named body, and the first other member's key ("" when none). The caller checks the
// type first, so a refusal names what the client chose (a custom tool) rather than a member
// that only that choice has.
func typed(obj []byte, body string) (typ, val []byte, unknown string) {
	for _, m := range members(obj) {
		switch m.key {
		case "type":
			typ = m.val
		case body:
			val = m.val
		default:
			if unknown == "" {
				unknown = m.key
			}
		}
	}
	return typ, val, unknown
}
