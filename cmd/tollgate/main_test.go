package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-ai/tollgate/policy/audit"
	"github.com/tollgate-ai/tollgate/policy/keys"
)

var keyLine = regexp.MustCompile(`(?m)^\s+(` + keys.TokenPattern + `)\s*$`)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type trial struct {
	dir, cfg, keyFile, extproc, admin string
	target                            string // gRPC dial target for extproc
	logs                              *syncBuffer
}

// newTrial prepares a config like examples/config.yaml in a temp dir with `dev init` state.
func newTrial(t *testing.T) *trial {
	t.Helper()
	dir := t.TempDir()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"dev", "init", "--dir", filepath.Join(dir, ".dev")}, &out, &out))
	tr := &trial{dir: dir, cfg: filepath.Join(dir, "config.yaml"), keyFile: filepath.Join(dir, ".dev", "keys.yaml"),
		extproc: freePort(t), admin: freePort(t), logs: &syncBuffer{}}
	tr.target = tr.extproc
	tr.writeConfig(t, "")
	return tr
}

func (tr *trial) writeConfig(t *testing.T, extra string) {
	t.Helper()
	cfg := `listen: {extproc: "` + tr.extproc + `", admin: "` + tr.admin + `"}
security: {pepper: "file:.dev/pepper"}
reload_interval: 100ms
providers:
  - {name: mock, type: openai-compatible, route: mock, credential: "file:.dev/mock-openai-key"}
models:
  - {name: gpt-4o-mini, provider: mock}
teams:
  - {name: platform}
key_files: [.dev/keys.yaml]
` + extra
	require.NoError(t, os.WriteFile(tr.cfg+".tmp", []byte(cfg), 0o600))
	require.NoError(t, os.Rename(tr.cfg+".tmp", tr.cfg))
}

// start runs `tollgate serve` in-process until the test ends.
func (tr *trial) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", tr.cfg}, tr.logs, tr.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop")
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + tr.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 10*time.Second, 20*time.Millisecond, "not ready; logs:\n%s", tr.logs)
}

// status sends the request-headers message of a chat request with key and returns the HTTP
// status tollgate decided (0 when it let the request continue to the body phase).
func (tr *trial) status(t *testing.T, key string) int {
	t.Helper()
	conn, err := grpc.NewClient(tr.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	require.NoError(t, err)
	hm := &corev3.HeaderMap{}
	for _, kv := range [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {"authorization", "Bearer " + key}, {"content-type", "application/json"}} {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
	}
	require.NoError(t, s.Send(&extprocv3.ProcessingRequest{
		Request:        &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: hm}},
		ProtocolConfig: &extprocv3.ProtocolConfiguration{RequestBodyMode: filterv3.ProcessingMode_BUFFERED, ResponseBodyMode: filterv3.ProcessingMode_STREAMED},
	}))
	resp, err := s.Recv()
	require.NoError(t, err)
	return int(resp.GetImmediateResponse().GetStatus().GetCode())
}

func TestKeysNewPrintsKeyOnceAndStanza(t *testing.T) {
	dir := t.TempDir()
	pepper := filepath.Join(dir, "pepper")
	require.NoError(t, os.WriteFile(pepper, []byte(strings.Repeat("p", 40)), 0o600))
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"keys", "new", "--pepper", "file:" + pepper, "--team", "platform", "--name", "ci", "--models", "a,b", "--expires", "2030-01-02"}, &out, &errb)
	require.NoError(t, err, errb.String())
	m := keyLine.FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	tok, err := keys.Parse(m[1])
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(out.String(), tok.Secret), "the secret is printed once, never in the stanza")
	require.Contains(t, out.String(), "id: "+tok.ID)
	require.Contains(t, out.String(), "hash: "+keys.Hash([]byte(strings.Repeat("p", 40)), tok.Secret).String())
	require.Contains(t, out.String(), `models: ["a", "b"]`)
	require.Contains(t, out.String(), "expires: 2030-01-02T00:00:00Z")
}

func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("providers:\n  - {name: x, type: openai, route: openai, credential: sk-plaintext-123}\nbogus_field: 1\n"), 0o600))
	var out bytes.Buffer
	err := run(context.Background(), []string{"serve", "--config", cfg}, &out, &out)
	require.Error(t, err)
	require.Contains(t, err.Error(), "bogus_field")
	require.NoError(t, os.WriteFile(cfg, []byte("providers:\n  - {name: x, type: openai, route: openai, credential: sk-plaintext-123}\n"), 0o600))
	err = run(context.Background(), []string{"serve", "--config", cfg}, &out, &out)
	require.ErrorContains(t, err, "providers[0].credential")
	require.NotContains(t, err.Error()+out.String(), "sk-plaintext-123")

	// Type errors from the decoder name the field, never the value.
	require.NoError(t, os.WriteFile(cfg, []byte("providers:\n  - {name: x, type: openai, route: openai, credential: [sk-plaintext-456]}\nlimits: {max_request_bytes: sk-plaintext-789}\n"), 0o600))
	err = run(context.Background(), []string{"serve", "--config", cfg}, &out, &out)
	require.ErrorContains(t, err, "providers[0].credential")
	require.ErrorContains(t, err, "limits.max_request_bytes")
	require.NotContains(t, err.Error()+out.String(), "sk-plaintext-456")
	require.NotContains(t, err.Error()+out.String(), "sk-plaintext-789")
}

