package guard

// Secrets inside base64. A run of base64 text is decoded and the plaintext
// scanned for secrets (the secret.* detectors of the profile); a secret
// found there makes the run a match of that detector, and redaction
// replaces the run.
//
// Finding runs costs nothing on ordinary text. The base64 encoding of text
// holding a secret of 20 or more bytes contains 24 or more consecutive
// letters and digits: a secret is ASCII, and a base64 character drawn only
// from ASCII bytes is '+' or '/' ('-' or '_') only for the bytes '>', '?',
// '~' and DEL, which no secret format uses. So a run is examined only when
// the scan meets a word of at least minB64Word characters, which prose
// rarely has, and a word inside a run already examined is skipped.
//
// A run is a maximal stretch of the standard and URL-safe alphabets (they
// may even mix) with up to two '=' of padding, continued across the line
// breaks of wrapped base64 (the base64 tool wraps at 76 columns, PEM at
// 64, YAML indents): a line of whole four-character groups, at least
// minB64Line long, and the next line, at least as long or padded, are one
// run. A run is decoded
// whole, so a secret at any of the three byte alignments of the plaintext,
// or split by a line break, decodes. A
// run glued to other text ("/v1/" before it in a URL, "key-" before it) may
// start off the encoding's four-character grid, so when the run's start
// does not decode to a secret it is decoded again from after each separator
// ('/', '-', '_', '+') among its first maxB64Glue characters that starts it
// on another phase of the grid. Runs shorter than minB64Run or longer than
// maxB64Run are not decoded: each run costs at most four decodings and
// scans of itself, and the scan stays linear.
//
// The plaintext is scanned as is, not normalized, and only once: base64
// inside base64 is not decoded. In a stream, a run that reaches the end of
// the text is held back (see scan.tail) up to the profile's hold bound (at
// least b64Hold); a longer run is released in parts, and a secret encoded in
// it is not reliably found.

// Bounds on the base64 runs that are decoded.
const (
	minB64Word = 20
	minB64Line = 16
	minB64Run  = 16
	maxB64Run  = 64 << 10
)

// b64Val maps a base64 character of either alphabet to its value, and
// every other byte to -1.
var b64Val = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	for i := range len(std) {
		t[std[i]] = int8(i)
	}
	t['+'], t['-'] = 62, 62
	t['/'], t['_'] = 63, 63
	return t
}()

// isB64 reports a character of the standard or URL-safe base64 alphabet.
func isB64(c byte) bool { return b64Val[c] >= 0 }

// base64 examines the base64 run around the word t[i:j], which is at least
// minB64Word long, and emits a match over it when it decodes to a secret.
// Runs never overlap, so each byte is looked at a bounded number of times.
func (s *scan) base64(i, j int) {
	t, n := s.t, len(s.t)
	line := i
	for line > s.b64End && isB64(t[line-1]) {
		line--
	}
	start, e := s.b64Start(line), s.b64Stop(line, j)
	end := e
	for end < n && end-e < 2 && t[end] == '=' {
		end++
	}
	s.b64End = end
	if end == n && !s.final {
		return // the run may go on: scan.tail holds it
	}
	if e-start > maxB64Run {
		return
	}
	// Decode from the run's start, then from after each separator near it
	// that puts the start on another phase of the four-character grid.
	var tried [4]bool
	for p := start; p < min(e, start+maxB64Glue); p++ {
		if p > start && !isB64Sep(t[p-1]) {
			continue
		}
		if ph := (p - start) & 3; !tried[ph] && e-p >= minB64Run {
			tried[ph] = true
			if det, ok := s.decodedSecret(t[p:e]); ok {
				s.emit(det, p, end)
				return
			}
		}
	}
}

// maxB64Glue bounds how far into a run a separator may end the text glued
// to its start.
const maxB64Glue = 256

// isB64Sep reports a base64 character that also separates words in a URL
// path or a name ("/v1/", "key-", "id_"), after which an encoding may start.
func isB64Sep(c byte) bool { return c == '/' || c == '-' || c == '_' || c == '+' }

// b64Start returns where the run whose line of base64 starts at line
// begins: there, or at an earlier line of a wrapped block. It does not go
// back into the last run examined.
func (s *scan) b64Start(line int) int {
	t, floor := s.t, s.b64End
	for {
		k := line
		for k > floor && (t[k-1] == ' ' || t[k-1] == '\t') {
			k-- // indentation
		}
		if k-1 <= floor || t[k-1] != '\n' {
			return line
		}
		k--
		if k-1 > floor && t[k-1] == '\r' {
			k--
		}
		ls := k
		for ls > floor && isB64(t[ls-1]) {
			ls--
		}
		if k-ls < minB64Line || (k-ls)%4 != 0 {
			return line
		}
		line = ls
	}
}

// b64Stop returns where the run holding the line of base64 that starts at
// line and holds t[j-1] ends, before any padding: at the end of that line,
// or of a later line of a wrapped block.
func (s *scan) b64Stop(line, j int) int {
	t, n := s.t, len(s.t)
	e := j
	for {
		for e < n && isB64(t[e]) {
			e++
		}
		k := e
		if k < n && t[k] == '\r' {
			k++
		}
		if e-line < minB64Line || (e-line)%4 != 0 || k >= n || t[k] != '\n' {
			return e
		}
		next := k + 1
		for next < n && (t[next] == ' ' || t[next] == '\t') {
			next++ // indentation
		}
		m := next
		for m < n && isB64(t[m]) {
			m++
		}
		if m-next < minB64Line && !(m > next && m < n && t[m] == '=') {
			return e
		}
		e, line = m, next
	}
}

// decodedSecret decodes the base64 text b and reports the first secret
// detector that matches the plaintext. The plaintext is wiped after use.
func (s *scan) decodedSecret(b []byte) (detID, bool) {
	buf := decodeB64(s.b64buf[:0], b)
	s.b64buf = buf
	defer clear(buf)
	if s.sub == nil {
		s.sub = &scan{nested: true}
	}
	sub := s.sub
	sub.p = s.p
	sub.run(buf, true)
	sub.t = nil
	for _, m := range sub.ms {
		if m.det >= detAWS && m.det <= detTollgate {
			return m.det, true
		}
	}
	return 0, false
}

// decodeB64 appends the decoding of b (base64 characters of either
// alphabet, and the line breaks and indentation of a wrapped run; no
// padding) to dst. A final lone character
// carries fewer than eight bits and is dropped.
func decodeB64(dst, b []byte) []byte {
	var acc uint32
	k := 0
	for _, c := range b {
		v := b64Val[c]
		if v < 0 {
			continue // a line break or indentation of a wrapped run
		}
		acc, k = acc<<6|uint32(v), k+1
		if k == 4 {
			dst = append(dst, byte(acc>>16), byte(acc>>8), byte(acc))
			acc, k = 0, 0
		}
	}
	switch k {
	case 2:
		dst = append(dst, byte(acc>>4))
	case 3:
		dst = append(dst, byte(acc>>10), byte(acc>>2))
	}
	return dst
}
