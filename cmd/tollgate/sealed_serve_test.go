package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// writeSealedConfig writes the trial's config with a sealed credential and the KEKs listed
// one per line (so a test can delete one).
func (tr *trial) writeSealedConfig(t *testing.T, cred string, keks ...string) {
	t.Helper()
	var kl strings.Builder
	for _, k := range keks {
		fmt.Fprintf(&kl, "    - {id: %s, key: file:%s}\n", k, strings.Replace(k, "k", "kek", 1))
	}
	cfg := `listen: {extproc: "` + tr.extproc + `", admin: "` + tr.admin + `"}
security:
  pepper: "file:.dev/pepper"
  keks:
` + kl.String() + `reload_interval: 100ms
providers:
  - name: mock
    type: openai-compatible
    route: mock
    credential: ` + cred + `
models:
  - {name: gpt-4o-mini, provider: mock}
teams:
  - {name: platform}
key_files: [.dev/keys.yaml]
`
	require.NoError(t, os.WriteFile(tr.cfg+".tmp", []byte(cfg), 0o600))
	require.NoError(t, os.Rename(tr.cfg+".tmp", tr.cfg))
}

// sentAuth sends a chat request's headers and body over conn and returns the authorization
// header Tollgate set for the provider, or an error when the request was refused.
func sentAuth(conn *grpc.ClientConn, key string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	if err != nil {
		return "", err
	}
	defer func() { _ = s.CloseSend(); _, _ = s.Recv() }()
	hm := &corev3.HeaderMap{}
	for _, kv := range [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {"authorization", "Bearer " + key}, {"content-type", "application/json"}} {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
	}
	msgs := []*extprocv3.ProcessingRequest{
		{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: hm}}},
		{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{
			Body: []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`), EndOfStream: true}}},
	}
	var resp *extprocv3.ProcessingResponse
	for _, m := range msgs {
		if err := s.Send(m); err != nil {
			return "", err
		}
		if resp, err = s.Recv(); err != nil {
			return "", err
		}
		if ir := resp.GetImmediateResponse(); ir != nil {
			return "", fmt.Errorf("refused with %d", ir.GetStatus().GetCode())
		}
	}
	for _, h := range resp.GetRequestBody().GetResponse().GetHeaderMutation().GetSetHeaders() {
		if h.GetHeader().GetKey() == "authorization" {
			return string(h.GetHeader().GetRawValue()), nil
		}
	}
	return "", fmt.Errorf("no credential set")
}

// waitReloads waits until the trial has taken n reloads in all.
func (tr *trial) waitReloads(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, body := tr.get(t, "/readyz")
		return strings.Contains(body, `"config_reloads":`+strconv.Itoa(n)+`,`)
	}, 10*time.Second, 20*time.Millisecond, "reload %d not taken; logs:\n%s", n, tr.logs)
}

// TestSealedCredentialKEKRotationWhileServing runs `tollgate serve` with a sealed provider key
// and rotates its KEK with the CLI while requests flow: add k2, `secrets rewrap --to k2`,
// remove k1 (and its file). Every request gets the provider key; nothing secret is logged.
func TestSealedCredentialKEKRotationWhileServing(t *testing.T) {
	tr := newTrial(t)
	for name, k := range map[string]string{"kek1": testKEK1, "kek2": testKEK2} {
		require.NoError(t, os.WriteFile(filepath.Join(tr.dir, name), []byte(k+"\n"), 0o600))
	}
	providerKey, err := os.ReadFile(filepath.Join(tr.dir, ".dev", "mock-openai-key"))
	require.NoError(t, err)
	want := "Bearer " + strings.TrimSpace(string(providerKey))
	tr.writeSealedConfig(t, "file:.dev/mock-openai-key", "k1")
	out, errOut, err := secretsCmd(string(providerKey), "seal", "--kek-id", "k1", "--config", tr.cfg)
	require.NoError(t, err, errOut)
	sealedK1 := strings.TrimSpace(out)
	tr.writeSealedConfig(t, sealedK1, "k1")
	tr.start(t)
	demo, err := os.ReadFile(filepath.Join(tr.dir, ".dev", "demo-key"))
	require.NoError(t, err)
	key := strings.TrimSpace(string(demo))

	conn, err := grpc.NewClient(tr.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	got, err := sentAuth(conn, key)
	require.NoError(t, err)
	require.Equal(t, want, got, "the sealed key is opened and sent")

	var done, failed atomic.Int64
	var firstErr atomic.Pointer[string]
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				got, err := sentAuth(conn, key)
				if err == nil && got != want {
					err = fmt.Errorf("a wrong credential was sent")
				}
				if err != nil {
					failed.Add(1)
					msg := err.Error()
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				done.Add(1)
			}
		})
	}
	after := func(n int64) {
		target := done.Load() + n
		require.Eventually(t, func() bool { return done.Load() >= target || failed.Load() > 0 }, 30*time.Second, 5*time.Millisecond)
	}

	after(250)
	tr.writeSealedConfig(t, sealedK1, "k1", "k2")
	tr.waitReloads(t, 1)
	after(250)
	out, errOut, err = secretsCmd("", "rewrap", "--config", tr.cfg, "--to", "k2")
	require.NoError(t, err, errOut)
	require.Contains(t, out, "rewrapped 1 sealed values under KEK k2")
	tr.waitReloads(t, 2)
	after(250)
	raw, err := os.ReadFile(tr.cfg)
	require.NoError(t, err)
	sealedK2 := strings.Fields(strings.SplitAfter(string(raw), "credential: ")[1])[0]
	require.True(t, strings.HasPrefix(sealedK2, "sealed:v1.k2."), sealedK2)
	withoutK1 := strings.Replace(string(raw), "    - {id: k1, key: file:kek1}\n", "", 1)
	require.NoError(t, os.WriteFile(tr.cfg+".tmp", []byte(withoutK1), 0o600))
	require.NoError(t, os.Rename(tr.cfg+".tmp", tr.cfg))
	tr.waitReloads(t, 3)
	require.NoError(t, os.Remove(filepath.Join(tr.dir, "kek1")))
	after(250)
	stop()
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		t.Fatalf("%d of %d requests failed; first: %s", failed.Load(), done.Load()+failed.Load(), *p)
	}
	require.GreaterOrEqual(t, done.Load(), int64(1000))
	t.Logf("%d requests across the rotation, none failed", done.Load())

	logs := tr.logs.String()
	require.Contains(t, logs, "config reloaded")
	require.NotContains(t, logs, "config reload refused")
	for name, s := range map[string]string{"provider key": strings.TrimSpace(string(providerKey)), "KEK 1": testKEK1[:24],
		"KEK 2": testKEK2[:24], "sealed value k1": sealedK1[20:70], "sealed value k2": sealedK2[20:70], "virtual key": key} {
		require.NotContains(t, logs, s, "%s leaked into the log", name)
	}
}

// TestSealedCredentialErrorsNeverLeak: a config whose sealed key does not open (wrong KEK
// file, tampered value) is refused at start with an error naming the field and the failure,
// and neither the error nor the log shows the KEK, the sealed text or the key.
func TestSealedCredentialErrorsNeverLeak(t *testing.T) {
	tr := newTrial(t)
	require.NoError(t, os.WriteFile(filepath.Join(tr.dir, "kek1"), []byte(testKEK1), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(tr.dir, "kek2"), []byte(testKEK2), 0o600))
	tr.writeSealedConfig(t, "env:UNUSED", "k1")
	out, _, err := secretsCmd(sealedSecret, "seal", "--kek-id", "k1", "--config", tr.cfg)
	require.NoError(t, err)
	sealed := strings.TrimSpace(out)
	for _, tc := range []struct {
		name, cred, errHas string
	}{
		{"wrong KEK material under the id", sealed, "not the key that sealed the value"},
		{"tampered", flipAt(sealed, 40), "failed authentication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "wrong KEK material under the id" {
				require.NoError(t, os.WriteFile(filepath.Join(tr.dir, "kek1"), []byte(testKEK2), 0o600))
				defer func() { require.NoError(t, os.WriteFile(filepath.Join(tr.dir, "kek1"), []byte(testKEK1), 0o600)) }()
			}
			tr.writeSealedConfig(t, tc.cred, "k1")
			var logs syncBuffer
			err := run(context.Background(), []string{"serve", "--config", tr.cfg}, &logs, &logs)
			require.ErrorContains(t, err, "providers[0].credential")
			require.ErrorContains(t, err, tc.errHas)
			all := err.Error() + logs.String()
			for _, s := range []string{sealedSecret, testKEK1[:24], testKEK2[:24], sealed[20:70]} {
				require.NotContains(t, all, s)
			}
		})
	}
}
