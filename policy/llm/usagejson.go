package llm

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/tollgate-ai/tollgate/policy/internal/jsonlex"
)

// maxReportedTokens bounds every token count Tollgate accepts from a
// provider. Larger values are treated as corrupt rather than billed.
const maxReportedTokens = 1_000_000_000_000

// maxModelLen bounds the provider-reported model name kept by UsageParser;
// a longer value is ignored.
const maxModelLen = 512

// spans holds the raw JSON values of the members UsageParser reads from one
// object. A nil span means the member is absent.
type spans struct {
	typ, model, usage []byte
}

// eventSpans holds spans of a top-level object and of one nested object
// ("response" in OpenAI Responses events, "message" in Anthropic's
// message_start).
type eventSpans struct {
	top, inner spans
}

// scanSpans checks that b is exactly one valid JSON object and records the
// raw values of its "type", "model" and "usage" members in ev.top. When nest
// is not empty and names a member whose value is an object, that object's
// members of the same names go to ev.inner. It is a single pass of the
// package's scanner and allocates nothing unless a key is escaped. For a
// duplicated key the last value wins, as in encoding/json.
func scanSpans(b []byte, nest string, ev *eventSpans) bool {
	var s scanner
	s.Reset(b, ErrInvalidJSON, ErrTooDeep)
	s.SkipWS()
	if s.Pos >= len(b) || b[s.Pos] != '{' {
		return false
	}
	return spanObject(&s, 1, nest, &ev.top, &ev.inner) && s.End()
}

// spanObject scans the object whose '{' is at s.Pos; depth counts it.
func spanObject(s *scanner, depth int, nest string, sp, inner *spans) bool {
	if depth > MaxDepth {
		return s.TooDeep()
	}
	o := s.Object()
	for o.Next() {
		key := o.Key()
		start := s.Pos
		var ok bool
		if nest != "" && string(key) == nest && s.Pos < len(s.B) && s.B[s.Pos] == '{' {
			*inner = spans{}
			ok = spanObject(s, depth+1, "", inner, nil)
		} else {
			ok = s.Value(depth)
		}
		if !ok {
			return false
		}
		switch string(key) {
		case "type":
			sp.typ = s.B[start:s.Pos]
		case "model":
			sp.model = s.B[start:s.Pos]
		case "usage":
			sp.usage = s.B[start:s.Pos]
		}
	}
	return o.Done()
}

// jsonString decodes raw, a scanned JSON value, if it is a string of at most
// maxLen raw bytes. Invalid UTF-8 is replaced as encoding/json does.
func jsonString(raw []byte, maxLen int) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || len(raw) > maxLen+2 {
		return "", false
	}
	in := raw[1 : len(raw)-1]
	if bytes.IndexByte(in, '\\') < 0 && utf8.Valid(in) {
		return string(in), true
	}
	out, _ := jsonlex.Unquote(make([]byte, 0, len(in)), in)
	return string(out), true
}

// hasNonNullUsage reports whether data may hold a "usage" member whose value
// is not null. It is the cheap filter run on every SSE event before any JSON
// is scanned: streamed OpenAI chunks carry "usage":null until the last one.
// It can report false positives (the word in a string), which the scan then
// rejects; it misses keys written with escapes, which providers do not send.
func hasNonNullUsage(data []byte) bool {
	const key = `"usage"`
	for {
		i := bytes.Index(data, []byte(key))
		if i < 0 {
			return false
		}
		data = data[i+len(key):]
		j := skipJSONSpace(data, 0)
		if j == len(data) || data[j] != ':' {
			continue
		}
		j = skipJSONSpace(data, j+1)
		if !bytes.HasPrefix(data[j:], []byte("null")) {
			return true
		}
		data = data[j:]
	}
}

// skipJSONSpace returns the index of the first byte at or after i in b that
// is not JSON whitespace, or len(b).
func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// validCount reports whether a provider token count is believable.
func validCount(n int64) bool { return n >= 0 && n <= maxReportedTokens }

// isObject reports whether raw, a scanned JSON value, is an object. Usage
// objects are decoded only then: null means "no usage yet".
func isObject(raw []byte) bool { return len(raw) > 0 && raw[0] == '{' }

// count returns *n, or 0 for an absent or null member, and whether it is
// believable.
func count(n *int64) (int64, bool) {
	if n == nil {
		return 0, true
	}
	return *n, validCount(*n)
}

// cachedDetails is OpenAI's prompt_tokens_details / input_tokens_details.
type cachedDetails struct {
	CachedTokens *int64 `json:"cached_tokens"`
}

