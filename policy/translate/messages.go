package translate

import "strings"

// chatMessage holds the members of one chat message.
type chatMessage struct {
	role               string
	content, toolCalls []byte
	toolCallID         []byte
	field              string // messages[i]
}

// readMessage reads messages[i], refusing members that cannot be translated.
func readMessage(v []byte, field string) (chatMessage, error) {
	msg := chatMessage{field: field}
	if !isObject(v) {
		return msg, invalid(field, "must be an object")
	}
	for _, m := range members(v) {
		f := path(field, m.key)
		switch m.key {
		case "role":
			r, ok := str(m.val)
			if !ok {
				return msg, invalid(f, "must be a string")
			}
			msg.role = r
		case "content":
			msg.content = m.val
		case "tool_calls":
			if !isNull(m.val) {
				msg.toolCalls = m.val
			}
		case "tool_call_id":
			msg.toolCallID = m.val
		case "name":
			if !isNull(m.val) {
				return msg, untranslatable(f, "Anthropic messages carry no participant name")
			}
		case "refusal", "audio", "function_call":
			if !isNull(m.val) {
				return msg, untranslatable(f, "has no Anthropic equivalent")
			}
		default:
			return msg, untranslatable(f, "unknown field")
		}
	}
	if msg.role == "" {
		return msg, invalid(path(field, "role"), "is required")
	}
	return msg, nil
}

// conversation writes "system" (from the leading system and developer messages) and
// "messages". A system message after the conversation began is refused: Anthropic takes one
// system prompt before the turns, and moving it would change what the model reads.
func (b *builder) conversation(messages []byte) error {
	var (
		system [][]byte // raw string tokens of the system text blocks
		plain  bool     // system is exactly one message with string content
		turns  []chatMessage
		began  bool
	)
	for i, e := range elements(messages) {
		msg, err := readMessage(e, index("messages", i))
		if err != nil {
			return err
		}
		switch msg.role {
		case "system", "developer":
			if began {
				return untranslatable(path(msg.field, "role"),
					"a system message after the first user or assistant message cannot be translated")
			}
			if msg.toolCalls != nil {
				return untranslatable(path(msg.field, "tool_calls"), "only assistant messages carry tool calls")
			}
			if msg.toolCallID != nil {
				return untranslatable(path(msg.field, "tool_call_id"), "only tool messages carry a tool_call_id")
			}
			texts, isString, err := textParts(msg.content, path(msg.field, "content"))
			if err != nil {
				return err
			}
			plain = len(system) == 0 && isString
			system = append(system, texts...)
		case "user", "assistant", "tool":
			began = true
			turns = append(turns, msg)
		default:
			return untranslatable(path(msg.field, "role"), "only system, developer, user, assistant and tool messages can be translated")
		}
	}
	if len(system) > 0 {
		b.raw(`,"system":`)
		b.textContent(system, plain && len(system) == 1)
	}
	b.raw(`,"messages":[`)
	inTools := false // a user turn of tool results is open
	for i, msg := range turns {
		if msg.role == "tool" {
			if !inTools {
				if i > 0 {
					b.raw(",")
				}
				b.raw(`{"role":"user","content":[`)
				inTools = true
			} else {
				b.raw(",")
			}
			if err := b.toolResult(msg); err != nil {
				return err
			}
			continue
		}
		if inTools {
			b.raw("]}")
			inTools = false
		}
		if i > 0 {
			b.raw(",")
		}
		var err error
		if msg.role == "user" {
			err = b.userTurn(msg)
		} else {
			err = b.assistantTurn(msg)
		}
		if err != nil {
			return err
		}
	}
	if inTools {
		b.raw("]}")
	}
	b.raw("]")
	return nil
}

// textParts reads a system or tool content: a string, or an array of text parts. It returns
// the raw string tokens and whether the content was one string.
func textParts(v []byte, field string) ([][]byte, bool, error) {
	switch {
	case isString(v):
		return [][]byte{v}, true, nil
	case isArray(v):
		var out [][]byte
		for j, p := range elements(v) {
			pf := index(field, j)
			text, err := textPart(p, pf)
			if err != nil {
				return nil, false, err
			}
			out = append(out, text)
		}
		return out, false, nil
	default:
		return nil, false, invalid(field, "must be a string or an array of text parts")
	}
}

// textPart reads a {"type":"text","text":...} part and returns the text token.
func textPart(p []byte, field string) ([]byte, error) {
	if !isObject(p) {
		return nil, invalid(field, "must be an object")
	}
	var typ, text []byte
	for _, m := range members(p) {
		switch m.key {
		case "type":
			typ = m.val
		case "text":
			text = m.val
		default:
			return nil, untranslatable(path(field, m.key), "unknown field")
		}
	}
	if !strIs(typ, "text") {
		return nil, untranslatable(path(field, "type"), "only text parts can be translated here")
	}
	if !isString(text) {
		return nil, invalid(path(field, "text"), "must be a string")
	}
	return text, nil
}

