package secrets

import (
	"errors"
	"strings"
	"testing"
)

// fuzzVector is the known-answer vector of sealed_test.go (KEK 0x40..0x5f, id k1).
const fuzzVector = "sealed:v1.k1.LC0uLzAxMjM0NTY3IZYIYgfikOFdpvKRVc4LdqZ9Tb5LVRefZKImIDISzifgBy-GdzpcnmQ." +
	"R0to6AmRICEiIyQlJicoKSorNerB4xtxVh58PDbnMnlQnIO3_ltVYRWumXHkM72j1sqzHTWOtFKNSV8Ae-MedJoy"

// FuzzParseSealed checks that ParseSealed never panics, that an accepted value round-trips
// through String (one text per value: no malleable encoding), and that a rejection is one
// of the fixed error values, so no input text can reach it.
func FuzzParseSealed(f *testing.F) {
	for _, s := range []string{
		fuzzVector, "", "sealed:", "sealed:v1", "sealed:v1.k1", "sealed:v1.k1..", "sealed:v2.k1.a.b",
		"sealed:v1.k1." + strings.Repeat("A", 40) + "." + strings.Repeat("A", 88), "env:KEY", "sealed:v1.k1.a.b.c",
		fuzzVector[:100], fuzzVector + "=", strings.Replace(fuzzVector, "k1", "k-1_", 1),
	} {
		f.Add(s)
	}
	fixed := []error{ErrSealedVersion, ErrSealedMalformed, errSealedPrefix, errSealedLong, errSealedFields,
		errSealedKEKID, errSealedBase64, errSealedWrapLong, errSealedNoKEKID, errSealedNoData, errSealedShortKey,
		errSealedShortCT, errSealedNoText}
	f.Fuzz(func(t *testing.T, s string) {
		sv, err := ParseSealed(s)
		if err != nil {
			for _, e := range fixed {
				if err == e {
					return
				}
			}
			t.Fatalf("error is not a fixed value: %v", err)
		}
		if got := sv.String(); got != s {
			t.Fatalf("round trip: got %q, want %q", got, s)
		}
		if !IsSealed(s) || !ValidKEKID(sv.KEKID) || sv.Version != SealedVersion {
			t.Fatalf("accepted %q with id %q version %q", s, sv.KEKID, sv.Version)
		}
	})
}

// FuzzOpenSealed mutates the vector and opens it with its KEK: no input other than the
// vector itself may open (no forgery), none may panic, and every error is one of the six
// classes and never shows the plaintext.
func FuzzOpenSealed(f *testing.F) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(0x40 + i)
	}
	k, err := NewKEK("k1", key)
	if err != nil {
		f.Fatal(err)
	}
	r, err := NewKeyring(k)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fuzzVector)
	f.Add(strings.Replace(fuzzVector, "LC0u", "LC0v", 1))
	f.Add(strings.Replace(fuzzVector, "k1", "k2", 1))
	f.Add(fuzzVector[:150])
	classes := []error{ErrSealedMalformed, ErrSealedTruncated, ErrSealedVersion, ErrUnknownKEK, ErrWrongKEK, ErrSealedTampered}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := r.Open(s)
		if err == nil {
			if s != fuzzVector || v.Reveal() != "sk-test-known-answer-0001" {
				t.Fatalf("forged: %q opened", s)
			}
			return
		}
		n := 0
		for _, c := range classes {
			if errors.Is(err, c) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("error in %d classes: %v", n, err)
		}
		if strings.Contains(err.Error(), "known-answer") {
			t.Fatalf("plaintext in error: %v", err)
		}
	})
}
