package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

const plantedWebhookToken = "PLANTED-WEBHOOK-TOKEN-0123456789"

// deadWebhook returns a loopback webhook URL nothing listens on, with a token
// in its query that must never be logged.
func deadWebhook(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr + "/ingest?token=" + plantedWebhookToken
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func demoKey(t *testing.T, tr *trial) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tr.dir, ".dev", "demo-key"))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// TestAuditWebhookLossIsVisible points the webhook at a closed port. While
// the gateway runs (not only at shutdown) the loss shows in per-sink metrics,
// in /readyz and in the log, which never names the URL's token. With
// fail_closed, readiness fails and new requests are refused.
func TestAuditWebhookLossIsVisible(t *testing.T) {
	for _, failClosed := range []bool{false, true} {
		t.Run(map[bool]string{false: "fail_open", true: "fail_closed"}[failClosed], func(t *testing.T) {
			tr := newTrial(t)
			fc := "false"
			if failClosed {
				fc = "true"
			}
			tr.writeConfig(t, "audit:\n  chain_key: file:.dev/audit-chain-key\n  fail_closed: "+fc+
				"\n  webhook: {url: \""+deadWebhook(t)+"\", flush_interval: 10ms}\n")
			tr.start(t)
			key := demoKey(t, tr)
			tr.completeRequest(t, key)

			failed := `tollgate_audit_sink_records_total{result="failed",sink="0",type="webhook"} 1`
			require.Eventually(t, func() bool {
				_, m := httpGet(t, "http://"+tr.admin+"/metrics")
				return strings.Contains(m, failed)
			}, 10*time.Second, 20*time.Millisecond, "logs:\n%s", tr.logs)
			_, m := httpGet(t, "http://"+tr.admin+"/metrics")
			require.Contains(t, m, `tollgate_audit_sink_records_total{result="delivered",sink="0",type="webhook"} 0`)
			require.Contains(t, m, `tollgate_audit_sink_retries_total{sink="0",type="webhook"} 4`)
			require.Contains(t, m, `tollgate_audit_sink_up{sink="0",type="webhook"} 0`)
			require.Contains(t, m, `tollgate_audit_queue_bytes 0`)
			require.NotContains(t, m, plantedWebhookToken)
			require.NotContains(t, m, "127.0.0.1")

			code, body := httpGet(t, "http://"+tr.admin+"/readyz")
			require.Contains(t, body, `"audit":{"healthy":false,"fail_closed":`+fc)
			require.Contains(t, body, `{"sink":0,"type":"webhook","healthy":false,"delivered":0,"failed":1,"dropped":0,"retries":4}`)
			require.NotContains(t, body, plantedWebhookToken)

			logs := tr.logs.String()
			require.Contains(t, logs, "audit webhook delivery failing")
			require.NotContains(t, logs, plantedWebhookToken)
			require.NotContains(t, logs, "/ingest")

			if !failClosed {
				require.Equal(t, http.StatusOK, code)
				require.Equal(t, 0, tr.status(t, key), "fail open: requests still go through")
				return
			}
			require.Equal(t, http.StatusServiceUnavailable, code, body)
			require.Equal(t, http.StatusServiceUnavailable, tr.status(t, key), "fail closed: the next request is refused")
		})
	}
}

// TestAuditVerifyLiveFile runs `tollgate audit verify` on the file a running
// gateway is writing: it passes with an "unsealed tail" note; an edited copy
// of the same file fails.
func TestAuditVerifyLiveFile(t *testing.T) {
	tr := newTrial(t)
	tr.writeConfig(t, "audit:\n  chain_key: file:.dev/audit-chain-key\n  checkpoint_key: file:.dev/audit-checkpoint.pem\n"+
		"  queue_max_bytes: 1048576\n  file: {path: audit/audit.log}\n")
	tr.start(t)
	_, m := httpGet(t, "http://"+tr.admin+"/metrics")
	require.Contains(t, m, "tollgate_audit_queue_max_bytes 1.048576e+06", "audit.queue_max_bytes reaches the emitter")
	tr.completeRequest(t, demoKey(t, tr))
	live := filepath.Join(tr.dir, "audit", "audit.log")
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(live)
		return bytes.Contains(b, []byte(`"seq":1,`))
	}, 5*time.Second, 20*time.Millisecond)

	args := []string{"audit", "verify", "--chain-key", "file:" + filepath.Join(tr.dir, ".dev", "audit-chain-key"),
		"--checkpoint-pub", filepath.Join(tr.dir, ".dev", "audit-checkpoint.pub.pem")}
	var out, errOut bytes.Buffer
	require.NoError(t, run(context.Background(), append(args, live), &out, &errOut), "%s%s", &out, &errOut)
	require.Contains(t, out.String(), "OK (unsealed tail)")
	require.Contains(t, out.String(), "unsealed tail: seq 1..1 (1 record(s))")

	b, err := os.ReadFile(live)
	require.NoError(t, err)
	edited := filepath.Join(t.TempDir(), "audit.log")
	require.NoError(t, os.WriteFile(edited, bytes.Replace(b, []byte(`"status":200`), []byte(`"status":201`), 1), 0o600))
	out.Reset()
	err = run(context.Background(), append(args, edited), &out, &errOut)
	require.ErrorContains(t, err, "record modified")
	require.Contains(t, out.String(), "FAIL ")
}

