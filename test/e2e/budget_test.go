package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/llm"
)

// The budget tests use a model whose public name is its catalog name (so the body is not
// rewritten) and a request that already asks for usage, so the reserved estimate can be
// computed here exactly: one input token per body byte plus max_tokens, at catalog prices.
const (
	cappedModel = "gpt-4.1-nano"
	cappedTeam  = "capped"
	fits        = 10 // the team's lifetime budget fits exactly this many reservations
)

var cappedBody = `{"model":"` + cappedModel + `","stream":true,"stream_options":{"include_usage":true},"max_tokens":1000,` +
	`"messages":[{"role":"user","content":"count to ten, ` + promptMarker + `"}]}`

func cappedEstimate() int64 {
	p := budget.DefaultCatalog()[cappedModel]
	return p.MaxCost(int64(len(cappedBody)), 1000)
}

// withCappedTeam adds the model (served by the mock) and a team whose lifetime USD budget
// fits exactly `fits` reservations.
func withCappedTeam(cfg string) string {
	cfg = strings.Replace(cfg, "models:\n", "models:\n  - name: "+cappedModel+"\n    provider: mock-openai\n", 1)
	return strings.Replace(cfg, "teams:\n", "teams:\n  - name: "+cappedTeam+"\n    limits:\n      usd_lifetime: \""+
		budget.FormatUSD(fits*cappedEstimate())+"\"\n", 1)
}

// usage reads one team's limit from a tollgate's admin endpoint.
func (s *stack) usage(t *testing.T, admin, team, limit string) policy.UsageEntry {
	t.Helper()
	resp, err := http.Get(admin + "/usage")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var rep struct {
		Limits []policy.UsageEntry `json:"limits"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rep))
	for _, e := range rep.Limits {
		if e.Scope == "team" && e.ID == team && e.Limit == limit {
			return e
		}
	}
	t.Fatalf("no %s counter for team %s in %+v", limit, team, rep.Limits)
	return policy.UsageEntry{}
}

// usageOf reads one team's limit from a tollgate's admin endpoint; ok is false when the
// report cannot be read (e.g. the ledger is not answering) or has no such counter.
func usageOf(admin, team, limit string) (policy.UsageEntry, bool) {
	resp, err := http.Get(admin + "/usage")
	if err != nil {
		return policy.UsageEntry{}, false
	}
	defer resp.Body.Close()
	var rep struct {
		Limits []policy.UsageEntry `json:"limits"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&rep) != nil {
		return policy.UsageEntry{}, false
	}
	for _, e := range rep.Limits {
		if e.Scope == "team" && e.ID == team && e.Limit == limit {
			return e, true
		}
	}
	return policy.UsageEntry{}, false
}

