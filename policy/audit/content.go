package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// MinKeyLen is the shortest chain or content-hash key accepted, in bytes.
const MinKeyLen = 32

// ContentMode selects what an audit event records about the prompt and the
// completion.
type ContentMode string

// Content modes.
const (
	// ContentOff records nothing about the content (the default).
	ContentOff ContentMode = "off"
	// ContentHash records HMAC-SHA256 digests of the prompt and completion
	// bytes, keyed, so equal content can be correlated without being stored.
	ContentHash ContentMode = "hash"
	// ContentSealed records the prompt and completion encrypted to an age
	// X25519 recipient. The gateway holds only the public recipient and cannot
	// read them back; the holder of the identity decrypts offline.
	ContentSealed ContentMode = "sealed"
)

// ContentPolicy applies a content mode to events. The zero value is mode off.
// It is immutable and safe for concurrent use.
//
// It holds the hash key or the recipient public key, never an age identity. Its
// printed forms (fmt verbs, JSON) show only the mode.
type ContentPolicy struct {
	mode      ContentMode
	hashKey   []byte
	recipient *age.X25519Recipient
}

// NewContentPolicy returns a policy for mode. hashKey (at least MinKeyLen
// bytes) is required for ContentHash and recipient ("age1...") for
// ContentSealed; the argument a mode does not use must be empty. "" means
// ContentOff.
func NewContentPolicy(mode ContentMode, hashKey []byte, recipient string) (ContentPolicy, error) {
	switch mode {
	case "", ContentOff:
		if len(hashKey) > 0 || recipient != "" {
			return ContentPolicy{}, fmt.Errorf("%w: content mode off takes no key or recipient", ErrBadConfig)
		}
		return ContentPolicy{mode: ContentOff}, nil
	case ContentHash:
		if recipient != "" {
			return ContentPolicy{}, fmt.Errorf("%w: content mode hash takes no recipient", ErrBadConfig)
		}
		if len(hashKey) < MinKeyLen {
			return ContentPolicy{}, fmt.Errorf("content hash key: %w (%d bytes, need %d)", ErrWeakKey, len(hashKey), MinKeyLen)
		}
		return ContentPolicy{mode: ContentHash, hashKey: bytes.Clone(hashKey)}, nil
	case ContentSealed:
		if len(hashKey) > 0 {
			return ContentPolicy{}, fmt.Errorf("%w: content mode sealed takes no hash key", ErrBadConfig)
		}
		r, err := age.ParseX25519Recipient(strings.TrimSpace(recipient))
		if err != nil {
			// The age error may quote the input; it is a public key, but keep
			// errors free of input text all the same.
			return ContentPolicy{}, ErrBadRecipient
		}
		return ContentPolicy{mode: ContentSealed, recipient: r}, nil
	default:
		return ContentPolicy{}, ErrBadContentMode
	}
}

// Mode returns the policy's mode.
func (p ContentPolicy) Mode() ContentMode {
	if p.mode == "" {
		return ContentOff
	}
	return p.mode
}

// Apply sets e.Content from the prompt and completion bytes according to the
// mode: nil for off; HMACs for hash (a digest is omitted when its text is
// empty); an age ciphertext for sealed. It never stores the plaintext. Call it
// before Emit, off the data path: sealing costs an X25519 operation.
//
// The sealed plaintext is the JSON object
// {"v":1,"prompt":"<base64>","completion":"<base64>"} (standard base64, so any
// bytes round-trip), encrypted with age to the recipient and ASCII armored.
// Decrypt with: jq -r .content.sealed | age -d -i identity.txt.
func (p ContentPolicy) Apply(e *Event, prompt, completion []byte) error {
	switch p.Mode() {
	case ContentHash:
		c := &Content{}
		if len(prompt) > 0 {
			c.PromptHMAC = hmacHex(p.hashKey, prompt)
		}
		if len(completion) > 0 {
			c.CompletionHMAC = hmacHex(p.hashKey, completion)
		}
		if *c == (Content{}) {
			c = nil
		}
		e.Content = c
	case ContentSealed:
		s, err := p.seal(prompt, completion)
		if err != nil {
			e.Content = nil
			return err
		}
		e.Content = &Content{Sealed: s}
	default:
		e.Content = nil
	}
	return nil
}

// SealedContent is the plaintext inside a sealed content member.
type SealedContent struct {
	V          int    `json:"v"`
	Prompt     []byte `json:"prompt"`
	Completion []byte `json:"completion"`
}

func (p ContentPolicy) seal(prompt, completion []byte) (string, error) {
	if p.recipient == nil {
		return "", ErrBadRecipient
	}
	plain, err := json.Marshal(SealedContent{V: SchemaVersion, Prompt: prompt, Completion: completion})
	if err != nil {
		return "", fmt.Errorf("seal content: %w", err)
	}
	var out bytes.Buffer
	aw := armor.NewWriter(&out)
	w, err := age.Encrypt(aw, p.recipient)
	if err != nil {
		return "", fmt.Errorf("seal content: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return "", fmt.Errorf("seal content: %w", err)
	}
	clear(plain)
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("seal content: %w", err)
	}
	if err := aw.Close(); err != nil {
		return "", fmt.Errorf("seal content: %w", err)
	}
	return out.String(), nil
}

// String returns the mode only, never the key.
func (p ContentPolicy) String() string { return "audit.ContentPolicy{mode=" + string(p.Mode()) + "}" }

// GoString returns the same as String, so %#v does not print the key.
func (p ContentPolicy) GoString() string { return p.String() }

// Format prints String for every verb, so no fmt verb can print the key.
func (p ContentPolicy) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, p.String()) }

// MarshalJSON returns {"mode":"..."}.
func (p ContentPolicy) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Mode ContentMode `json:"mode"`
	}{p.Mode()})
}

func hmacHex(key, msg []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}