// TestAuditLossLogIsRateLimited: a failing sink logs at once, then at most
// once per interval with the number of failures in between.
func TestAuditLossLogIsRateLimited(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	now := time.Date(2026, 8, 17, 10, 0, 0, 0, time.UTC)
	l := newLossLog(zap.New(core), time.Minute, func() time.Time { return now })
	boom := errors.New("disk full")
	l.sinkError(0, "file", boom)
	l.sinkError(0, "file", boom)
	l.sinkError(1, "webhook", boom) // another sink has its own budget
	l.sinkError(0, "file", boom)
	require.Equal(t, 2, logs.Len())
	now = now.Add(time.Minute)
	l.sinkError(0, "file", boom)
	l.dropped(3)
	all := logs.All()
	require.Len(t, all, 4)
	require.Equal(t, "audit sink write failing", all[0].Message)
	require.Equal(t, int64(0), all[0].ContextMap()["suppressed"])
	require.Equal(t, "webhook", all[1].ContextMap()["sink_type"])
	require.Equal(t, int64(2), all[2].ContextMap()["suppressed"], "the two in between are counted")
	require.Equal(t, "audit events dropped", all[3].Message)
	require.Equal(t, int64(3), all[3].ContextMap()["events"])
}

// TestAuditVerifyEnds: `tollgate audit verify` fails a rotated set missing its
// oldest or newest file; --allow-retention accepts the first (a note), never
// the second; --sealed fails a set that ends unsealed.
func TestAuditVerifyEnds(t *testing.T) {
	dir := t.TempDir()
	chainKey := []byte("cli-test-chain-key-0123456789abc")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "chain-key"), chainKey, 0o600))
	priv, pubPEM, err := audit.GenerateCheckpointKey()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cp.pub"), pubPEM, 0o600))
	path := filepath.Join(dir, "audit.log")
	fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: path, MaxBytes: 600, Fsync: audit.FsyncNever, CheckpointKey: priv})
	require.NoError(t, err)
	e, err := audit.NewEmitter(audit.EmitterConfig{ChainKey: chainKey}, fs)
	require.NoError(t, err)
	for i := range 6 {
		e.Emit(&audit.Event{RequestID: "req-" + strconv.Itoa(i), Endpoint: "chat_completions", Status: 200,
			Decision: audit.DecisionAllow, Reason: "ok", Complete: true})
	}
	require.NoError(t, e.Close(context.Background()))
	var files []string // oldest first
	for i := 1; ; i++ {
		f := path + "." + strconv.Itoa(i)
		if _, err := os.Stat(f); err != nil {
			break
		}
		files = append(files, f)
	}
	files = append(files, path)
	require.GreaterOrEqual(t, len(files), 3)

	verify := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), append([]string{"audit", "verify", "--chain-key", "file:" + filepath.Join(dir, "chain-key"),
			"--checkpoint-pub", filepath.Join(dir, "cp.pub")}, args...), &out, &errOut)
		return out.String(), err
	}
	out, err := verify(files...)
	require.NoError(t, err, out)
	out, err = verify(append([]string{"--sealed"}, files...)...)
	require.NoError(t, err, out)

	out, err = verify(files[1:]...)
	require.ErrorIs(t, err, audit.ErrMissing)
	require.Contains(t, out, "in file 2 of its chain: 1 earlier file(s) are not in the set")
	require.Contains(t, out, "verify with --allow-retention")
	out, err = verify(append([]string{"--allow-retention"}, files[1:]...)...)
	require.NoError(t, err, out)
	require.Contains(t, out, "note: the set starts at seq")

	out, err = verify(append([]string{"--allow-retention"}, files[:2]...)...)
	require.ErrorIs(t, err, audit.ErrMissing)
	require.Contains(t, out, "FAIL "+files[1]+":")
	require.Contains(t, out, "file(s) after it removed")
}