// textBlock writes an Anthropic text block holding the raw string token t.
func (b *builder) textBlock(t []byte) {
	b.raw(`{"type":"text","text":`)
	b.out = append(b.out, t...)
	b.raw("}")
}

// textContent writes Anthropic content from JSON strings: the single string itself when
// plain, else an array of text blocks.
func (b *builder) textContent(texts [][]byte, plain bool) {
	if plain {
		b.out = append(b.out, texts[0]...)
		return
	}
	b.raw("[")
	for i, t := range texts {
		if i > 0 {
			b.raw(",")
		}
		b.textBlock(t)
	}
	b.raw("]")
}

// userTurn writes a user message: a string, or text and image parts.
func (b *builder) userTurn(msg chatMessage) error {
	if msg.toolCalls != nil {
		return untranslatable(path(msg.field, "tool_calls"), "only assistant messages carry tool calls")
	}
	if msg.toolCallID != nil {
		return untranslatable(path(msg.field, "tool_call_id"), "only tool messages carry a tool_call_id")
	}
	field := path(msg.field, "content")
	b.raw(`{"role":"user","content":`)
	switch {
	case isString(msg.content):
		b.out = append(b.out, msg.content...)
	case isArray(msg.content):
		b.raw("[")
		for j, p := range elements(msg.content) {
			if j > 0 {
				b.raw(",")
			}
			if err := b.userPart(p, index(field, j)); err != nil {
				return err
			}
		}
		b.raw("]")
	default:
		return invalid(field, "must be a string or an array of content parts")
	}
	b.raw("}")
	return nil
}

// userPart writes one user content part: text, or an image by URL or base64 data URL.
func (b *builder) userPart(p []byte, field string) error {
	if !isObject(p) {
		return invalid(field, "must be an object")
	}
	var typ []byte
	for _, m := range members(p) {
		if m.key == "type" {
			typ = m.val
		}
	}
	t, _ := str(typ)
	switch t {
	case "text":
		text, err := textPart(p, field)
		if err != nil {
			return err
		}
		b.textBlock(text)
		return nil
	case "image_url":
		return b.imagePart(p, field)
	default:
		return untranslatable(path(field, "type"), "only text and image_url parts can be translated")
	}
}

// imagePart writes an image_url part as an Anthropic image block.
func (b *builder) imagePart(p []byte, field string) error {
	var img []byte
	for _, m := range members(p) {
		switch m.key {
		case "type":
		case "image_url":
			img = m.val
		default:
			return untranslatable(path(field, m.key), "unknown field")
		}
	}
	field = path(field, "image_url")
	if !isObject(img) {
		return invalid(field, "must be an object")
	}
	var url []byte
	for _, m := range members(img) {
		switch m.key {
		case "url":
			url = m.val
		case "detail":
			if !isNull(m.val) && !strIs(m.val, "auto") {
				return untranslatable(path(field, "detail"), "Anthropic has no image detail setting; only auto can be translated")
			}
		default:
			return untranslatable(path(field, m.key), "unknown field")
		}
	}
	u, ok := str(url)
	if !ok {
		return invalid(path(field, "url"), "must be a string")
	}
	field = path(field, "url")
	switch {
	case strings.HasPrefix(u, "data:"):
		meta, data, ok := strings.Cut(u[len("data:"):], ",")
		media, b64 := strings.CutSuffix(meta, ";base64")
		if !ok || !b64 || strings.Contains(media, ";") {
			return untranslatable(field, "only base64 data URLs can be translated")
		}
		media = strings.ToLower(media)
		switch media {
		case "image/jpeg", "image/png", "image/gif", "image/webp":
		default:
			return untranslatable(field, "Anthropic accepts image/jpeg, image/png, image/gif and image/webp")
		}
		b.raw(`{"type":"image","source":{"type":"base64","media_type":"`)
		b.raw(media)
		b.raw(`","data":`)
		b.out = appendQuoted(b.out, data)
		b.raw("}}")
	case hasScheme(u, "https://"), hasScheme(u, "http://"):
		b.raw(`{"type":"image","source":{"type":"url","url":`)
		b.out = append(b.out, url...)
		b.raw("}}")
	default:
		return untranslatable(field, "only http(s) and base64 data URLs can be translated")
	}
	return nil
}

// hasScheme reports whether u starts with scheme, in any letter case.
func hasScheme(u, scheme string) bool {
	return len(u) >= len(scheme) && strings.EqualFold(u[:len(scheme)], scheme)
}
