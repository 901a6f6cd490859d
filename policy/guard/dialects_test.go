package guard

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// fieldCase puts text in one row of a dialect table, in each form it
// travels: a JSON response, a stream (given the text cut in deltas) and,
// when clients send it back (conversation history), a request.
type fieldCase struct {
	json    func(text string) string
	stream  func(deltas []string) string
	request func(text string) string // nil: not a request member
}

// chatStream is a chat completions stream whose i-th text chunk has the
// delta delta(deltas[i]).
func chatStream(delta func(string) string, deltas []string) string {
	ev := func(choice string) string {
		return "data: " + fmt.Sprintf(chatEnv, choice) + "\n\n"
	}
	s := ev(`{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}`)
	for _, d := range deltas {
		s += ev(`{"index":0,"delta":` + delta(d) + `,"logprobs":null,"finish_reason":null}`)
	}
	return s + ev(`{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}`) + "data: [DONE]\n\n"
}

func chatJSON(message string) string {
	return `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant",` + message + `},"logprobs":null,"finish_reason":"stop"}]}`
}

func chatRequestWith(message string) string {
	return `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant",` + message + `},{"role":"user","content":"go on"}]}`
}

// chatMember is the case of a chat message member that is a plain string
// (beside a content, unless it is the content).
func chatMember(name string) fieldCase {
	other := `"content":null,`
	if name == "content" {
		other = ""
	}
	return fieldCase{
		json: func(s string) string { return chatJSON(other + `"` + name + `":` + q(s)) },
		stream: func(ds []string) string {
			return chatStream(func(d string) string { return `{"` + name + `":` + q(d) + `}` }, ds)
		},
		request: func(s string) string { return chatRequestWith(other + `"` + name + `":` + q(s)) },
	}
}

var chatCases = map[string]fieldCase{
	"content":           chatMember("content"),
	"refusal":           chatMember("refusal"),
	"reasoning_content": chatMember("reasoning_content"),
	"reasoning":         chatMember("reasoning"),
	"function_call.arguments": {
		json: func(s string) string {
			return chatJSON(`"content":null,"function_call":{"name":"send","arguments":` + q(s) + `}`)
		},
		stream: func(ds []string) string {
			return chatStream(func(d string) string { return `{"function_call":{"arguments":` + q(d) + `}}` }, ds)
		},
		request: func(s string) string {
			return chatRequestWith(`"content":null,"function_call":{"name":"send","arguments":` + q(s) + `}`)
		},
	},
	"tool_calls[].function.arguments": {
		json: func(s string) string {
			return chatJSON(`"content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"send","arguments":` + q(s) + `}}]`)
		},
		stream: func(ds []string) string {
			return chatStream(func(d string) string { return `{"tool_calls":[{"index":0,"function":{"arguments":` + q(d) + `}}]}` }, ds)
		},
		request: func(s string) string {
			return chatRequestWith(`"content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"send","arguments":` + q(s) + `}}]`)
		},
	},
}

var completionsCases = map[string]fieldCase{
	"text": {
		json: func(s string) string {
			return `{"id":"cmpl-1","object":"text_completion","choices":[{"text":` + q(s) + `,"index":0,"logprobs":null,"finish_reason":"stop"}]}`
		},
		stream:  func(ds []string) string { return string(join(completionsFx(ds))) },
		request: func(s string) string { return `{"model":"m","prompt":` + q(s) + `}` },
	},
}

// respStream is a Responses stream of one output item: item(text) is the
// item holding text (its field empty when added), streamed by the deltas
// of event and repeated by its done event's member done.
func respStream(item func(string) string, event, done string, deltas []string) string {
	full := strings.Join(deltas, "")
	seq := 0
	var b strings.Builder
	ev := func(typ, body string) {
		fmt.Fprintf(&b, "event: %s\ndata: {\"type\":%q,\"sequence_number\":%d,%s}\n\n", typ, typ, seq, body)
		seq++
	}
	ids := `"item_id":"it_1","output_index":0,"content_index":0,"summary_index":0`
	ev("response.created", `"response":`+fmt.Sprintf(respObj, "in_progress", "", "null"))
	ev("response.output_item.added", `"output_index":0,"item":`+item(""))
	for _, d := range deltas {
		ev(event+".delta", ids+`,"delta":`+q(d)+`,"logprobs":[]`)
	}
	ev(event+".done", ids+`,"`+done+`":`+q(full))
	ev("response.output_item.done", `"output_index":0,"item":`+item(full))
	ev("response.completed", `"response":`+fmt.Sprintf(respObj, "completed", item(full), `{"input_tokens":1,"output_tokens":1,"total_tokens":2}`))
	return b.String()
}

// respCase is the case of a Responses item whose text is item(text); the
// same item goes back as a request input item.
func respCase(event, done string, item func(string) string) fieldCase {
	return fieldCase{
		json: func(s string) string {
			return fmt.Sprintf(respObj, "completed", item(s), `{"input_tokens":1,"output_tokens":1,"total_tokens":2}`)
		},
		stream:  func(ds []string) string { return respStream(item, event, done, ds) },
		request: func(s string) string { return `{"model":"m","input":[{"role":"user","content":"hi"},` + item(s) + `]}` },
	}
}

