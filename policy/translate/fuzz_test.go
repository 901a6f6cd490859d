package translate_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-ai/tollgate/policy/llm"
	"github.com/tollgate-ai/tollgate/policy/translate"
)

// seeds adds every testdata/dir/*ext file to the corpus.
func seeds(f *testing.F, dir, ext string, add func([]byte)) {
	files, _ := filepath.Glob(filepath.Join("testdata", dir, "*"+ext))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		add(b)
	}
}

// FuzzChatToMessages: no panic; an accepted body translates to one JSON object without
// duplicate keys that ParseRequest reads with the same model (Route parses it again), within
// a constant factor of the input's size.
func FuzzChatToMessages(f *testing.F) {
	seeds(f, "request", ".json", func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := translate.ChatToMessages(body, translate.RequestOptions{MaxTokens: 100})
		if err != nil {
			if r.Body != nil {
				t.Fatal("a refusal carries no body")
			}
			return
		}
		if !json.Valid(r.Body) {
			t.Fatalf("invalid JSON out: %s", r.Body)
		}
		if len(r.Body) > 2*len(body)+256 {
			t.Fatalf("output %d bytes for %d in", len(r.Body), len(body))
		}
		in, err := llm.ParseRequest(body)
		if err != nil {
			return // the translator is more lenient than Route, which refuses such bodies first
		}
		out, err := llm.ParseRequest(r.Body)
		if err != nil {
			t.Fatalf("ParseRequest refuses the translation: %v\n%s", err, r.Body)
		}
		if out.Model != in.Model || out.Stream != in.Stream {
			t.Fatalf("model or stream changed: %q %v -> %q %v", in.Model, in.Stream, out.Model, out.Stream)
		}
	})
}

// FuzzChatStream: no panic; the output is the same wherever the input is cut; every event
// released is one data line holding JSON or [DONE]; the output stays within a constant
// factor of the input.
func FuzzChatStream(f *testing.F) {
	seeds(f, "stream", ".sse", func(b []byte) { f.Add(b, uint16(len(b)/2), true) })
	f.Fuzz(func(t *testing.T, body []byte, cut uint16, usage bool) {
		o := translate.ResponseOptions{IncludeUsage: usage, Created: 1}
		whole, werr := feedAll(translate.NewChatResponse(200, true, o), [][]byte{body})
		i := int(cut) % (len(body) + 1)
		split, serr := feedAll(translate.NewChatResponse(200, true, o), [][]byte{body[:i], body[i:]})
		if string(whole) != string(split) || (werr == nil) != (serr == nil) {
			t.Fatalf("cut at %d changed the output:\n%q\n%q", i, whole, split)
		}
		if len(whole) > 40*len(body)+4096 {
			t.Fatalf("output %d bytes for %d in", len(whole), len(body))
		}
		for _, ev := range strings.Split(string(whole), "\n\n") {
			if ev == "" {
				continue
			}
			data, ok := strings.CutPrefix(ev, "data: ")
			if !ok || strings.Contains(data, "\n") || data != "[DONE]" && !json.Valid([]byte(data)) {
				t.Fatalf("not a JSON data event: %q", ev)
			}
		}
	})
}

// FuzzMessageToChat: no panic; an accepted message translates to valid JSON; an error body
// always translates to valid JSON.
func FuzzMessageToChat(f *testing.F) {
	seeds(f, "response", ".json", func(b []byte) { f.Add(b) })
	seeds(f, "errors", ".body", func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := translate.MessageToChat(body, translate.ResponseOptions{})
		if err == nil && !json.Valid(out) {
			t.Fatalf("invalid JSON out: %s", out)
		}
		if e := translate.ErrorBody(500, body); !json.Valid(e) {
			t.Fatalf("invalid error JSON: %s", e)
		}
	})
}
