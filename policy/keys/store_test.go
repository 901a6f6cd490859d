package keys_test

import (
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/keys"
)

var (
	testPepper = []byte(katPepper)
	testNow    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

// mustToken generates a token from a seeded source.
func mustToken(t testing.TB, seed byte) keys.Token {
	t.Helper()
	tok, err := keys.Generate(seeded(seed))
	require.NoError(t, err)
	return tok
}

func recordFor(tok keys.Token, name string) keys.Record {
	return keys.Record{ID: tok.ID, Name: name, Team: "search", Models: []string{"gpt-4o"}, Digest: keys.Hash(testPepper, tok.Secret)}
}

func TestVerify(t *testing.T) {
	ok, disabled, expired, future := mustToken(t, 1), mustToken(t, 2), mustToken(t, 3), mustToken(t, 4)
	unknown := mustToken(t, 5)

	recs := []keys.Record{recordFor(ok, "ok"), recordFor(disabled, "disabled"), recordFor(expired, "expired"), recordFor(future, "future")}
	recs[1].Disabled = true
	recs[2].Expires = testNow // now == Expires counts as expired
	recs[3].Expires = testNow.Add(time.Nanosecond)
	store, err := keys.NewStore(testPepper, recs)
	require.NoError(t, err)
	require.Equal(t, 4, store.Len())

	wrongSecret := keys.Token{ID: ok.ID, Secret: unknown.Secret}
	disabledWrongSecret := keys.Token{ID: disabled.ID, Secret: unknown.Secret}
	expiredWrongSecret := keys.Token{ID: expired.ID, Secret: unknown.Secret}

	tests := []struct {
		name     string
		tok      keys.Token
		wantName string
		wantErr  error
	}{
		{name: "ok", tok: ok, wantName: "ok"},
		{name: "expires in the future", tok: future, wantName: "future"},
		{name: "unknown id", tok: unknown, wantErr: keys.ErrUnknownKey},
		{name: "digest mismatch", tok: wrongSecret, wantErr: keys.ErrUnknownKey},
		{name: "empty token", tok: keys.Token{}, wantErr: keys.ErrUnknownKey},
		{name: "disabled", tok: disabled, wantErr: keys.ErrDisabled},
		{name: "expired", tok: expired, wantErr: keys.ErrExpired},
		{name: "disabled, wrong secret", tok: disabledWrongSecret, wantErr: keys.ErrUnknownKey},
		{name: "expired, wrong secret", tok: expiredWrongSecret, wantErr: keys.ErrUnknownKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := store.Verify(testNow, tc.tok)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Nil(t, rec)
				if tc.tok.Secret != "" {
					require.NotContains(t, err.Error(), tc.tok.Secret)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantName, rec.Name)
			require.Equal(t, tc.tok.ID, rec.ID)
		})
	}

	t.Run("unknown and mismatch are indistinguishable", func(t *testing.T) {
		_, errUnknown := store.Verify(testNow, unknown)
		_, errMismatch := store.Verify(testNow, wrongSecret)
		require.Equal(t, errUnknown.Error(), errMismatch.Error())
	})
}

func TestNewStoreCopiesInput(t *testing.T) {
	tok := mustToken(t, 1)
	pepper := append([]byte(nil), testPepper...)
	recs := []keys.Record{recordFor(tok, "a")}
	store, err := keys.NewStore(pepper, recs)
	require.NoError(t, err)

	clear(pepper)
	recs[0].Name = "changed"
	recs[0].Models[0] = "changed"
	recs[0].Disabled = true

	rec, err := store.Verify(testNow, tok)
	require.NoError(t, err)
	require.Equal(t, "a", rec.Name)
	require.Equal(t, []string{"gpt-4o"}, rec.Models)
}

