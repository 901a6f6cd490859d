// Package secrets resolves references to secret values (provider credentials,
// the virtual key pepper) and holds the results in a Value that redacts itself
// in every printed or marshaled form.
//
// Config never holds a plaintext secret, only a reference:
//
//	env:NAME     the value of environment variable NAME ([A-Za-z_][A-Za-z0-9_]*)
//	file:PATH    the contents of the file at PATH, trailing whitespace trimmed;
//	             a relative PATH is joined to the config file's directory
//
//	sealed:v1.…  a value encrypted under a key-encryption key (KEK) that is loaded
//	             from its own env var or file (see sealed.go, Keyring); provider
//	             credentials accept it, ParseRef does not
//
// A reference is safe to log; the Value it resolves to is not, and cannot be
// logged by accident: fmt, JSON, text and slog forms all print [REDACTED].
// Only Value.Reveal and Value.Bytes give the plaintext.
package secrets

import (
	"fmt"
	"strings"
)

// Reference kinds, as they appear before the colon.
const (
	KindEnv  = "env"
	KindFile = "file"
)

// Ref is a parsed secret reference. Its zero value refers to nothing.
type Ref struct {
	// Kind is KindEnv or KindFile.
	Kind string
	// Target is the environment variable name or the file path.
	Target string
}

// Errors returned by ParseRef. They are fixed values so that no input text can
// ever reach them.
var (
	errNoEnvName   = fmt.Errorf("%w: env reference needs a variable name", ErrNotReference)
	errBadEnvName  = fmt.Errorf("%w: env variable name must match [A-Za-z_][A-Za-z0-9_]*", ErrNotReference)
	errNoFilePath  = fmt.Errorf("%w: file reference needs a path", ErrNotReference)
	errBadFilePath = fmt.Errorf("%w: file path contains a NUL byte", ErrNotReference)
)

// ParseRef parses "env:NAME" or "file:PATH". The empty string gives an error
// wrapping ErrEmpty; anything else that is not a valid reference gives an error
// wrapping ErrNotReference. Errors never contain s, which may be a plaintext
// secret pasted where a reference belongs.
func ParseRef(s string) (Ref, error) {
	if s == "" {
		return Ref{}, ErrEmpty
	}
	kind, target, ok := strings.Cut(s, ":")
	if !ok {
		return Ref{}, ErrNotReference
	}
	switch kind {
	case KindEnv:
		if target == "" {
			return Ref{}, errNoEnvName
		}
		if !validEnvName(target) {
			return Ref{}, errBadEnvName
		}
	case KindFile:
		if target == "" {
			return Ref{}, errNoFilePath
		}
		if strings.IndexByte(target, 0) >= 0 {
			return Ref{}, errBadFilePath
		}
	default:
		return Ref{}, ErrNotReference
	}
	return Ref{Kind: kind, Target: target}, nil
}

// String returns the reference in the form ParseRef accepts ("env:NAME" or
// "file:PATH"), or "" for the zero Ref. It is safe to log: it is only a
// reference, never the secret.
func (r Ref) String() string {
	if r.Kind == "" && r.Target == "" {
		return ""
	}
	return r.Kind + ":" + r.Target
}

// LooksLikeReference reports whether s starts with a reference scheme ("env:"
// or "file:"). It does not validate the rest: use it to tell a mistyped
// reference (report the ParseRef error) from a value that was never meant as a
// reference (probably a plaintext secret in config). It never inspects more
// than the prefix.
func LooksLikeReference(s string) bool {
	return strings.HasPrefix(s, KindEnv+":") || strings.HasPrefix(s, KindFile+":")
}

// validEnvName reports whether name matches [A-Za-z_][A-Za-z0-9_]*.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
