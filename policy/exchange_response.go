package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tollgate-ai/tollgate/policy/guard"
	"github.com/tollgate-ai/tollgate/policy/llm"
	"github.com/tollgate-ai/tollgate/policy/translate"
)

// MaxGuardedJSON bounds a non-streamed response held for scanning. A larger one is cut off
// (the stream fails) rather than released unscanned.
const MaxGuardedJSON = 16 << 20

// settleTimeout bounds the ledger write at the end of an exchange.
const settleTimeout = 2 * time.Second

// ErrResponseUnguardable means a response that guardrails apply to could not be scanned: it
// is refused (before its headers go out) or cut off (after), never released unscanned.
var ErrResponseUnguardable = errors.New("response could not be guarded")

// ErrResponseUntranslatable means a translated request's response could not be translated
// back to the client's API: it is cut off rather than released in a shape the client did not
// ask for.
var ErrResponseUntranslatable = errors.New("response could not be translated")

// responseGuard applies the request's guardrail profile to the response body. Unlike the
// pass-through path, it must see each chunk before it is released: text the guardrails have
// not seen never leaves. A streamed response is rewritten event by event, holding back only
// the tail that could still start a match; a JSON response is held whole and released
// (redacted or not) with its last chunk.
type responseGuard struct {
	sse      *guard.SSERedactor
	buf      []byte // JSON response so far
	findings []guard.Finding
}

// ResponseHeaders decides at the response headers: whether the response is guarded, and how
// its usage is read. A Reply (with an error saying why) refuses a response that must be
// guarded but cannot be: its headers have not gone out yet. Headers that arrive before
// anything was forwarded are a reply Envoy made itself (a 431, a 400 for a malformed request,
// a 413): it carries no provider key, nothing is guarded or settled, and it passes as it is,
// since failing the stream would make Envoy drop its own reply.
func (x *Exchange) ResponseHeaders(status int, contentType string, endOfStream bool) (*Reply, error) {
	switch x.phase {
	case phaseForwarded:
	case phaseStart, phaseRequestBody:
		x.status = status
		x.reason, x.decided = ReasonEnvoyLocalReply, true
		x.phase = phaseLocalReply
		return nil, nil
	default:
		return nil, protocolFault("response headers in phase %s", x.phase)
	}
	x.status = status
	x.upstreamAt = x.opts.Now()
	x.phase = phaseResponseBody
	sse := strings.HasPrefix(strings.ToLower(contentType), "text/event-stream")
	// Usage is read from what the provider sent, in its own API's shape.
	x.usage = llm.NewUsageParser(x.fwd.Upstream, sse)
	if sse && x.fwd.DropUsageChunk {
		x.chunks = &llm.UsageChunkFilter{}
	}
	if endOfStream {
		x.respEOS = true
		return nil, nil
	}
	if tr := x.fwd.tr; tr != nil {
		x.tr = tr.Response(status, sse, translate.ResponseOptions{IncludeUsage: x.fwd.includeUsage, Created: x.upstreamAt.Unix()})
		// The body changes size; a 2xx stream stays an event stream, anything else becomes JSON.
		x.hdrRemove = []string{"content-length"}
		if ok := status >= 200 && status <= 299; !ok || !sse {
			x.hdrSet = []Header{{Key: "content-type", Value: []byte("application/json")}}
			sse = false
		}
	}
	if g := x.fwd.Guard; g == nil || g.Profile == "" || status < 200 || status > 299 {
		return nil, nil // unguarded: errors and other statuses carry no completion
	}
	if !sse {
		x.rg = &responseGuard{}
		return nil, nil
	}
	r, err := x.snap.StreamGuard(x.fwd)
	if err == nil && r == nil {
		err = errors.New("no stream redactor")
	}
	if err != nil {
		return x.reply(x.snap.GuardFailure(x.adm)), fmt.Errorf("%w: %w", ErrResponseUnguardable, err)
	}
	x.rg = &responseGuard{sse: r}
	return nil, nil
}

// ResponseHeaderEdits returns the response header changes decided at the response headers
// (both nil when none): a translated response loses its content-length, since its body
// changes size, and is labelled JSON when it becomes JSON (an error page from a proxy).
func (x *Exchange) ResponseHeaderEdits() (set []Header, remove []string) {
	return x.hdrSet, x.hdrRemove
}

