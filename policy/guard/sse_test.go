package guard

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// checkRedacted asserts what every redacted fixture stream must satisfy and
// returns the texts a client assembles.
func checkRedacted(tb testing.TB, d sseDialect, out []byte, secrets ...string) map[string]string {
	tb.Helper()
	for _, s := range append([]string{sseEmail, fakeAWS}, secrets...) {
		require.NotContains(tb, string(out), s)
	}
	return d.read(tb, parseSSE(tb, out))
}

// The fixture of each dialect, fed whole and byte by byte, comes out with
// the email and the key replaced, and the findings count each once (the
// Responses events that repeat the text are not counted again).
func TestSSERedactorDialects(t *testing.T) {
	e := allEngine(t)
	for _, d := range sseDialects {
		t.Run(d.name, func(t *testing.T) {
			stream := join(d.build(tokens(sseText)))
			require.Contains(t, string(stream), fakeAWS[4:9], "the fixture splits the key across events")
			for _, tc := range []struct {
				name   string
				chunks [][]byte
			}{{"whole", [][]byte{stream}}, {"bytes", bytesOf(stream)}} {
				t.Run(tc.name, func(t *testing.T) {
					out, r := runSSE(t, e, "redact", d.ep, tc.chunks...)
					require.Equal(t, map[string]string{"0": sseWant}, checkRedacted(t, d, out))
					require.Equal(t, []Finding{
						{RuleID: "r.pii.email", Detector: "pii.email", Action: Redact, Count: 1},
						{RuleID: "r.secret.aws_access_key", Detector: "secret.aws_access_key", Action: Redact, Count: 1},
					}, r.Findings())
				})
			}
		})
	}
}

// Placeholders are numbered once per stream: a repeated value keeps its
// number, in the deltas and in the Responses events that repeat the text
// (which readResponses compares with the deltas).
func TestSSERedactorPlaceholders(t *testing.T) {
	e := allEngine(t)
	text := "Ask ann@corp.example then bob@corp.example, and ann@corp.example again."
	for _, d := range sseDialects {
		out, r := runSSE(t, e, "redact", d.ep, join(d.build(tokens(text))))
		require.Equal(t, "Ask [EMAIL_1] then [EMAIL_2], and [EMAIL_1] again.", d.read(t, parseSSE(t, out))["0"], d.name)
		require.Equal(t, 3, r.Findings()[0].Count, d.name)
	}
}

// A secret split across two events, at several places, and the stream cut
// into two chunks at every byte of those two events: nothing leaks, and
// the client reads the same redacted text.
func TestSSERedactorSplitEverywhere(t *testing.T) {
	e := allEngine(t)
	for _, d := range sseDialects {
		for _, secret := range []string{sseEmail, fakeAWS} {
			for _, k := range []int{1, len(secret) / 2, len(secret) - 1} {
				i := strings.Index(sseText, secret)
				j := i + len(secret)
				j += 1 + strings.IndexByte(sseText[j+1:], ' ')
				deltas := []string{sseText[:i], secret[:k], sseText[i+k : j], sseText[j:]}
				require.Equal(t, sseText, strings.Join(deltas, ""))
				evs := d.build(deltas)
				stream := join(evs)
				starts, ends := textEvents(evs)
				for cut := starts[1]; cut <= ends[2]; cut++ {
					out, _ := runSSE(t, e, "redact", d.ep, stream[:cut], stream[cut:])
					texts := checkRedacted(t, d, out)
					require.Equal(t, sseWant, texts["0"], "%s: %s split at %d, cut at %d", d.name, secret, k, cut)
				}
			}
		}
	}
}

