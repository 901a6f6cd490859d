package mockllm

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// answerPieces returns the deterministic answer for model in n non-empty pieces, whose
// concatenation is the whole answer. The answer is "This is a mock response from <model>."
// split at spaces (each piece after the first keeps its leading space) and grouped evenly; when
// it has fewer than n words it is padded with " mock" words. n must be positive.
func answerPieces(model string, n int) []string {
	words := strings.Split("This is a mock response from "+model+".", " ")
	units := make([]string, 0, max(len(words), n))
	for i, w := range words {
		if i > 0 {
			w = " " + w
		}
		units = append(units, w)
	}
	for len(units) < n {
		units = append(units, " mock")
	}
	pieces := make([]string, n)
	for i := range n {
		pieces[i] = strings.Join(units[i*len(units)/n:(i+1)*len(units)/n], "")
	}
	return pieces
}

// tokensFor estimates tokens from a character count: ceil(chars/4), at least 1.
func tokensFor(chars int) int {
	return max(1, (chars+3)/4)
}

// contentChars counts the runes of prompt text in a content value: a string, or an array of
// strings and parts with a string "text" field (other parts, such as images, count zero).
// Anything else counts zero: the mock estimates, it does not validate content.
func contentChars(raw json.RawMessage) int {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return 0
	}
	switch t := v.(type) {
	case string:
		return utf8.RuneCountInString(t)
	case []any:
		n := 0
		for _, e := range t {
			switch e := e.(type) {
			case string:
				n += utf8.RuneCountInString(e)
			case map[string]any:
				if s, ok := e["text"].(string); ok {
					n += utf8.RuneCountInString(s)
				}
			}
		}
		return n
	}
	return 0
}

// messagesChars counts the content runes of a message list: chat and Anthropic "messages",
// Responses "input" items. A bare string (Responses input) counts as one message.
func messagesChars(raw json.RawMessage) int {
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return contentChars(raw)
	}
	n := 0
	for _, it := range items {
		var m struct {
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(it, &m) == nil {
			n += contentChars(m.Content)
		}
	}
	return n
}
