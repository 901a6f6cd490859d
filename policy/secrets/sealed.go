package secrets

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// A sealed value is a secret encrypted for the config file: an AES-256-GCM envelope with a
// fresh random data key (DEK) per secret, the DEK wrapped by a key-encryption key (KEK)
// that never sits in the config. Its text form is
//
//	sealed:v1.<kek-id>.<ciphertext>.<wrapped-key>
//
// where, with header = "sealed:v1.<kek-id>." and base64url without padding:
//
//	ciphertext  = base64url(nonce[12] || AES-256-GCM(DEK, nonce, plaintext, aad = header+"data"))
//	wrapped-key = base64url(check[6] || wnonce[12] || AES-256-GCM(KEK, wnonce, DEK, aad = header+"dek"))
//	check       = HMAC-SHA256(KEK, "tollgate kek check v1")[:6]
//
// Both layers authenticate the version and the KEK id, so neither can be changed and no
// field can be moved to another value. The wrapped key has a fixed length (88 characters)
// and comes last, so a value cut short anywhere is reported as truncated, not as tampered.
// The key check tells "this is not the KEK that sealed it" apart from tampering; it reveals
// nothing usable about the KEK (48 bits of an HMAC under it).

// Sealed-value format constants.
const (
	// KindSealed is the reference scheme of a sealed value ("sealed:...").
	KindSealed = "sealed"
	// SealedVersion is the format version this build writes and reads.
	SealedVersion = "v1"
	// MaxSealedPlaintext is the largest secret Seal accepts, in bytes.
	MaxSealedPlaintext = 8 << 10
	// MaxKEKIDLen is the longest KEK id.
	MaxKEKIDLen = 32

	sealedPrefix = KindSealed + ":"
	keyLen       = 32 // AES-256
	nonceLen     = 12
	tagLen       = 16
	checkLen     = 6
	wrappedLen   = checkLen + nonceLen + keyLen + tagLen // 66 bytes
	minDataLen   = nonceLen + 1 + tagLen                 // a secret is never empty
)

var (
	b64 = base64.RawURLEncoding.Strict()
	// wrappedTextLen is the fixed length of the wrapped-key field.
	wrappedTextLen = b64.EncodedLen(wrappedLen)
	// maxSealedLen bounds the text ParseSealed looks at.
	maxSealedLen = len(sealedPrefix+SealedVersion+"..."+".") + MaxKEKIDLen +
		b64.EncodedLen(nonceLen+MaxSealedPlaintext+tagLen) + wrappedTextLen
)

// Parse errors. They are fixed values so that no input text can reach them.
var (
	errSealedPrefix   = fmt.Errorf("%w: it must start with \"sealed:\"", ErrSealedMalformed)
	errSealedLong     = fmt.Errorf("%w: longer than any sealed value", ErrSealedMalformed)
	errSealedFields   = fmt.Errorf("%w: it has more than 4 dot-separated fields", ErrSealedMalformed)
	errSealedKEKID    = fmt.Errorf("%w: the KEK id must be 1-%d characters of [A-Za-z0-9_-]", ErrSealedMalformed, MaxKEKIDLen)
	errSealedBase64   = fmt.Errorf("%w: a field is not canonical unpadded base64url", ErrSealedMalformed)
	errSealedWrapLong = fmt.Errorf("%w: the wrapped key is longer than %d characters", ErrSealedMalformed, wrappedTextLen)
	errSealedNoKEKID  = fmt.Errorf("%w: it ends before the KEK id", ErrSealedTruncated)
	errSealedNoData   = fmt.Errorf("%w: it ends before the ciphertext and wrapped key", ErrSealedTruncated)
	errSealedShortKey = fmt.Errorf("%w: the wrapped key is shorter than %d characters", ErrSealedTruncated, wrappedTextLen)
	errSealedShortCT  = fmt.Errorf("%w: the ciphertext is shorter than its nonce and tag", ErrSealedTruncated)
	errSealedNoText   = fmt.Errorf("%w: it ends before the version", ErrSealedTruncated)
)