// A clean stream reads back identical, and every event without text is
// released byte-identical and in order.
func TestSSERedactorClean(t *testing.T) {
	e := allEngine(t)
	text := "The quarterly figures come from section 4 (see table 7), as discussed on 2024-10-15; the \"adjusted\" total is 12.4M."
	for _, d := range sseDialects {
		t.Run(d.name, func(t *testing.T) {
			evs := d.build(tokens(text))
			stream := join(evs)
			for _, chunks := range [][][]byte{{stream}, bytesOf(stream)} {
				out, r := runSSE(t, e, "redact", d.ep, chunks...)
				got := parseSSE(t, out)
				require.Equal(t, map[string]string{"0": text}, d.read(t, got))
				require.Empty(t, r.Findings())
				want := parseSSE(t, join(nonText(evs)))
				requireSequence(t, got)
				// Released Responses events are renumbered around the
				// synthesized flush (see TestSSERedactorSequenceNumbers).
				j := 0
				for _, ev := range got {
					if j < len(want) && unnumbered(ev) == unnumbered(want[j]) {
						j++
					}
				}
				require.Equal(t, len(want), j, "an event without text changed or moved: %v", want[min(j, len(want)-1)])
			}
		})
	}
}

func nonText(evs []fxEvent) []fxEvent {
	var out []fxEvent
	for _, e := range evs {
		if !e.text {
			out = append(out, e)
		}
	}
	return out
}

// Tool-call arguments (chat tool_calls, Responses function calls, Messages
// input_json_delta) are redacted across events and stay valid JSON, and a
// value keeps its placeholder across the texts of one stream.
func TestSSERedactorToolArguments(t *testing.T) {
	e := allEngine(t)
	args := tokens(sseTool)
	cases := map[string]func() ([]fxEvent, llm.Endpoint, sseDialect){
		"chat": func() ([]fxEvent, llm.Endpoint, sseDialect) {
			evs := []fxEvent{dataEv(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Mail `+sseEmail+` now.","tool_calls":[{"index":0,"id":"call_Qk7","type":"function","function":{"name":"send","arguments":""}}]},"logprobs":null,"finish_reason":null}]}`, true)}
			for _, a := range args {
				evs = append(evs, dataEv(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":`+q(a)+`}}]},"logprobs":null,"finish_reason":null}]}`, true))
			}
			evs = append(evs, dataEv(`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}`, true), dataEv("[DONE]", false))
			return evs, llm.ChatCompletions, sseDialects[0]
		},
		"responses": func() ([]fxEvent, llm.Endpoint, sseDialect) {
			ids := `"item_id":"fc_1","output_index":1`
			item := `{"id":"fc_1","type":"function_call","status":"completed","arguments":` + q(sseTool) + `,"call_id":"call_1","name":"send"}`
			evs := []fxEvent{namedEv("response.output_item.added", `{"type":"response.output_item.added","sequence_number":1,"output_index":1,"item":{"id":"fc_1","type":"function_call","status":"in_progress","arguments":"","call_id":"call_1","name":"send"}}`, false)}
			for _, a := range args {
				evs = append(evs, namedEv("response.function_call_arguments.delta", `{"type":"response.function_call_arguments.delta","sequence_number":2,`+ids+`,"delta":`+q(a)+`}`, true))
			}
			evs = append(evs,
				namedEv("response.function_call_arguments.done", `{"type":"response.function_call_arguments.done","sequence_number":3,`+ids+`,"arguments":`+q(sseTool)+`}`, false),
				namedEv("response.output_item.done", `{"type":"response.output_item.done","sequence_number":4,"output_index":1,"item":`+item+`}`, false),
				namedEv("response.completed", `{"type":"response.completed","sequence_number":5,"response":{"id":"resp_1","output":[`+item+`]}}`, false))
			return evs, llm.Responses, sseDialects[2]
		},
		"messages": func() ([]fxEvent, llm.Endpoint, sseDialect) {
			evs := []fxEvent{namedEv("content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01","name":"send","input":{}}}`, false)}
			for _, a := range args {
				evs = append(evs, namedEv("content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":`+q(a)+`}}`, true))
			}
			evs = append(evs, namedEv("content_block_stop", `{"type":"content_block_stop","index":1}`, false), namedEv("message_stop", `{"type":"message_stop"}`, false))
			return evs, llm.Messages, sseDialects[3]
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			evs, ep, d := build()
			stream := join(evs)
			for _, chunks := range [][][]byte{{stream}, bytesOf(stream)} {
				out, _ := runSSE(t, e, "redact", ep, chunks...)
				texts := checkRedacted(t, d, out)
				var got string
				for k, v := range texts {
					if k != "0" {
						got = v
					}
				}
				require.Equal(t, sseToolWant, got)
				if name == "chat" {
					require.Equal(t, "Mail [EMAIL_1] now.", texts["0"], "same email, same placeholder")
				}
			}
		})
	}
}

