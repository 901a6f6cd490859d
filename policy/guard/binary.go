package guard

import "bytes"

// Binary data in requests: images, audio and files travel as base64 inside
// JSON strings. The provider decodes them to bytes, so they are not text and
// are not scanned (they would also blow every scan limit). The walker skips
// a string only where the schema expects binary data (see binKind) and only
// when it really is base64; anything else there is scanned as text, so a
// secret cannot hide in a binary member by not being binary.

// maxDataURLHeader bounds the "data:<media type>;base64," header searched.
const maxDataURLHeader = 256

// binary reports whether the string token w.B[start:w.Pos] (flags from the
// lexer) is binary data of kind k, and so is skipped. A data URL's header
// is then extracted as keep, since a client can write anything in it.
func (w *walker) binary(k binKind, start int, flags uint8) bool {
	raw := w.B[start+1 : w.Pos-1]
	switch k {
	case binURL:
		h := dataURLHeader(raw)
		if h < 0 || !isBase64(raw[h:]) {
			return false
		}
		w.locs = append(w.locs, loc{start: int32(start), end: int32(start + 1 + h + 1), flags: flags, keep: true, path: w.pathID()})
		return true
	case binRaw:
		return isBase64(raw)
	default:
		// binTyped waits for the object's type (see walker.object).
		return false
	}
}

// dataURLHeader returns the length of raw's "data:…;base64," header, or -1
// when raw is not a base64 data URL.
func dataURLHeader(raw []byte) int {
	if len(raw) < 5 || !bytes.EqualFold(raw[:5], []byte("data:")) {
		return -1
	}
	i := bytes.Index(raw[:min(len(raw), maxDataURLHeader)], []byte(";base64,"))
	if i < 0 {
		return -1
	}
	return i + len(";base64,")
}

// pureBase64 reports whether the string of loc l is base64.
func (w *walker) pureBase64(l loc) bool {
	return isBase64(w.B[l.start+1 : l.end-1])
}

// isBase64 reports whether raw (a JSON string's contents) is non-empty
// base64, standard or URL-safe, possibly wrapped in lines: letters, digits,
// + / - _ =, and the escapes \/ \n \r. Spaces are not allowed: text would
// slip through as "base64" words.
func isBase64(raw []byte) bool {
	if len(raw) == 0 {
		return false
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9',
			c == '+', c == '/', c == '-', c == '_', c == '=':
		case c == '\\' && i+1 < len(raw) && (raw[i+1] == '/' || raw[i+1] == 'n' || raw[i+1] == 'r'):
			i++
		default:
			return false
		}
	}
	return true
}

// isBinaryType reports whether the raw value of an object's "type" member
// makes its data member binary (see binTyped).
func isBinaryType(v []byte) bool {
	return string(v) == `"base64"` || string(v) == `"redacted_thinking"`
}
