package translate_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/translate"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// goldenMaxTokens is the model output cap the request goldens are translated with.
const goldenMaxTokens = 4096

// goldenCreated is the created time of the response goldens.
const goldenCreated = 1767225600

// golden compares got with the golden file, or rewrites it with -update.
func golden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.WriteFile(file, got, 0o644))
		return
	}
	want, err := os.ReadFile(file)
	require.NoError(t, err, "missing golden file (run with -update)")
	require.Equal(t, string(want), string(got), file)
}

// cases lists testdata/dir/*.ext with their base names.
func cases(t *testing.T, dir, ext string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*"+ext))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := map[string]string{}
	for _, f := range files {
		out[strings.TrimSuffix(filepath.Base(f), ext)] = f
	}
	return out
}

// indent pretty-prints JSON for a readable golden file; the translation's exact bytes are
// kept (json.Indent changes only whitespace between tokens).
func indent(t *testing.T, b []byte) []byte {
	t.Helper()
	require.True(t, json.Valid(b), "output is not valid JSON: %s", b)
	var out bytes.Buffer
	require.NoError(t, json.Indent(&out, b, "", "  "))
	out.WriteByte('\n')
	return out.Bytes()
}

// describe renders a refusal for a golden file: its class, field and text.
func describe(err error) []byte {
	class := "other"
	for _, c := range []struct {
		name string
		err  error
	}{{"untranslatable", translate.ErrUntranslatable}, {"invalid_request", translate.ErrInvalidRequest},
		{"duplicate_key", translate.ErrDuplicateKey}, {"invalid_json", translate.ErrInvalidJSON},
		{"upstream", translate.ErrUpstream}, {"too_large", translate.ErrTooLarge}} {
		if errors.Is(err, c.err) {
			class = c.name
			break
		}
	}
	var fe *translate.FieldError
	field := ""
	if errors.As(err, &fe) {
		field = fe.Field
	}
	return fmt.Appendf(nil, "error: %s\nfield: %s\nmessage: %s\n", class, field, err)
}

// TestRequestGolden translates every testdata/request/*.json (OpenAI Chat Completions) into
// Anthropic Messages, or the refusal naming the field, against its .golden file. Inputs
// named refuse_* and invalid_* must be refused; the others must translate.
func TestRequestGolden(t *testing.T) {
	for name, in := range cases(t, "request", ".json") {
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			require.NoError(t, err)
			r, err := translate.ChatToMessages(body, translate.RequestOptions{MaxTokens: goldenMaxTokens})
			var got []byte
			refusal := strings.HasPrefix(name, "refuse_") || strings.HasPrefix(name, "invalid_")
			if refusal {
				require.Error(t, err)
				got = describe(err)
				if strings.HasPrefix(name, "refuse_") {
					require.ErrorIs(t, err, translate.ErrUntranslatable)
				}
			} else {
				require.NoError(t, err)
				got = fmt.Appendf(nil, "# stream=%t include_usage=%t\n%s", r.Stream, r.IncludeUsage, indent(t, r.Body))
			}
			golden(t, strings.TrimSuffix(in, ".json")+".golden", got)
		})
	}
}

// TestResponseGolden translates every testdata/response/*.json (a non-streamed Anthropic
// message, status 200) into an OpenAI chat completion against its .golden file; error_*
// inputs must fail the translation.
func TestResponseGolden(t *testing.T) {
	for name, in := range cases(t, "response", ".json") {
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			require.NoError(t, err)
			r := translate.NewChatResponse(200, false, translate.ResponseOptions{Created: goldenCreated})
			out, err := feedAll(r, [][]byte{body})
			var got []byte
			if strings.HasPrefix(name, "error_") {
				require.ErrorIs(t, err, translate.ErrUpstream)
				got = describe(err)
			} else {
				require.NoError(t, err)
				got = indent(t, out)
			}
			golden(t, strings.TrimSuffix(in, ".json")+".golden", got)
		})
	}
}

