package guard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// Streams shaped like the providers' (ids, envelopes and event order taken
// from captured responses; see ../llm/testdata/usage), built around a list of
// text deltas so tests can place a secret anywhere.

const sseEmail = "jane.doe@example.com"

// sseText and sseWant are the text a provider streams and what the client
// must read instead.
var (
	sseText = "Sure! Write to " + sseEmail + " and use key " + fakeAWS + " for the upload."
	sseWant = "Sure! Write to [EMAIL_1] and use key [AWS_ACCESS_KEY_1] for the upload."
	sseTool = `{"to":"` + sseEmail + `","key":"` + fakeAWS + `"}`
	// sseToolWant keeps the arguments valid JSON.
	sseToolWant = `{"to":"[EMAIL_1]","key":"[AWS_ACCESS_KEY_1]"}`
)

// tokens cuts s the way a tokenizer would: words with their leading space,
// punctuation apart, and long words in pieces of at most five bytes.
func tokens(s string) []string {
	var out []string
	start := 0
	for i := 1; i <= len(s); i++ {
		if i == len(s) || s[i] == ' ' || s[i] == '.' || s[i] == '@' || s[i] == '!' || s[i] == '"' || i-start == 5 {
			out = append(out, s[start:i])
			start = i
		}
	}
	return out
}

// fxEvent is one event of a fixture. text marks the events a redactor may
// rewrite in a clean stream (text deltas, and a finish_reason chunk, which
// may receive held text); every other event must pass byte-identical.
type fxEvent struct {
	raw  string
	text bool
}

// sseDialect builds fixture streams of one endpoint and reads back the
// texts a client would assemble from a redacted stream.
type sseDialect struct {
	name string
	ep   llm.Endpoint
	// build returns the stream of text deltas; the i-th event with text set
	// carries deltas[i].
	build func(deltas []string) []fxEvent
	// read assembles the texts per key ("0" is the main text) and checks
	// what the dialect promises (no text after its end; repeated full texts
	// equal the assembled deltas).
	read func(tb testing.TB, evs []sseEvent) map[string]string
}

