package extproc_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tollgate-ai/tollgate/extproc"
	"github.com/tollgate-ai/tollgate/policy/audit"
	"github.com/tollgate-ai/tollgate/policy/policytest"
)

var (
	awsKey = "AKIA" + "IOSFODNN7" + "EXAMPLE"
	email  = "jane.doe" + "@example.com"
)

// released is what a chunk reply lets through: the original chunk when there is no
// mutation, the replacement otherwise.
func released(resp *extprocv3.ProcessingResponse, chunk string) string {
	bm := resp.GetResponseBody().GetResponse().GetBodyMutation()
	switch {
	case bm == nil:
		return chunk
	case bm.GetClearBody():
		return ""
	default:
		return string(bm.GetBody())
	}
}

func TestGuardedRequest(t *testing.T) {
	h := serve(t, policytest.NewWith(t, policytest.Guarded))
	t.Run("block", func(t *testing.T) {
		s, _ := h.open(t)
		roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
		ir := roundTrip(t, s, reqBody(`{"model":"fast","messages":[{"role":"user","content":"use `+awsKey+`"}]}`)).GetImmediateResponse()
		require.EqualValues(t, 403, ir.GetStatus().GetCode())
		require.Contains(t, string(ir.GetBody()), "aws-key")
		require.NotContains(t, string(ir.GetBody()), awsKey)
	})
	t.Run("logprobs would leak redacted text", func(t *testing.T) {
		s, _ := h.open(t)
		roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
		ir := roundTrip(t, s, reqBody(`{"model":"fast","logprobs":true,"messages":[]}`)).GetImmediateResponse()
		require.EqualValues(t, 400, ir.GetStatus().GetCode())
		require.Contains(t, string(ir.GetBody()), "logprobs")
	})
	// Responses asks for logprobs through include and top_logprobs (issue 8 item 3).
	for field, body := range map[string]string{
		"include":      `{"model":"fast","include":["message.output_text.logprobs"],"input":"hi"}`,
		"top_logprobs": `{"model":"fast","top_logprobs":5,"input":"hi"}`,
	} {
		t.Run("responses "+field+" would leak redacted text", func(t *testing.T) {
			s, _ := h.open(t)
			roundTrip(t, s, reqHeaders(false, ":path", "/v1/responses", ":method", "POST",
				"authorization", "Bearer "+h.fx.Keys["valid"], "content-type", "application/json"))
			ir := roundTrip(t, s, reqBody(body)).GetImmediateResponse()
			require.EqualValues(t, 400, ir.GetStatus().GetCode())
			require.Contains(t, string(ir.GetBody()), `"param":"`+field+`"`)
		})
	}
	t.Run("redact", func(t *testing.T) {
		s, _ := h.open(t)
		roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
		cr := roundTrip(t, s, reqBody(`{"model":"fast","messages":[{"role":"user","content":"mail `+email+`"}]}`)).GetRequestBody().GetResponse()
		body := string(cr.GetBodyMutation().GetBody())
		require.Equal(t, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"mail [EMAIL_1]"}]}`, body)
		require.Equal(t, strconv.Itoa(len(body)), setHeaders(cr.GetHeaderMutation())["content-length"])
	})
}

func TestGuardedJSONResponseIsHeldAndRedacted(t *testing.T) {
	h := serve(t, policytest.NewWith(t, policytest.Guarded))
	s, _ := h.open(t)
	roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
	roundTrip(t, s, reqBody(`{"model":"fast","messages":[]}`))
	roundTrip(t, s, respHeaders("200", "content-type", "application/json"))
	body := `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"key ` + awsKey + ` mail ` + email + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}`
	mid := strings.Index(body, "IOSF")
	first := roundTrip(t, s, respBody(body[:mid], false))
	require.Equal(t, "", released(first, body[:mid]), "nothing leaves before the whole body is scanned")
	last := roundTrip(t, s, respBody(body[mid:], true))
	out := released(last, body[mid:])
	require.NotContains(t, out, awsKey)
	require.NotContains(t, out, email)
	require.Contains(t, out, "[AWS_ACCESS_KEY_1]")
	require.Contains(t, out, `"usage":{"prompt_tokens":3`)
}