var respCases = map[string]fieldCase{
	"response.output_text": respCase("response.output_text", "text", func(s string) string {
		return `{"id":"it_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":` + q(s) + `}]}`
	}),
	"response.refusal": respCase("response.refusal", "refusal", func(s string) string {
		return `{"id":"it_1","type":"message","status":"completed","role":"assistant","content":[{"type":"refusal","refusal":` + q(s) + `}]}`
	}),
	"response.function_call_arguments": respCase("response.function_call_arguments", "arguments", func(s string) string {
		return `{"id":"it_1","type":"function_call","status":"completed","call_id":"call_1","name":"send","arguments":` + q(s) + `}`
	}),
	"response.reasoning_summary_text": respCase("response.reasoning_summary_text", "text", func(s string) string {
		return `{"id":"it_1","type":"reasoning","summary":[{"type":"summary_text","text":` + q(s) + `}]}`
	}),
	"response.reasoning_text": respCase("response.reasoning_text", "text", func(s string) string {
		return `{"id":"it_1","type":"reasoning","summary":[],"content":[{"type":"reasoning_text","text":` + q(s) + `}]}`
	}),
	"response.custom_tool_call_input": respCase("response.custom_tool_call_input", "input", func(s string) string {
		return `{"id":"it_1","type":"custom_tool_call","status":"completed","call_id":"call_1","name":"run","input":` + q(s) + `}`
	}),
	"response.mcp_call_arguments": respCase("response.mcp_call_arguments", "arguments", func(s string) string {
		return `{"id":"it_1","type":"mcp_call","server_label":"docs","name":"search","arguments":` + q(s) + `,"output":null}`
	}),
	"response.code_interpreter_call_code": respCase("response.code_interpreter_call_code", "code", func(s string) string {
		return `{"id":"it_1","type":"code_interpreter_call","status":"completed","container_id":"cntr_1","code":` + q(s) + `,"outputs":null}`
	}),
}

// msgStream is a Messages stream of one content block: start is its
// content_block_start block, and each delta its delta object.
func msgStream(start string, delta func(string) string, deltas []string) string {
	evs := []fxEvent{
		namedEv("message_start", `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"usage":{"input_tokens":1,"output_tokens":1}}}`, false),
		namedEv("content_block_start", `{"type":"content_block_start","index":0,"content_block":`+start+`}`, false),
	}
	for _, d := range deltas {
		evs = append(evs, namedEv("content_block_delta", `{"type":"content_block_delta","index":0,"delta":`+delta(d)+`}`, true))
	}
	evs = append(evs,
		namedEv("content_block_stop", `{"type":"content_block_stop","index":0}`, false),
		namedEv("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}`, false),
		namedEv("message_stop", `{"type":"message_stop"}`, false))
	return string(join(evs))
}

// msgCase is the case of a content block block(text), streamed from the
// block start with the deltas delta.
func msgCase(block func(string) string, delta func(string) string) fieldCase {
	return fieldCase{
		json: func(s string) string {
			return `{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[` + block(s) + `],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}`
		},
		stream: func(ds []string) string { return msgStream(block(""), delta, ds) },
		request: func(s string) string {
			return `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[` + block(s) + `]},{"role":"user","content":"go on"}]}`
		},
	}
}

var blockCases = map[string]fieldCase{
	"content": {
		json: func(s string) string {
			return `{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"mcp_tool_result","tool_use_id":"mcptoolu_1","is_error":false,"content":[{"type":"text","text":` + q(s) + `}]}]}`
		},
		stream: func(ds []string) string {
			block := `{"type":"mcp_tool_result","tool_use_id":"mcptoolu_1","is_error":false,"content":[{"type":"text","text":` + q(strings.Join(ds, "")) + `}]}`
			return msgStream(block, nil, nil)
		},
		request: func(s string) string {
			return `{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":` + q(s) + `}]}]}`
		},
	},
	"text": msgCase(func(s string) string { return `{"type":"text","text":` + q(s) + `}` },
		func(d string) string { return `{"type":"text_delta","text":` + q(d) + `}` }),
	"thinking": msgCase(func(s string) string { return `{"type":"thinking","thinking":` + q(s) + `,"signature":"RXVjbGlk"}` },
		func(d string) string { return `{"type":"thinking_delta","thinking":` + q(d) + `}` }),
	"input": {
		json: func(s string) string {
			return `{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"send","input":{"note":` + q(s) + `}}]}`
		},
		stream: func(ds []string) string {
			args := tokens(`{"note":` + q(strings.Join(ds, "")) + `}`)
			return msgStream(`{"type":"tool_use","id":"toolu_1","name":"send","input":{}}`,
				func(d string) string { return `{"type":"input_json_delta","partial_json":` + q(d) + `}` }, args)
		},
		request: func(s string) string {
			return `{"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"send","input":{"note":` + q(s) + `}}]}]}`
		},
	},
	"citations[]": {
		json: func(s string) string {
			return `{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"As the notes say.","citations":[{"type":"char_location","cited_text":` + q(s) + `,"document_index":0,"document_title":"Notes","start_char_index":0,"end_char_index":9}]}]}`
		},
		stream: func(ds []string) string {
			citation := `{"type":"char_location","cited_text":` + q(strings.Join(ds, "")) + `,"document_index":0,"document_title":"Notes","start_char_index":0,"end_char_index":9}`
			return msgStream(`{"type":"text","text":""}`, func(d string) string {
				if d == "" {
					return `{"type":"citations_delta","citation":` + citation + `}`
				}
				return `{"type":"text_delta","text":` + q(d) + `}`
			}, []string{"", "As the notes say."})
		},
		request: func(s string) string {
			return `{"model":"m","messages":[{"role":"assistant","content":[{"type":"text","text":"As the notes say.","citations":[{"type":"char_location","cited_text":` + q(s) + `,"document_index":0,"start_char_index":0,"end_char_index":9}]}]}]}`
		},
	},
}

// tableRow is one row of a dialect table with its case.
type tableRow struct {
	dialect, key string
	ep           llm.Endpoint
	c            fieldCase
}

// tableRows pairs every row of the dialect tables with its case, failing
// the test for a row without a case or a case without a row.
func tableRows(t *testing.T) []tableRow {
	var rows []tableRow
	pair := func(dialect string, ep llm.Endpoint, keys []string, cases map[string]fieldCase) {
		seen := map[string]bool{}
		for _, k := range keys {
			c, ok := cases[k]
			require.True(t, ok, "%s table row %q has no test case: add one", dialect, k)
			if !seen[k] {
				rows = append(rows, tableRow{dialect, k, ep, c})
			}
			seen[k] = true
		}
		for k := range cases {
			require.True(t, seen[k], "%s test case %q has no table row", dialect, k)
		}
	}
	var chat, cmpl, resp, block []string
	for _, c := range chatFields {
		chat = append(chat, c.path)
	}
	for _, c := range completionsFields {
		cmpl = append(cmpl, c.path)
	}
	for _, r := range respFields {
		resp = append(resp, r.event)
	}
	for _, b := range blockFields {
		block = append(block, b.path)
	}
	pair("chat", llm.ChatCompletions, chat, chatCases)
	pair("completions", llm.Completions, cmpl, completionsCases)
	pair("responses", llm.Responses, resp, respCases)
	pair("messages", llm.Messages, block, blockCases)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].dialect < rows[j].dialect })
	return rows
}

