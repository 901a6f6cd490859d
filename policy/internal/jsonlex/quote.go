package jsonlex

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// Unquote appends to dst the value of the JSON string contents raw (without
// the quotes; Str has already validated its escapes). It decodes exactly as
// encoding/json does: invalid UTF-8 bytes and unpaired surrogate escapes
// become U+FFFD, which is also what most providers read. lossy reports
// whether any such replacement happened, so callers can refuse values that
// other JSON parsers would decode differently; callers that accept the
// encoding/json reading ignore it.
func Unquote(dst, raw []byte) (out []byte, lossy bool) {
	for len(raw) > 0 {
		k := bytes.IndexByte(raw, '\\')
		if k < 0 {
			k = len(raw)
		}
		// A backslash is never part of a multi-byte UTF-8 sequence, so
		// splitting at one does not change how the bytes around it decode.
		var bad bool
		dst, bad = appendValid(dst, raw[:k])
		lossy = lossy || bad
		raw = raw[k:]
		if len(raw) == 0 {
			break
		}
		if raw[1] != 'u' {
			dst = append(dst, unescapeByte(raw[1]))
			raw = raw[2:]
			continue
		}
		r := hex4(raw[2:])
		raw = raw[6:]
		if utf16.IsSurrogate(r) {
			r2 := rune(-1)
			if len(raw) >= 6 && raw[0] == '\\' && raw[1] == 'u' {
				r2 = hex4(raw[2:])
			}
			if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
				r = dec
				raw = raw[6:]
			} else {
				r = utf8.RuneError
				lossy = true
			}
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst, lossy
}

// appendValid appends b with each invalid UTF-8 byte replaced by U+FFFD and
// reports whether there was any.
func appendValid(dst, b []byte) (out []byte, replaced bool) {
	if utf8.Valid(b) {
		return append(dst, b...), false
	}
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
			replaced = true
		} else {
			dst = append(dst, b[:size]...)
		}
		b = b[size:]
	}
	return dst, replaced
}

// unescapeByte maps the byte after a backslash (other than 'u') to its value.
func unescapeByte(c byte) byte {
	switch c {
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	default: // '"', '\\', '/'
		return c
	}
}

// hex4 decodes four validated hex digits.
func hex4(b []byte) rune {
	return HexVal(b[0])<<12 | HexVal(b[1])<<8 | HexVal(b[2])<<4 | HexVal(b[3])
}

const hexDigits = "0123456789abcdef"

// AppendQuoted appends s as a JSON string. Quotes, backslashes and control
// bytes are escaped; invalid UTF-8 becomes \ufffd (as encoding/json does),
// and U+2028/U+2029 are escaped so the output is also safe inside
// JavaScript. It takes a string or a byte slice, so neither kind of caller
// pays for a conversion.
func AppendQuoted[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		size := runeLen(s[i:])
		switch {
		case size == 0: // invalid UTF-8: one byte becomes U+FFFD
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			size = 1
		case size == 3 && c == 0xE2 && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9): // U+2028, U+2029
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[s[i+2]&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// runeLen returns the length of the UTF-8 sequence at the start of s, whose
// first byte is not ASCII, or 0 where utf8.DecodeRune would report an invalid
// byte (a stray continuation byte, a truncated sequence, an overlong form, a
// surrogate or a value past U+10FFFF). It only indexes s, so one generic body
// serves strings and byte slices without converting either (decoding through
// a copy made quoting CJK text about 20% slower).
func runeLen[S ~string | ~[]byte](s S) int {
	c := s[0]
	if c < 0xC2 || c > 0xF4 {
		return 0 // a continuation byte, an overlong lead or past U+10FFFF
	}
	n, lo, hi := 2, byte(0x80), byte(0xBF) // length, range of the second byte
	switch {
	case c >= 0xF0:
		n = 4
	case c >= 0xE0:
		n = 3
	}
	switch c {
	case 0xE0:
		lo = 0xA0 // shorter forms are overlong
	case 0xED:
		hi = 0x9F // U+D800..U+DFFF are surrogates
	case 0xF0:
		lo = 0x90 // shorter forms are overlong
	case 0xF4:
		hi = 0x8F // nothing past U+10FFFF
	}
	switch {
	case len(s) < n || s[1] < lo || s[1] > hi:
		return 0
	case n > 2 && !isCont(s[2]), n > 3 && !isCont(s[3]):
		return 0
	}
	return n
}

// isCont reports whether c is a UTF-8 continuation byte (0x80..0xBF).
func isCont(c byte) bool { return c&0xC0 == 0x80 }
