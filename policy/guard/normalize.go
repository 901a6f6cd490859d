package guard

import (
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// SWAR constants: one bit or one value in every byte of a 64-bit word.
const (
	loBits = 0x0101010101010101
	hiBits = 0x8080808080808080
)

// normalizer turns decoded text into the form detectors match against, and
// keeps a map back to the decoded text so redaction replaces the original
// characters. Four steps, in this order:
//
//  1. A second layer of \uXXXX escapes is decoded. Tool-call arguments are
//     JSON inside a JSON string, so "\u0040" survives the first decoding;
//     the model reads it as "@" and so must the detectors.
//  2. Invisible characters are dropped: zero-width spaces and joiners, the
//     BOM, soft hyphens, bidi controls, variation selectors, tag characters
//     and the rest of Unicode's default-ignorable set, control characters
//     and U+FFFD (see invisible).
//  3. Unicode NFKC folds compatibility forms: full-width digits and letters,
//     ligatures, superscripts, non-breaking and other spaces.
//  4. Decimal digits of every script and letters drawn like Latin ones
//     (Cyrillic "а" for "a") become ASCII (see fold.go).
//
// The map is offs: normalized byte k came from decoded bytes starting at
// offs[k], and offs[len] is the decoded length. A normalized span maps to
// the decoded span from offs[start] to the start of the first later segment
// (see origSpan), so a match never splits a decoded character.
type normalizer struct {
	a     []byte  // after steps 1 and 2
	aOffs []int32 // a byte -> source offset
	out   []byte
	offs  []int32
	it    norm.Iter // reused: Form.Append would allocate per segment
}

// normalize returns the normalized form of src. identity reports that it is
// src itself (pure ASCII without backslashes, the common case), in which
// case no map is built and spans need no translation.
func (z *normalizer) normalize(src []byte) (out []byte, identity bool) {
	if plainASCII(src) {
		return src, true
	}
	switch stable(src) {
	case isNormal:
		return src, true
	case foldOnly:
		z.foldCopy(src)
		return z.out, false
	}
	z.stripAndUnescape(src)
	if isASCII(z.a) {
		z.out = append(z.out[:0], z.a...)
		z.offs = append(z.offs[:0], z.aOffs...)
		z.offs = append(z.offs, int32(len(src)))
		return z.out, false
	}
	z.nfkc(len(src))
	z.fold()
	return z.out, false
}

// stability says how much of normalization a text needs.
type stability uint8

const (
	isNormal stability = iota // the text is its own normal form
	foldOnly                  // only step 4 changes it
	needsAll                  // run every step
)

// stable reports whether src, which is not pure ASCII, is already its own
// normal form: valid UTF-8 in NFKC without a backslash or an invisible
// character, and nothing to fold. Accented and most non-Latin text is, and
// then needs no offset map; text whose only change is a fold (Cyrillic,
// Greek, other scripts' digits) is foldOnly.
func stable(src []byte) stability {
	fold := false
	for i := 0; i < len(src); {
		if i+8 <= len(src) {
			x := binary.LittleEndian.Uint64(src[i:])
			bs := x ^ (loBits * '\\')
			del := x ^ (loBits * 0x7f)
			if (x|((bs-loBits)&^bs)|((del-loBits)&^del)|((x-loBits*0x20)&^x))&hiBits == 0 {
				i += 8
				continue
			}
		}
		c := src[i]
		if c < utf8.RuneSelf {
			if c == '\\' || dropByte(c) {
				return needsAll
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		if invisible(r) {
			return needsAll
		}
		i += size
		fold = fold || (foldRune(r) != 0 && !markAt(src[i:]))
	}
	// QuickSpan never reports more than is normalized; when it stops short
	// the slow path decides.
	switch {
	case norm.NFKC.QuickSpan(src) != len(src):
		return needsAll
	case fold:
		return foldOnly
	}
	return isNormal
}

// stripAndUnescape runs steps 1 and 2 from src into z.a and z.aOffs.
func (z *normalizer) stripAndUnescape(src []byte) {
	a, ao := z.a[:0], z.aOffs[:0]
	for i := 0; i < len(src); {
		c := src[i]
		if c == '\\' {
			if r, n := escapedRune(src[i:]); n > 0 {
				if !invisible(r) {
					before := len(a)
					a = utf8.AppendRune(a, r)
					for range len(a) - before {
						ao = append(ao, int32(i))
					}
				}
				i += n
				continue
			}
		}
		if c < utf8.RuneSelf {
			if !dropByte(c) {
				a = append(a, c)
				ao = append(ao, int32(i))
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		if !invisible(r) {
			for k := range size {
				a = append(a, src[i+k])
				ao = append(ao, int32(i+k))
			}
		}
		i += size
	}
	z.a, z.aOffs = a, ao
}

// nfkc runs step 3 from z.a into z.out and z.offs. Text already in NFKC
// (QuickSpan) is copied byte for byte; each remaining segment is normalized
// on its own, which is exact because segments end at normalization
// boundaries, and all its output bytes map to the segment's start.
func (z *normalizer) nfkc(srcLen int) {
	a := z.a
	out, offs := z.out[:0], z.offs[:0]
	for i := 0; i < len(a); {
		n := norm.NFKC.QuickSpan(a[i:])
		for k := range n {
			out = append(out, a[i+k])
			offs = append(offs, z.aOffs[i+k])
		}
		i += n
		if i >= len(a) {
			break
		}
		seg := norm.NFKC.NextBoundary(a[i:], true)
		if seg <= 0 {
			seg = len(a) - i
		}
		before := len(out)
		z.it.Init(norm.NFKC, a[i:i+seg])
		for !z.it.Done() {
			out = append(out, z.it.Next()...)
		}
		for range len(out) - before {
			offs = append(offs, z.aOffs[i])
		}
		i += seg
	}
	z.out, z.offs = out, append(offs, int32(srcLen))
}

// origSpan maps the normalized span [s, e) back to the decoded text.
func (z *normalizer) origSpan(s, e int) (int, int) {
	offs := z.offs
	last := offs[e-1]
	for e < len(offs)-1 && offs[e] == last {
		e++
	}
	return int(offs[s]), int(offs[e])
}

// escapedRune decodes a \uXXXX escape (or a surrogate pair of them) at the
// start of b. n is 0 when b does not start with one, or when it is an
// unpaired surrogate, which is left as text.
func escapedRune(b []byte) (r rune, n int) {
	if len(b) < 6 || b[1] != 'u' {
		return 0, 0
	}
	r = hexRune(b[2:6])
	if r < 0 {
		return 0, 0
	}
	if !utf16.IsSurrogate(r) {
		return r, 6
	}
	if len(b) < 12 || b[6] != '\\' || b[7] != 'u' {
		return 0, 0
	}
	r2 := hexRune(b[8:12])
	if r2 < 0 {
		return 0, 0
	}
	if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
		return d, 12
	}
	return 0, 0
}

// hexRune decodes four hex digits, or returns -1.
func hexRune(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		v := jsonlex.HexVal(c)
		if v < 0 {
			return -1
		}
		r = r<<4 | v
	}
	return r
}

// invisible reports whether r renders as nothing and can hide inside a
// token: Unicode's Default_Ignorable_Code_Point set (format characters such
// as U+200B..U+200F, U+2060..U+206F, U+FEFF and U+00AD, variation selectors,
// Hangul fillers, tag characters U+E0000..U+E0FFF), control characters, and
// U+FFFD, which stands for invalid UTF-8 and unpaired surrogate escapes
// (providers differ on what they make of those, so none may split a token).
func invisible(r rune) bool {
	switch {
	case r < 0x80:
		return dropByte(byte(r))
	case r < 0xA0:
		return true // C1 controls
	case r < 0xAD:
		return false
	case r == utf8.RuneError:
		return true
	case r == 0xAD, r == 0x34F, r == 0x61C, r == 0x115F, r == 0x1160,
		r == 0x17B4, r == 0x17B5, r >= 0x180B && r <= 0x180F,
		r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E,
		r >= 0x2060 && r <= 0x206F, r == 0x3164,
		r >= 0xFE00 && r <= 0xFE0F, r == 0xFEFF, r == 0xFFA0,
		r >= 0xFFF0 && r <= 0xFFF8, r >= 0x1BCA0 && r <= 0x1BCA3,
		r >= 0x1D173 && r <= 0x1D17A, r >= 0xE0000 && r <= 0xE0FFF:
		return true
	}
	return false
}

// plainASCII reports whether b is pure ASCII without a backslash or a
// control character other than tab, newline and carriage return: such text
// is its own normal form. It reads eight bytes at a time.
func plainASCII(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		bs := x ^ (loBits * '\\')
		del := x ^ (loBits * 0x7f)
		if (x|((bs-loBits)&^bs)|((del-loBits)&^del))&hiBits != 0 {
			return false
		}
		// A byte below 0x20 (newlines, mostly): check those eight.
		if (x-loBits*0x20)&^x&hiBits != 0 {
			for _, c := range b[i : i+8] {
				if dropByte(c) {
					return false
				}
			}
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c >= utf8.RuneSelf || c == '\\' || dropByte(c) {
			return false
		}
	}
	return true
}

// dropByte reports an ASCII control character that renders as nothing:
// C0 controls other than tab, newline and carriage return, and DEL.
func dropByte(c byte) bool {
	return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f
}

// isASCII reports whether b holds only ASCII bytes.
func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
