package secrets

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"unicode"
)

// kekCheckLabel is what the key check value of a KEK is computed over.
const kekCheckLabel = "tollgate kek check v1"

// KEK is a 256-bit key-encryption key with its id. It prints as "KEK(<id>)" in every fmt
// form, never its bytes. Wipe zeroes it.
type KEK struct {
	id    string
	key   *[keyLen]byte
	check [checkLen]byte
}

// NewKEK returns a KEK holding a copy of key, which must be 32 bytes; id must satisfy
// ValidKEKID.
func NewKEK(id string, key []byte) (*KEK, error) {
	if !ValidKEKID(id) {
		return nil, fmt.Errorf("%w: the id must be 1-%d characters of [A-Za-z0-9_-]", ErrBadKEK, MaxKEKIDLen)
	}
	if len(key) != keyLen {
		return nil, fmt.Errorf("%w %q: it must be %d bytes", ErrBadKEK, id, keyLen)
	}
	k := &KEK{id: id, key: new([keyLen]byte)}
	copy(k.key[:], key)
	m := hmac.New(sha256.New, k.key[:])
	m.Write([]byte(kekCheckLabel))
	copy(k.check[:], m.Sum(nil))
	return k, nil
}

// ParseKEK decodes KEK material as stored in its env var or file: 32 bytes in standard or
// URL-safe base64 (padded or not, e.g. `openssl rand -base64 32`) or 64 hex digits
// (`openssl rand -hex 32`). Surrounding whitespace is ignored. Errors never contain text.
func ParseKEK(id string, text []byte) (*KEK, error) {
	text = bytes.TrimFunc(text, unicode.IsSpace)
	var raw []byte
	var err error
	switch len(text) {
	case hex.EncodedLen(keyLen):
		raw = make([]byte, keyLen)
		_, err = hex.Decode(raw, text)
	case base64.StdEncoding.EncodedLen(keyLen), base64.RawStdEncoding.EncodedLen(keyLen):
		enc := base64.RawStdEncoding
		if bytes.ContainsAny(text, "-_") {
			enc = base64.RawURLEncoding
		}
		raw = make([]byte, keyLen+2)
		var n int
		n, err = enc.Decode(raw, bytes.TrimRight(text, "="))
		raw = raw[:n]
	default:
		err = ErrBadKEK
	}
	defer clear(raw)
	if err != nil || len(raw) != keyLen {
		return nil, fmt.Errorf("%w %q: it must be 32 bytes, base64 (44 characters) or hex (64 digits)", ErrBadKEK, id)
	}
	return NewKEK(id, raw)
}

// GenerateKEK returns fresh KEK material from r (crypto/rand.Reader in production), in the
// base64 text form ParseKEK reads.
func GenerateKEK(r io.Reader) (string, error) {
	var k [keyLen]byte
	defer clear(k[:])
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return "", fmt.Errorf("generate KEK: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k[:]), nil
}

// ID returns the KEK's id.
func (k *KEK) ID() string { return k.id }

// String returns "KEK(<id>)".
func (k *KEK) String() string { return "KEK(" + k.id + ")" }

// GoString returns "KEK(<id>)".
func (k *KEK) GoString() string { return k.String() }

// Format writes "KEK(<id>)" for every verb, so no fmt verb can print the key.
func (k *KEK) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// Wipe zeroes the key. The KEK then opens nothing (its check no longer matches).
func (k *KEK) Wipe() {
	if k != nil && k.key != nil {
		clear(k.key[:])
		clear(k.check[:])
	}
}

// aead returns AES-256-GCM under key. The expanded key schedule is garbage after use; Go
// gives no way to zero it (best effort, like every copy the runtime may make).
func aead(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic("secrets: AES key is not 32 bytes") // unreachable: every caller passes keyLen bytes
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic("secrets: GCM unavailable") // unreachable with the standard nonce and tag sizes
	}
	return g
}

// Keyring holds the loaded KEKs by id: several at once, so a value sealed under the old KEK
// and one sealed under the new both open during a rotation. A nil Keyring holds none.
type Keyring struct {
	keks map[string]*KEK
}

// NewKeyring returns a keyring of keks; two KEKs with one id are an error.
func NewKeyring(keks ...*KEK) (*Keyring, error) {
	r := &Keyring{keks: make(map[string]*KEK, len(keks))}
	for _, k := range keks {
		if _, dup := r.keks[k.id]; dup {
			return nil, fmt.Errorf("%w: two KEKs have the id %q", ErrBadKEK, k.id)
		}
		r.keks[k.id] = k
	}
	return r, nil
}