func TestHotReload(t *testing.T) {
	tr := newTrial(t)
	tr.start(t)
	demo, err := os.ReadFile(filepath.Join(tr.dir, ".dev", "demo-key"))
	require.NoError(t, err)
	require.Equal(t, 0, tr.status(t, strings.TrimSpace(string(demo))))

	// A key appended to the key file works without a restart.
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"keys", "new", "--config", tr.cfg, "--team", "platform", "--name", "new", "--append", tr.keyFile}, &out, &out))
	newKey := keyLine.FindStringSubmatch(out.String())[1]
	require.Eventually(t, func() bool { return tr.status(t, newKey) == 0 }, 5*time.Second, 50*time.Millisecond, "logs:\n%s", tr.logs)

	// An invalid config is refused and the last good one keeps serving.
	tr.writeConfig(t, "limits: {max_request_bytes: -1}\n")
	require.Eventually(t, func() bool { return strings.Contains(tr.logs.String(), "config reload refused") }, 5*time.Second, 20*time.Millisecond)
	require.Contains(t, tr.logs.String(), "limits.max_request_bytes")
	require.Equal(t, 0, tr.status(t, newKey))
	resp, err := http.Get("http://" + tr.admin + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	require.Contains(t, body.String(), `"config_reload_failures":1`)
	require.Equal(t, 401, tr.status(t, "tgk_AAAAAAAAAAAA_"+strings.Repeat("b", 49)))

	require.NotContains(t, tr.logs.String(), newKey)
	tok, err := keys.Parse(newKey)
	require.NoError(t, err)
	require.NotContains(t, tr.logs.String(), tok.Secret)
	require.NotRegexp(t, keys.TokenPattern, tr.logs.String())
}

func TestShutdownDrainsOpenStreams(t *testing.T) {
	tr := newTrial(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", tr.cfg}, tr.logs, tr.logs) }()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + tr.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	}, 10*time.Second, 20*time.Millisecond)

	demo, err := os.ReadFile(filepath.Join(tr.dir, ".dev", "demo-key"))
	require.NoError(t, err)
	conn, err := grpc.NewClient(tr.extproc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	s, err := extprocv3.NewExternalProcessorClient(conn).Process(context.Background())
	require.NoError(t, err)
	hm := &corev3.HeaderMap{}
	for _, kv := range [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"}, {"authorization", "Bearer " + strings.TrimSpace(string(demo))}, {"content-type", "application/json"}} {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
	}
	require.NoError(t, s.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: hm}}}))
	_, err = s.Recv()
	require.NoError(t, err)

	cancel() // SIGTERM: the open stream may still finish
	require.Eventually(t, func() bool { return strings.Contains(tr.logs.String(), `"msg":"draining"`) }, 5*time.Second, 10*time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("serve returned before the open stream finished: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, s.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte(`{"model":"gpt-4o-mini"}`), EndOfStream: true}}}))
	resp, err := s.Recv()
	require.NoError(t, err)
	require.NotNil(t, resp.GetRequestBody(), "the in-flight request is still forwarded during the drain")
	require.NoError(t, s.CloseSend())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after the last stream ended")
	}
}

func TestServeOnUnixSocket(t *testing.T) {
	tr := newTrial(t)
	sock := filepath.Join(tr.dir, "extproc.sock")
	tr.extproc, tr.target = "unix:"+sock, "unix://"+sock
	tr.writeConfig(t, "")
	tr.start(t)
	fi, err := os.Stat(sock)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "only tollgate's user can connect by default")
	demo, err := os.ReadFile(filepath.Join(tr.dir, ".dev", "demo-key"))
	require.NoError(t, err)
	require.Equal(t, 0, tr.status(t, strings.TrimSpace(string(demo))))
	require.Equal(t, 401, tr.status(t, "tgk_AAAAAAAAAAAA_"+strings.Repeat("b", 49)))
}

