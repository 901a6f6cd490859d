package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEnvoyLocalReplies: requests Envoy refuses itself while parsing HTTP/1.1 got no response
// at all. Envoy ran its own reply through ext_proc, which held it for a gRPC round trip, and
// the HCM closed the connection before the reply was written (envoyproxy/envoy#29440; issue
// 14 item 1). envoy.yaml now skips ext_proc for replies to requests Tollgate never forwarded.
// Each such request gets Envoy's 4xx and nothing reaches the provider, while the response to a
// forwarded request is still guarded and settled by Tollgate.
func TestEnvoyLocalReplies(t *testing.T) {
	s := startStack(t)
	big := strings.Repeat("a", 64<<10)

	t.Run("malformed HTTP/1.1 requests get Envoy's 4xx", func(t *testing.T) {
		tests := []struct {
			name, raw string
			status    int
		}{
			{"64 KiB header", "GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-Big: " + big + "\r\n\r\n", 431},
			// headers_with_underscores_action: REJECT_REQUEST.
			{"header name with underscore", "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nX_Bad: 1\r\nContent-Length: 2\r\n\r\n{}", 400},
			{"NUL in a header value", "GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-A: a\x00b\r\n\r\n", 400},
			{"space before the colon", "GET /v1/models HTTP/1.1\r\nHost: localhost\r\nName : value\r\n\r\n", 400},
			{"invalid method", "FO(O /v1/models HTTP/1.1\r\nHost: localhost\r\n\r\n", 400},
			// Arrives with its headers, so no route was chosen yet either.
			{"bad chunk size", "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400},
			// No route matches a CONNECT, so ext_proc is not even created: Envoy's 404.
			{"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 404},
			// Envoy refuses it before any filter (absolute_path_rejected).
			{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n", 404},
		}
		s.mock.Reset()
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				status, line := rawHTTP1(t, s, tc.raw)
				require.Equal(t, tc.status, status, "status line %q", line)
			})
		}
		require.Empty(t, s.mock.Requests(), "nothing reached the provider")
	})

	t.Run("a bad chunk after Tollgate admitted the headers gets a 400", func(t *testing.T) {
		// Envoy has routed the request and Tollgate holds an open stream for it when the body
		// turns out to be broken: the reply still gets out.
		s.mock.Reset()
		conn := dialHTTP1(t, s)
		head := "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + s.keys["demo"] +
			"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nUser-Agent: localreply-bad-chunk\r\n\r\n"
		_, err := conn.Write([]byte(head + "2\r\n{}\r\n"))
		require.NoError(t, err)
		// The stack logs at debug level, which lists allow-listed request headers.
		require.Eventually(t, func() bool { return strings.Contains(s.logs(), `"user-agent":"localreply-bad-chunk"`) },
			10*time.Second, 20*time.Millisecond, "tollgate saw the request headers")
		_, err = conn.Write([]byte("zz\r\n"))
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err, "no response at all")
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Empty(t, s.mock.Requests(), "nothing reached the provider")
	})

	t.Run("a body over Envoy's buffer limit gets the JSON 413", func(t *testing.T) {
		// Sent without content-length, so Tollgate admits the headers and Envoy refuses the
		// body at its 16 MiB buffer limit, after Tollgate saw the request headers. Envoy's
		// reply no longer goes to Tollgate.
		s.mock.Reset()
		body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("a", 17<<20) + `"}]}`
		req, err := http.NewRequest("POST", s.base+"/v1/chat/completions", io.MultiReader(strings.NewReader(body)))
		require.NoError(t, err)
		req.Header.Set("authorization", "Bearer "+s.keys["demo"])
		req.Header.Set("content-type", "application/json")
		resp, err := s.client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		requireJSONError(t, result{resp.StatusCode, resp.Header, b}, http.StatusRequestEntityTooLarge)
		require.Contains(t, string(b), `"code":"request_too_large"`, "Envoy's reply, mapped to JSON")
		require.Empty(t, s.mock.Requests(), "nothing reached the provider")
	})

	// Over h2 the 64 KiB header and the underscore are refused by Envoy's h2 codec with a
	// RST_STREAM (http2.header_list_size_too_large, http2.unexpected_underscore) whether
	// ext_proc is configured or not: Envoy behaviour, documented in envoy/README.md.

	t.Run("a forwarded request's response is still guarded and settled", func(t *testing.T) {
		key := s.newKey(t, "--name", "forwarded")
		keyID := key[4:16]
		s.mock.SetAnswer("Your key is ", fakeAWSKey, " and mail ", fakeEmail)
		defer s.mock.SetAnswer()
		s.mock.Reset()
		r := s.do(t, "POST", "/v1/chat/completions", chatBody("gpt-4o-mini", false),
			"authorization", "Bearer "+key, "content-type", "application/json")
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		require.Len(t, s.mock.Requests(), 1)
		require.Contains(t, string(s.gate.Last()), fakeAWSKey, "the upstream did send the secret")
		require.NotContains(t, string(r.body), fakeAWSKey, "Tollgate redacted the response")
		require.NotContains(t, string(r.body), fakeEmail)
		require.Contains(t, string(r.body), "[AWS_ACCESS_KEY_1]")

		var resp struct {
			Usage struct {
				Prompt     int64 `json:"prompt_tokens"`
				Completion int64 `json:"completion_tokens"`
			} `json:"usage"`
		}
		require.NoError(t, json.Unmarshal(r.body, &resp), "%s", r.body)
		require.NotZero(t, resp.Usage.Completion)
		// Settled from the usage Tollgate read in the response body. Had ext_proc been skipped
		// for this response, Tollgate would have seen no usage and charged the full
		// reservation (settle_rule full_reservation).
		var line map[string]any
		require.Eventually(t, func() bool {
			line = requestLine(s.logs(), keyID)
			return line != nil
		}, 10*time.Second, 50*time.Millisecond, "tollgate logged the request")
		require.Equal(t, "usage", line["settle_rule"], "%v", line)
		require.EqualValues(t, resp.Usage.Prompt, line["input_tokens"], "%v", line)
		require.EqualValues(t, resp.Usage.Completion, line["output_tokens"], "%v", line)
		require.EqualValues(t, http.StatusOK, line["status"], "%v", line)
	})
}

// requestLine returns the parsed summary line tollgate logged for a request by key id, or nil.
func requestLine(logs, keyID string) map[string]any {
	for _, l := range strings.Split(logs, "\n") {
		if !strings.Contains(l, `"msg":"request"`) || !strings.Contains(l, `"key_id":"`+keyID+`"`) {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			return m
		}
	}
	return nil
}

// dialHTTP1 opens a TLS connection (ALPN http/1.1) to Envoy, closed with the test.
func dialHTTP1(t *testing.T, s *stack) *tls.Conn {
	t.Helper()
	pem, err := os.ReadFile(s.ca)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	conn, err := tls.Dial("tcp", strings.TrimPrefix(s.base, "https://"),
		&tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	return conn
}

// rawHTTP1 sends raw bytes over TLS (ALPN http/1.1) and returns the response's status.
func rawHTTP1(t *testing.T, s *stack, raw string) (int, string) {
	t.Helper()
	conn := dialHTTP1(t, s)
	_, err := conn.Write([]byte(raw))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "no response at all")
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Status
}