func TestGuardedSSEResponseSplitSecret(t *testing.T) {
	h := serve(t, policytest.NewWith(t, policytest.Guarded))
	s, _ := h.open(t)
	roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
	roundTrip(t, s, reqBody(`{"model":"fast","stream":true,"messages":[]}`))
	roundTrip(t, s, respHeaders("200", "content-type", "text/event-stream"))
	ev := func(text string) string {
		return `data: {"choices":[{"index":0,"delta":{"content":"` + text + `"},"finish_reason":null}]}` + "\n\n"
	}
	stream := ev("key "+awsKey[:9]) + ev(awsKey[9:]+" done") +
		`data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n" + "data: [DONE]\n\n"
	var out strings.Builder
	for i := 0; i < len(stream); i += 13 { // chunk boundaries cut events and the key
		end := min(i+13, len(stream))
		out.WriteString(released(roundTrip(t, s, respBody(stream[i:end], end == len(stream))), stream[i:end]))
	}
	got := out.String()
	require.NotContains(t, got, awsKey[4:9])
	require.NotContains(t, got, awsKey[9:])
	require.Contains(t, got, "[AWS_ACCESS_KEY_1]")
	require.True(t, strings.HasSuffix(got, "data: [DONE]\n\n"), got)
}

// TestGuardEvidenceLogAndAuditAgree: the request log line and the audit event record the
// same evidence, and it says what happened: a block rule's match in a JSON response was
// redacted, so it is redact_response, not block_response (issue 15 item 7).
func TestGuardEvidenceLogAndAuditAgree(t *testing.T) {
	fx := policytest.NewWith(t, policytest.Guarded)
	core, logs := observer.New(zapcore.InfoLevel)
	fa := &fakeAuditor{healthy: true}
	srv := extproc.New(fixedSource{fx.Snapshot}, zap.New(core), extproc.WithClock(func() time.Time { return fx.Now }),
		extproc.WithAudit(extproc.AuditConfig{Auditor: fa}))
	h := serveServer(t, fx, srv)
	s, _ := h.open(t)
	roundTrip(t, s, chatHeaders(fx.Keys["valid"]))
	roundTrip(t, s, reqBody(`{"model":"fast","messages":[{"role":"user","content":"mail `+email+`"}]}`))
	roundTrip(t, s, respHeaders("200", "content-type", "application/json"))
	body := `{"choices":[{"index":0,"message":{"role":"assistant","content":"key ` + awsKey + `"}}],"usage":{"prompt_tokens":3,"completion_tokens":5}}`
	require.NotContains(t, released(roundTrip(t, s, respBody(body, true)), body), awsKey)
	require.NoError(t, s.CloseSend())
	_, _ = s.Recv()
	h.waitIdle(t)

	want := []audit.GuardrailFinding{{Rule: "email", Action: "redact", Count: 1}, {Rule: "aws-key", Action: "redact_response", Count: 1}}
	require.Equal(t, want, fa.last(t).Guardrails)
	line := logs.FilterMessage("request").All()[0].ContextMap()
	require.Equal(t, "redact", line["guard_decision"])
	var logged []audit.GuardrailFinding
	for _, f := range line["guard_findings"].([]any) {
		m := f.(map[string]any)
		logged = append(logged, audit.GuardrailFinding{Rule: m["rule"].(string), Action: m["action"].(string), Count: m["count"].(int)})
	}
	require.Equal(t, want, logged, "the log line and the audit event agree")
}

// TestGuardedCleanJSONResponseLosesLogprobs: a guarded response carries no log probabilities
// even when nothing in it was redacted: they would repeat text token by token outside what
// redaction rewrites (issue 8 item 3, defense in depth for providers that send them unasked).
func TestGuardedCleanJSONResponseLosesLogprobs(t *testing.T) {
	h := serve(t, policytest.NewWith(t, policytest.Guarded))
	s, _ := h.open(t)
	roundTrip(t, s, chatHeaders(h.fx.Keys["valid"]))
	roundTrip(t, s, reqBody(`{"model":"fast","messages":[]}`))
	roundTrip(t, s, respHeaders("200", "content-type", "application/json"))
	body := `{"choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"logprobs":{"content":[{"token":"hello","logprob":-0.1}]}}]}`
	out := released(roundTrip(t, s, respBody(body, true)), body)
	require.Contains(t, out, `"logprobs":null`)
	require.NotContains(t, out, `"token"`)
}

// TestResponseBodyModeNoneRefusesGuardedAndTranslated: an Envoy filter that never sends
// response bodies (response_body_mode NONE) would let responses reach clients unguarded or
// untranslated. Such requests are refused before anything is forwarded; a request with
// neither goes on (and settles at its reservation, since no usage can be read).
func TestResponseBodyModeNoneRefusesGuardedAndTranslated(t *testing.T) {
	none := func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingRequest {
		req.ProtocolConfig.ResponseBodyMode = filterv3.ProcessingMode_NONE
		return req
	}
	t.Run("guarded", func(t *testing.T) {
		h := serve(t, policytest.NewWith(t, policytest.Guarded))
		s, _ := h.open(t)
		roundTrip(t, s, none(chatHeaders(h.fx.Keys["valid"])))
		ir := roundTrip(t, s, reqBody(`{"model":"fast","messages":[]}`)).GetImmediateResponse()
		require.NotNil(t, ir, "not forwarded")
		require.EqualValues(t, 503, ir.GetStatus().GetCode())
		require.Contains(t, string(ir.GetBody()), "guardrail_unreadable")
	})
	h := serve(t, policytest.New(t))
	t.Run("translated", func(t *testing.T) {
		s, _ := h.open(t)
		roundTrip(t, s, none(chatHeaders(h.fx.Keys["valid"])))
		ir := roundTrip(t, s, reqBody(`{"model":"claude-haiku","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)).GetImmediateResponse()
		require.NotNil(t, ir, "not forwarded")
		require.EqualValues(t, 503, ir.GetStatus().GetCode())
	})
	t.Run("neither", func(t *testing.T) {
		s, _ := h.open(t)
		roundTrip(t, s, none(chatHeaders(h.fx.Keys["valid"])))
		cr := roundTrip(t, s, reqBody(`{"model":"fast","messages":[]}`)).GetRequestBody()
		require.NotNil(t, cr, "forwarded")
	})
}
