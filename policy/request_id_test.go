package policy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSanitizeID(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "empty stays empty", in: "", want: ""},
		{name: "uuid", in: "8a1f6c2e-3b4d-4e5f-9a0b-1c2d3e4f5a6b", want: "8a1f6c2e-3b4d-4e5f-9a0b-1c2d3e4f5a6b"},
		{name: "every allowed class", in: "azAZ09-_.", want: "azAZ09-_."},
		{name: "single character", in: "x", want: "x"},
		{name: "128 characters is the longest kept", in: strings.Repeat("a", 128), want: strings.Repeat("a", 128)},
		{name: "129 characters", in: strings.Repeat("a", 129), want: "invalid"},
		{name: "very long", in: strings.Repeat("a", 1<<16), want: "invalid"},
		{name: "space", in: "req 1", want: "invalid"},
		{name: "newline (log injection)", in: "req\n{\"level\":\"error\"}", want: "invalid"},
		{name: "carriage return", in: "req\r1", want: "invalid"},
		{name: "tab", in: "req\t1", want: "invalid"},
		{name: "NUL", in: "req\x001", want: "invalid"},
		{name: "DEL", in: "req\x7f", want: "invalid"},
		{name: "quote", in: `req"1`, want: "invalid"},
		{name: "backslash", in: `req\1`, want: "invalid"},
		{name: "slash", in: "req/1", want: "invalid"},
		{name: "colon", in: "req:1", want: "invalid"},
		{name: "plus and equals (base64)", in: "cmVx+MQ==", want: "invalid"},
		{name: "unicode letter", in: "réq", want: "invalid"},
		{name: "fullwidth digit", in: "req１", want: "invalid"},
		{name: "emoji", in: "req😀", want: "invalid"},
		{name: "lone high byte (invalid UTF-8)", in: "req\xff", want: "invalid"},
		{name: "disallowed byte at the 128th position", in: strings.Repeat("a", 127) + "!", want: "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, SanitizeRequestID(tc.in))
		})
	}
}

// TestSanitizeIDEveryByte checks all 256 byte values: exactly [A-Za-z0-9._-] are kept.
func TestSanitizeIDEveryByte(t *testing.T) {
	const allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
	for b := 0; b < 256; b++ {
		in := "id" + string([]byte{byte(b)})
		want := "invalid"
		if strings.IndexByte(allowed, byte(b)) >= 0 {
			want = in
		}
		require.Equal(t, want, SanitizeRequestID(in), "byte 0x%02x", b)
	}
}
