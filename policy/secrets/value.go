package secrets

import (
	"fmt"
	"log/slog"
)

// Redacted is what every printed or marshaled form of a Value shows.
const Redacted = "[REDACTED]"

// Value holds a resolved secret. It redacts itself in fmt (every verb,
// including %#v and %x), JSON, text and slog output, so it can be passed to a
// logger or embedded in a config struct without leaking. The zero Value is an
// empty secret.
//
// The bytes sit behind a pointer so that even reflection-based printers that
// bypass the methods (fmt on an unexported struct field, for example) show an
// address rather than the secret. A Value is immutable and safe for concurrent
// use, except that Wipe zeroes it for every holder.
type Value struct {
	p *[]byte
}

// NewValue returns a Value holding a copy of b.
func NewValue(b []byte) Value {
	c := make([]byte, len(b))
	copy(c, b)
	return Value{p: &c}
}

// Reveal returns the plaintext secret, for building the outgoing credential
// header. Never log it or put it in an error.
func (v Value) Reveal() string {
	if v.p == nil {
		return ""
	}
	return string(*v.p)
}

// Bytes returns a copy of the plaintext secret (a copy, so the Value stays
// immutable). Never log it or put it in an error.
func (v Value) Bytes() []byte {
	if v.p == nil {
		return nil
	}
	c := make([]byte, len(*v.p))
	copy(c, *v.p)
	return c
}

// Wipe zeroes the secret in place (best effort: the runtime may have copied it). Every copy
// of this Value shares the bytes, so call it only when none is still in use. The zero
// Value is left as it is.
func (v Value) Wipe() {
	if v.p != nil {
		clear(*v.p)
	}
}

// Len returns the length of the secret in bytes.
func (v Value) Len() int {
	if v.p == nil {
		return 0
	}
	return len(*v.p)
}

// String returns Redacted.
func (v Value) String() string { return Redacted }

// GoString returns Redacted, so %#v does not print the bytes.
func (v Value) GoString() string { return Redacted }

// Format writes Redacted for every verb, so no fmt verb (%x, %q, %d...) can
// print the bytes.
func (v Value) Format(f fmt.State, _ rune) {
	_, _ = f.Write([]byte(Redacted))
}

// MarshalText returns Redacted.
func (v Value) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalJSON returns the JSON string "[REDACTED]".
func (v Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// LogValue returns Redacted, for log/slog.
func (v Value) LogValue() slog.Value { return slog.StringValue(Redacted) }
