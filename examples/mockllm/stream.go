package mockllm

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// sseStream writes server-sent events and flushes each one, so the gateway sees the answer
// arrive chunk by chunk as it would from a real provider. Once the client has gone (context
// cancelled or a write failed) every method returns false and the handler must return.
type sseStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	ctx     context.Context
	cadence time.Duration
	buf     []byte
	dead    bool
}

// startSSE sends the 200 and the SSE headers at once, like a provider that has accepted the
// request and is about to generate.
func startSSE(w http.ResponseWriter, r *http.Request, cadence time.Duration) *sseStream {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	s := &sseStream{w: w, rc: http.NewResponseController(w), ctx: r.Context(), cadence: cadence}
	s.flush()
	return s
}

// event writes "event: name" (omitted when name is empty) and "data: <json of v>".
func (s *sseStream) event(name string, v any) bool {
	data, err := json.Marshal(v)
	if err != nil {
		s.dead = true
		return false
	}
	return s.write(name, data)
}

// done writes OpenAI's "data: [DONE]" terminator.
func (s *sseStream) done() bool { return s.write("", []byte("[DONE]")) }

func (s *sseStream) write(name string, data []byte) bool {
	if s.dead || s.ctx.Err() != nil {
		s.dead = true
		return false
	}
	s.buf = s.buf[:0]
	if name != "" {
		s.buf = append(s.buf, "event: "...)
		s.buf = append(s.buf, name...)
		s.buf = append(s.buf, '\n')
	}
	s.buf = append(s.buf, "data: "...)
	s.buf = append(s.buf, data...)
	s.buf = append(s.buf, "\n\n"...)
	if _, err := s.w.Write(s.buf); err != nil {
		s.dead = true
		return false
	}
	s.flush()
	return !s.dead
}

func (s *sseStream) flush() {
	// ErrNotSupported only means the writer buffers; any other error means the client is gone.
	if err := s.rc.Flush(); err != nil && err != http.ErrNotSupported {
		s.dead = true
	}
}

// pause waits Options.Cadence between content chunks.
func (s *sseStream) pause() bool {
	if s.dead || !sleep(s.ctx, s.cadence) {
		s.dead = true
		return false
	}
	return true
}
