package llm

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

type benchMessage struct {
	Role    string `json:"role"`
	Content any    `json:"content"`
}

type benchBody struct {
	Model       string         `json:"model"`
	Messages    []benchMessage `json:"messages"`
	Temperature float64        `json:"temperature"`
	MaxTokens   int            `json:"max_tokens"`
	Stream      bool           `json:"stream"`
	Tools       []any          `json:"tools,omitempty"`
}

// chatBody4KiB returns a realistic chat completion body of about 4 KiB: a
// system prompt, a tool definition and a few conversation turns.
func chatBody4KiB(tb testing.TB) []byte {
	tb.Helper()
	turn := "Could you explain how the quarterly report's revenue figures were derived, " +
		"including the \"adjusted\" numbers and any one-off items?\nThanks!"
	body := benchBody{
		Model:       "gpt-4o-2024-08-06",
		Temperature: 0.2,
		MaxTokens:   1024,
		Stream:      true,
		Messages: []benchMessage{{Role: "system", Content: "You are a careful financial analyst. " +
			"Answer concisely, cite the section of the document you used, and never invent figures."}},
		Tools: []any{map[string]any{"type": "function", "function": map[string]any{
			"name": "lookup_section", "description": "Look up a section of the report by title.",
			"parameters": map[string]any{"type": "object", "properties": map[string]any{
				"title": map[string]any{"type": "string"}}, "required": []string{"title"}},
		}}},
	}
	for i := 0; ; i++ {
		b, err := json.Marshal(body)
		if err != nil {
			tb.Fatal(err)
		}
		if len(b) >= 4096 {
			return b
		}
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		body.Messages = append(body.Messages, benchMessage{Role: role, Content: fmt.Sprintf("(%d) %s", i, turn)})
	}
}

// chatBody1MiB returns a vision request of about 1 MiB: one user turn with a
// base64 data URL image, the case that motivates the streaming scanner.
func chatBody1MiB(tb testing.TB) []byte {
	tb.Helper()
	img := make([]byte, 768<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range img {
		img[i] = byte(r.Uint32())
	}
	body := benchBody{
		Model:     "gpt-4o",
		MaxTokens: 300,
		Messages: []benchMessage{{Role: "user", Content: []any{
			map[string]any{"type": "text", "text": "What is in this image?"},
			map[string]any{"type": "image_url", "image_url": map[string]any{
				"url": "data:image/png;base64," + base64.StdEncoding.EncodeToString(img)}},
		}}},
	}
	b, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func benchmarkParse(b *testing.B, body []byte) {
	if _, err := ParseRequest(body); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRequest4KiB(b *testing.B) { benchmarkParse(b, chatBody4KiB(b)) }

func BenchmarkParseRequest1MiB(b *testing.B) { benchmarkParse(b, chatBody1MiB(b)) }

// BenchmarkParseRequestPretty measures whitespace-heavy (indented) bodies.
func BenchmarkParseRequestPretty(b *testing.B) {
	var v any
	if err := json.Unmarshal(chatBody4KiB(b), &v); err != nil {
		b.Fatal(err)
	}
	body, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		b.Fatal(err)
	}
	benchmarkParse(b, body)
}

// BenchmarkEncodingJSONUnmarshal4KiB is the baseline ParseRequest replaces.
func BenchmarkEncodingJSONUnmarshal4KiB(b *testing.B) {
	body := chatBody4KiB(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var v struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWithModel1MiB(b *testing.B) {
	body := chatBody1MiB(b)
	r, err := ParseRequest(body)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		_ = r.WithModel(body, "gpt-4o-2024-08-06")
	}
}

func TestBenchBodies(t *testing.T) {
	for name, body := range map[string][]byte{"4KiB": chatBody4KiB(t), "1MiB": chatBody1MiB(t)} {
		t.Run(name, func(t *testing.T) {
			r, err := ParseRequest(body)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(r.Model, "gpt-4o") {
				t.Fatalf("model %q", r.Model)
			}
		})
	}
}