// TestErrorGolden translates every testdata/errors/STATUS_*.body (an Anthropic error, or
// anything a proxy answers) into an OpenAI error body against its .golden file.
func TestErrorGolden(t *testing.T) {
	for name, in := range cases(t, "errors", ".body") {
		t.Run(name, func(t *testing.T) {
			status, err := strconv.Atoi(name[:3])
			require.NoError(t, err)
			body, err := os.ReadFile(in)
			require.NoError(t, err)
			for _, sse := range []bool{false, true} { // an error is an error body, whatever its type
				out, err := feedAll(translate.NewChatResponse(status, sse, translate.ResponseOptions{}), [][]byte{body})
				require.NoError(t, err)
				var e struct {
					Error struct {
						Message string  `json:"message"`
						Type    string  `json:"type"`
						Param   *string `json:"param"`
						Code    *string `json:"code"`
					} `json:"error"`
				}
				require.NoError(t, json.Unmarshal(out, &e))
				require.NotEmpty(t, e.Error.Message)
				golden(t, strings.TrimSuffix(in, ".body")+".golden", indent(t, out))
			}
		})
	}
}

// TestStreamGolden translates every testdata/stream/*.sse (an Anthropic event stream) into
// OpenAI chunks, once without and once with include_usage (.golden, .usage.golden). The
// input is also fed split in two at every byte boundary, and one byte at a time: the output
// must be the same bytes, and an error the same error.
func TestStreamGolden(t *testing.T) {
	for name, in := range cases(t, "stream", ".sse") {
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			require.NoError(t, err)
			for _, usage := range []bool{false, true} {
				o := translate.ResponseOptions{IncludeUsage: usage, Created: goldenCreated}
				stream := func() translate.Response { return translate.NewChatResponse(200, true, o) }
				whole, werr := feedAll(stream(), [][]byte{body})
				got := whole
				if strings.HasPrefix(name, "error_") {
					require.Error(t, werr)
					got = append(append([]byte(nil), whole...), describe(werr)...)
				} else {
					require.NoError(t, werr)
					checkChunks(t, whole)
				}
				file := strings.TrimSuffix(in, ".sse") + ".golden"
				if usage {
					file = strings.TrimSuffix(in, ".sse") + ".usage.golden"
				}
				golden(t, file, got)

				for i := 1; i < len(body); i++ {
					out, err := feedAll(stream(), [][]byte{body[:i], body[i:]})
					require.Equal(t, string(whole), string(out), "split at byte %d", i)
					require.Equal(t, fmt.Sprint(werr), fmt.Sprint(err), "split at byte %d", i)
				}
				bytewise := make([][]byte, len(body))
				for i := range body {
					bytewise[i] = body[i : i+1]
				}
				out, err := feedAll(stream(), bytewise)
				require.Equal(t, string(whole), string(out), "fed one byte at a time")
				require.Equal(t, fmt.Sprint(werr), fmt.Sprint(err))
			}
		})
	}
}

// feedAll feeds the chunks, then finishes; it returns the output up to the first error.
func feedAll(r translate.Response, chunks [][]byte) ([]byte, error) {
	var out []byte
	for _, c := range chunks {
		b, err := r.Feed(c)
		out = append(out, b...)
		if err != nil {
			return out, err
		}
	}
	b, err := r.Finish()
	return append(out, b...), err
}

// checkChunks holds a translated stream to the OpenAI shape: every event is one data line,
// either [DONE] (last) or a JSON chunk (or an error) that decodes.
func checkChunks(t *testing.T, out []byte) {
	t.Helper()
	events := strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n")
	for i, ev := range events {
		if ev == "" {
			continue
		}
		require.True(t, strings.HasPrefix(ev, "data: "), "event %d: %q", i, ev)
		data := strings.TrimPrefix(ev, "data: ")
		require.NotContains(t, data, "\n")
		if data == "[DONE]" {
			require.Equal(t, len(events)-1, i, "[DONE] ends the stream")
			continue
		}
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(data), &v), "event %d", i)
		if _, isErr := v["error"]; isErr {
			continue
		}
		require.Equal(t, "chat.completion.chunk", v["object"])
	}
}
