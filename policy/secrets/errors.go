package secrets

import "errors"

// Sentinel errors. Match them with errors.Is; the returned errors wrap them with
// context (a variable name or a file path, which are references and safe to log),
// never with a secret value or with the text that failed to parse.
var (
	// ErrNotReference reports a config value that is not an env: or file:
	// reference. The offending text is never included: it may be a plaintext secret.
	ErrNotReference = errors.New("value is not a secret reference (env:NAME or file:PATH)")

	// ErrEmpty reports an empty reference, or a secret file that is empty after
	// trailing whitespace is trimmed.
	ErrEmpty = errors.New("secret is empty")

	// ErrUnset reports an environment variable that is unset or set to "".
	ErrUnset = errors.New("environment variable is unset or empty")

	// ErrTooLarge reports a secret file larger than MaxFileSize.
	ErrTooLarge = errors.New("secret file is too large")
)

// Sealed value and KEK errors. Each names one distinct failure so an operator can tell a
// value pasted short from a value sealed under another key; none ever holds the sealed
// text, the plaintext or key material (at most a KEK id, which is a name).
var (
	// ErrSealedMalformed reports text that is not a sealed value: a bad character, a field
	// too many, non-canonical base64.
	ErrSealedMalformed = errors.New("sealed value is malformed")

	// ErrSealedTruncated reports a sealed value that ends early: a field is missing or
	// shorter than its fixed length (a copy and paste that lost the end).
	ErrSealedTruncated = errors.New("sealed value is truncated")

	// ErrSealedVersion reports a sealed value of a format version this build cannot open.
	ErrSealedVersion = errors.New("sealed value has an unsupported format version (this build reads v1)")

	// ErrUnknownKEK reports a sealed value whose KEK id is not among the loaded KEKs.
	ErrUnknownKEK = errors.New("sealed value names a KEK that is not loaded")

	// ErrWrongKEK reports a KEK, loaded under the id a sealed value names, that is not the
	// key the value was sealed with (its key check does not match).
	ErrWrongKEK = errors.New("the KEK loaded under this id is not the key that sealed the value")

	// ErrSealedTampered reports a sealed value that fails authentication under the right
	// KEK: its wrapped key or ciphertext was modified, or fields were swapped.
	ErrSealedTampered = errors.New("sealed value failed authentication (modified or fields swapped)")

	// ErrBadKEK reports KEK material that is not 32 bytes in base64 or hex, or a KEK id
	// that is not 1-32 characters of [A-Za-z0-9_-].
	ErrBadKEK = errors.New("invalid KEK")
)