// streamUsage reads an SSE body to its end and returns the final usage chunk's usage.
func streamUsage(t *testing.T, body io.Reader) llm.Usage {
	t.Helper()
	var u llm.Usage
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || !strings.Contains(line, `"usage":{`) {
			continue
		}
		var ev struct {
			Usage struct {
				Prompt     int64 `json:"prompt_tokens"`
				Completion int64 `json:"completion_tokens"`
			} `json:"usage"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &ev))
		u = llm.Usage{InputTokens: ev.Usage.Prompt, OutputTokens: ev.Usage.Completion}
	}
	require.NoError(t, sc.Err())
	require.NotZero(t, u.Total(), "the stream carried no usage")
	return u
}

// concurrentBudget sends 50 concurrent streams against a budget that fits `fits`, holding
// every upstream response open so nothing settles while the others are decided. Exactly
// `fits` are admitted; after release the settled spend equals the usage the mock reported,
// priced by the catalog, and stays within the budget.
func concurrentBudget(t *testing.T, s *stack, key string) {
	before := s.usage(t, s.admin, cappedTeam, "usd_lifetime")
	release := s.gate.HoldAll(1)
	defer release()
	type result struct {
		status int
		body   io.ReadCloser
	}
	results := make(chan result, 50)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", s.base+"/v1/chat/completions", strings.NewReader(cappedBody))
			req.Header.Set("authorization", "Bearer "+key)
			req.Header.Set("content-type", "application/json")
			resp, err := s.client.Do(req)
			if err != nil {
				t.Errorf("request: %v", err)
				return
			}
			if resp.StatusCode != 200 {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 429 || !strings.Contains(string(b), "usd_lifetime") ||
					resp.Header.Get("x-ratelimit-limit-usd") == "" {
					t.Errorf("refusal: %d %s", resp.StatusCode, b)
				}
			}
			results <- result{resp.StatusCode, resp.Body}
		})
	}
	wg.Wait()
	close(results)
	var admitted []io.ReadCloser
	for r := range results {
		if r.status == 200 {
			admitted = append(admitted, r.body)
		}
	}
	require.Len(t, admitted, fits, "admitted exactly as many as the budget allows")
	held := s.usage(t, s.admin, cappedTeam, "usd_lifetime")
	require.Equal(t, int64(fits)*cappedEstimate(), held.Reserved)

	release()
	var want int64
	price := budget.DefaultCatalog()[cappedModel]
	for _, b := range admitted {
		want += price.Cost(streamUsage(t, b))
		b.Close()
	}
	require.Eventually(t, func() bool {
		return s.usage(t, s.admin, cappedTeam, "usd_lifetime").Reserved == 0
	}, 10*time.Second, 50*time.Millisecond, "every reservation settles")
	after := s.usage(t, s.admin, cappedTeam, "usd_lifetime")
	require.Equal(t, before.Used+want, after.Used, "settled spend equals the reported usage priced by the catalog")
	require.LessOrEqual(t, after.Used, after.Max)
}

func TestBudgetsEmbedded(t *testing.T) {
	s := startStack(t, stackOptions{edit: withCappedTeam})
	key := s.newKey(t, "--name", "capped", "--team", cappedTeam)
	require.Eventually(t, func() bool {
		r := s.do(t, "GET", "/v1/models", "", "authorization", "Bearer "+key)
		return r.status == 200
	}, 10*time.Second, 100*time.Millisecond)

	t.Run("50 concurrent streams against a budget for 10", func(t *testing.T) { concurrentBudget(t, s, key) })

	t.Run("a client abort is charged the full reservation and nothing stays reserved", func(t *testing.T) {
		before := s.usage(t, s.admin, cappedTeam, "usd_lifetime")
		release := s.gate.Hold(1)
		defer release()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", s.base+"/v1/chat/completions", strings.NewReader(cappedBody))
		req.Header.Set("authorization", "Bearer "+key)
		req.Header.Set("content-type", "application/json")
		resp, err := s.client.Do(req)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		_, err = bufio.NewReader(resp.Body).ReadString('\n') // the first event is through
		require.NoError(t, err)
		cancel() // the client goes away before the usage chunk, which the upstream still holds
		resp.Body.Close()
		require.Eventually(t, func() bool {
			u := s.usage(t, s.admin, cappedTeam, "usd_lifetime")
			return u.Reserved == 0 && u.Used > before.Used
		}, 10*time.Second, 50*time.Millisecond)
		release()
		after := s.usage(t, s.admin, cappedTeam, "usd_lifetime")
		require.Equal(t, before.Used+cappedEstimate(), after.Used, "no usage arrived: the full reservation is charged")
		require.Contains(t, s.logs(), `"settle_rule":"full_reservation"`)
	})

	// The review's high finding: an Anthropic stream closed after message_start (input
	// tokens and one output token) was charged that usage instead of the reservation.
	t.Run("an aborted Anthropic stream is charged at least its reservation", func(t *testing.T) {
		body := `{"model":"claude-haiku-4-5","stream":true,"max_tokens":300,"messages":[{"role":"user","content":"count to ten"}]}`
		before := s.usage(t, s.admin, cappedTeam, "usd_lifetime")
		release := s.gate.Hold(3) // message_start and two more events, then the upstream waits
		defer release()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", s.base+"/v1/messages", strings.NewReader(body))
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
		req.Header.Set("content-type", "application/json")
		resp, err := s.client.Do(req)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		first, err := sseEvents{bufio.NewReader(resp.Body)}.next()
		require.NoError(t, err)
		require.Contains(t, first, "message_start", "message_start, with its usage, reached the client")
		held := s.usage(t, s.admin, cappedTeam, "usd_lifetime")
		reserved := held.Reserved - before.Reserved
		require.Positive(t, reserved)
		cancel() // the client goes away before message_delta and message_stop
		resp.Body.Close()
		require.Eventually(t, func() bool {
			u := s.usage(t, s.admin, cappedTeam, "usd_lifetime")
			return u.Reserved == before.Reserved && u.Used > before.Used
		}, 10*time.Second, 50*time.Millisecond)
		release()
		after := s.usage(t, s.admin, cappedTeam, "usd_lifetime")
		require.Equal(t, before.Used+reserved, after.Used,
			"the stream did not reach message_stop: charged max(message_start usage, reservation) = the reservation")
		require.Contains(t, s.logs(), `"settle_rule":"incomplete"`)
	})

	t.Run("tollgate usage prints the team's spend", func(t *testing.T) {
		out := s.run(t, "usage", "--admin", strings.TrimPrefix(s.admin, "http://"))
		require.Contains(t, out, cappedTeam)
		require.Contains(t, out, "usd_lifetime")
	})
}

// TestBudgetsRedisTwoReplicas runs the multi-replica example (examples/replicas): two
// Tollgate replicas behind one Envoy share one redis-server started from the example's
// redis.conf and users.acl (TLS only, one ACL user, AOF), and each replica's budget section is
// the example's budget.yaml. A budget holds across both replicas, survives a crash of Redis,
// and fails closed while Redis is down.
func TestBudgetsRedisTwoReplicas(t *testing.T) {
	r := startExampleRedis(t)
	redisCfg := func(cfg string) string { return withExampleBudget(t, withCappedTeam(cfg), r) }
	s := startStack(t, stackOptions{edit: redisCfg, tollgates: 2})
	for _, cfg := range s.cfgs {
		require.Contains(t, readFile(t, cfg), "\n  ledger: redis\n", "the replicas use the example's ledger")
	}
	key := s.newKey(t, "--name", "capped", "--team", cappedTeam)
	require.Eventually(t, func() bool {
		return s.do(t, "GET", "/v1/models", "", "authorization", "Bearer "+key).status == 200
	}, 10*time.Second, 100*time.Millisecond)

	t.Run("50 concurrent streams over two replicas against a budget for 10", func(t *testing.T) {
		concurrentBudget(t, s, key)
		// Both replicas served some of them, and both see the same shared counters.
		for i, p := range s.tollgates {
			require.Contains(t, p.Logs(), `"key_id":"`+key[4:16]+`"`, "replica %d served none", i)
		}
		require.Equal(t, s.usage(t, s.admins[0], cappedTeam, "usd_lifetime"), s.usage(t, s.admins[1], cappedTeam, "usd_lifetime"))
	})

	t.Run("a crash of Redis keeps the spend (AOF, appendfsync as shipped)", func(t *testing.T) {
		before := s.usage(t, s.admins[0], cappedTeam, "usd_lifetime")
		require.Positive(t, before.Used, "the previous subtest spent some of the budget")
		r.Kill()
		r.Start()
		for _, admin := range s.admins {
			// The replicas' pooled connections died with the server: the first calls may fail.
			var after policy.UsageEntry
			require.Eventually(t, func() bool {
				var ok bool
				after, ok = usageOf(admin, cappedTeam, "usd_lifetime")
				return ok
			}, 20*time.Second, 100*time.Millisecond, "%s reads the ledger again", admin)
			require.Equal(t, before.Used, after.Used, "spend after the restart, on %s", admin)
		}
	})

	t.Run("redis down: 503 and nothing forwarded; fail_open passes and is counted", func(t *testing.T) {
		r.Stop()
		s.mock.Reset()
		for range 4 { // both replicas
			res := s.do(t, "POST", "/v1/chat/completions", cappedBody, "authorization", "Bearer "+key, "content-type", "application/json")
			requireJSONError(t, res, 503)
		}
		require.Empty(t, s.mock.Requests(), "nothing reaches the provider while the ledger is down")

		for _, cfg := range s.cfgs {
			c := readFile(t, cfg)
			c = replaceOnce(t, c, "  # fail_open: [requests_per_minute]", "  fail_open: [usd_lifetime]")
			require.NoError(t, os.WriteFile(cfg, []byte(c), 0o600))
		}
		require.Eventually(t, func() bool {
			ok := 0
			for range 4 {
				res := s.do(t, "POST", "/v1/chat/completions", cappedBody, "authorization", "Bearer "+key, "content-type", "application/json")
				if res.status == 200 {
					ok++
				}
			}
			return ok == 4
		}, 10*time.Second, 200*time.Millisecond)
		var counted bool
		for _, admin := range s.admins {
			resp, err := http.Get(admin + "/metrics")
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			counted = counted || strings.Contains(string(b), `tollgate_budget_ledger_unavailable_total{decision="fail_open"}`)
			require.Contains(t, string(b), `tollgate_budget_ledger_unavailable_total{decision="refused"}`)
		}
		require.True(t, counted)
	})
}
