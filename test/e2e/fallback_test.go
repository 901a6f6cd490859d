package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/test/testutil"
)

// fallbackVirtualKey is the client's key; no attempt may carry it.
const fallbackVirtualKey = "tgk_fallbackvirtualkey_0123456789"

// fallbackSecret is in the client's prompt; the downstream filter redacts it, so no provider
// may see it on any attempt.
const fallbackSecret = "AKIAFALLBACKSECRET42"

// The prototype's two targets: A speaks OpenAI (Bearer), B speaks Anthropic (x-api-key,
// /v1/messages), each with its own upstream model.
var (
	targetA = fallbackTarget{Cluster: "provider_a", CredHeader: "authorization", Credential: "Bearer sk-provider-a-0001", Model: "model-a"}
	targetB = fallbackTarget{Cluster: "provider_b", CredHeader: "x-api-key", Credential: "sk-provider-b-0002", Model: "model-b", Path: "/v1/messages"}
)

// fallbackStack is a real Envoy on testdata/fallback-envoy.yaml, the test's processor and two
// HTTPS providers.
type fallbackStack struct {
	envoy *testutil.Process
	proc  *fallbackProcessor
	a, b  *fakeProvider
	base  string
}

func startFallbackStack(t *testing.T) *fallbackStack {
	t.Helper()
	bin := testutil.EnvoyBinary(t)
	s := &fallbackStack{
		a: startFakeProvider(t, "provider-a", "api-a.test"),
		b: startFakeProvider(t, "provider-b", "api-b.test"),
	}
	var xp int
	s.proc, xp = startFallbackProcessor(t)
	listener, admin := testutil.FreePort(t), testutil.FreePort(t)
	cfg := testutil.RenderBootstrap(t, filepath.Join(testutil.RepoRoot(t), "test", "e2e", "testdata", "fallback-envoy.yaml"),
		testutil.SocketRewrite("127.0.0.1", 10000, listener),
		testutil.SocketRewrite("127.0.0.1", 10001, admin),
		testutil.SocketRewrite("127.0.0.1", 10002, xp),
		testutil.SocketRewrite("127.0.0.1", 10003, s.a.port),
		testutil.SocketRewrite("127.0.0.1", 10004, s.b.port),
		testutil.Rewrite{Old: "/fallback-tls/provider-a-ca.crt", New: s.a.caFile},
		testutil.Rewrite{Old: "/fallback-tls/provider-b-ca.crt", New: s.b.caFile},
	)
	s.envoy = testutil.StartEnvoy(t, bin, cfg)
	s.base = "http://127.0.0.1:" + strconv.Itoa(listener)
	return s
}

type fallbackResult struct {
	status  int
	body    []byte
	readErr error // reading the body failed (the response was cut)
}

