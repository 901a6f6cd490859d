package llm

import (
	"bytes"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// Members that make the provider read input the request body does not carry, so the body's
// size does not bound the input it is billed for. Request.StoredInput names the first one.
const (
	memberFileID   = "file_id"   // a file uploaded earlier (OpenAI chat and Responses, Anthropic Files API)
	memberFileURL  = "file_url"  // a file the provider fetches (Responses input_file)
	memberImageURL = "image_url" // an image the provider fetches, unless it is an inline data: URL
	memberURL      = "url"       // inside image_url or an Anthropic source: an image or document by URL
)

// unseenNeedles are the byte strings one of which occurs in any body holding such a member
// (a key written with a \u escape contains `\u`): bodies without any skip the walk.
var unseenNeedles = [...][]byte{[]byte(`_id"`), []byte(`_url"`), []byte(`"url"`), []byte(`\u`)}

// unseenInput returns the first member, at any depth, that makes the provider read input
// the body does not carry: a file by id or URL (file_id, file_url holding a string), an
// image by URL (image_url holding a URL other than an inline data: URL, or an object whose
// url does), or an Anthropic source whose url is one. Top-level metadata and user are the
// client's own labels and are not read. body is valid JSON that ParseRequest accepted; ""
// when there is no such member.
func unseenInput(body []byte) string {
	found := false
	for _, n := range unseenNeedles {
		if bytes.Contains(body, n) {
			found = true
			break
		}
	}
	if !found {
		return ""
	}
	var l jsonlex.Lexer
	l.Reset(body, ErrInvalidJSON, ErrInvalidJSON)
	l.SkipWS()
	name, _ := walkUnseen(&l, 0, false)
	return name
}

// walkUnseen scans the value at l.Pos, depth containers deep, and returns the first member
// that unseenInput looks for, and false on a syntax error. media reports that the value is
// a member named image_url or source, whose url names an image or document. The top level's
// metadata and user are skipped.
func walkUnseen(l *jsonlex.Lexer, depth int, media bool) (string, bool) {
	if l.Pos >= len(l.B) {
		return "", false
	}
	switch l.B[l.Pos] {
	case '[':
		if depth >= jsonlex.MaxDepth {
			return "", false
		}
		a := l.Array()
		for a.Next() {
			if name, ok := walkUnseen(l, depth+1, false); name != "" || !ok {
				return name, ok
			}
		}
		return "", a.Done()
	case '{':
		if depth >= jsonlex.MaxDepth {
			return "", false
		}
		o := l.Object()
		for o.Next() {
			key := o.Key()
			if depth == 0 && (string(key) == "metadata" || string(key) == "user") {
				if !l.Value(1) {
					return "", false
				}
				continue
			}
			switch {
			case string(key) == memberFileID || string(key) == memberFileURL:
				// A string: an id or URL (a tool's parameter schema may name a property
				// file_id, whose value is an object).
				if l.Pos < len(l.B) && l.B[l.Pos] == '"' {
					return string(key), true
				}
			case string(key) == memberImageURL && l.Pos < len(l.B) && l.B[l.Pos] == '"',
				string(key) == memberURL && media:
				if isRemoteURL(l) {
					return string(key), true
				}
			}
			if name, ok := walkUnseen(l, depth+1, string(key) == memberImageURL || string(key) == "source"); name != "" || !ok {
				return name, ok
			}
		}
		return "", o.Done()
	}
	return "", l.Value(depth)
}

// isRemoteURL reports whether the value at l.Pos is a string the provider would fetch: any
// URL but an inline data: URL (letter case ignored, escapes decoded, leading space trimmed),
// leaving l.Pos where it was.
func isRemoteURL(l *jsonlex.Lexer) bool {
	if l.Pos >= len(l.B) || l.B[l.Pos] != '"' {
		return false
	}
	start := l.Pos
	v, ok := l.StrValue()
	l.Pos = start
	if !ok {
		return false
	}
	v = bytes.TrimLeft(v, " \t\r\n")
	const inline = "data:"
	return len(v) < len(inline) || !bytes.EqualFold(v[:len(inline)], []byte(inline))
}