// Held text is released in the event that ends its text, or in a
// synthesized event in the image of the stream's own.
func TestSSERedactorFlushPoints(t *testing.T) {
	e := allEngine(t)
	env := func(choice string) string {
		return `data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[` + choice + `],"usage":null}` + "\n\n"
	}
	delta := func(s string) string {
		return env(`{"index":0,"delta":{"content":` + q(s) + `},"finish_reason":null}`)
	}
	tool := func(s string) string {
		return env(`{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":` + q(s) + `}}]},"finish_reason":null}`)
	}
	bigLogprobs := strings.Repeat(`{"token":"x","logprob":-1.0},`, 1000) + "1"
	bigPad := strings.Repeat("x", maxTemplate)
	cases := []struct {
		name string
		ep   llm.Endpoint
		in   string
		want string
	}{
		{"chat finish_reason", llm.ChatCompletions,
			delta("Reach ja") + delta("ne@exam") + delta("ple.com") + env(`{"index":0,"delta":{},"finish_reason":"stop"}`) + "data: [DONE]\n\n",
			delta("Reach ") + delta("") + delta("") + env(`{"index":0,"delta":{"content":"[EMAIL_1]"},"finish_reason":"stop"}`) + "data: [DONE]\n\n"},
		{"chat finish_reason without delta", llm.ChatCompletions,
			delta("Bye now") + env(`{"index":0,"finish_reason":"length"}`),
			delta("Bye ") + env(`{"index":0,"finish_reason":"length","delta":{"content":"now"}}`)},
		{"chat before [DONE]", llm.ChatCompletions,
			delta("key "+fakeAWS) + `data: {"id":"c1","choices":[],"usage":{"total_tokens":9}}` + "\n\n" + "data: [DONE]\n\n",
			delta("key ") + `data: {"id":"c1","choices":[],"usage":{"total_tokens":9}}` + "\n\n" +
				env(`{"index":0,"delta":{"content":"[AWS_ACCESS_KEY_1]"},"logprobs":null,"finish_reason":null}`) + "data: [DONE]\n\n"},
		{"chat at Finish", llm.ChatCompletions,
			delta("all good"),
			delta("all ") + env(`{"index":0,"delta":{"content":"good"},"logprobs":null,"finish_reason":null}`)},
		{"completions finish_reason", llm.Completions,
			`data: {"choices":[{"text":"Hi there","index":0,"finish_reason":null}]}` + "\n\n" + `data: {"choices":[{"index":0,"finish_reason":"stop"}]}` + "\n\n",
			`data: {"choices":[{"text":"Hi ","index":0,"finish_reason":null}]}` + "\n\n" + `data: {"choices":[{"index":0,"finish_reason":"stop","text":"there"}]}` + "\n\n"},
		{"messages before content_block_stop", llm.Messages,
			"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Hello world"}}` + "\n\nevent: content_block_stop\n" + `data: {"type":"content_block_stop","index":2}` + "\n\n",
			"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Hello "}}` + "\n\nevent: content_block_delta\n" + `data: {"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"world"}}` + "\n\nevent: content_block_stop\n" + `data: {"type":"content_block_stop","index":2}` + "\n\n"},
		{"responses before done", llm.Responses,
			"event: response.output_text.delta\n" + `data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"m1","output_index":0,"content_index":0,"delta":"Hello world","logprobs":[]}` + "\n\nevent: response.output_text.done\n" + `data: {"type":"response.output_text.done","sequence_number":5,"item_id":"m1","output_index":0,"content_index":0,"text":"Hello world"}` + "\n\n",
			"event: response.output_text.delta\n" + `data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"m1","output_index":0,"content_index":0,"delta":"Hello ","logprobs":[]}` + "\n\nevent: response.output_text.delta\n" + `data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"m1","output_index":0,"content_index":0,"delta":"world","logprobs":[]}` + "\n\nevent: response.output_text.done\n" + `data: {"type":"response.output_text.done","sequence_number":6,"item_id":"m1","output_index":0,"content_index":0,"text":"Hello world"}` + "\n\n"},
		{"chat tool call at finish_reason", llm.ChatCompletions,
			tool(`{"a": "hello`) + env(`{"index":0,"delta":{},"finish_reason":"tool_calls"}`),
			tool(`{"a": "`) + env(`{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"hello"}}]},"finish_reason":"tool_calls"}`)},
		{"chat tool call before [DONE]", llm.ChatCompletions,
			tool(`{"a": "hello`) + "data: [DONE]\n\n",
			tool(`{"a": "`) + env(`{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"hello"}}]},"logprobs":null,"finish_reason":null}`) + "data: [DONE]\n\n"},
		{"messages before message_stop", llm.Messages,
			"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":2,"delta":{"type":"thinking_delta","thinking":"Hello world"}}` + "\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
			"event: content_block_delta\n" + `data: {"type":"content_block_delta","index":2,"delta":{"type":"thinking_delta","thinking":"Hello "}}` + "\n\nevent: content_block_delta\n" + `data: {"type":"content_block_delta","index":2,"delta":{"type":"thinking_delta","thinking":"world"}}` + "\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"},
		{"responses before completed", llm.Responses,
			"event: response.output_text.delta\n" + `data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"m1","output_index":0,"content_index":0,"delta":"Hello world","logprobs":[]}` + "\n\nevent: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"output\":[]}}\n\n",
			"event: response.output_text.delta\n" + `data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"m1","output_index":0,"content_index":0,"delta":"Hello ","logprobs":[]}` + "\n\nevent: response.output_text.delta\n" + `data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"m1","output_index":0,"content_index":0,"delta":"world","logprobs":[]}` + "\n\nevent: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"output\":[]}}\n\n"},
		{"responses large event at Finish", llm.Responses,
			"event: response.output_text.delta\n" + `data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"m1","output_index":0,"content_index":0,"delta":"Hello world","obfuscation":"` + bigPad + `"}` + "\n\n",
			"event: response.output_text.delta\n" + `data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"m1","output_index":0,"content_index":0,"delta":"Hello ","obfuscation":"` + bigPad + `"}` + "\n\nevent: response.output_text.delta\n" + `data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"m1","output_index":0,"content_index":0,"delta":"world"}` + "\n\n"},
		{"responses logprobs are removed, and not copied into the flush", llm.Responses,
			"event: response.output_text.delta\n" + `data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"m1","output_index":0,"content_index":0,"delta":"Hello world","logprobs":[` + bigLogprobs + `]}` + "\n\n",
			"event: response.output_text.delta\n" + `data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"m1","output_index":0,"content_index":0,"delta":"Hello ","logprobs":[]}` + "\n\nevent: response.output_text.delta\n" + `data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"m1","output_index":0,"content_index":0,"delta":"world","logprobs":[]}` + "\n\n"},
		{"multi-line data", llm.Responses,
			"data: {\"type\":\"response.output_text.delta\",\n" + `data: "item_id":"m1","delta":"Hi a@b.io"}` + "\n\n",
			"data: {\"type\":\"response.output_text.delta\",\n" + `data: "item_id":"m1","delta":"Hi "}` + "\n\n" + "data: {\"type\":\"response.output_text.delta\",\n" + `data: "item_id":"m1","delta":"[EMAIL_1]"}` + "\n\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := runSSE(t, e, "redact", tc.ep, []byte(tc.in))
			require.Equal(t, tc.want, string(out))
		})
	}
}

// Events whose text cannot be read are dropped (fail closed) and reported;
// with only fail-open rules they pass as they came.
func TestSSERedactorUnreadable(t *testing.T) {
	closed := newEngine(t, ProfileConfig{Name: "p", Rules: []RuleConfig{
		{ID: "aws", Detector: "secret.aws_access_key", Action: "redact"},
		{ID: "mail", Detector: "pii.email", Action: "audit", FailOpen: true},
	}})
	open := newEngine(t, ProfileConfig{Name: "p", Rules: []RuleConfig{{ID: "aws", Detector: "secret.aws_access_key", Action: "redact", FailOpen: true}}})
	ok := "data: " + `{"choices":[{"index":0,"delta":{"content":"fine. "}}]}` + "\n\n"
	cases := []struct{ name, event, closedOut string }{
		{"malformed", `data: {"choices":[{"index":0,"delta":{"content":"` + fakeAWS + `"}}]` + "\n\n", ""},
		{"duplicate key", `data: {"choices":[{"index":0,"delta":{"content":"a","content":"` + fakeAWS + `"}}]}` + "\n\n", ""},
		{"case variant", `data: {"choices":[{"index":0,"delta":{"content":"a","Content":"` + fakeAWS + `"}}]}` + "\n\n", ""},
		{"bad index", `data: {"choices":[{"index":"0","delta":{"content":"` + fakeAWS + `"}}]}` + "\n\n", ""},
		{"not a string", `data: {"choices":[{"index":0,"delta":{"content":{"text":"` + fakeAWS + `"}}}]}` + "\n\n",
			`data: {"choices":[{"index":0,"delta":{"content":""}}]}` + "\n\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := ok + tc.event + ok
			out, r := runSSE(t, closed, "p", llm.ChatCompletions, []byte(in))
			require.Equal(t, ok+tc.closedOut+ok, string(out))
			require.Equal(t, []Finding{
				{RuleID: "aws", Detector: "secret.aws_access_key", Action: Redact, Failed: true},
				{RuleID: "mail", Detector: "pii.email", Action: Audit, Failed: true},
			}, r.Findings())

			out, r = runSSE(t, open, "p", llm.ChatCompletions, []byte(in))
			require.Contains(t, string(out), tc.event)
			require.True(t, r.Findings()[0].Failed)
		})
	}
}

// Block rules redact and say so; a dry run and an audit-only profile that
// fails open release the stream as it came, adding no latency.
func TestSSERedactorActions(t *testing.T) {
	e := newEngine(t,
		ProfileConfig{Name: "block", Rules: []RuleConfig{{ID: "aws", Detector: "secret.aws_access_key", Action: "block"}}},
		ProfileConfig{Name: "dry", DryRun: true, Rules: []RuleConfig{{ID: "aws", Detector: "secret.aws_access_key", Action: "block"}}},
		ProfileConfig{Name: "audit", Rules: []RuleConfig{{ID: "aws", Detector: "secret.aws_access_key", Action: "audit", FailOpen: true}}},
		ProfileConfig{Name: "none"},
	)
	stream := join(chatFx(tokens("key " + fakeAWS + " ok")))
	out, r := runSSE(t, e, "block", llm.ChatCompletions, stream)
	require.Equal(t, map[string]string{"0": "key [AWS_ACCESS_KEY_1] ok"}, readChat(t, parseSSE(t, out)))
	require.Equal(t, []Finding{{RuleID: "aws", Detector: "secret.aws_access_key", Action: Redact, Count: 1}}, r.Findings())

	for _, p := range []string{"dry", "audit", "none"} {
		rd, err := e.NewSSERedactor(p, llm.ChatCompletions)
		require.NoError(t, err)
		for _, c := range bytesOf(stream) {
			require.Equal(t, c, rd.Feed(c), p)
		}
		require.Empty(t, rd.Finish())
		if p == "none" {
			require.Empty(t, rd.Findings())
			continue
		}
		want := Block
		if p == "audit" {
			want = Audit
		}
		require.Equal(t, []Finding{{RuleID: "aws", Detector: "secret.aws_access_key", Action: want, Count: 1}}, rd.Findings(), p)
	}
}

// Comments pass through in order, whatever the line endings and chunking,
// and several choices keep one placeholder numbering.
func TestSSERedactorCommentsAndChoices(t *testing.T) {
	e := allEngine(t)
	ev := func(i int, s string) string {
		return `data: {"choices":[{"index":` + string(rune('0'+i)) + `,"delta":{"content":` + q(s) + `}}]}`
	}
	in := ": OPENROUTER PROCESSING\n\n" + ev(0, "a@b.io and ") + "\r\n\r\n" + ev(1, "c@d.io, a@b.io ") + "\r\r: ping\r\n" +
		ev(0, "end. ") + "\n\n" + ev(1, "end. ") + "\n\n"
	// Comments keep their place but lose their text, which is never scanned (issue 9 item 5).
	want := ":\n" + ev(0, "[EMAIL_1] and ") + "\n\n" + ev(1, "[EMAIL_2], [EMAIL_1] ") + "\n\n:\n" +
		ev(0, "end. ") + "\n\n" + ev(1, "end. ") + "\n\n"
	for _, chunks := range [][][]byte{{[]byte(in)}, bytesOf([]byte(in))} {
		out, _ := runSSE(t, e, "redact", llm.ChatCompletions, chunks...)
		require.Equal(t, want, string(out))
	}
}

// Bounds: held text past 1 MiB is flushed, texts past the open cap are
// dropped, an event past llm.MaxSSEEventSize is dropped; all fail closed.
func TestSSERedactorBounds(t *testing.T) {
	e := allEngine(t)
	t.Run("held", func(t *testing.T) {
		r, err := e.NewSSERedactor("redact", llm.ChatCompletions)
		require.NoError(t, err)
		// An unterminated JWT-like run is held back (up to the JWT bound).
		long := "eyJ" + strings.Repeat("a", 6000)
		released := 0
		for i := 0; i < 300; i++ {
			out := r.Feed([]byte(`data: {"choices":[{"index":` + strconv.Itoa(i) + `,"delta":{"content":"` + long + `"}}]}` + "\n\n"))
			released += len(out)
			require.LessOrEqual(t, r.held, maxHeldBytes)
		}
		require.GreaterOrEqual(t, released, 300*6000-maxHeldBytes, "held text was flushed before the end")
		parseSSE(t, append([]byte(nil), r.Finish()...))
	})
	t.Run("open texts", func(t *testing.T) {
		var in bytes.Buffer
		for i := 0; i <= maxOpenTexts; i++ {
			in.WriteString(`data: {"choices":[{"index":` + strconv.Itoa(i) + `,"delta":{"content":"x ` + fakeAWS + `"}}]}` + "\n\n")
		}
		out, r := runSSE(t, e, "redact", llm.ChatCompletions, in.Bytes())
		require.NotContains(t, string(out), fakeAWS)
		require.Equal(t, strings.Count(string(out), "[AWS_ACCESS_KEY_1]"), maxOpenTexts)
		require.True(t, r.Findings()[0].Failed)
	})
	t.Run("event size", func(t *testing.T) {
		big := `data: {"choices":[{"index":0,"delta":{"content":"` + strings.Repeat("a ", llm.MaxSSEEventSize/2) + `"}}]}` + "\n\n"
		out, r := runSSE(t, e, "redact", llm.ChatCompletions, []byte(big), []byte("data: [DONE]\n\n"))
		require.Equal(t, "data: [DONE]\n\n", string(out))
		require.True(t, r.Findings()[0].Failed)
	})
}

// Constructor errors, a nil redactor and calls after Finish.
func TestSSERedactorAPI(t *testing.T) {
	e := allEngine(t)
	_, err := e.NewSSERedactor("nope", llm.ChatCompletions)
	require.ErrorIs(t, err, ErrUnknownProfile)
	_, err = e.NewSSERedactor("redact", llm.Embeddings)
	require.ErrorIs(t, err, ErrUnsupportedEndpoint)

	var nilR *SSERedactor
	require.Nil(t, nilR.Feed([]byte("data: x\n\n")))
	require.Nil(t, nilR.Finish())
	require.Nil(t, nilR.Findings())

	r, err := e.NewSSERedactor("redact", llm.Messages)
	require.NoError(t, err)
	require.Nil(t, r.Feed(nil))
	require.Empty(t, r.Finish())
	require.Nil(t, r.Feed([]byte("event: ping\ndata: {}\n\n")))
	require.Nil(t, r.Finish())
}

// Responses events keep unique, strictly increasing sequence numbers when
// held text is released in synthesized events: the stream cut in two
// chunks at every byte, and cut short (no response.completed) at every
// event.
func TestSSERedactorSequenceNumbers(t *testing.T) {
	e := allEngine(t)
	evs := responsesFx(tokens(sseText))
	stream := join(evs)
	out, _ := runSSE(t, e, "redact", llm.Responses, stream)
	got := parseSSE(t, out)
	require.Greater(t, len(got), len(evs), "the fixture makes the redactor synthesize events")
	requireSequence(t, got)
	// Every byte from the last two deltas to the end of the done event
	// (where held text is released and the events after it renumbered),
	// every event boundary elsewhere.
	starts, ends := textEvents(evs)
	from, to := starts[len(starts)-2], ends[len(ends)-1]+len(evs[len(starts)+4].raw)
	require.Contains(t, string(stream[to-len(evs[len(starts)+4].raw):to]), "response.output_text.done")
	var cuts []int
	off := 0
	for _, ev := range evs {
		off += len(ev.raw)
		if off < from || off > to {
			cuts = append(cuts, off)
		}
	}
	for cut := from; cut <= to; cut++ {
		cuts = append(cuts, cut)
	}
	for _, cut := range cuts {
		out, _ := runSSE(t, e, "redact", llm.Responses, stream[:cut], stream[cut:])
		got := parseSSE(t, out)
		requireSequence(t, got)
		require.Equal(t, map[string]string{"0": sseWant}, checkRedacted(t, sseDialects[2], out))
	}
	off = 0
	for _, ev := range evs {
		off += len(ev.raw)
		out, _ := runSSE(t, e, "redact", llm.Responses, stream[:off])
		requireSequence(t, parseSSE(t, out))
	}
	// A provider that repeats or reorders numbers gets increasing ones too.
	same := seqRE.ReplaceAll(stream, []byte(`"sequence_number":3`))
	out, _ = runSSE(t, e, "redact", llm.Responses, same)
	requireSequence(t, parseSSE(t, out))
}

// TestSSERedactorUnscannedFieldsNeverCarryText: comment, id and event-name text is not
// scanned, so none of it is released as sent: comments lose their text, ids are not kept,
// and an event whose name is not a plain token is a scan failure (issue 9 item 5).
func TestSSERedactorUnscannedFieldsNeverCarryText(t *testing.T) {
	e := allEngine(t)
	secret := "jane.doe@example.com"
	in := ": note " + secret + "\n" +
		"id: " + secret + "\n" + `data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}` + "\n\n" +
		"event: " + secret + "\n" + `data: {"choices":[{"index":0,"delta":{"content":"there"}}]}` + "\n\n" +
		"data: [DONE]\n\n"
	for _, chunks := range [][][]byte{{[]byte(in)}, bytesOf([]byte(in))} {
		out, r := runSSE(t, e, "redact", llm.ChatCompletions, chunks...)
		findings := r.Findings()
		require.NotContains(t, string(out), "jane.doe")
		require.Contains(t, string(out), `"content":"hi"`)
		require.NotContains(t, string(out), `"content":"there"`, "the event with a strange name is dropped, failing closed")
		require.NotEmpty(t, findings)
		require.True(t, findings[0].Failed)
	}
}
