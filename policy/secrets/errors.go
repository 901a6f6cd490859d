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