func TestNewStoreErrors(t *testing.T) {
	a, b := mustToken(t, 1), mustToken(t, 2)
	full, err := keys.Generate(seeded(9))
	require.NoError(t, err)

	tests := []struct {
		name    string
		pepper  []byte
		recs    []keys.Record
		wantErr error
		wantIn  []string
		notIn   []string
	}{
		{name: "weak pepper", pepper: testPepper[:31], wantErr: keys.ErrWeakPepper},
		{
			name:    "duplicate id",
			recs:    []keys.Record{recordFor(a, "a"), recordFor(b, "b"), recordFor(a, "again")},
			wantErr: keys.ErrInvalidRecord,
			wantIn:  []string{"duplicate key id " + a.ID, "record 2"},
		},
		{
			name:    "id too short",
			recs:    []keys.Record{{ID: "abc", Digest: keys.Hash(testPepper, "x")}},
			wantErr: keys.ErrInvalidRecord,
			wantIn:  []string{"record 0", "key id"},
		},
		{
			name:    "whole token pasted as id is not echoed",
			recs:    []keys.Record{{ID: full.Reveal(), Digest: keys.Hash(testPepper, "x")}},
			wantErr: keys.ErrInvalidRecord,
			notIn:   []string{full.Secret},
		},
		{
			name:    "bad character in id",
			recs:    []keys.Record{{ID: "abc-def-ghij", Digest: keys.Hash(testPepper, "x")}},
			wantErr: keys.ErrInvalidRecord,
			notIn:   []string{"abc-def-ghij"},
		},
		{
			name:    "missing digest",
			recs:    []keys.Record{{ID: a.ID}},
			wantErr: keys.ErrInvalidRecord,
			wantIn:  []string{"missing digest", a.ID},
		},
		{
			name:    "all problems reported",
			recs:    []keys.Record{{ID: "x"}, recordFor(a, "a"), recordFor(a, "a"), {ID: b.ID}},
			wantErr: keys.ErrInvalidRecord,
			wantIn:  []string{"record 0", "record 2", "record 3"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pepper := tc.pepper
			if pepper == nil {
				pepper = testPepper
			}
			store, err := keys.NewStore(pepper, tc.recs)
			require.ErrorIs(t, err, tc.wantErr)
			require.Nil(t, store)
			for _, s := range tc.wantIn {
				require.Contains(t, err.Error(), s)
			}
			for _, s := range tc.notIn {
				require.NotContains(t, err.Error(), s)
			}
		})
	}
}

func TestNewStoreEmpty(t *testing.T) {
	store, err := keys.NewStore(testPepper, nil)
	require.NoError(t, err)
	require.Zero(t, store.Len())
	_, err = store.Verify(testNow, mustToken(t, 1))
	require.ErrorIs(t, err, keys.ErrUnknownKey)
}

func TestVerifyConcurrent(t *testing.T) {
	toks := make([]keys.Token, 16)
	recs := make([]keys.Record, len(toks))
	for i := range toks {
		toks[i] = mustToken(t, byte(i+1))
		recs[i] = recordFor(toks[i], fmt.Sprint(i))
	}
	store, err := keys.NewStore(testPepper, recs)
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make(chan error, len(toks))
	for i, tok := range toks {
		wg.Go(func() {
			for range 100 {
				rec, err := store.Verify(testNow, tok)
				if err != nil {
					errs <- err
					return
				}
				if rec.Name != fmt.Sprint(i) {
					errs <- fmt.Errorf("token %d got record %s", i, rec.ID)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func benchStore(b *testing.B) (*keys.Store, keys.Token) {
	b.Helper()
	recs := make([]keys.Record, 1000)
	var tok keys.Token
	for i := range recs {
		var err error
		tok, err = keys.Generate(rand.Reader)
		require.NoError(b, err)
		recs[i] = recordFor(tok, fmt.Sprint(i))
	}
	store, err := keys.NewStore(testPepper, recs)
	require.NoError(b, err)
	return store, tok
}

func BenchmarkVerify(b *testing.B) {
	store, tok := benchStore(b)
	unknown := mustToken(b, 200)
	for _, bc := range []struct {
		name string
		tok  keys.Token
	}{
		{"known", tok},
		{"unknown", unknown},
		{"mismatch", keys.Token{ID: tok.ID, Secret: unknown.Secret}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = store.Verify(testNow, bc.tok)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	s := mustToken(b, 1).Reveal()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = keys.Parse(s)
	}
}

func TestVerifyLongSecret(t *testing.T) {
	long := keys.Token{ID: "AAAAAAAAAAAA", Secret: strings.Repeat("x", 300)}
	store, err := keys.NewStore(testPepper, []keys.Record{{ID: long.ID, Name: "long", Digest: keys.Hash(testPepper, long.Secret)}})
	require.NoError(t, err)
	rec, err := store.Verify(testNow, long)
	require.NoError(t, err)
	require.Equal(t, "long", rec.Name)
	_, err = store.Verify(testNow, keys.Token{ID: long.ID, Secret: long.Secret[:299]})
	require.ErrorIs(t, err, keys.ErrUnknownKey)
}
