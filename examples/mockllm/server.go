// Package mockllm is a deterministic stand-in for the OpenAI and Anthropic HTTP APIs.
//
// It serves the local trial and the end-to-end tests: Envoy forwards to it over plaintext
// HTTP/1.1 on loopback. Answers are fixed text that echoes the requested model, token counts
// are deterministic estimates, and streamed answers are real SSE, flushed event by event, so
// the gateway's usage parsers see the same wire shapes as with the real providers.
//
// Determinism, documented once here and relied on by tests:
//   - The answer is "This is a mock response from <model>." split at spaces into Options.Chunks
//     pieces. When the answer has fewer words than Chunks, it is padded with " mock" words so
//     that every streamed content chunk carries text.
//   - Output tokens are Chunks: one token per content chunk, as real providers stream roughly
//     one token per chunk. The non-streamed answer reports the same count.
//   - Input tokens are ceil(characters/4), at least 1, where characters counts the runes of
//     every prompt string: message contents (strings, or the "text" of content parts), the
//     Anthropic "system" and the Responses "instructions", the completion "prompt" or the
//     embedding "input".
package mockllm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// MaxBodyBytes is the largest request body the mock accepts. Larger bodies get a 413,
// like the gateway's own limit (the ext_proc max_receive_message_length is also 32 MiB).
const MaxBodyBytes = 32 << 20

// maxRecorded bounds the request log kept when Options.Record is set.
const maxRecorded = 1000

const defaultChunks = 5

// Options configures a Server. The zero value is a working mock without auth checks.
type Options struct {
	// OpenAIKey is the provider key the OpenAI endpoints expect, as "Authorization: Bearer <key>"
	// or, Azure style, "api-key: <key>". Empty means no auth check.
	OpenAIKey string
	// AnthropicKey is the provider key /v1/messages expects in "x-api-key". Empty means no auth check.
	AnthropicKey string
	// Latency is the delay before the response headers, after the body has been read.
	Latency time.Duration
	// Chunks is the number of content chunks in a streamed answer, and so the number of output
	// tokens reported. Zero or negative means 5.
	Chunks int
	// Cadence is the pause before every streamed content chunk after the first and before the
	// event that ends the answer. Zero means no pause.
	Cadence time.Duration
	// Record keeps a copy of each request, the last 1000, for Requests.
	Record bool
	// Logger receives one access-log line per request: method, path without query, status,
	// bytes, duration and the client's x-request-id. Never headers, keys, prompts or answers.
	// Nil means silent.
	Logger *slog.Logger
}

// Recorded is a copy of one request as the mock received it.
type Recorded struct {
	Method string
	// Path is the request URI: path and query.
	Path   string
	Header http.Header
	// Body is nil when the body could not be read, for example because it was too large.
	Body []byte
	Time time.Time
}

// Server is the mock upstream. It implements http.Handler and is safe for concurrent use.
type Server struct {
	opts Options
	now  func() time.Time
	seq  atomic.Uint64 // response ids: chatcmpl-mock-N, msg_mock_N, resp_mock_N

	mu     sync.Mutex
	pieces []string   // answer override (SetAnswer); nil: the default answer
	lp     bool       // Responses answers carry token logprobs unasked (SetLogprobs)
	rec    []Recorded // ring buffer of at most maxRecorded entries
	next   int        // index of the oldest entry once rec is full
}

var _ http.Handler = (*Server)(nil)

// SetAnswer makes every following answer consist of exactly these content pieces, one per
// streamed chunk (tests use it to put a string across two events); none restores the default.
func (s *Server) SetAnswer(pieces ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pieces = append([]string(nil), pieces...)
	if len(pieces) == 0 {
		s.pieces = nil
	}
}

// SetLogprobs makes every following Responses answer carry per-token log probabilities
// (each delta, the done event, the part and the item), whether or not the request asked, as a
// provider may: tests use it to check they never carry text the guardrails redacted.
func (s *Server) SetLogprobs(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lp = on
}

func (s *Server) logprobs() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lp
}

// answer returns the content pieces of the next answer.
func (s *Server) answer(model string) []string {
	s.mu.Lock()
	p := s.pieces
	s.mu.Unlock()
	if p != nil {
		return append([]string(nil), p...)
	}
	return answerPieces(model, s.opts.Chunks)
}