// Sealed is a parsed sealed value: well-formed, not yet opened.
type Sealed struct {
	// Version is the format version (SealedVersion).
	Version string
	// KEKID names the KEK the value was sealed with.
	KEKID string

	header  string // "sealed:v1.<kek-id>.", authenticated by both layers
	check   []byte
	wnonce  []byte
	wrapped []byte // the DEK under the KEK, with its tag
	nonce   []byte
	ct      []byte // the plaintext under the DEK, with its tag
}

// IsSealed reports whether s is meant as a sealed value (starts with "sealed:"). It does
// not validate the rest: ParseSealed does.
func IsSealed(s string) bool { return strings.HasPrefix(s, sealedPrefix) }

// ParseSealed checks the form of a sealed value without opening it. Errors wrap
// ErrSealedMalformed, ErrSealedTruncated or ErrSealedVersion and are fixed texts: they never
// contain s.
func ParseSealed(s string) (*Sealed, error) {
	if len(s) > maxSealedLen {
		return nil, errSealedLong
	}
	rest, ok := strings.CutPrefix(s, sealedPrefix)
	if !ok {
		return nil, errSealedPrefix
	}
	f := strings.SplitN(rest, ".", 5)
	switch ver := f[0]; {
	case ver == SealedVersion:
	case len(f) == 1 && (ver == "" || ver == "v"):
		return nil, errSealedNoText
	case isVersion(ver):
		return nil, ErrSealedVersion
	default:
		return nil, ErrSealedMalformed
	}
	if len(f) > 4 {
		return nil, errSealedFields
	}
	if len(f) < 2 || f[1] == "" && len(f) == 2 {
		return nil, errSealedNoKEKID
	}
	if !ValidKEKID(f[1]) {
		return nil, errSealedKEKID
	}
	for _, field := range f[2:] {
		if !isBase64URL(field) {
			return nil, errSealedBase64
		}
	}
	if len(f) < 4 {
		return nil, errSealedNoData
	}
	switch n := len(f[3]); {
	case n < wrappedTextLen:
		return nil, errSealedShortKey
	case n > wrappedTextLen:
		return nil, errSealedWrapLong
	}
	wk, err := b64.DecodeString(f[3])
	if err != nil {
		return nil, errSealedBase64
	}
	data, err := b64.DecodeString(f[2])
	if err != nil {
		return nil, errSealedBase64
	}
	if len(data) < minDataLen {
		return nil, errSealedShortCT
	}
	return &Sealed{
		Version: f[0], KEKID: f[1],
		header: sealedPrefix + f[0] + "." + f[1] + ".",
		check:  wk[:checkLen], wnonce: wk[checkLen : checkLen+nonceLen], wrapped: wk[checkLen+nonceLen:],
		nonce: data[:nonceLen], ct: data[nonceLen:],
	}, nil
}

// String returns the sealed value's text form (what ParseSealed read). It is ciphertext, but
// treat it as a reference you keep in config, not as something to log.
func (s *Sealed) String() string {
	wk := make([]byte, 0, wrappedLen)
	wk = append(append(append(wk, s.check...), s.wnonce...), s.wrapped...)
	data := make([]byte, 0, len(s.nonce)+len(s.ct))
	data = append(append(data, s.nonce...), s.ct...)
	return s.header + b64.EncodeToString(data) + "." + b64.EncodeToString(wk)
}

// ValidKEKID reports whether id is 1-MaxKEKIDLen characters of [A-Za-z0-9_-].
func ValidKEKID(id string) bool {
	if id == "" || len(id) > MaxKEKIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// isVersion reports whether v looks like a format version: "v" and 1-4 digits.
func isVersion(v string) bool {
	if len(v) < 2 || len(v) > 5 || v[0] != 'v' {
		return false
	}
	for i := 1; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// isBase64URL reports whether s uses only the base64url alphabet.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
