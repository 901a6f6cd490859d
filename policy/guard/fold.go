package guard

import (
	"slices"
	"unicode"
	"unicode/utf8"
)

// Step 4 of normalization folds what NFKC leaves alone but a reader (human
// or model) takes for ASCII:
//
//   - Decimal digits of every script (Unicode category Nd: Arabic-Indic
//     ٤١١١, Persian ۴۱۱۱, Devanagari ४१११, ...) become the ASCII digit of the
//     same value, so numbers written in them are cards, phones, SSNs and
//     IBANs like any other.
//   - Letters of other scripts drawn like a Latin letter (a subset of the
//     Unicode TR39 confusables: Cyrillic а, е, о, р, с, х, і, ј, ѕ, һ, ...,
//     Greek Α, Β, Ε, Ι, Κ, Ο, ο, α, ν, ..., Lisu ꓮ, ꓓ, ꓝ, ..., Armenian օ,
//     ս, ..., and Latin variants such as dotless ı and script ɡ) become that
//     Latin letter, so "АKIA…" with a Cyrillic А is an AWS key and
//     "jоhn@…" with a Cyrillic о an email address.
//
// Folding a whole script's look-alikes turns Cyrillic and Greek words into a
// mix of scripts ("привет" reads "пpивeт"), which no detector matches: every
// detector needs ASCII punctuation, digits or a Latin word that such prose
// does not spell (see the non-Latin prose corpus in the tests). A letter
// followed by a combining mark is left alone: "а́" is another letter, and
// folding it would leave the text out of NFKC.
//
// Each folded character becomes one ASCII byte, so the fold never
// lengthens the text and runs in place.

// foldLo and foldHi delimit foldTab: Latin Extended-A and -B, IPA, Greek,
// Cyrillic and Armenian.
const (
	foldLo = 0x100
	foldHi = 0x590
	lisuLo = 0xA4D0
	lisuHi = 0xA500
)

// confusables maps each folded letter to its Latin look-alike.
var confusables = map[rune]byte{
	// Latin letters that are not ASCII but look it.
	0x0131: 'i', // dotless i
	0x0237: 'j', // dotless j
	0x01C0: 'l', // dental click
	0x0251: 'a', // alpha
	0x0261: 'g', // script g
	0x0269: 'i', // iota
	// Greek capitals.
	0x0391: 'A', 0x0392: 'B', 0x0395: 'E', 0x0396: 'Z', 0x0397: 'H', 0x0399: 'I', 0x039A: 'K',
	0x039C: 'M', 0x039D: 'N', 0x039F: 'O', 0x03A1: 'P', 0x03A4: 'T', 0x03A5: 'Y', 0x03A7: 'X',
	0x037F: 'J', // yot
	// Greek small letters.
	0x03B1: 'a', 0x03B9: 'i', 0x03BD: 'v', 0x03BF: 'o', 0x03C1: 'p', 0x03C5: 'u',
	0x03F3: 'j', // yot
	// Cyrillic capitals.
	0x0405: 'S', // dze
	0x0406: 'I', // Byelorussian-Ukrainian i
	0x0408: 'J', // je
	0x0410: 'A', 0x0412: 'B', 0x0415: 'E', 0x041A: 'K', 0x041C: 'M', 0x041D: 'H', 0x041E: 'O',
	0x0420: 'P', 0x0421: 'C', 0x0422: 'T', 0x0425: 'X',
	0x04AE: 'Y', // straight u
	0x04C0: 'I', // palochka
	0x050C: 'G', // Komi sje
	0x051A: 'Q', // qa
	0x051C: 'W', // we
	// Cyrillic small letters.
	0x0430: 'a', 0x0435: 'e', 0x043E: 'o', 0x0440: 'p', 0x0441: 'c', 0x0443: 'y', 0x0445: 'x',
	0x0455: 's', // dze
	0x0456: 'i', // Byelorussian-Ukrainian i
	0x0458: 'j', // je
	0x04AF: 'y', // straight u
	0x04BB: 'h', // shha
	0x04CF: 'l', // palochka
	0x0501: 'd', // Komi de
	0x051B: 'q', // qa
	0x051D: 'w', // we
	// Armenian small letters.
	0x0566: 'q', 0x0570: 'h', 0x0578: 'n', 0x057D: 'u', 0x0581: 'g', 0x0585: 'o',
	// Lisu: capitals of the Fraser alphabet, drawn as Latin capitals.
	0xA4D0: 'B', 0xA4D1: 'P', 0xA4D3: 'D', 0xA4D4: 'T', 0xA4D6: 'G', 0xA4D7: 'K', 0xA4D9: 'J',
	0xA4DA: 'C', 0xA4DC: 'Z', 0xA4DD: 'F', 0xA4DF: 'M', 0xA4E0: 'N', 0xA4E1: 'L', 0xA4E2: 'S',
	0xA4E3: 'R', 0xA4E6: 'V', 0xA4E7: 'H', 0xA4EA: 'W', 0xA4EB: 'X', 0xA4EC: 'Y', 0xA4EE: 'A',
	0xA4F0: 'E', 0xA4F2: 'I', 0xA4F3: 'O', 0xA4F4: 'U',
}