// New returns a Server configured by o.
func New(o Options) *Server {
	if o.Chunks <= 0 {
		o.Chunks = defaultChunks
	}
	if o.Latency < 0 {
		o.Latency = 0
	}
	if o.Cadence < 0 {
		o.Cadence = 0
	}
	return &Server{opts: o, now: time.Now}
}

// Requests returns a deep copy of the recorded requests, oldest first. It is empty unless
// Options.Record is set.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, 0, len(s.rec))
	for i := range s.rec {
		out = append(out, cloneRecorded(s.rec[(s.next+i)%len(s.rec)]))
	}
	return out
}

// Reset forgets the recorded requests. Response ids keep counting up.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec = nil
	s.next = 0
}

func (s *Server) record(r *http.Request, body []byte) {
	if !s.opts.Record {
		return
	}
	rec := cloneRecorded(Recorded{
		Method: r.Method,
		Path:   r.URL.RequestURI(),
		Header: r.Header,
		Body:   body,
		Time:   s.now(),
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rec) < maxRecorded {
		s.rec = append(s.rec, rec)
		return
	}
	s.rec[s.next] = rec
	s.next = (s.next + 1) % maxRecorded
}

func cloneRecorded(r Recorded) Recorded {
	r.Header = r.Header.Clone()
	if r.Body != nil {
		r.Body = bytes.Clone(r.Body)
	}
	return r
}

// dialect selects the error body shape of an endpoint.
type dialect int

const (
	dialectOpenAI dialect = iota
	dialectAnthropic
)

// handlerFunc serves one endpoint once the body has been read and the latency has passed.
type handlerFunc func(s *Server, w http.ResponseWriter, r *http.Request, body []byte)

type route struct {
	method  string
	dialect dialect
	handle  handlerFunc
}

var routes = map[string]route{
	"/v1/chat/completions": {http.MethodPost, dialectOpenAI, (*Server).chatCompletions},
	"/v1/completions":      {http.MethodPost, dialectOpenAI, (*Server).completions},
	"/v1/embeddings":       {http.MethodPost, dialectOpenAI, (*Server).embeddings},
	"/v1/responses":        {http.MethodPost, dialectOpenAI, (*Server).responses},
	"/v1/models":           {http.MethodGet, dialectOpenAI, (*Server).models},
	"/v1/messages":         {http.MethodPost, dialectAnthropic, (*Server).messages},
}

// ServeHTTP reads and records the request, waits Options.Latency, then answers it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.Logger != nil {
		aw := &accessWriter{ResponseWriter: w, status: http.StatusOK}
		start := s.now()
		defer func() { s.logAccess(r, aw, s.now().Sub(start)) }()
		w = aw
	}
	h := w.Header()
	h.Set("X-Mock-Upstream", "1")
	if id := r.Header.Get("X-Request-Id"); id != "" {
		h.Set("X-Request-Id", id)
	}

	rt, known := routes[r.URL.Path]
	body, err := readBody(w, r)
	if err != nil {
		s.record(r, nil)
		if errors.Is(err, errTooLarge) {
			writeError(w, rt.dialect, http.StatusRequestEntityTooLarge, errBodyTooLarge)
			return
		}
		// The client is most likely gone; the answer is for the access log.
		writeError(w, rt.dialect, http.StatusBadRequest, errUnreadableBody)
		return
	}
	s.record(r, body)
	if !sleep(r.Context(), s.opts.Latency) {
		return
	}
	switch {
	case !known:
		writeError(w, dialectOpenAI, http.StatusNotFound, errNotFound(r.Method, r.URL.Path))
	case r.Method != rt.method:
		h.Set("Allow", rt.method)
		writeError(w, rt.dialect, http.StatusMethodNotAllowed, errMethod(r.Method, r.URL.Path))
	default:
		rt.handle(s, w, r, body)
	}
}

var errTooLarge = errors.New("mockllm: request body too large")

// readBody reads the whole body, or fails with errTooLarge past MaxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxBodyBytes {
		return nil, errTooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errTooLarge
		}
		return nil, err
	}
	return b, nil
}

// sleep waits d, or less when ctx ends first. It reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// nextID returns the number for the next response id.
func (s *Server) nextID() uint64 { return s.seq.Add(1) }