// IDs returns the ids of the loaded KEKs, sorted.
func (r *Keyring) IDs() []string {
	if r == nil {
		return nil
	}
	ids := make([]string, 0, len(r.keks))
	for id := range r.keks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Has reports whether a KEK with id is loaded.
func (r *Keyring) Has(id string) bool {
	if r == nil {
		return false
	}
	_, ok := r.keks[id]
	return ok
}

// Wipe zeroes every KEK of the keyring.
func (r *Keyring) Wipe() {
	if r == nil {
		return
	}
	for _, k := range r.keks {
		k.Wipe()
	}
}

// Seal encrypts plaintext under the KEK kekID with a fresh data key, drawing the data key
// and both nonces from rnd (crypto/rand.Reader in production), and returns the sealed
// value's text. plaintext must be 1 to MaxSealedPlaintext bytes.
func (r *Keyring) Seal(kekID string, plaintext []byte, rnd io.Reader) (string, error) {
	kek, err := r.lookup(kekID)
	if err != nil {
		return "", err
	}
	switch {
	case len(plaintext) == 0:
		return "", fmt.Errorf("seal: %w", ErrEmpty)
	case len(plaintext) > MaxSealedPlaintext:
		return "", fmt.Errorf("seal: %w (limit %d bytes)", ErrTooLarge, MaxSealedPlaintext)
	}
	var random [keyLen + 2*nonceLen]byte
	defer clear(random[:])
	if _, err := io.ReadFull(rnd, random[:]); err != nil {
		return "", fmt.Errorf("seal: random source: %w", err)
	}
	dek, wnonce, nonce := random[:keyLen], random[keyLen:keyLen+nonceLen], random[keyLen+nonceLen:]
	header := sealedPrefix + SealedVersion + "." + kekID + "."

	wk := make([]byte, 0, wrappedLen)
	wk = append(append(wk, kek.check[:]...), wnonce...)
	wk = aead(kek.key[:]).Seal(wk, wnonce, dek, []byte(header+"dek"))
	data := make([]byte, 0, nonceLen+len(plaintext)+tagLen)
	data = append(data, nonce...)
	data = aead(dek).Seal(data, nonce, plaintext, []byte(header+"data"))
	return header + b64.EncodeToString(data) + "." + b64.EncodeToString(wk), nil
}

// Open parses and decrypts a sealed value. Errors wrap one of ErrSealedMalformed,
// ErrSealedTruncated, ErrSealedVersion, ErrUnknownKEK, ErrWrongKEK or ErrSealedTampered and
// name at most the KEK id.
func (r *Keyring) Open(s string) (Value, error) {
	sv, err := ParseSealed(s)
	if err != nil {
		return Value{}, err
	}
	return r.OpenParsed(sv)
}

// OpenParsed decrypts a value ParseSealed accepted. See Open.
func (r *Keyring) OpenParsed(sv *Sealed) (Value, error) {
	kek, err := r.lookup(sv.KEKID)
	if err != nil {
		return Value{}, err
	}
	if subtle.ConstantTimeCompare(kek.check[:], sv.check) != 1 {
		return Value{}, fmt.Errorf("KEK %q: %w", sv.KEKID, ErrWrongKEK)
	}
	dek, err := aead(kek.key[:]).Open(nil, sv.wnonce, sv.wrapped, []byte(sv.header+"dek"))
	defer clear(dek)
	if err != nil || len(dek) != keyLen {
		return Value{}, fmt.Errorf("KEK %q: %w", sv.KEKID, ErrSealedTampered)
	}
	pt, err := aead(dek).Open(nil, sv.nonce, sv.ct, []byte(sv.header+"data"))
	defer clear(pt)
	if err != nil {
		return Value{}, fmt.Errorf("KEK %q: %w", sv.KEKID, ErrSealedTampered)
	}
	return NewValue(pt), nil
}

// Rewrap returns s sealed under the KEK toID: opened with whichever loaded KEK sealed it,
// then sealed again with a fresh data key. A value already under toID is returned unchanged
// once it opens. Nothing is returned unless s opens.
func (r *Keyring) Rewrap(s, toID string, rnd io.Reader) (string, error) {
	if _, err := r.lookup(toID); err != nil {
		return "", err
	}
	sv, err := ParseSealed(s)
	if err != nil {
		return "", err
	}
	v, err := r.OpenParsed(sv)
	if err != nil {
		return "", err
	}
	if sv.KEKID == toID {
		return s, nil
	}
	pt := v.Bytes()
	defer clear(pt)
	v.Wipe()
	return r.Seal(toID, pt, rnd)
}

func (r *Keyring) lookup(id string) (*KEK, error) {
	if r == nil || len(r.keks) == 0 {
		return nil, fmt.Errorf("KEK %q: %w (no KEKs are configured: security.keks)", id, ErrUnknownKEK)
	}
	k, ok := r.keks[id]
	if !ok {
		return nil, fmt.Errorf("KEK %q: %w (loaded: %v)", id, ErrUnknownKEK, r.IDs())
	}
	return k, nil
}
