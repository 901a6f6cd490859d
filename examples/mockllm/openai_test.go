package mockllm

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// 14 + 11 prompt characters (the image part counts zero): ceil(25/4) = 7 tokens.
const richChatBody = `{"model":"gpt-4o-mini","messages":[
	{"role":"system","content":"You are terse."},
	{"role":"user","content":[{"type":"text","text":"hello there"},{"type":"image_url","image_url":{"url":"data:x"}}]}]`

func TestChatNonStream(t *testing.T) {
	tests := []struct {
		name       string
		chunks     int
		model      string
		completion int
	}{
		{"default chunks", 0, "gpt-4o-mini", 5},
		{"one chunk", 1, "gpt-4o-mini", 1},
		{"rewritten model is echoed", 3, "gpt-4.1-nano", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := keyedOptions()
			o.Chunks = tc.chunks
			s := newTestServer(o)
			body := strings.Replace(richChatBody, "gpt-4o-mini", tc.model, 1) + "}"
			w := do(s, http.MethodPost, "/v1/chat/completions", openAIHeaders(), body)
			require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
			require.Equal(t, "application/json", w.Header().Get("Content-Type"))
			require.Equal(t, strconv.Itoa(w.Body.Len()), w.Header().Get("Content-Length"))

			var got chatCompletion
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
			require.Equal(t, "chatcmpl-mock-1", got.ID)
			require.Equal(t, "chat.completion", got.Object)
			require.Equal(t, fixedNow.Unix(), got.Created)
			require.Equal(t, tc.model, got.Model)
			require.Len(t, got.Choices, 1)
			require.Equal(t, "assistant", got.Choices[0].Message.Role)
			require.Equal(t, "This is a mock response from "+tc.model+".", got.Choices[0].Message.Content)
			require.Equal(t, "stop", got.Choices[0].FinishReason)
			require.Equal(t, 7, got.Usage.PromptTokens)
			require.Equal(t, tc.completion, got.Usage.CompletionTokens)
			require.Equal(t, 7+tc.completion, got.Usage.TotalTokens)

			w = do(s, http.MethodPost, "/v1/chat/completions", openAIHeaders(), body)
			require.Contains(t, w.Body.String(), `"id":"chatcmpl-mock-2"`)
		})
	}
}

// chatStream runs one streamed chat request and returns its events.
func chatStream(t *testing.T, s *Server, body string) []sseEvent {
	t.Helper()
	w := do(s, http.MethodPost, "/v1/chat/completions", openAIHeaders(), body)
	require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
	require.Equal(t, "text/event-stream", w.Header().Get("Content-Type"))
	require.Equal(t, "no-cache", w.Header().Get("Cache-Control"))
	require.True(t, w.Flushed)
	return readEvents(t, w.Body)
}

func TestChatStream(t *testing.T) {
	tests := []struct {
		name         string
		chunks       int
		streamOpts   string
		includeUsage bool
	}{
		{"no stream_options", 0, ``, false},
		{"include_usage false", 3, `,"stream_options":{"include_usage":false}`, false},
		{"include_usage true", 5, `,"stream_options":{"include_usage":true}`, true},
		{"include_usage true, many chunks", 12, `,"stream_options":{"include_usage":true}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := keyedOptions()
			o.Chunks = tc.chunks
			s := newTestServer(o)
			chunks := s.opts.Chunks
			events := chatStream(t, s, richChatBody+`,"stream":true`+tc.streamOpts+"}")

			want := 1 + chunks + 1 + 1 // role, content, finish, [DONE]
			if tc.includeUsage {
				want++
			}
			require.Len(t, events, want)
			require.Equal(t, "[DONE]", events[len(events)-1].data)

			var text strings.Builder
			for i, ev := range events[:len(events)-1] {
				require.Empty(t, ev.name, "chat events carry no event: line")
				m := decode(t, []byte(ev.data))
				require.Equal(t, "chat.completion.chunk", m["object"])
				require.Equal(t, "chatcmpl-mock-1", m["id"])
				require.Equal(t, "gpt-4o-mini", m["model"])
				usage, hasUsage := m["usage"]
				require.Equal(t, tc.includeUsage, hasUsage, "usage key on chunk %d", i)
				choices := m["choices"].([]any)

				isUsageChunk := tc.includeUsage && i == len(events)-2
				if isUsageChunk {
					require.Empty(t, choices)
					u := usage.(map[string]any)
					require.EqualValues(t, 7, u["prompt_tokens"])
					require.EqualValues(t, chunks, u["completion_tokens"])
					require.EqualValues(t, 7+chunks, u["total_tokens"])
					continue
				}
				require.Nil(t, usage)
				require.Len(t, choices, 1)
				c := choices[0].(map[string]any)
				delta := c["delta"].(map[string]any)
				switch {
				case i == 0:
					require.Equal(t, map[string]any{"role": "assistant", "content": ""}, delta)
					require.Nil(t, c["finish_reason"])
				case i <= chunks:
					require.Len(t, delta, 1)
					require.NotEmpty(t, delta["content"])
					require.Nil(t, c["finish_reason"])
					text.WriteString(delta["content"].(string))
				default:
					require.Empty(t, delta)
					require.Equal(t, "stop", c["finish_reason"])
				}
			}
			require.Equal(t, strings.Join(answerPieces("gpt-4o-mini", chunks), ""), text.String())
		})
	}
}

func TestCompletions(t *testing.T) {
	o := keyedOptions()
	o.Chunks = 4
	s := newTestServer(o)
	// "Say this is a test" and "again" are 18 + 5 characters: ceil(23/4) = 6 tokens.
	const body = `{"model":"gpt-3.5-turbo-instruct","prompt":["Say this is a test","again"]`

	t.Run("non-stream", func(t *testing.T) {
		w := do(s, http.MethodPost, "/v1/completions", openAIHeaders(), body+"}")
		require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
		require.Equal(t, strconv.Itoa(w.Body.Len()), w.Header().Get("Content-Length"))
		m := decode(t, w.Body.Bytes())
		require.Equal(t, "text_completion", m["object"])
		require.Equal(t, "gpt-3.5-turbo-instruct", m["model"])
		c := m["choices"].([]any)[0].(map[string]any)
		require.Equal(t, "This is a mock response from gpt-3.5-turbo-instruct.", c["text"])
		require.Equal(t, "stop", c["finish_reason"])
		require.Equal(t, map[string]any{"prompt_tokens": 6.0, "completion_tokens": 4.0, "total_tokens": 10.0}, m["usage"])
	})

	tests := []struct {
		name         string
		streamOpts   string
		includeUsage bool
	}{
		{"stream", ``, false},
		{"stream with usage", `,"stream_options":{"include_usage":true}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := do(s, http.MethodPost, "/v1/completions", openAIHeaders(), body+`,"stream":true`+tc.streamOpts+"}")
			require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
			require.Equal(t, "text/event-stream", w.Header().Get("Content-Type"))
			events := readEvents(t, w.Body)
			want := 4 + 1 + 1 // content, finish, [DONE]
			if tc.includeUsage {
				want++
			}
			require.Len(t, events, want)
			require.Equal(t, "[DONE]", events[len(events)-1].data)
			var text strings.Builder
			for i, ev := range events[:4] {
				m := decode(t, []byte(ev.data))
				require.Equal(t, "text_completion", m["object"])
				_, hasUsage := m["usage"]
				require.Equal(t, tc.includeUsage, hasUsage, "chunk %d", i)
				text.WriteString(m["choices"].([]any)[0].(map[string]any)["text"].(string))
			}
			require.Equal(t, "This is a mock response from gpt-3.5-turbo-instruct.", text.String())
			finish := decode(t, []byte(events[4].data))
			require.Equal(t, "stop", finish["choices"].([]any)[0].(map[string]any)["finish_reason"])
			if tc.includeUsage {
				u := decode(t, []byte(events[5].data))
				require.Empty(t, u["choices"])
				require.Equal(t, map[string]any{"prompt_tokens": 6.0, "completion_tokens": 4.0, "total_tokens": 10.0}, u["usage"])
			}
		})
	}
}

