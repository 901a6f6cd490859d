package testutil_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/test/testutil"
)

func TestRepoRoot(t *testing.T) {
	root := testutil.RepoRoot(t)
	require.FileExists(t, filepath.Join(root, "go.mod"))
	require.FileExists(t, filepath.Join(root, "envoy", "envoy.yaml"))
}

func TestFreePort(t *testing.T) {
	port := testutil.FreePort(t)
	require.Positive(t, port)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err, "the port must be bindable")
	l.Close()

	p := testutil.FreeEnvoyPorts(t)
	seen := map[int]bool{}
	for _, port := range []int{p.Listener, p.Admin, p.ExtProc, p.Mock, p.Local} {
		require.Positive(t, port)
		require.False(t, seen[port], "ports must be distinct")
		seen[port] = true
	}
}

func TestRenderEnvoyConfig(t *testing.T) {
	p := testutil.EnvoyPorts{Listener: 21001, Admin: 21002, ExtProc: 21003, Mock: 21004, Local: 21005}
	tlsDir := t.TempDir()
	out := testutil.RenderEnvoyConfig(t, "", p, tlsDir)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	s := string(b)

	for _, want := range []string{
		"socket_address: { address: 127.0.0.1, port_value: 21001 }",
		"socket_address: { address: 127.0.0.1, port_value: 21002 }",
		"socket_address: { address: 127.0.0.1, port_value: 21003 }",
		"socket_address: { address: 127.0.0.1, port_value: 21004 }",
		"socket_address: { address: 127.0.0.1, port_value: 21005 }",
		"filename: " + tlsDir + "/server.crt",
		"filename: " + tlsDir + "/server.key",
	} {
		require.Equal(t, 1, strings.Count(s, want), want)
	}
	for _, gone := range []string{"port_value: 8443", "port_value: 9901", "port_value: 50051", "port_value: 9000 ", "port_value: 8000 "} {
		require.NotContains(t, s, gone)
	}
	// Provider endpoints are left alone.
	require.Contains(t, s, "socket_address: { address: api.openai.com, port_value: 443 }")
	// The source file is untouched.
	src, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "envoy", "envoy.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(src), "socket_address: { address: 0.0.0.0, port_value: 8443 }")
}

func TestStartProcess(t *testing.T) {
	cmd := exec.Command("sh", "-c", `echo hello-out; echo hello-err >&2; exec sleep 60`)
	p := testutil.StartProcess(t, "sleeper", cmd)
	require.Eventually(t, func() bool {
		logs := p.Logs()
		return strings.Contains(logs, "hello-out") && strings.Contains(logs, "hello-err")
	}, 5*time.Second, 20*time.Millisecond)
	require.Error(t, p.Err(), "still running")
	require.Positive(t, p.Pid())

	start := time.Now()
	p.Stop()
	require.Less(t, time.Since(start), 4*time.Second, "SIGTERM is enough for sleep")
	select {
	case <-p.Done():
	default:
		t.Fatal("Done must be closed after Stop")
	}
	require.Error(t, p.Err(), "killed by a signal")
	p.Stop() // idempotent
	require.FileExists(t, p.LogPath())
}

func TestStartProcessExitCode(t *testing.T) {
	p := testutil.StartProcess(t, "true", exec.Command("sh", "-c", "exit 0"))
	<-p.Done()
	require.NoError(t, p.Err())
}

// TestTLSClient checks both client flavours against a server that uses the
// devtls certificates and offers h2 and http/1.1, as Envoy's listener does.
func TestTLSClient(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, devtls.Write(dir, nil, time.Now()))
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, devtls.CertFile), filepath.Join(dir, devtls.KeyFile))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) }),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	url := "https://" + ln.Addr().String() + "/"

	testutil.WaitHTTP(t, url, 5*time.Second)

	ca := filepath.Join(dir, devtls.CAFile)
	for _, tc := range []struct {
		name   string
		client *http.Client
		want   string
	}{
		{"alpn", testutil.TLSClient(ca), "HTTP/2.0"},
		{"http1", testutil.TLSClientHTTP1(ca), "HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.client.Get(url)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tc.want, string(body))
			require.Equal(t, tc.want, resp.Proto)
		})
	}

	// A client that trusts another CA must fail the handshake.
	other := t.TempDir()
	require.NoError(t, devtls.Write(other, nil, time.Now()))
	_, err = testutil.TLSClient(filepath.Join(other, devtls.CAFile)).Get(url)
	require.Error(t, err)

	// A missing CA file surfaces on the first request.
	_, err = testutil.TLSClient(filepath.Join(dir, "missing.crt")).Get(url)
	require.ErrorContains(t, err, "missing.crt")
}

func TestIsJSONContentType(t *testing.T) {
	require.True(t, testutil.IsJSONContentType("application/json"))
	require.True(t, testutil.IsJSONContentType("Application/JSON; charset=utf-8"))
	require.False(t, testutil.IsJSONContentType("text/plain"))
	require.False(t, testutil.IsJSONContentType(""))
}