// completeRequest drives one whole non-streamed chat request through ext_proc, with a
// provider response reporting 100 input and 10 output tokens.
func (tr *trial) completeRequest(t *testing.T, key string) {
	t.Helper()
	conn, err := grpc.NewClient(tr.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	s, err := extprocv3.NewExternalProcessorClient(conn).Process(context.Background())
	require.NoError(t, err)
	hdr := func(kv ...string) *corev3.HeaderMap {
		hm := &corev3.HeaderMap{}
		for i := 0; i < len(kv); i += 2 {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
		}
		return hm
	}
	msgs := []*extprocv3.ProcessingRequest{
		{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: hdr(
			":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer "+key, "content-type", "application/json")}}},
		{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{
			Body: []byte(`{"model":"gpt-4o-mini","max_tokens":10,"messages":[]}`), EndOfStream: true}}},
		{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: hdr(
			":status", "200", "content-type", "application/json")}}},
		{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
			Body: []byte(`{"usage":{"prompt_tokens":100,"completion_tokens":10,"total_tokens":110}}`), EndOfStream: true}}},
	}
	for _, m := range msgs {
		require.NoError(t, s.Send(m))
		resp, err := s.Recv()
		require.NoError(t, err)
		require.Nil(t, resp.GetImmediateResponse(), "refused: %s", resp.GetImmediateResponse().GetBody())
	}
	require.NoError(t, s.CloseSend())
	_, _ = s.Recv()
}

func (tr *trial) usageJSON(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + tr.admin + "/usage")
	require.NoError(t, err)
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	require.Equal(t, 200, resp.StatusCode, b.String())
	return b.String()
}

func TestSpendSurvivesGracefulRestart(t *testing.T) {
	tr := newTrial(t)
	// gpt-4o-mini at catalog prices: 100 input and 10 output tokens cost 15 + 6 = 21 micro-dollars.
	tr.writeConfig(t, "budget: {embedded: {path: .dev/ledger.json}}\n")
	cfg, err := os.ReadFile(tr.cfg)
	require.NoError(t, err)
	withLimits := strings.Replace(string(cfg), "  - {name: platform}", `  - {name: platform, limits: {usd_lifetime: "1"}}`, 1)
	require.NoError(t, os.WriteFile(tr.cfg, []byte(withLimits), 0o600))

	demo, err := os.ReadFile(filepath.Join(tr.dir, ".dev", "demo-key"))
	require.NoError(t, err)
	key := strings.TrimSpace(string(demo))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", tr.cfg}, tr.logs, tr.logs) }()
	waitReady(t, tr)
	tr.completeRequest(t, key)
	require.Eventually(t, func() bool { return strings.Contains(tr.usageJSON(t), `"used":21,"reserved":0`) },
		5*time.Second, 20*time.Millisecond, tr.usageJSON(t))
	cancel()
	require.NoError(t, <-done)

	tr.start(t)
	require.Contains(t, tr.usageJSON(t), `"used":21,"reserved":0`, "spend survives a graceful restart")
}

func waitReady(t *testing.T, tr *trial) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + tr.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	}, 10*time.Second, 20*time.Millisecond, "not ready; logs:\n%s", tr.logs)
}

func TestSealedAuditContentDecryptsOffline(t *testing.T) {
	id, err := age.GenerateX25519Identity() // the auditor's key; tollgate only gets the recipient
	require.NoError(t, err)
	tr := newTrial(t)
	tr.writeConfig(t, "audit:\n  chain_key: file:.dev/audit-chain-key\n  checkpoint_key: file:.dev/audit-checkpoint.pem\n  content: sealed\n  content_recipient: "+
		id.Recipient().String()+"\n  file: {path: audit/audit.log}\n")
	cfg, err := os.ReadFile(tr.cfg)
	require.NoError(t, err)
	require.NotContains(t, string(cfg), "AGE-SECRET-KEY", "the gateway holds no private key")
	tr.start(t)
	demo, err := os.ReadFile(filepath.Join(tr.dir, ".dev", "demo-key"))
	require.NoError(t, err)
	tr.completeRequest(t, strings.TrimSpace(string(demo)))

	var line string
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(tr.dir, "audit", "audit.log"))
		for l := range strings.SplitSeq(string(b), "\n") {
			if strings.Contains(l, `"sealed"`) {
				line = l
				return true
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond)
	require.NotContains(t, line, "gpt-4o-mini\",\"max_tokens", "the prompt is not in the clear")
	var ev struct {
		Content struct {
			Sealed string `json:"sealed"`
		} `json:"content"`
	}
	require.NoError(t, json.Unmarshal([]byte(line), &ev))
	r, err := age.Decrypt(armor.NewReader(strings.NewReader(ev.Content.Sealed)), id)
	require.NoError(t, err)
	plain, err := io.ReadAll(r)
	require.NoError(t, err)
	var sc audit.SealedContent
	require.NoError(t, json.Unmarshal(plain, &sc))
	require.Equal(t, `{"model":"gpt-4o-mini","max_tokens":10,"messages":[]}`, string(sc.Prompt))
	require.Contains(t, string(sc.Completion), `"prompt_tokens":100`)
}
