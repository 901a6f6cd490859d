package secrets

import (
	"errors"
	"testing"
)

// FuzzParseRef checks that ParseRef never panics, that an accepted reference
// round-trips through String, and that a rejection is always one of the fixed
// error values, so no input text can leak into it.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"", "env:KEY", "env:_a1", "env:", "env:1A", "file:/run/secrets/k", "file:rel/k",
		"file:", "sk-live-abc123", "ENV:KEY", "file:/a\x00b", ":", "env::",
	} {
		f.Add(s)
	}
	fixed := []error{ErrEmpty, ErrNotReference, errNoEnvName, errBadEnvName, errNoFilePath, errBadFilePath}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if !errors.Is(err, ErrNotReference) && !errors.Is(err, ErrEmpty) {
				t.Fatalf("unexpected error class: %v", err)
			}
			for _, e := range fixed {
				if err == e {
					return
				}
			}
			t.Fatalf("error is not a fixed value: %v", err)
		}
		if r.String() != s {
			t.Fatalf("round trip: got %q, want %q", r.String(), s)
		}
		if !LooksLikeReference(s) {
			t.Fatalf("parsed reference %q does not look like one", s)
		}
	})
}