func TestEmbeddings(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		format string
		count  int
		tokens float64
	}{
		{"string", `"hello world"`, ``, 1, 3},
		{"array", `["hello world","hi"]`, `,"encoding_format":"float"`, 2, 4},
		{"base64", `["hello world","hi"]`, `,"encoding_format":"base64"`, 2, 4},
		{"empty string", `""`, ``, 1, 1},
	}
	s := newTestServer(keyedOptions())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"model":"text-embedding-3-small","input":` + tc.input + tc.format + `}`
			w := do(s, http.MethodPost, "/v1/embeddings", openAIHeaders(), body)
			require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
			require.Equal(t, strconv.Itoa(w.Body.Len()), w.Header().Get("Content-Length"))
			var got struct {
				Object string `json:"object"`
				Model  string `json:"model"`
				Data   []struct {
					Object    string          `json:"object"`
					Index     int             `json:"index"`
					Embedding json.RawMessage `json:"embedding"`
				} `json:"data"`
				Usage map[string]float64 `json:"usage"`
			}
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
			require.Equal(t, "list", got.Object)
			require.Equal(t, "text-embedding-3-small", got.Model)
			require.Equal(t, map[string]float64{"prompt_tokens": tc.tokens, "total_tokens": tc.tokens}, got.Usage)
			require.Len(t, got.Data, tc.count)
			for i, d := range got.Data {
				require.Equal(t, "embedding", d.Object)
				require.Equal(t, i, d.Index)
				var v []float32
				if strings.Contains(tc.format, "base64") {
					var enc string
					require.NoError(t, json.Unmarshal(d.Embedding, &enc))
					raw, err := base64.StdEncoding.DecodeString(enc)
					require.NoError(t, err)
					require.Len(t, raw, 4*embeddingDims)
					for j := 0; j < len(raw); j += 4 {
						v = append(v, math.Float32frombits(binary.LittleEndian.Uint32(raw[j:])))
					}
				} else {
					require.NoError(t, json.Unmarshal(d.Embedding, &v))
				}
				require.Len(t, v, embeddingDims)
				var norm float64
				for _, x := range v {
					norm += float64(x) * float64(x)
				}
				require.InDelta(t, 1, norm, 1e-5)
			}
		})
	}
	t.Run("deterministic", func(t *testing.T) {
		require.Equal(t, embed("hello world"), embed("hello world"))
		require.NotEqual(t, embed("hello world"), embed("hello world!"))
	})
}

func TestModels(t *testing.T) {
	s := newTestServer(keyedOptions())
	w := do(s, http.MethodGet, "/v1/models", openAIHeaders(), "")
	require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
	require.Equal(t, strconv.Itoa(w.Body.Len()), w.Header().Get("Content-Length"))
	var got modelList
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.Equal(t, "list", got.Object)
	require.Len(t, got.Data, len(mockModels))
	for i, m := range got.Data {
		require.Equal(t, mockModels[i], m.ID)
		require.Equal(t, "model", m.Object)
		require.NotEmpty(t, m.OwnedBy)
	}
}