// chat sends one chat completion with the virtual key and the secret in the prompt. Each
// afterHeaders function runs once the client has the response headers, before it reads the
// body.
func (s *fallbackStack) chat(t *testing.T, afterHeaders ...func()) fallbackResult {
	t.Helper()
	body := `{"model":"smart","messages":[{"role":"user","content":"deploy with ` + fallbackSecret + `"}]}`
	req, err := http.NewRequest("POST", s.base+"/v1/chat/completions", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("authorization", "Bearer "+fallbackVirtualKey)
	req.Header.Set("content-type", "application/json")
	// A client-supplied routing header must not choose anything.
	req.Header.Set("x-tollgate-upstream", "fallback-2")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	for _, f := range afterHeaders {
		f()
	}
	b, readErr := io.ReadAll(resp.Body)
	return fallbackResult{status: resp.StatusCode, body: b, readErr: readErr}
}

// requireClean checks one request a provider received: its own host and TLS name, its
// credential only, its model and path, the redacted prompt, nothing internal.
func requireClean(t *testing.T, r providerRequest, host string, tg fallbackTarget, foreign string) {
	t.Helper()
	require.Equal(t, host, r.SNI, "TLS server name")
	require.Equal(t, host, r.Host, "Host header")
	wantPath := tg.Path
	if wantPath == "" {
		wantPath = "/v1/chat/completions"
	}
	require.Equal(t, wantPath, r.Path)
	require.Equal(t, tg.Credential, r.Header.Get(tg.CredHeader), "the target's own credential")
	for _, h := range credentialHeaders {
		if h != tg.CredHeader {
			require.Empty(t, r.Header.Get(h), "credential header %s of another dialect", h)
		}
	}
	for name, vals := range r.Header {
		require.False(t, strings.HasPrefix(strings.ToLower(name), "x-tollgate-"), "internal header %s reached the provider", name)
		require.False(t, strings.HasPrefix(strings.ToLower(name), "x-envoy-"), "envoy header %s reached the provider", name)
		for _, v := range vals {
			require.NotContains(t, v, fallbackVirtualKey, "virtual key in %s", name)
			require.NotContains(t, v, foreign, "another provider's credential in %s", name)
		}
	}
	require.NotContains(t, string(r.Body), fallbackVirtualKey)
	require.NotContains(t, string(r.Body), fallbackSecret, "every attempt gets the redacted body")
	var sent struct {
		Model    string `json:"model"`
		Messages []struct {
			Content string `json:"content"`
		} `json:"messages"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &sent))
	require.Equal(t, tg.Model, sent.Model)
	require.Equal(t, "deploy with [REDACTED]", sent.Messages[0].Content)
	require.Equal(t, strconv.Itoa(len(r.Body)), r.Header.Get("content-length"), "content-length of this attempt's body")
}

// attemptEntry returns tollgate.attempts[n] as the downstream filter saw it.
func attemptEntry(t *testing.T, attempts map[string]any, n int) map[string]any {
	t.Helper()
	e, ok := attempts[strconv.Itoa(n)].(map[string]any)
	require.True(t, ok, "attempt %d in tollgate.attempts: %v", n, attempts)
	return e
}

// TestFallbackMechanism proves the fallback mechanism of envoy/fallback-design.md in a real
// Envoy 1.40: a priority_group route with refresh_cluster_on_retry sends each attempt to the
// provider cluster the downstream filter's plan names, and an ext_proc upstream filter on each
// provider cluster rewrites the credential, path, model and response of its own attempt and
// reports it to the downstream filter in dynamic metadata.
func TestFallbackMechanism(t *testing.T) {
	s := startFallbackStack(t)
	both := fallbackScenario{targets: []fallbackTarget{targetA, targetB}}

	for _, tc := range []struct {
		name        string
		a           providerMode
		wantAStatus string // tollgate.attempts["1"].status; "" for a reset (no answer)
	}{
		{"A answers 429, B succeeds", answer429, "429"},
		{"A answers 503, B succeeds", answer503, "503"},
		{"A resets the connection mid-request, B succeeds", answerReset, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.proc.use(both)
			s.a.answer(tc.a)
			s.b.answer(answerOK)
			res := s.chat(t)

			// The client sees one success: B's answer, as B's upstream filter rewrote it.
			require.Equal(t, http.StatusOK, res.status, "body: %s", res.body)
			require.NoError(t, res.readErr)
			bSent := s.b.responses()
			require.Len(t, bSent, 1)
			require.Equal(t, string(bytes.ToUpper(bSent[0])), string(res.body))

			// Each provider got exactly one attempt, addressed and signed for it alone.
			aReqs, bReqs := s.a.requests(), s.b.requests()
			require.Len(t, aReqs, 1)
			require.Len(t, bReqs, 1)
			requireClean(t, aReqs[0], "api-a.test", targetA, targetB.Credential)
			requireClean(t, bReqs[0], "api-b.test", targetB, strings.TrimPrefix(targetA.Credential, "Bearer "))

			// The upstream filter opened one stream per attempt, knew its number and cluster.
			down, attempts := s.proc.seen()
			require.Len(t, attempts, 2)
			require.Equal(t, 1, attempts[0].Attempt)
			require.Equal(t, "provider_a", attempts[0].Cluster)
			require.Equal(t, 2, attempts[1].Attempt)
			require.Equal(t, "provider_b", attempts[1].Cluster)
			// Envoy hands attempt 2 the header map attempt 1 mutated: A's credential is in it.
			// This is why every attempt removes every credential header first.
			require.Equal(t, targetA.Credential, attempts[1].InHeaders["authorization"])
			// The body, however, is replayed as the downstream filter left it (redacted, the
			// client's model), not as attempt 1 rewrote it.
			require.Contains(t, string(attempts[1].InBody), `"model":"smart"`)
			require.Contains(t, string(attempts[1].InBody), "[REDACTED]")
			require.Equal(t, tc.wantAStatus, attempts[0].Status)
			require.True(t, attempts[1].RespEnded)

			// The downstream filter saw the request once and only the final response, from B,
			// with every attempt named in tollgate.attempts.
			require.Equal(t, 1, down.Requests)
			require.Equal(t, 1, down.ResponseHeaders)
			require.Equal(t, "200", down.Status)
			require.Equal(t, "provider_b", down.Cluster)
			require.Len(t, down.Attempts, 2)
			a1, a2 := attemptEntry(t, down.Attempts, 1), attemptEntry(t, down.Attempts, 2)
			require.Equal(t, "provider_a", a1["cluster"])
			if tc.wantAStatus == "" {
				require.Equal(t, "sent", a1["state"], "a reset attempt never got an answer")
				require.NotContains(t, a1, "status")
			} else {
				// Whether the failed answer's body still reached the filter before the router
				// dropped the attempt varies from run to run; its status is what counts.
				require.Contains(t, []any{"answered", "complete"}, a1["state"])
				require.Equal(t, tc.wantAStatus, a1["status"])
				require.NotContains(t, a1, "input_tokens", "an error answer reports no usage")
			}
			require.Equal(t, map[string]any{"cluster": "provider_b", "state": "complete", "status": "200", "input_tokens": 11.0, "output_tokens": 7.0}, a2)

			// Settlement: spend is the sum of the usage the attempts reported, which is B's
			// own usage (the failed attempt reported none).
			var in, out float64
			for _, e := range down.Attempts {
				m := e.(map[string]any)
				in += num(m["input_tokens"])
				out += num(m["output_tokens"])
			}
			require.Equal(t, []float64{11, 7}, []float64{in, out})
		})
	}

	t.Run("both targets fail: the client gets the last provider's error, two attempts at most", func(t *testing.T) {
		s.proc.use(both)
		s.a.answer(answer503)
		s.b.answer(answer503)
		res := s.chat(t)
		require.Equal(t, http.StatusServiceUnavailable, res.status)
		require.Contains(t, string(res.body), "PROVIDER-B IS OVERLOADED")
		require.Len(t, s.a.requests(), 1)
		require.Len(t, s.b.requests(), 1, "route fallback-2 allows one retry, so B is not asked twice")
		down, _ := s.proc.seen()
		require.Len(t, down.Attempts, 2)
		require.Equal(t, "503", attemptEntry(t, down.Attempts, 1)["status"])
		require.Equal(t, "503", attemptEntry(t, down.Attempts, 2)["status"])
	})

	t.Run("a reset after the response started is not retried", func(t *testing.T) {
		s.proc.use(both)
		s.a.answer(answerResetAfterStart)
		s.b.answer(answerOK)
		// A resets only once the client has the response headers: the response is the
		// client's now, and the attempt may have been billed.
		res := s.chat(t, s.a.releaseReset)
		require.Equal(t, http.StatusOK, res.status)
		require.Error(t, res.readErr, "the client sees the response cut")
		require.Empty(t, s.b.requests())
		down, attempts := s.proc.seen()
		require.Len(t, attempts, 1)
		require.False(t, attempts[0].RespEnded)
		require.Equal(t, "provider_a", down.Cluster)
		require.Equal(t, map[string]any{"cluster": "provider_a", "state": "answered", "status": "200"}, attemptEntry(t, down.AttemptsAtHeaders, 1))
	})

	t.Run("a request without a plan skips the upstream filter", func(t *testing.T) {
		// The provider clusters also serve models without fallback (routed as today, the
		// credential set downstream): the upstream filter's matcher skips them, so they cost
		// no second ext_proc stream.
		s.proc.use(fallbackScenario{targets: []fallbackTarget{targetA}, direct: true})
		s.a.answer(answerOK)
		s.b.answer(answerOK)
		res := s.chat(t)
		require.Equal(t, http.StatusOK, res.status, "body: %s", res.body)
		aSent := s.a.responses()
		require.Len(t, aSent, 1)
		require.Equal(t, string(aSent[0]), string(res.body), "no upstream filter rewrote the response")
		aReqs := s.a.requests()
		require.Len(t, aReqs, 1)
		require.Equal(t, targetA.Credential, aReqs[0].Header.Get("authorization"))
		require.Empty(t, s.b.requests())
		down, attempts := s.proc.seen()
		require.Empty(t, attempts, "no upstream ext_proc stream")
		require.Empty(t, down.Attempts)
	})

	t.Run("no plan in the metadata fails closed", func(t *testing.T) {
		sc := both
		sc.noGroups = true
		s.proc.use(sc)
		s.a.answer(answerOK)
		s.b.answer(answerOK)
		res := s.chat(t)
		require.Equal(t, http.StatusServiceUnavailable, res.status, "body: %s", res.body)
		require.Empty(t, s.a.requests())
		require.Empty(t, s.b.requests())
		_, attempts := s.proc.seen()
		require.Empty(t, attempts, "no upstream filter ran: no cluster was chosen")
	})

	t.Run("an attempt the plan does not name is refused by the upstream filter", func(t *testing.T) {
		sc := both
		sc.planClusters = []string{"provider_a"} // the groups say A then B, the plan only A
		s.proc.use(sc)
		s.a.answer(answer429)
		s.b.answer(answerOK)
		res := s.chat(t)
		require.Equal(t, http.StatusBadGateway, res.status, "body: %s", res.body)
		require.JSONEq(t, `{"error":{"message":"attempt outside the fallback plan","type":"gateway_error"}}`, string(res.body))
		require.Len(t, s.a.requests(), 1)
		require.Empty(t, s.b.requests(), "the refused attempt never left Envoy")
		_, attempts := s.proc.seen()
		require.Len(t, attempts, 2)
		require.True(t, attempts[1].Refused)
	})

	t.Run("an upstream filter failure fails the attempt closed", func(t *testing.T) {
		sc := both
		sc.failCluster = "provider_b"
		s.proc.use(sc)
		s.a.answer(answer429)
		s.b.answer(answerOK)
		res := s.chat(t)
		// status_on_error; the attempt, which carries A's credential in the shared header
		// map, is neither sent nor retried.
		require.Equal(t, http.StatusServiceUnavailable, res.status, "body: %s", res.body)
		require.Len(t, s.a.requests(), 1)
		require.Empty(t, s.b.requests())
	})
}

// num reads a JSON number from a decoded Struct (0 when absent).
func num(v any) float64 {
	f, _ := v.(float64)
	return f
}