// openAIUsageJSON is the union of OpenAI's two usage shapes: Chat
// Completions, legacy Completions and Embeddings use prompt/completion;
// Responses uses input/output. Both count cached tokens inside the input.
// Pointers tell an absent or null member from a zero.
type openAIUsageJSON struct {
	PromptTokens        *int64        `json:"prompt_tokens"`
	CompletionTokens    *int64        `json:"completion_tokens"`
	PromptTokensDetails cachedDetails `json:"prompt_tokens_details"`
	InputTokens         *int64        `json:"input_tokens"`
	OutputTokens        *int64        `json:"output_tokens"`
	InputTokensDetails  cachedDetails `json:"input_tokens_details"`
}

// decodeOpenAIUsage decodes an OpenAI usage object. responses selects the
// input/output names of the Responses API. The input count must be present:
// an object without it (empty, or another dialect's names) is not usage, so
// a budget is never settled at zero by mistake. Cached tokens are moved out
// of the input count; a cached count above the input is clamped to it, so
// the input total the provider billed is kept.
func decodeOpenAIUsage(raw []byte, responses bool) (Usage, bool) {
	if !isObject(raw) {
		return Usage{}, false
	}
	var v openAIUsageJSON
	if json.Unmarshal(raw, &v) != nil {
		return Usage{}, false
	}
	inP, outP, cachedP := v.PromptTokens, v.CompletionTokens, v.PromptTokensDetails.CachedTokens
	if responses {
		inP, outP, cachedP = v.InputTokens, v.OutputTokens, v.InputTokensDetails.CachedTokens
	}
	in, okIn := count(inP)
	out, okOut := count(outP)
	cached, okCached := count(cachedP)
	if inP == nil || !okIn || !okOut || !okCached {
		return Usage{}, false
	}
	cached = min(cached, in)
	return Usage{InputTokens: in - cached, OutputTokens: out, CachedInputTokens: cached}, true
}

// anthropicUsageJSON is Anthropic's usage object, with pointers to tell an
// absent or null member from a zero.
type anthropicUsageJSON struct {
	InputTokens              *int64 `json:"input_tokens"`
	OutputTokens             *int64 `json:"output_tokens"`
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
	CacheCreation            *struct {
		Ephemeral1h *int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
}

// anthropicCounts is a decoded Anthropic usage object; the has* flags
// report which members were present and not null.
type anthropicCounts struct {
	input, output, cacheWrite, cacheRead int64
	cacheWrite1h                         int64 // the part of cacheWrite with a one-hour lifetime
	hasInput, hasOutput, hasAny          bool
}

// decodeAnthropicUsage decodes an Anthropic usage object.
func decodeAnthropicUsage(raw []byte) (anthropicCounts, bool) {
	var v anthropicUsageJSON
	if !isObject(raw) || json.Unmarshal(raw, &v) != nil {
		return anthropicCounts{}, false
	}
	var c anthropicCounts
	var ok [4]bool
	c.input, ok[0] = count(v.InputTokens)
	c.output, ok[1] = count(v.OutputTokens)
	c.cacheWrite, ok[2] = count(v.CacheCreationInputTokens)
	c.cacheRead, ok[3] = count(v.CacheReadInputTokens)
	if !ok[0] || !ok[1] || !ok[2] || !ok[3] {
		return anthropicCounts{}, false
	}
	if v.CacheCreation != nil {
		var ok1h bool
		if c.cacheWrite1h, ok1h = count(v.CacheCreation.Ephemeral1h); !ok1h {
			return anthropicCounts{}, false
		}
		// The split never exceeds the total (cache_creation_input_tokens, or the split
		// alone when a version reports only the split).
		c.cacheWrite = max(c.cacheWrite, c.cacheWrite1h)
	}
	c.hasInput, c.hasOutput = v.InputTokens != nil, v.OutputTokens != nil
	c.hasAny = c.hasInput || c.hasOutput || v.CacheCreationInputTokens != nil || v.CacheReadInputTokens != nil
	return c, true
}

// usage converts a complete Anthropic usage object (a non-streamed message
// or message_start), whose input_tokens already excludes the cache. It
// reports false without input_tokens.
func (c anthropicCounts) usage() (Usage, bool) {
	return Usage{
		InputTokens:        c.input,
		OutputTokens:       c.output,
		CachedInputTokens:  c.cacheRead,
		CacheWriteTokens:   c.cacheWrite,
		CacheWrite1hTokens: c.cacheWrite1h,
	}, c.hasInput
}