// foldTab and lisuTab are confusables as dense tables: the fold is looked up
// for every non-ASCII character of a text.
var foldTab, lisuTab = func() (lo [foldHi - foldLo]byte, li [lisuHi - lisuLo]byte) {
	for r, c := range confusables {
		switch {
		case r >= foldLo && r < foldHi:
			lo[r-foldLo] = c
		case r >= lisuLo && r < lisuHi:
			li[r-lisuLo] = c
		default:
			panic("guard: confusable outside the fold tables")
		}
	}
	return lo, li
}()

// ndRange is a range of decimal digits: whole runs of ten, the first a zero.
type ndRange struct{ lo, hi rune }

// ndRanges lists the non-ASCII decimal digits (Unicode category Nd), sorted.
var ndRanges = func() (rs []ndRange) {
	for _, r := range unicode.Nd.R16 {
		if r.Lo > '9' {
			rs = append(rs, ndRange{rune(r.Lo), rune(r.Hi)})
		}
	}
	for _, r := range unicode.Nd.R32 {
		rs = append(rs, ndRange{rune(r.Lo), rune(r.Hi)})
	}
	return rs
}()

// digitValue returns the value of the decimal digit r of any script, or -1.
func digitValue(r rune) int {
	if r < utf8.RuneSelf {
		if r >= '0' && r <= '9' {
			return int(r - '0')
		}
		return -1
	}
	if r < ndRanges[0].lo || r > ndRanges[len(ndRanges)-1].hi {
		return -1
	}
	k, found := slices.BinarySearchFunc(ndRanges, r, func(g ndRange, r rune) int {
		switch {
		case g.hi < r:
			return -1
		case g.lo > r:
			return 1
		}
		return 0
	})
	if !found {
		return -1
	}
	return int(r-ndRanges[k].lo) % 10
}

// foldRune returns the ASCII byte that the non-ASCII character r folds to,
// or 0.
func foldRune(r rune) byte {
	switch {
	case r < foldLo:
		return 0 // ASCII and Latin-1: nothing NFKC has left to fold
	case r < foldHi:
		return foldTab[r-foldLo]
	case r >= lisuLo && r < lisuHi:
		return lisuTab[r-lisuLo]
	}
	if v := digitValue(r); v >= 0 {
		return byte('0' + v)
	}
	return 0
}

// markAt reports whether b starts with a combining mark.
func markAt(b []byte) bool {
	if len(b) == 0 || b[0] < utf8.RuneSelf {
		return false
	}
	r, _ := utf8.DecodeRune(b)
	return unicode.IsMark(r)
}

// foldable reports whether fold would change b.
func foldable(b []byte) bool {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		i += size
		if foldRune(r) != 0 && !markAt(b[i:]) {
			return true
		}
	}
	return false
}

// foldCopy runs step 4 alone, from src into z.out and z.offs, for text that
// steps 1 to 3 would not change.
func (z *normalizer) foldCopy(src []byte) {
	out, offs := z.out[:0], z.offs[:0]
	for i := 0; i < len(src); {
		c := src[i]
		if c < utf8.RuneSelf {
			out, offs = append(out, c), append(offs, int32(i))
			i++
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		if f := foldRune(r); f != 0 && !markAt(src[i+size:]) {
			out, offs = append(out, f), append(offs, int32(i))
		} else {
			for k := range size {
				out, offs = append(out, src[i+k]), append(offs, int32(i+k))
			}
		}
		i += size
	}
	z.out, z.offs = out, append(offs, int32(len(src)))
}

// fold runs step 4 in place on z.out and z.offs: each folded character
// becomes one ASCII byte that maps to the character's first byte.
func (z *normalizer) fold() {
	out, offs := z.out, z.offs
	w := 0
	for r := 0; r < len(out); {
		c := out[r]
		if c < utf8.RuneSelf {
			out[w], offs[w] = c, offs[r]
			w, r = w+1, r+1
			continue
		}
		ru, size := utf8.DecodeRune(out[r:])
		if f := foldRune(ru); f != 0 && !markAt(out[r+size:]) {
			out[w], offs[w] = f, offs[r]
			w, r = w+1, r+size
			continue
		}
		for k := range size {
			out[w+k], offs[w+k] = out[r+k], offs[r+k]
		}
		w, r = w+size, r+size
	}
	offs[w] = offs[len(out)]
	z.out, z.offs = out[:w], offs[:w+1]
}
