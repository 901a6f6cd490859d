package keys

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that an accepted token round-trips
// through Reveal to the same text and never shows its secret in String, and
// that a rejection is always one of the fixed errors, so no input reaches it.
func FuzzParse(f *testing.F) {
	r := rand.NewChaCha8([32]byte{42})
	for range 8 {
		tok, err := Generate(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok.Reveal())
	}
	for _, s := range []string{
		"", Prefix, "tgk_0123456789ab_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq1ymyFo",
		"tgk_000000000000_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa30U8yrL",
		strings.Repeat("_", TokenLen), strings.Repeat("\xff", TokenLen),
	} {
		f.Add(s)
	}
	fixed := []error{errLength, errPrefix, errSeparator, errChar, errChecksum}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || !oneOf(err, fixed) {
				t.Fatalf("unexpected error: %v", err)
			}
			if tok != (Token{}) {
				t.Fatal("non-zero token with error")
			}
			return
		}
		if got := tok.Reveal(); got != s {
			t.Fatalf("round trip: got %q, want %q", got, s)
		}
		if strings.Contains(tok.String(), tok.Secret) {
			t.Fatal("String shows the secret")
		}
		if !validID(tok.ID) || len(tok.Secret) != SecretLen {
			t.Fatalf("bad parts: %d %d", len(tok.ID), len(tok.Secret))
		}
	})
}

// FuzzExtractToken checks that ExtractToken never panics, that a result is a
// trimmed, non-empty piece of one of the inputs, and that errors are fixed
// values that cannot carry a header value.
func FuzzExtractToken(f *testing.F) {
	const k = "tgk_0123456789ab_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq1ymyFo"
	f.Add("Bearer "+k, "", "")
	f.Add("", k, "")
	f.Add("", "", k)
	f.Add("bearer "+k, k, " "+k+" ")
	f.Add("Basic dXNlcjpwYXNz", k, "")
	f.Add("Bearer a", "b", "")
	f.Add("Bearer\t", " ", "\t")
	fixed := []error{ErrNoCredential, ErrAmbiguousCredential, errUnsupportedScheme, errEmptyBearer}
	f.Fuzz(func(t *testing.T, authz, xAPIKey, apiKey string) {
		got, err := ExtractToken(authz, xAPIKey, apiKey)
		if err != nil {
			if !oneOf(err, fixed) {
				t.Fatalf("error is not a fixed value: %v", err)
			}
			if got != "" {
				t.Fatal("result with error")
			}
			return
		}
		if got == "" || got != strings.Trim(got, " \t") {
			t.Fatalf("result not trimmed or empty: %q", got)
		}
		if !strings.Contains(authz, got) && !strings.Contains(xAPIKey, got) && !strings.Contains(apiKey, got) {
			t.Fatalf("result %q is not from any input", got)
		}
		// Idempotent: presenting the result alone in any header gives it back.
		if again, err := ExtractToken("Bearer "+got, got, got); err != nil || again != got {
			t.Fatalf("re-extract: %q %v", again, err)
		}
	})
}

func oneOf(err error, set []error) bool {
	for _, e := range set {
		if err == e {
			return true
		}
	}
	return false
}
