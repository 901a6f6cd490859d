package mockllm

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAnswerPieces(t *testing.T) {
	tests := []struct {
		name  string
		model string
		n     int
		want  []string
	}{
		{"one piece", "m", 1, []string{"This is a mock response from m."}},
		{"even split", "m", 3, []string{"This is", " a mock", " response from m."}},
		{"one word each", "m", 6, []string{"This", " is", " a", " mock", " response", " from m."}},
		{"exact word count", "m", 7, []string{"This", " is", " a", " mock", " response", " from", " m."}},
		{"padded", "m", 9, []string{"This", " is", " a", " mock", " response", " from", " m.", " mock", " mock"}},
		{"model with spaces", "a  b", 9, []string{"This", " is", " a", " mock", " response", " from", " a", " ", " b."}},
		{"empty model", "", 7, []string{"This", " is", " a", " mock", " response", " from", " ."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := answerPieces(tc.model, tc.n)
			require.Equal(t, tc.want, got)
			for _, p := range got {
				require.NotEmpty(t, p)
			}
		})
	}
}

func TestTokenEstimates(t *testing.T) {
	tests := []struct {
		name     string
		messages string
		chars    int
		tokens   int
	}{
		{"empty list", `[]`, 0, 1},
		{"string content", `[{"role":"user","content":"abcd"}]`, 4, 1},
		{"rounds up", `[{"role":"user","content":"abcde"}]`, 5, 2},
		{"runes, not bytes", `[{"role":"user","content":"héllo wörld"}]`, 11, 3},
		{"parts", `[{"content":[{"type":"text","text":"ab"},{"type":"image_url","image_url":{}},"cd"]}]`, 4, 1},
		{"null and odd content", `[{"content":null},{"content":42},{"role":"user"},7]`, 0, 1},
		{"bare string (Responses input)", `"abcdefghi"`, 9, 3},
		{"not json", `{`, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chars := messagesChars(json.RawMessage(tc.messages))
			require.Equal(t, tc.chars, chars)
			require.Equal(t, tc.tokens, tokensFor(chars))
		})
	}
	require.Equal(t, 250, tokensFor(len(strings.Repeat("x", 1000))))
}
