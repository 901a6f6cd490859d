package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// reloads returns the config reloads tollgate has taken (from /readyz).
func (s *stack) reloads(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(s.admin + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	var st struct {
		Reloads int `json:"config_reloads"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	return st.Reloads
}

// rewriteConfig replaces the config file atomically with edit's result and waits until
// tollgate has reloaded it.
func (s *stack) rewriteConfig(t *testing.T, edit func(string) string) {
	t.Helper()
	before := s.reloads(t)
	cfg := edit(readFile(t, s.cfg))
	require.NoError(t, os.WriteFile(s.cfg+".tmp", []byte(cfg), 0o600))
	require.NoError(t, os.Rename(s.cfg+".tmp", s.cfg))
	require.Eventually(t, func() bool { return s.reloads(t) > before }, 10*time.Second, 50*time.Millisecond,
		"config not reloaded; logs:\n%s", s.tollgate.Logs())
}

// sealedProviderKey switches the mock provider's key to a value sealed under a KEK k1, then
// rotates the KEK to k2 with `tollgate secrets rewrap` and removes k1, while requests flow
// through Envoy: every request reaches the mock with the provider key. The KEKs and sealed
// values join the secrets the leak checks look for.
func sealedProviderKey(t *testing.T, s *stack) {
	refused := strings.Count(s.tollgate.Logs(), "config reload refused")
	dev := filepath.Join(s.dir, ".dev")
	for _, k := range []string{"kek-1", "kek-2"} {
		s.run(t, "secrets", "new-kek", "--out", filepath.Join(dev, k))
		s.extra["KEK "+k] = strings.TrimSpace(readFile(t, filepath.Join(dev, k)))
	}
	s.rewriteConfig(t, func(cfg string) string {
		return replaceOnce(t, cfg, "  pepper: file:../.dev/pepper\n",
			"  pepper: file:../.dev/pepper\n  keks:\n    - {id: k1, key: file:../.dev/kek-1}\n")
	})
	seal := exec.Command(s.bin, "secrets", "seal", "--kek-id", "k1", "--config", s.cfg)
	seal.Env = cleanEnv()
	seal.Stdin = strings.NewReader(s.openAIKey + "\n")
	out, err := seal.Output()
	require.NoError(t, err)
	sealed := strings.TrimSpace(string(out))
	require.True(t, strings.HasPrefix(sealed, "sealed:v1.k1."), sealed)
	s.extra["sealed value k1"] = sealed
	s.rewriteConfig(t, func(cfg string) string {
		return replaceOnce(t, cfg, "credential: file:../.dev/mock-openai-key", "credential: "+sealed)
	})

	auth := []string{"authorization", "Bearer " + s.keys["demo"], "content-type", "application/json"}
	s.mock.Reset()
	r := s.do(t, "POST", "/v1/chat/completions", chatBody("gpt-4o-mini", false), auth...)
	require.Equal(t, 200, r.status, "body: %s", r.body)
	require.Equal(t, "Bearer "+s.openAIKey, s.mock.Requests()[0].Header.Get("Authorization"), "the sealed key is opened and sent")

	var ok, failed atomic.Int64
	var first atomic.Pointer[string]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Not s.do: require may not stop the test from this goroutine.
				if err := post(s, chatBody("gpt-4o-mini", false), auth); err != nil {
					failed.Add(1)
					msg := err.Error()
					first.CompareAndSwap(nil, &msg)
					continue
				}
				ok.Add(1)
			}
		})
	}
	s.rewriteConfig(t, func(cfg string) string {
		return replaceOnce(t, cfg, "    - {id: k1, key: file:../.dev/kek-1}\n",
			"    - {id: k1, key: file:../.dev/kek-1}\n    - {id: k2, key: file:../.dev/kek-2}\n")
	})
	before := s.reloads(t)
	s.run(t, "secrets", "rewrap", "--config", s.cfg, "--to", "k2")
	require.Eventually(t, func() bool { return s.reloads(t) > before }, 10*time.Second, 50*time.Millisecond)
	s.rewriteConfig(t, func(cfg string) string {
		return replaceOnce(t, cfg, "    - {id: k1, key: file:../.dev/kek-1}\n", "")
	})
	require.NoError(t, os.Remove(filepath.Join(dev, "kek-1")))
	target := ok.Load() + 20
	require.Eventually(t, func() bool { return ok.Load() >= target || failed.Load() > 0 }, 20*time.Second, 10*time.Millisecond)
	close(stop)
	wg.Wait()
	if p := first.Load(); p != nil {
		t.Fatalf("%d of %d requests failed during the KEK rotation; first: %s", failed.Load(), ok.Load()+failed.Load(), *p)
	}
	cfg := readFile(t, s.cfg)
	require.NotContains(t, cfg, "sealed:v1.k1.")
	i := strings.Index(cfg, "sealed:v1.k2.")
	require.Positive(t, i)
	s.extra["sealed value k2"] = strings.Fields(cfg[i:])[0]
	require.Equal(t, refused, strings.Count(s.tollgate.Logs(), "config reload refused"), "every step reloads")
	t.Logf("%d requests through Envoy across the KEK rotation, none failed", ok.Load())
}

// post sends a chat request through Envoy and returns an error unless it got 200.
func post(s *stack, body string, hdr []string) error {
	req, err := http.NewRequest("POST", s.base+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	return nil
}