// Every text member of every dialect table is redacted in a JSON response,
// in a stream (whole and byte by byte, the secret cut across events) and in
// a request that sends it back. The test enumerates the tables, so a row
// added without a case fails it.
func TestDialectTables(t *testing.T) {
	e := allEngine(t)
	text := "Write to " + sseEmail + " and use key " + fakeAWS + " now."
	pieces := []string{"jane", "example.com", fakeAWS[4:9], fakeAWS[9:14], fakeAWS[14:]}
	noSecret := func(t *testing.T, out []byte, form string) {
		t.Helper()
		for _, p := range pieces {
			require.NotContains(t, string(out), p, "%s: a piece of a secret remains", form)
		}
		require.Contains(t, string(out), "[EMAIL_1]", form)
		require.Contains(t, string(out), "[AWS_ACCESS_KEY_1]", form)
	}
	for _, row := range tableRows(t) {
		t.Run(row.dialect+" "+row.key, func(t *testing.T) {
			body := row.c.json(text)
			require.True(t, json.Valid([]byte(body)), body)
			require.Contains(t, body, fakeAWS)
			r, err := e.ScanResponseJSON("redact", row.ep, []byte(body))
			require.NoError(t, err)
			require.Nil(t, r.ScanErr)
			require.Equal(t, DecisionRedact, r.Decision)
			require.True(t, json.Valid(r.NewBody))
			noSecret(t, r.NewBody, "json")

			stream := []byte(row.c.stream(tokens(text)))
			require.Contains(t, string(stream), fakeAWS[4:9])
			for _, chunks := range [][][]byte{{stream}, bytesOf(stream)} {
				out, rd := runSSE(t, e, "redact", row.ep, chunks...)
				parseSSE(t, out)
				noSecret(t, out, "stream")
				for _, f := range rd.Findings() {
					require.False(t, f.Failed, "stream: %+v", f)
				}
			}

			if row.c.request == nil {
				return
			}
			req := row.c.request(text)
			require.True(t, json.Valid([]byte(req)), req)
			r, err = e.ScanRequest("redact", row.ep, []byte(req))
			require.NoError(t, err)
			require.Equal(t, DecisionRedact, r.Decision)
			noSecret(t, r.NewBody, "request")
		})
	}
}