func q(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func dataEv(data string, text bool) fxEvent {
	return fxEvent{raw: "data: " + data + "\n\n", text: text}
}

func namedEv(name, data string, text bool) fxEvent {
	return fxEvent{raw: "event: " + name + "\ndata: " + data + "\n\n", text: text}
}

func join(evs []fxEvent) []byte {
	var b bytes.Buffer
	for _, e := range evs {
		b.WriteString(e.raw)
	}
	return b.Bytes()
}

const chatEnv = `{"id":"chatcmpl-C4ykV3uW9GxZqLh0vA7s2mN1pQeRt","object":"chat.completion.chunk","created":1755174813,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_07871e2ad8","choices":[%s],"usage":null,"obfuscation":"bY3f"}`

func chatFx(deltas []string) []fxEvent {
	evs := []fxEvent{dataEv(fmt.Sprintf(chatEnv, `{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}`), false)}
	for _, d := range deltas {
		evs = append(evs, dataEv(fmt.Sprintf(chatEnv, `{"index":0,"delta":{"content":`+q(d)+`},"logprobs":null,"finish_reason":null}`), true))
	}
	return append(evs,
		dataEv(fmt.Sprintf(chatEnv, `{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}`), true),
		dataEv(`{"id":"chatcmpl-C4ykV3uW9GxZqLh0vA7s2mN1pQeRt","object":"chat.completion.chunk","created":1755174813,"model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_07871e2ad8","choices":[],"usage":{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"obfuscation":"e1Xy"}`, false),
		dataEv("[DONE]", false))
}

// chatChunk is the part of a chat or completions chunk a client reads.
type chatChunk struct {
	Choices []struct {
		Index int
		Text  *string
		Delta struct {
			Content   *string
			Refusal   *string
			ToolCalls []struct {
				Index    int
				Function struct{ Arguments string }
			} `json:"tool_calls"`
		}
		FinishReason *string `json:"finish_reason"`
	}
}

func readChat(tb testing.TB, evs []sseEvent) map[string]string {
	texts := map[string]string{}
	ended := map[int]bool{}
	for _, ev := range evs {
		if ev.data == "[DONE]" {
			continue
		}
		var c chatChunk
		require.NoError(tb, json.Unmarshal([]byte(ev.data), &c))
		for _, ch := range c.Choices {
			k := fmt.Sprint(ch.Index)
			add := func(key string, s string) {
				if s != "" {
					require.False(tb, ended[ch.Index], "text after finish_reason")
				}
				texts[key] += s
			}
			if ch.Text != nil {
				add(k, *ch.Text)
			}
			if ch.Delta.Content != nil {
				add(k, *ch.Delta.Content)
			}
			for _, tc := range ch.Delta.ToolCalls {
				add(fmt.Sprintf("%s.tool%d", k, tc.Index), tc.Function.Arguments)
			}
			if ch.FinishReason != nil {
				ended[ch.Index] = true
			}
		}
	}
	return texts
}

const cmplEnv = `{"id":"cmpl-C4yo2kPq7sNe4tBv0uYw6xZa1cDfG","object":"text_completion","created":1755175030,"choices":[{"text":%s,"index":0,"logprobs":null,"finish_reason":%s}],"model":"gpt-3.5-turbo-instruct","usage":null}`

func completionsFx(deltas []string) []fxEvent {
	var evs []fxEvent
	for i, d := range deltas {
		fin := "null"
		if i == len(deltas)-1 {
			fin = `"stop"`
		}
		evs = append(evs, dataEv(fmt.Sprintf(cmplEnv, q(d), fin), true))
	}
	return append(evs,
		dataEv(`{"id":"cmpl-C4yo2kPq7sNe4tBv0uYw6xZa1cDfG","object":"text_completion","created":1755175030,"model":"gpt-3.5-turbo-instruct","choices":[],"usage":{"prompt_tokens":6,"completion_tokens":7,"total_tokens":13}}`, false),
		dataEv("[DONE]", false))
}

const (
	respID     = "resp_68a1f2c0e5d88190b6a2f1c3d4e5f60708a9b0c1d2e3f4a5"
	respItemID = "msg_68a1f2c1a2b48190a7c6d5e4f3b2a1900f8e7d6c5b4a3928"
	respObj    = `{"id":"` + respID + `","object":"response","created_at":1755181760,"status":%q,"background":false,"error":null,"incomplete_details":null,"instructions":"You are a concise assistant.","max_output_tokens":null,"model":"gpt-4.1-2025-04-14","output":[%s],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"service_tier":"default","store":true,"temperature":1.0,"text":{"format":{"type":"text"},"verbosity":"medium"},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":%s,"user":null,"metadata":{}}`
)

func responsesFx(deltas []string) []fxEvent {
	full := strings.Join(deltas, "")
	item := func(status, text string) string {
		content := ""
		if status == "completed" {
			content = `{"type":"output_text","annotations":[],"logprobs":[],"text":` + q(text) + `}`
		}
		return `{"id":"` + respItemID + `","type":"message","status":"` + status + `","content":[` + content + `],"role":"assistant"}`
	}
	seq := 0
	ev := func(typ, body string, text bool) fxEvent {
		e := namedEv(typ, fmt.Sprintf(`{"type":%q,"sequence_number":%d,%s}`, typ, seq, body), text)
		seq++
		return e
	}
	ids := `"item_id":"` + respItemID + `","output_index":0,"content_index":0`
	evs := []fxEvent{
		ev("response.created", `"response":`+fmt.Sprintf(respObj, "in_progress", "", "null"), false),
		ev("response.in_progress", `"response":`+fmt.Sprintf(respObj, "in_progress", "", "null"), false),
		ev("response.output_item.added", `"output_index":0,"item":`+item("in_progress", ""), false),
		ev("response.content_part.added", ids+`,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":""}`, false),
	}
	for i, d := range deltas {
		evs = append(evs, ev("response.output_text.delta", ids+`,"delta":`+q(d)+`,"logprobs":[],"obfuscation":"`+"mZ1Qx0d9kT2"[:i%11+1]+`"`, true))
	}
	return append(evs,
		ev("response.output_text.done", ids+`,"text":`+q(full)+`,"logprobs":[]`, false),
		ev("response.content_part.done", ids+`,"part":{"type":"output_text","annotations":[],"logprobs":[],"text":`+q(full)+`}`, false),
		ev("response.output_item.done", `"output_index":0,"item":`+item("completed", full), false),
		ev("response.completed", `"response":`+fmt.Sprintf(respObj, "completed", item("completed", full), `{"input_tokens":1536,"input_tokens_details":{"cached_tokens":1280},"output_tokens":9,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":1545}`), false),
	)
}

// respEventView is the part of a Responses event a client reads.
type respEventView struct {
	Type      string
	ItemID    string `json:"item_id"`
	Delta     string
	Text      string
	Arguments string
	Part      struct{ Text string }
	Item      respItemView
	Response  struct{ Output []respItemView }
}

type respItemView struct {
	ID        string
	Content   []struct{ Text string }
	Arguments string
}

func readResponses(tb testing.TB, evs []sseEvent) map[string]string {
	texts := map[string]string{}
	done := map[string]bool{}
	key := func(id string) string {
		if id == respItemID {
			return "0"
		}
		return id
	}
	checkItem := func(it respItemView) {
		if len(it.Content) > 0 {
			require.Equal(tb, texts[key(it.ID)], it.Content[0].Text, "item repeats another text")
		}
		if it.Arguments != "" {
			require.Equal(tb, texts[key(it.ID)], it.Arguments, "item repeats other arguments")
		}
	}
	for _, ev := range evs {
		var v respEventView
		require.NoError(tb, json.Unmarshal([]byte(ev.data), &v))
		require.Equal(tb, v.Type, ev.name, "event name and type differ")
		k := key(v.ItemID)
		switch v.Type {
		case "response.output_text.delta", "response.function_call_arguments.delta":
			require.False(tb, done[k], "delta after done")
			texts[k] += v.Delta
		case "response.output_text.done":
			done[k] = true
			require.Equal(tb, texts[k], v.Text, "done repeats another text")
		case "response.function_call_arguments.done":
			done[k] = true
			require.Equal(tb, texts[k], v.Arguments, "done repeats other arguments")
		case "response.content_part.done":
			require.Equal(tb, texts[k], v.Part.Text)
		case "response.output_item.done":
			checkItem(v.Item)
		case "response.completed":
			for _, it := range v.Response.Output {
				checkItem(it)
			}
		}
	}
	return texts
}

func messagesFx(deltas []string) []fxEvent {
	evs := []fxEvent{
		namedEv("message_start", `{"type":"message_start","message":{"id":"msg_01A9e3bZ7qT4vWm2xYc8nKpR","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}`, false),
		namedEv("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`, false),
		namedEv("ping", `{"type": "ping"}`, false),
	}
	for _, d := range deltas {
		evs = append(evs, namedEv("content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`+q(d)+`}}`, true))
	}
	return append(evs,
		namedEv("content_block_stop", `{"type":"content_block_stop","index":0}`, false),
		namedEv("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":87}}`, false),
		namedEv("message_stop", `{"type":"message_stop"}`, false),
	)
}

// msgEventView is the part of a Messages event a client reads.
type msgEventView struct {
	Type  string
	Index int
	Delta struct {
		Type, Text  string
		PartialJSON string `json:"partial_json"`
	}
}

func readMessages(tb testing.TB, evs []sseEvent) map[string]string {
	texts := map[string]string{}
	stopped := map[int]bool{}
	for _, ev := range evs {
		var v msgEventView
		require.NoError(tb, json.Unmarshal([]byte(ev.data), &v))
		require.Equal(tb, v.Type, ev.name)
		switch v.Type {
		case "content_block_delta":
			require.False(tb, stopped[v.Index], "delta after content_block_stop")
			texts[fmt.Sprint(v.Index)] += v.Delta.Text + v.Delta.PartialJSON
		case "content_block_stop":
			stopped[v.Index] = true
		}
	}
	return texts
}

var sseDialects = []sseDialect{
	{"chat", llm.ChatCompletions, chatFx, readChat},
	{"completions", llm.Completions, completionsFx, readChat},
	{"responses", llm.Responses, responsesFx, readResponses},
	{"messages", llm.Messages, messagesFx, readMessages},
}

// sseEvent is one event read back from a redactor's output.
type sseEvent struct{ name, data string }

// parseSSE reads out as a client would and checks that it is a valid
// stream of complete events whose data is JSON (or [DONE]).
func parseSSE(tb testing.TB, out []byte) []sseEvent {
	tb.Helper()
	var evs []sseEvent
	var p llm.SSEParser
	collect := func(name, data []byte) { evs = append(evs, sseEvent{string(name), string(data)}) }
	p.Feed(out, collect)
	n := len(evs)
	p.Flush(collect)
	require.Len(tb, evs, n, "output ends inside an event")
	require.Zero(tb, p.Dropped())
	for _, ev := range evs {
		if ev.data != "[DONE]" {
			require.True(tb, json.Valid([]byte(ev.data)), "data is not JSON: %q", ev.data)
		}
	}
	return evs
}

// runSSE feeds chunks to a new redactor and returns everything released.
func runSSE(tb testing.TB, e *Engine, profile string, ep llm.Endpoint, chunks ...[]byte) ([]byte, *SSERedactor) {
	tb.Helper()
	r, err := e.NewSSERedactor(profile, ep)
	require.NoError(tb, err)
	var out []byte
	for _, c := range chunks {
		out = append(out, r.Feed(c)...)
	}
	return append(out, r.Finish()...), r
}

// bytesOf cuts b into one-byte chunks.
func bytesOf(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

// textEvents returns the byte offsets of the events that carry deltas.
func textEvents(evs []fxEvent) (starts, ends []int) {
	off := 0
	for _, e := range evs {
		if e.text {
			starts, ends = append(starts, off), append(ends, off+len(e.raw))
		}
		off += len(e.raw)
	}
	return starts, ends
}

var seqRE = regexp.MustCompile(`"sequence_number":(\d+)`)

// requireSequence checks that the events carrying a sequence_number have
// unique, strictly increasing numbers.
func requireSequence(tb testing.TB, evs []sseEvent) {
	tb.Helper()
	last := int64(-1)
	for _, ev := range evs {
		m := seqRE.FindStringSubmatch(ev.data)
		if m == nil {
			continue
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		require.NoError(tb, err)
		require.Greater(tb, n, last, "sequence_number repeats or goes back: %s", ev.data)
		last = n
	}
}

// unnumbered returns ev with its sequence_number zeroed.
func unnumbered(ev sseEvent) sseEvent {
	ev.data = seqRE.ReplaceAllString(ev.data, `"sequence_number":0`)
	return ev
}
