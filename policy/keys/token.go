package keys

import (
	"fmt"
	"hash/crc32"
	"io"
)

// Token layout. See the package documentation for the format.
const (
	// Prefix starts every token.
	Prefix = "tgk_"
	// IDLen is the length of the public key id.
	IDLen = 12
	// SecretLen is the length of the secret part.
	SecretLen = 43
	// ChecksumLen is the length of the base62 CRC-32 checksum.
	ChecksumLen = 6
	// TokenLen is the length of a whole token: 4+12+1+43+6.
	TokenLen = len(Prefix) + IDLen + 1 + SecretLen + ChecksumLen

	// TokenPattern matches a token, for secret scanners. A match still needs
	// its checksum verified (Parse) to rule out look-alikes.
	TokenPattern = `tgk_[0-9A-Za-z]{12}_[0-9A-Za-z]{49}`
)

// Offsets into a token.
const (
	idStart     = len(Prefix)
	sepPos      = idStart + IDLen
	secretStart = sepPos + 1
	sumStart    = secretStart + SecretLen
)

// alphabet is base62 in the documented order; a character's index is its value.
const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// redacted replaces the secret in Token.String.
const redacted = "[REDACTED]"

// Errors returned by Parse. They are fixed values: building them allocates
// nothing and no input text can reach them.
var (
	errLength    = fmt.Errorf("%w: wrong length", ErrMalformed)
	errPrefix    = fmt.Errorf("%w: wrong prefix", ErrMalformed)
	errSeparator = fmt.Errorf("%w: missing separator", ErrMalformed)
	errChar      = fmt.Errorf("%w: invalid character", ErrMalformed)
	errChecksum  = fmt.Errorf("%w: checksum mismatch", ErrMalformed)
)

// Token is a parsed virtual key. ID is public; Secret is not.
//
// String, GoString, Format and MarshalText all redact the secret, so a Token
// can be logged by mistake without leaking. Only Reveal gives the full text.
// The fields are exported, so fmt still prints them raw when a Token sits in
// an unexported struct field (reflection cannot call its methods there): keep
// Tokens in locals and exported fields only.
type Token struct {
	// ID is the public key id (IDLen base62 characters).
	ID string
	// Secret is the secret part (SecretLen base62 characters).
	Secret string
}

// String returns "tgk_<id>_[REDACTED]".
func (t Token) String() string {
	return Prefix + t.ID + "_" + redacted
}

// GoString returns the same as String, so %#v does not print the secret.
func (t Token) GoString() string { return t.String() }

// Format writes String for every fmt verb.
func (t Token) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, t.String())
}

// MarshalText returns String, so JSON and text encoders redact the secret.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Reveal returns the full token text, checksum included: what a client
// presents. Only use it to hand a new key to its owner; never log it.
func (t Token) Reveal() string {
	b := make([]byte, 0, TokenLen)
	b = append(b, Prefix...)
	b = append(b, t.ID...)
	b = append(b, '_')
	b = append(b, t.Secret...)
	sum := encodeChecksum(crcOf(b))
	b = append(b, sum[:]...)
	return string(b)
}

// Generate makes a new token from r, which should be crypto/rand.Reader
// (tests inject a deterministic source). Both the id and the secret are drawn
// from r. A read error, or a source so skewed that rejection sampling cannot
// finish, gives an error wrapping ErrEntropy.
func Generate(r io.Reader) (Token, error) {
	var out [IDLen + SecretLen]byte
	if err := fillBase62(r, out[:]); err != nil {
		return Token{}, err
	}
	s := string(out[:])
	return Token{ID: s[:IDLen], Secret: s[IDLen:]}, nil
}

// maxRandomBytes bounds the bytes Generate reads. Each byte is accepted with
// probability 248/256, so needing more than this for 55 characters from a
// working source is practically impossible (far below 2^-1000).
const maxRandomBytes = 1024

// fillBase62 fills dst with base62 characters drawn uniformly from r.
//
// A byte b is accepted only if b < 248 (= 4·62) and then maps to b%62: every
// character has exactly 4 accepted bytes, so there is no modulo bias.
func fillBase62(r io.Reader, dst []byte) error {
	var buf [64]byte
	defer clear(buf[:]) // some of these bytes became secret characters
	n, read := 0, 0
	for n < len(dst) {
		if read >= maxRandomBytes {
			return fmt.Errorf("%w: too many rejected bytes", ErrEntropy)
		}
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return fmt.Errorf("%w: %w", ErrEntropy, err)
		}
		read += len(buf)
		for _, b := range buf {
			if b >= 248 {
				continue
			}
			dst[n] = alphabet[b%62]
			n++
			if n == len(dst) {
				break
			}
		}
	}
	return nil
}

// Parse checks the syntax and checksum of s and splits it into a Token. It
// makes no lookup, does not allocate (the Token's fields share s's memory) and
// never panics. Errors wrap ErrMalformed and never contain s.
func Parse(s string) (Token, error) {
	if len(s) != TokenLen {
		return Token{}, errLength
	}
	if s[:idStart] != Prefix {
		return Token{}, errPrefix
	}
	if s[sepPos] != '_' {
		return Token{}, errSeparator
	}
	if !isBase62(s[idStart:sepPos]) || !isBase62(s[secretStart:]) {
		return Token{}, errChar
	}
	sum := encodeChecksum(crcOfString(s[:sumStart]))
	if string(sum[:]) != s[sumStart:] {
		return Token{}, errChecksum
	}
	return Token{ID: s[idStart:sepPos], Secret: s[secretStart:sumStart]}, nil
}

// validID reports whether id has the syntax of a key id.
func validID(id string) bool {
	return len(id) == IDLen && isBase62(id)
}

// base62Value maps a byte to its base62 digit value, or 0xff if it is not one.
var base62Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

func isBase62(s string) bool {
	for i := 0; i < len(s); i++ {
		if base62Value[s[i]] == 0xff {
			return false
		}
	}
	return true
}

// encodeChecksum writes c in base62, most significant digit first, left-padded
// with '0'. 62^6 > 2^32, so six digits always suffice.
func encodeChecksum(c uint32) [ChecksumLen]byte {
	var out [ChecksumLen]byte
	v := uint64(c)
	for i := ChecksumLen - 1; i >= 0; i-- {
		out[i] = alphabet[v%62]
		v /= 62
	}
	return out
}

// crcOfString is crc32.ChecksumIEEE over a string, computed byte by byte so
// that no []byte conversion (and allocation) is needed.
func crcOfString(s string) uint32 {
	tab := crc32.IEEETable
	c := ^uint32(0)
	for i := 0; i < len(s); i++ {
		c = tab[byte(c)^s[i]] ^ (c >> 8)
	}
	return ^c
}

func crcOf(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
