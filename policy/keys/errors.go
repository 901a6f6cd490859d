package keys

import "errors"

// Sentinel errors. Match them with errors.Is. No error from this package ever
// contains a token, a secret or a header value; at most a key id.
var (
	// ErrMalformed reports text that is not a well-formed token (wrong length,
	// prefix, character or checksum). No lookup was made.
	ErrMalformed = errors.New("malformed virtual key")

	// ErrBadDigest reports a digest that is not 64 hex characters.
	ErrBadDigest = errors.New("digest must be 64 hex characters")

	// ErrWeakPepper reports a pepper shorter than MinPepperLen bytes.
	ErrWeakPepper = errors.New("pepper is too short")

	// ErrInvalidRecord reports a key record that cannot be loaded into a Store.
	ErrInvalidRecord = errors.New("invalid key record")

	// ErrUnknownKey reports a key that is not in the store or whose secret does
	// not match. The two cases share one error on purpose.
	ErrUnknownKey = errors.New("unknown virtual key")

	// ErrDisabled reports a valid key that has been disabled.
	ErrDisabled = errors.New("virtual key is disabled")

	// ErrExpired reports a valid key past its expiry time.
	ErrExpired = errors.New("virtual key has expired")

	// ErrNoCredential reports a request without a usable credential header.
	ErrNoCredential = errors.New("no credential presented")

	// ErrAmbiguousCredential reports a request presenting different
	// credentials in different headers.
	ErrAmbiguousCredential = errors.New("different credentials presented in several headers")

	// ErrEntropy reports a random source that failed or produced unusable
	// output while generating a token.
	ErrEntropy = errors.New("random source failed")
)
