package e2e

import (
	"context"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/test/testutil"
)

// TestSecurity is the attacker's suite through a real Envoy 1.40 (issue 9): each attempt is
// refused, or forwarded only in the form Tollgate decided on, and no request that reaches the
// provider carries a virtual key anywhere.
func TestSecurity(t *testing.T) {
	s := startStack(t)
	demo, raw := s.keys["demo"], s.keys["raw"]
	chat := func(key string) []string {
		return []string{"authorization", "Bearer " + key, "content-type", "application/json"}
	}
	defer func() {
		// Whatever reached the mock over the whole suite: never a virtual key.
		for _, r := range s.mock.Requests() {
			for name, vals := range r.Header {
				for _, v := range vals {
					require.NotRegexp(t, tokenRE, v, "virtual key upstream in header %s", name)
				}
			}
			require.NotRegexp(t, tokenRE, r.Path, "virtual key upstream in the path")
			require.NotRegexp(t, tokenRE, string(r.Body), "virtual key upstream in the body")
		}
	}()

	t.Run("spoofed internal headers never reach the provider or steer it", func(t *testing.T) {
		s.mock.Reset()
		r := s.do(t, "POST", "/v1/chat/completions", chatBody("fast", false), append(chat(demo),
			"x-tollgate-upstream", "openai", "x-tollgate-key-id", "someone-else", "x-tollgate-team", "admins")...)
		require.Equal(t, 200, r.status, "body: %s", r.body)
		reqs := s.mock.Requests()
		require.Len(t, reqs, 1, "routed by Tollgate's decision (mock), not the spoofed openai")
		for name := range reqs[0].Header {
			require.False(t, strings.HasPrefix(strings.ToLower(name), "x-tollgate-"), "%s reached the provider", name)
		}
	})

	t.Run("a client's x-request-id is replaced by Envoy's own", func(t *testing.T) {
		s.mock.Reset()
		chosen := "attacker-chosen-request-id-0001"
		r := s.do(t, "POST", "/v1/chat/completions", chatBody("fast", false), append(chat(demo), "x-request-id", chosen)...)
		require.Equal(t, 200, r.status, "body: %s", r.body)
		up := s.mock.Requests()[0].Header.Get("x-request-id")
		require.NotEmpty(t, up)
		require.NotEqual(t, chosen, up, "logs and the audit trail correlate on Envoy's id, not the client's")
		require.NotContains(t, s.logs(), chosen)
	})

	t.Run("a virtual key smuggled outside the credential headers is refused", func(t *testing.T) {
		s.mock.Reset()
		for _, hdr := range [][]string{
			{"user-agent", "my-sdk/1.0 " + raw},             // a forwarded header
			{"accept", "application/json; key=" + raw},      // another forwarded one
			{"x-api-key", raw},                              // a second, different credential
			{"api-key", strings.ToUpper(raw[:4]) + raw[4:]}, // case variant of the prefix
			{"user-agent", "sdk tgk%5F" + raw[4:]},          // percent-encoded
		} {
			r := s.do(t, "POST", "/v1/chat/completions", chatBody("fast", false), append(chat(demo), hdr...)...)
			require.Contains(t, []int{400, 401}, r.status, "%s: %s", hdr[0], r.body)
			require.NotContains(t, string(r.body), raw[17:], "the refusal never echoes the key")
		}
		require.Empty(t, s.mock.Requests(), "nothing was forwarded")
		// In a header the provider never receives, the key is simply removed with the header.
		r := s.do(t, "POST", "/v1/chat/completions", chatBody("fast", false), append(chat(demo), "x-custom", raw)...)
		require.Equal(t, 200, r.status, "body: %s", r.body)
		require.Empty(t, s.mock.Requests()[0].Header.Values("x-custom"))
		s.mock.Reset()
		r = s.do(t, "POST", "/v1/chat/completions?api_key="+raw, chatBody("fast", false), chat(demo)...)
		requireJSONError(t, r, 400)
		for _, field := range []string{`"user":"` + raw + `"`, `"metadata":{"k":"` + raw + `"}`} {
			body := `{"model":"fast",` + field + `,"messages":[{"role":"user","content":"hi"}]}`
			r := s.do(t, "POST", "/v1/chat/completions", body, chat(demo)...)
			require.Contains(t, []int{400, 403}, r.status, "%s: %s", field, r.body)
		}
		require.Empty(t, s.mock.Requests(), "nothing was forwarded")
	})

	t.Run("duplicate and case-variant JSON keys are refused", func(t *testing.T) {
		s.mock.Reset()
		// The fields policy decides on are refused for every key, guarded or not.
		for _, body := range []string{
			`{"model":"fast","model":"gpt-4o-mini","messages":[]}`,
			`{"model":"fast","Model":"other","messages":[]}`,
			`{"model":"fast","messages":[],"Messages":[{"role":"user","content":"hidden"}]}`,
			`{"model":"fast","stream":false,"STREAM":true,"messages":[]}`,
			`{"model":"fast","max_tokens":5,"Max_Tokens":50000,"messages":[]}`,
		} {
			for _, key := range []string{demo, raw} {
				requireJSONError(t, s.do(t, "POST", "/v1/chat/completions", body, chat(key)...), 400)
			}
		}
		// Where guardrails read text, a duplicate (the scanner and the provider could read
		// different values) is refused too, and a case variant is scanned like the field it
		// folds to (a Go upstream would read it).
		requireJSONError(t, s.do(t, "POST", "/v1/chat/completions",
			`{"model":"fast","messages":[{"role":"user","content":"a","content":"b"}]}`, chat(demo)...), 400)
		require.Empty(t, s.mock.Requests())
		r := s.do(t, "POST", "/v1/chat/completions",
			`{"model":"fast","messages":[{"role":"user","content":"a","Content":"mail jane.doe@example.com"}]}`, chat(demo)...)
		require.Equal(t, 200, r.status, "body: %s", r.body)
		require.NotContains(t, string(s.mock.Requests()[0].Body), "jane.doe@example.com")
		s.mock.Reset()
		require.Empty(t, s.mock.Requests())
	})

	// One matrix: whatever path a client sends, either it is refused and nothing is forwarded,
	// or the path Tollgate classified is exactly the path the provider received.
	t.Run("the path Tollgate classifies is the path Envoy routes", func(t *testing.T) {
		body := chatBody("fast", false)
		canonical := "/v1/chat/completions"
		for _, tc := range []struct {
			path   string
			status int // 0: any refusal
		}{
			{"/v1/chat/completions", 200},
			{"//v1/chat/completions", 200},
			{"/v1//chat/completions", 200},
			{"/v1/./chat/completions", 200},
			{"/v1/x/../chat/completions", 200},
			{"/v1/%2e%2e/v1/chat/completions", 0},
			{"/v1/chat%2Fcompletions", 0},
			{"/v1/chat%2fcompletions", 0},
			{"/v1/chat/completions/", 404},
			{"/V1/chat/completions", 404},
			{"/v1/CHAT/completions", 404},
			{"/v1/chat/completions;jsessionid=1", 404},
			{"/v1/chat/completions%00", 0},
			{"/v1/chat/completions%20", 0},
			{"/v1/messages/../chat/completions", 200},
			{"/../v1/chat/completions", 0},
		} {
			s.mock.Reset()
			req := "POST " + tc.path + " HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + demo +
				"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body
			status, line := rawHTTP1(t, s, req)
			reqs := s.mock.Requests()
			if status == 200 {
				require.Len(t, reqs, 1, "%s", tc.path)
				require.Equal(t, canonical, reqs[0].Path, "%s: the provider got another path than the one classified", tc.path)
			} else {
				require.GreaterOrEqual(t, status, 400, "%s: %s", tc.path, line)
				require.Less(t, status, 500, "%s: a refusal is the client's error, not the gateway's: %s", tc.path, line)
				require.Empty(t, reqs, "%s: refused but forwarded", tc.path)
			}
			if tc.status != 0 {
				require.Equal(t, tc.status, status, "%s: %s", tc.path, line)
			}
		}
	})

	t.Run("upgrade and CONNECT are refused", func(t *testing.T) {
		s.mock.Reset()
		status, line := rawHTTP1(t, s, "GET /v1/models HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "+demo+
			"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		require.NotEqual(t, 101, status, line)
		status, line = rawHTTP1(t, s, "CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n")
		require.GreaterOrEqual(t, status, 400, line)
		require.Empty(t, s.mock.Requests())
	})

	// A stopped Tollgate cannot answer: Envoy fails closed within message_timeout.
	t.Run("a frozen Tollgate fails closed", func(t *testing.T) {
		s.mock.Reset()
		pid := s.tollgate.Pid()
		require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
		thawed := false
		thaw := func() {
			if !thawed {
				_ = syscall.Kill(pid, syscall.SIGCONT)
				thawed = true
			}
		}
		defer thaw()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", s.base+"/v1/chat/completions", strings.NewReader(chatBody("fast", false)))
		for i := 0; i+1 < len(chat(demo)); i += 2 {
			req.Header.Set(chat(demo)[i], chat(demo)[i+1])
		}
		resp, err := testutil.TLSClient(s.ca).Do(req) // a new connection: a fresh ext_proc stream
		require.NoError(t, err, "Envoy answers, it does not hang")
		resp.Body.Close()
		require.GreaterOrEqual(t, resp.StatusCode, 500)
		thaw()
		require.Empty(t, s.mock.Requests(), "nothing was forwarded while Tollgate could not decide")
		require.Eventually(t, func() bool {
			return s.do(t, "POST", "/v1/chat/completions", chatBody("fast", false), chat(demo)...).status == 200
		}, 20*time.Second, 200*time.Millisecond, "traffic recovers once Tollgate runs again")
	})

	// Killed mid-traffic: every request in flight or arriving while it is down fails closed;
	// restarted with the same config, traffic succeeds again with no step on Envoy's side.
	t.Run("a killed Tollgate fails closed and recovers on restart", func(t *testing.T) {
		s.mock.Reset()
		var ok, refused atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					r := s.do(t, "POST", "/v1/chat/completions", chatBody("fast", false), chat(demo)...)
					switch {
					case r.status == 200:
						ok.Add(1)
					case r.status >= 500:
						refused.Add(1)
					default:
						t.Errorf("unexpected status %d: %s", r.status, r.body)
					}
				}
			})
		}
		require.Eventually(t, func() bool { return ok.Load() > 10 }, 10*time.Second, 10*time.Millisecond)
		require.NoError(t, syscall.Kill(s.tollgate.Pid(), syscall.SIGKILL))
		<-s.tollgate.Done()
		// Requests forwarded before the kill may still finish; after that, nothing does.
		time.Sleep(300 * time.Millisecond)
		okDown, forwarded, refusedDown := ok.Load(), len(s.mock.Requests()), refused.Load()
		require.Eventually(t, func() bool { return refused.Load() > refusedDown+5 }, 10*time.Second, 10*time.Millisecond,
			"requests while Tollgate is down are refused")
		require.Equal(t, okDown, ok.Load(), "nothing succeeds while Tollgate is down")
		require.Equal(t, forwarded, len(s.mock.Requests()), "nothing is forwarded while Tollgate is down")

		s.restartTollgate(t, 0)
		require.Eventually(t, func() bool { return ok.Load() > okDown+10 }, 20*time.Second, 20*time.Millisecond,
			"traffic succeeds again after the restart, with no step on Envoy's side")
		close(stop)
		wg.Wait()
	})
}

// restartTollgate starts replica i again with its config (after a crash or a stop) and waits
// until it is ready.
func (s *stack) restartTollgate(t *testing.T, i int) {
	t.Helper()
	cmd := exec.Command(s.bin, "serve", "--config", s.cfgs[i])
	cmd.Env = cleanEnv()
	p := testutil.StartProcess(t, "tollgate-"+strconv.Itoa(i)+"-restarted", cmd)
	s.tollgates[i] = p
	if i == 0 {
		s.tollgate = p
	}
	testutil.WaitHTTP(t, s.admins[i]+"/readyz", 20*time.Second)
}
