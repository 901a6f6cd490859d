// Package upstream is the bench's zero-delay LLM upstream: it answers OpenAI chat completions
// from bytes built once at start, so what the bench measures is Envoy and Tollgate, not the
// mock. A streamed answer can be paced (a token cadence) through its control endpoint.
package upstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Shape is what the upstream answers; the harness sets it before each workload.
type Shape struct {
	// ReplyBytes is the approximate size of a non-streamed JSON reply.
	ReplyBytes int `json:"reply_bytes"`
	// Chunks is the number of content events in a streamed reply (the usage event and
	// [DONE] follow them).
	Chunks int `json:"chunks"`
	// ChunkBytes is the approximate size of one content event, "data: " to "\n\n".
	ChunkBytes int `json:"chunk_bytes"`
	// Cadence is the pause before each content event; 0 streams as fast as possible.
	Cadence time.Duration `json:"cadence"`
}

// DefaultShape is W1/W2 of the bench: a 1 KiB JSON reply, 200 chunks of about 150 bytes.
var DefaultShape = Shape{ReplyBytes: 1024, Chunks: 200, ChunkBytes: 150}

// Stats counts what reached the upstream. ProviderKey counts requests that carried the
// provider key (Tollgate swapped it in); Marker counts request bodies that still contained
// the marker (text the guardrails must have redacted on the F path).
type Stats struct {
	Requests     int64 `json:"requests"`
	Streams      int64 `json:"streams"`
	ProviderKey  int64 `json:"provider_key"`
	Marker       int64 `json:"marker"`
	MarkerWithPK int64 `json:"marker_with_provider_key"`
}

// Server is the upstream. Its zero value is not usable; call New.
type Server struct {
	providerAuth string // "Bearer <mock provider key>"
	marker       []byte

	mu    sync.RWMutex
	shape Shape
	reply []byte   // JSON reply
	chunk [][]byte // content events, then the usage event and [DONE]

	requests, streams, providerKey, marker2, markerPK atomic.Int64
}

// New returns an upstream answering with DefaultShape. providerKey is the mock provider key
// Tollgate swaps in; marker is the text whose arrival is counted (see Stats).
func New(providerKey, marker string) *Server {
	s := &Server{providerAuth: "Bearer " + providerKey, marker: []byte(marker)}
	s.SetShape(DefaultShape)
	return s
}

// SetShape replaces the answer's shape; requests already running keep the old one.
func (s *Server) SetShape(sh Shape) {
	reply := jsonReply(sh.ReplyBytes)
	chunks := sseEvents(sh.Chunks, sh.ChunkBytes)
	s.mu.Lock()
	s.shape, s.reply, s.chunk = sh, reply, chunks
	s.mu.Unlock()
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	return Stats{Requests: s.requests.Load(), Streams: s.streams.Load(), ProviderKey: s.providerKey.Load(),
		Marker: s.marker2.Load(), MarkerWithPK: s.markerPK.Load()}
}

// ServeHTTP answers POST /v1/chat/completions: SSE when the body asks for a stream, JSON
// otherwise.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	s.requests.Add(1)
	pk := r.Header.Get("Authorization") == s.providerAuth
	if pk {
		s.providerKey.Add(1)
	}
	if len(s.marker) > 0 && bytes.Contains(body, s.marker) {
		s.marker2.Add(1)
		if pk {
			s.markerPK.Add(1)
		}
	}
	s.mu.RLock()
	sh, reply, chunks := s.shape, s.reply, s.chunk
	s.mu.RUnlock()
	if !isStream(body) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(reply)))
		_, _ = w.Write(reply)
		return
	}
	s.streams.Add(1)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	var timer *time.Timer
	for i, ev := range chunks {
		if sh.Cadence > 0 && i < sh.Chunks {
			if timer == nil {
				timer = time.NewTimer(sh.Cadence)
			} else {
				timer.Reset(sh.Cadence)
			}
			select {
			case <-r.Context().Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		}
		if _, err := w.Write(ev); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// isStream reports whether a chat request asks for a stream ("stream":true, with or without
// a space after the colon).
func isStream(body []byte) bool {
	i := bytes.Index(body, []byte(`"stream"`))
	if i < 0 {
		return false
	}
	rest := bytes.TrimLeft(body[i+len(`"stream"`):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return false
	}
	return bytes.HasPrefix(bytes.TrimLeft(rest[1:], " \t\r\n"), []byte("true"))
}

// ControlHandler serves the harness's control endpoints: PUT /shape (a JSON Shape) and
// GET /stats.
func (s *Server) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /shape", func(w http.ResponseWriter, r *http.Request) {
		var sh Shape
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&sh); err != nil {
			http.Error(w, "bad shape: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := sh.validate(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.SetShape(sh)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Stats())
	})
	return mux
}

func (sh Shape) validate() error {
	switch {
	case sh.ReplyBytes < 256 || sh.ReplyBytes > 1<<20:
		return fmt.Errorf("reply_bytes %d: want 256..1048576", sh.ReplyBytes)
	case sh.Chunks < 1 || sh.Chunks > 100000:
		return fmt.Errorf("chunks %d: want 1..100000", sh.Chunks)
	case sh.ChunkBytes < 120 || sh.ChunkBytes > 65536:
		return fmt.Errorf("chunk_bytes %d: want 120..65536", sh.ChunkBytes)
	case sh.Cadence < 0 || sh.Cadence > time.Minute:
		return fmt.Errorf("cadence %s: want 0..1m", sh.Cadence)
	}
	return nil
}

// words is the completion text: plain words, nothing a guardrail detector could match.
const words = "the quick brown fox jumps over a lazy dog while the gateway counts every token it sees "

// text returns n bytes of words.
func text(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat(words, n/len(words)+1)[:n]
}

// usage is the usage object every reply carries, so Tollgate settles real numbers.
const usage = `{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200}`

// jsonReply is a chat.completion of about n bytes.
func jsonReply(n int) []byte {
	head := `{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"mock-gpt-4o-mini",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"`
	tail := `"},"finish_reason":"stop"}],"usage":` + usage + "}"
	return []byte(head + text(n-len(head)-len(tail)) + tail)
}

// sseEvents returns n content events of about size bytes each, the usage event and [DONE].
func sseEvents(n, size int) [][]byte {
	// Compact fields, so that an event of about 150 bytes still carries some text.
	head := `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"`
	tail := "\"}}]}\n\n"
	content := text(max(size-len(head)-len(tail), 1))
	ev := []byte(head + content + tail)
	out := make([][]byte, 0, n+2)
	for range n {
		out = append(out, ev)
	}
	out = append(out,
		[]byte(`data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[],"usage":`+usage+"}\n\n"),
		[]byte("data: [DONE]\n\n"))
	return out
}
