package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestDrainTimeoutSettlesAndAuditsOpenStreams holds a forwarded streaming request open past
// the drain timeout: serve must still settle its reservation in the ledger and write its
// audit event before the ledger and the audit trail close.
func TestDrainTimeoutSettlesAndAuditsOpenStreams(t *testing.T) {
	tr := newTrial(t)
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	// Sealed content makes the handler's deferred work (sealing a large prompt, then the
	// event) take long enough that closing the trail without waiting would lose it.
	tr.writeConfig(t, "budget: {embedded: {path: .dev/ledger.json}}\n"+
		"audit:\n  chain_key: file:.dev/audit-chain-key\n  checkpoint_key: file:.dev/audit-checkpoint.pem\n"+
		"  content: sealed\n  content_recipient: "+id.Recipient().String()+"\n  file: {path: audit/audit.log}\n")
	cfg, err := os.ReadFile(tr.cfg)
	require.NoError(t, err)
	cfgText := strings.Replace(string(cfg), "  - {name: platform}", `  - {name: platform, limits: {usd_lifetime: "1"}}`, 1)
	cfgText = strings.Replace(cfgText, `admin: "`+tr.admin+`"}`, `admin: "`+tr.admin+`", drain_timeout: 200ms}`, 1)
	require.NoError(t, os.WriteFile(tr.cfg, []byte(cfgText), 0o600))
	demo, err := os.ReadFile(filepath.Join(tr.dir, ".dev", "demo-key"))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", tr.cfg}, tr.logs, tr.logs) }()
	waitReady(t, tr)

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
	for _, m := range []*extprocv3.ProcessingRequest{
		{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: hdr(
			":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer "+strings.TrimSpace(string(demo)),
			"content-type", "application/json", "x-request-id", "drain-req-1")}}},
		{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{
			Body: []byte(`{"model":"gpt-4o-mini","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"` +
				strings.Repeat("lorem ipsum ", 100_000) + `"}]}`), EndOfStream: true}}},
		{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: hdr(
			":status", "200", "content-type", "text/event-stream")}}},
	} {
		require.NoError(t, s.Send(m))
		resp, err := s.Recv()
		require.NoError(t, err)
		require.Nil(t, resp.GetImmediateResponse(), "refused: %s", resp.GetImmediateResponse().GetBody())
	}

	cancel() // SIGTERM with the stream still open: it outlives the 200ms drain timeout
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop; logs:\n%s", tr.logs)
	}

	require.Contains(t, tr.logs.String(), `"msg":"drain timeout; closing open streams"`)
	audit, err := os.ReadFile(filepath.Join(tr.dir, "audit", "audit.log"))
	require.NoError(t, err)
	var ev struct {
		RequestID  string `json:"request_id"`
		Reserved   int64  `json:"reserved_usd_micros"`
		Cost       int64  `json:"cost_usd_micros"`
		SettleRule string `json:"settle_rule"`
	}
	line, _, _ := strings.Cut(string(audit), "\n")
	require.NoError(t, json.Unmarshal([]byte(line), &ev), "the open stream's audit event is written before the trail closes: %s", audit)
	require.Equal(t, "drain-req-1", ev.RequestID)
	require.Equal(t, "full_reservation", ev.SettleRule, "an unfinished stream is charged its reservation")
	require.Positive(t, ev.Reserved)

	raw, err := os.ReadFile(filepath.Join(tr.dir, ".dev", "ledger.json"))
	require.NoError(t, err)
	var ledger struct {
		State struct {
			Counters []struct {
				Key  string `json:"key"`
				Used int64  `json:"used"`
			} `json:"counters"`
			Holds []json.RawMessage `json:"holds"`
		} `json:"state"`
	}
	require.NoError(t, json.Unmarshal(raw, &ledger))
	require.Empty(t, ledger.State.Holds, "the reservation was settled before the ledger's final flush: %s", raw)
	require.Len(t, ledger.State.Counters, 1, "%s", raw)
	require.Equal(t, ev.Reserved, ledger.State.Counters[0].Used, "the settlement reached the ledger: %s", raw)
}

// blackhole accepts TCP connections and never answers: a hung Redis.
func blackhole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-accepted
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestShutdownIsBoundedWhenAHandlerHangs holds a stream inside a ledger call that never
// returns (a hung Redis with a long timeout): after the drain timeout serve stops it and
// waits for its handler only for a bounded grace, then exits.
func TestShutdownIsBoundedWhenAHandlerHangs(t *testing.T) {
	tr := newTrial(t)
	tr.writeConfig(t, "budget: {ledger: redis, redis: {addrs: [\""+blackhole(t)+"\"], timeout: 1h}}\n")
	cfg, err := os.ReadFile(tr.cfg)
	require.NoError(t, err)
	cfgText := strings.Replace(string(cfg), "  - {name: platform}", `  - {name: platform, limits: {requests_per_minute: 100}}`, 1)
	cfgText = strings.Replace(cfgText, `admin: "`+tr.admin+`"}`, `admin: "`+tr.admin+`", drain_timeout: 100ms}`, 1)
	require.NoError(t, os.WriteFile(tr.cfg, []byte(cfgText), 0o600))
	demo, err := os.ReadFile(filepath.Join(tr.dir, ".dev", "demo-key"))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", tr.cfg}, tr.logs, tr.logs) }()
	require.Eventually(t, func() bool { return strings.Contains(tr.logs.String(), `"msg":"tollgate serving"`) },
		10*time.Second, 20*time.Millisecond, "logs:\n%s", tr.logs)

	conn, err := grpc.NewClient(tr.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	s, err := extprocv3.NewExternalProcessorClient(conn).Process(context.Background())
	require.NoError(t, err)
	hm := &corev3.HeaderMap{}
	for _, kv := range [][2]string{{":method", "POST"}, {":path", "/v1/chat/completions"},
		{"authorization", "Bearer " + strings.TrimSpace(string(demo))}, {"content-type", "application/json"}} {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
	}
	require.NoError(t, s.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: hm}}}))
	_, err = s.Recv()
	require.NoError(t, err)
	// The body triggers the reservation, which hangs on the unanswering Redis.
	require.NoError(t, s.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: []byte(`{"model":"gpt-4o-mini","max_tokens":10,"messages":[]}`), EndOfStream: true}}}))
	require.Eventually(t, func() bool { return tr.status(t, "") == 401 }, 5*time.Second, 20*time.Millisecond) // serving other streams

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop with a hung handler; logs:\n%s", tr.logs)
	}
	require.Contains(t, tr.logs.String(), "streams still running after the shutdown grace")
}
