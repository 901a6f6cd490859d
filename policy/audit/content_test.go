package audit_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

var contentKey = []byte("test-content-key-0123456789abcd!")

func TestContentPolicyModes(t *testing.T) {
	t.Parallel()
	prompt := []byte(`{"messages":[{"role":"user","content":"my card is 4111 1111 1111 1111"}]}`)
	completion := []byte(`data: {"choices":[{"delta":{"content":"noted"}}]}`)
	mac := func(b []byte) string {
		m := hmac.New(sha256.New, contentKey)
		m.Write(b)
		return hex.EncodeToString(m.Sum(nil))
	}
	for _, tc := range []struct {
		name             string
		mode             audit.ContentMode
		prompt, complete []byte
		want             *audit.Content
	}{
		{"off", audit.ContentOff, prompt, completion, nil},
		{"default is off", "", prompt, completion, nil},
		{"hash", audit.ContentHash, prompt, completion, &audit.Content{PromptHMAC: mac(prompt), CompletionHMAC: mac(completion)}},
		{"hash omits empty completion", audit.ContentHash, prompt, nil, &audit.Content{PromptHMAC: mac(prompt)}},
		{"hash of nothing is nothing", audit.ContentHash, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var key []byte
			if tc.mode == audit.ContentHash {
				key = contentKey
			}
			p, err := audit.NewContentPolicy(tc.mode, key, "")
			require.NoError(t, err)
			ev := audit.Event{Content: &audit.Content{Sealed: "stale"}}
			require.NoError(t, p.Apply(&ev, tc.prompt, tc.complete))
			require.Equal(t, tc.want, ev.Content)
		})
	}
}

// TestContentHashKnownAnswer pins the digest: HMAC-SHA256 with the content
// key over the exact bytes, lowercase hex (the value python3 hmac and
// openssl dgst -hmac give).
func TestContentHashKnownAnswer(t *testing.T) {
	t.Parallel()
	p, err := audit.NewContentPolicy(audit.ContentHash, bytes.Repeat([]byte{'k'}, 32), "")
	require.NoError(t, err)
	var ev audit.Event
	require.NoError(t, p.Apply(&ev, []byte("hello"), nil))
	require.Equal(t, "b77dedb81d7deb352f617552af07a682c4267366ef53870025bc48b701c8a76d", ev.Content.PromptHMAC)
}

func TestSealedContentDecryptsOffline(t *testing.T) {
	t.Parallel()
	// The identity exists only in the test, standing in for the auditor's
	// offline key. The policy gets the recipient string and nothing else.
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	p, err := audit.NewContentPolicy(audit.ContentSealed, nil, id.Recipient().String())
	require.NoError(t, err)
	require.Equal(t, audit.ContentSealed, p.Mode())
	assertHoldsNoIdentity(t, reflect.ValueOf(p), 0)

	for _, tc := range []struct {
		name               string
		prompt, completion []byte
	}{
		{"text", []byte("summarize: the launch code is 0000"), []byte("I can't help with that.")},
		{"binary and empty", []byte{0, 0xff, 0xfe, '"', '\n'}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev audit.Event
			require.NoError(t, p.Apply(&ev, tc.prompt, tc.completion))
			require.NotNil(t, ev.Content)
			require.Empty(t, ev.Content.PromptHMAC)
			require.True(t, strings.HasPrefix(ev.Content.Sealed, "-----BEGIN AGE ENCRYPTED FILE-----"))
			require.NotContains(t, ev.Content.Sealed, string(tc.prompt))

			r, err := age.Decrypt(armor.NewReader(strings.NewReader(ev.Content.Sealed)), id)
			require.NoError(t, err)
			plain, err := io.ReadAll(r)
			require.NoError(t, err)
			var got audit.SealedContent
			require.NoError(t, json.Unmarshal(plain, &got))
			require.Equal(t, 1, got.V)
			require.Equal(t, string(tc.prompt), string(got.Prompt))
			require.Equal(t, string(tc.completion), string(got.Completion))

			// Another identity cannot open it.
			other, err := age.GenerateX25519Identity()
			require.NoError(t, err)
			_, err = age.Decrypt(armor.NewReader(strings.NewReader(ev.Content.Sealed)), other)
			require.Error(t, err)
		})
	}
}

// assertHoldsNoIdentity walks v and fails on any age identity or X25519
// private scalar reachable from it.
func assertHoldsNoIdentity(t *testing.T, v reflect.Value, depth int) {
	t.Helper()
	if depth > 8 || !v.IsValid() {
		return
	}
	if v.Type() == reflect.TypeOf(&age.X25519Identity{}) || v.Type() == reflect.TypeOf(age.X25519Identity{}) {
		t.Fatalf("content policy holds an age identity")
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			assertHoldsNoIdentity(t, v.Elem(), depth+1)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			assertHoldsNoIdentity(t, v.Field(i), depth+1)
		}
	}
}

func TestContentPolicyErrorsAndPrinting(t *testing.T) {
	t.Parallel()
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	for _, tc := range []struct {
		name      string
		mode      audit.ContentMode
		key       []byte
		recipient string
		want      error
	}{
		{"weak hash key", audit.ContentHash, []byte("short"), "", audit.ErrWeakKey},
		{"hash with recipient", audit.ContentHash, contentKey, id.Recipient().String(), audit.ErrBadConfig},
		{"identity is not a recipient", audit.ContentSealed, nil, id.String(), audit.ErrBadRecipient},
		{"garbage recipient", audit.ContentSealed, nil, "age1nope", audit.ErrBadRecipient},
		{"sealed with key", audit.ContentSealed, contentKey, id.Recipient().String(), audit.ErrBadConfig},
		{"off with key", audit.ContentOff, contentKey, "", audit.ErrBadConfig},
		{"unknown mode", "plaintext", nil, "", audit.ErrBadContentMode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := audit.NewContentPolicy(tc.mode, tc.key, tc.recipient)
			require.ErrorIs(t, err, tc.want)
			// Errors never echo a key, an identity or a recipient.
			require.NotContains(t, err.Error(), string(contentKey))
			require.NotContains(t, err.Error(), "AGE-SECRET-KEY")
			require.NotContains(t, err.Error(), "age1")
		})
	}

	p, err := audit.NewContentPolicy(audit.ContentHash, contentKey, "")
	require.NoError(t, err)
	js, err := json.Marshal(p)
	require.NoError(t, err)
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%+v %#v %x %q %s", p, p, p, p, p), string(js)} {
		require.NotContains(t, s, string(contentKey))
		require.NotContains(t, s, hex.EncodeToString(contentKey))
		require.Contains(t, s, "hash")
	}
}
