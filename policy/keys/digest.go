package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// MinPepperLen is the shortest pepper accepted, in bytes (256 bits).
const MinPepperLen = 32

// Digest is HMAC-SHA256(pepper, secret): what the key store holds instead of
// the secret.
type Digest [sha256.Size]byte

// Hash returns HMAC-SHA256(pepper, secret).
func Hash(pepper []byte, secret string) Digest {
	m := hmac.New(sha256.New, pepper)
	_, _ = m.Write([]byte(secret))
	var d Digest
	m.Sum(d[:0])
	return d
}

// CheckPepper returns an error wrapping ErrWeakPepper if p is shorter than
// MinPepperLen bytes. The error gives lengths only.
func CheckPepper(p []byte) error {
	if len(p) < MinPepperLen {
		return fmt.Errorf("%w: %d bytes, need at least %d", ErrWeakPepper, len(p), MinPepperLen)
	}
	return nil
}

// ParseDigest parses 64 hex characters (either case). Errors wrap ErrBadDigest
// and do not repeat the input.
func ParseDigest(hexStr string) (Digest, error) {
	var d Digest
	if len(hexStr) != 2*len(d) {
		return Digest{}, fmt.Errorf("%w: got %d characters", ErrBadDigest, len(hexStr))
	}
	if _, err := hex.Decode(d[:], []byte(hexStr)); err != nil {
		// hex's error quotes the offending byte; keep ours input-free.
		return Digest{}, fmt.Errorf("%w: invalid hex character", ErrBadDigest)
	}
	return d, nil
}

// String returns the digest as 64 lowercase hex characters.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether d is all zeros, which no real key has.
func (d Digest) IsZero() bool { return d == Digest{} }

// MarshalText returns the digest as lowercase hex.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses hex as ParseDigest does.
func (d *Digest) UnmarshalText(b []byte) error {
	v, err := ParseDigest(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