// ResponseChunk decides what is released in place of one response chunk: replace is false
// when the chunk passes unchanged (then out is nil), true when out replaces it (possibly with
// nothing, while text is held back). Unguarded chunks are decided without looking at them,
// unless the usage chunk Tollgate asked for must be removed or the response is translated;
// guarded ones are scanned first, after their translation: what the client reads is what is
// guarded. An error fails the stream: a guarded response too large or unreadable to scan, or
// a translated one that cannot be translated, is cut off rather than released unscanned or
// untranslated. Call Observe for the same chunk afterwards.
func (x *Exchange) ResponseChunk(chunk []byte, endOfStream bool) (out []byte, replace bool, err error) {
	switch x.phase {
	case phaseLocalReply:
		return nil, false, nil
	case phaseResponseBody:
	default:
		return nil, false, protocolFault("response body in phase %s", x.phase)
	}
	if x.tr != nil {
		if chunk, err = x.translateChunk(chunk, endOfStream); err != nil {
			return nil, false, err
		}
		if x.rg == nil {
			return chunk, true, nil
		}
	}
	if x.rg == nil {
		if x.chunks == nil {
			return nil, false, nil
		}
		out, same := x.filterChunks(chunk, endOfStream)
		return out, !same, nil
	}
	rg := x.rg
	if rg.sse != nil {
		out = rg.sse.Feed(chunk)
		if endOfStream {
			out = append(out, rg.sse.Finish()...)
			rg.findings = rg.sse.Findings()
		}
		if x.chunks != nil {
			out, _ = x.filterChunks(out, endOfStream)
		}
		return out, true, nil
	}
	if len(rg.buf)+len(chunk) > MaxGuardedJSON {
		return nil, false, fmt.Errorf("%w: a JSON response over %d bytes", ErrResponseUnguardable, MaxGuardedJSON)
	}
	rg.buf = append(rg.buf, chunk...)
	if !endOfStream {
		return nil, true, nil // held until the whole body is scanned
	}
	red, findings, err := x.snap.ScanResponse(x.fwd, rg.buf)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrResponseUnguardable, err)
	}
	rg.findings = findings
	if red != nil {
		return red, true, nil
	}
	return rg.buf, true, nil
}

// translateChunk returns the translation of one upstream chunk (and of the stream's end).
func (x *Exchange) translateChunk(chunk []byte, endOfStream bool) ([]byte, error) {
	out, err := x.tr.Feed(chunk)
	if err == nil && endOfStream {
		var rest []byte
		rest, err = x.tr.Finish()
		out = append(out, rest...)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrResponseUntranslatable, err)
	}
	return out, nil
}

// filterChunks passes out (a chunk, or what the redactor releases in its place) through the
// usage chunk filter. same reports that out passes unchanged.
func (x *Exchange) filterChunks(out []byte, endOfStream bool) ([]byte, bool) {
	out, same := x.chunks.Feed(out)
	if endOfStream {
		if rest := x.chunks.Finish(); len(rest) > 0 {
			out, same = append(append([]byte(nil), out...), rest...), false
		}
	}
	return out, same
}

// Observe accounts one response chunk as the upstream sent it: bytes, time to the first
// byte, usage, and the completion for the audit content policy. O(len(chunk)).
func (x *Exchange) Observe(chunk []byte, endOfStream bool) {
	if x.respBytes == 0 && len(chunk) > 0 {
		x.firstByte = x.opts.Now().Sub(x.start)
	}
	x.respBytes += int64(len(chunk))
	if x.phase == phaseLocalReply {
		return
	}
	if x.opts.CaptureContent && len(x.completion)+len(chunk) <= MaxContentCapture {
		x.completion = append(x.completion, chunk...)
	}
	if x.usage != nil {
		x.usage.Feed(chunk)
	}
	if endOfStream {
		x.respEOS = true
	}
}

// End concludes the exchange once its stream is over: the final usage is read and the
// request settled (charged, and its reservation released), on a context detached from the
// stream's, which is already cancelled when the client went away. It runs once; later calls
// do nothing. The error is a settlement the ledger could not take or queue (the reservation
// then expires on its own); the charge is decided all the same.
func (x *Exchange) End() error {
	if x.ended {
		return nil
	}
	x.ended = true
	if !x.decided {
		// The stream ended before any decision: the client went away during the headers, or
		// Envoy stopped before the body arrived.
		x.reason = ReasonIncomplete
	}
	if x.usage != nil {
		x.usage.Finish()
		x.used, x.seen = x.usage.Usage()
	}
	if x.fwd == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(x.ctx), settleTimeout)
	defer cancel()
	o := Outcome{Usage: x.used, UsageSeen: x.seen, Status: x.status}
	if x.usage != nil {
		o.Ended = x.usage.Ended()
	}
	o = x.attemptOutcome(o)
	var err error
	x.settled, err = x.fwd.Settle(ctx, x.hold, o)
	return err
}

// Fail records that the exchange ended on a protocol or gateway fault.
func (x *Exchange) Fail() {
	x.reason, x.decided = ReasonInternal, true
	x.phase = phaseReplied
}
