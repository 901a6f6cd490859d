package testutil

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var testPorts = EnvoyPorts{Listener: 20001, Admin: 20002, ExtProc: 20003, Mock: 20004, Local: 20005}

func readEnvoyYAML(t *testing.T) []byte {
	t.Helper()
	root, err := findRepoRoot()
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(root, "envoy", "envoy.yaml"))
	require.NoError(t, err)
	return b
}

func TestRenderDetectsDrift(t *testing.T) {
	src := string(readEnvoyYAML(t))
	tests := []struct {
		name    string
		mutate  func(string) string
		wantErr string
	}{
		{
			name:    "admin port changed",
			mutate:  func(s string) string { return strings.Replace(s, "port_value: 9901 }", "port_value: 9902 }", 1) },
			wantErr: "admin 127.0.0.1:9901",
		},
		{
			name: "listener rewritten as a block",
			mutate: func(s string) string {
				return strings.Replace(s, "socket_address: { address: 0.0.0.0, port_value: 8443 }",
					"socket_address:\n        address: 0.0.0.0\n        port_value: 8443", 1)
			},
			wantErr: "listener 0.0.0.0:8443",
		},
		{
			name: "second mock endpoint",
			mutate: func(s string) string {
				return s + "\n# x\n    - socket_address: { address: 127.0.0.1, port_value: 9000 }\n"
			},
			wantErr: "mock 127.0.0.1:9000: pattern",
		},
		{
			name:    "tls path moved",
			mutate:  func(s string) string { return strings.ReplaceAll(s, ".dev/tls/server.key", "/etc/tls/server.key") },
			wantErr: "server.key path",
		},
		{
			name:    "extra public listener",
			mutate:  func(s string) string { return s + "\n  address: 0.0.0.0\n" },
			wantErr: "still binds 0.0.0.0",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderEnvoyConfig([]byte(tc.mutate(src)), testPorts, "/tmp/tls")
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestRenderRejectsBadInput(t *testing.T) {
	src := readEnvoyYAML(t)
	p := testPorts
	p.Local = 0
	_, err := renderEnvoyConfig(src, p, "/tmp/tls")
	require.ErrorContains(t, err, "EnvoyPorts.Local")
	_, err = renderEnvoyConfig(src, testPorts, "/tmp/a'b")
	require.ErrorContains(t, err, "unsupported characters")
}

func TestRenderTLSDirUnderDotDev(t *testing.T) {
	out, err := renderEnvoyConfig(readEnvoyYAML(t), testPorts, "/tmp/x/.dev/tls")
	require.NoError(t, err)
	require.Contains(t, string(out), "filename: /tmp/x/.dev/tls/server.crt")
}

func TestLeftoverRE(t *testing.T) {
	for _, s := range []string{"address: 0.0.0.0,", "filename: .dev/tls/server.crt", `"0.0.0.0"`, "{ filename: .dev/tls/x }"} {
		require.True(t, leftoverRE.MatchString(s), s)
	}
	for _, s := range []string{"filename: /a/.dev/tls/server.crt", "address: 10.0.0.0.1", "port_value: 8443"} {
		require.False(t, leftoverRE.MatchString(s), s)
	}
}

func TestRenderIgnoresComments(t *testing.T) {
	src := string(readEnvoyYAML(t)) + "\n# listen on 0.0.0.0 in production; certs live in .dev/tls/\n"
	_, err := renderEnvoyConfig([]byte(src), testPorts, "/tmp/tls")
	require.NoError(t, err)
}

func TestTailLines(t *testing.T) {
	require.Equal(t, "(no output)", tailLines("", 3))
	require.Equal(t, "a\nb", tailLines("a\nb\n", 3))
	require.Equal(t, "c\nd", tailLines("a\nb\nc\nd\n", 2))
}

func TestSafeName(t *testing.T) {
	require.Equal(t, "envoy", safeName("envoy"))
	require.Equal(t, "mock_llm_1", safeName("mock llm/1"))
	require.Equal(t, "process", safeName(".."))
}

func TestEnvoyVersionRE(t *testing.T) {
	m := envoyVersionRE.FindStringSubmatch("envoy  version: 9e5580933739775e8bce696a57a2e1bc99368f23/1.40.0/Clean/RELEASE/BoringSSL")
	require.Equal(t, "1.40", m[1])
	m = envoyVersionRE.FindStringSubmatch("envoy  version: abc/1.41.2/Clean/RELEASE/BoringSSL")
	require.Equal(t, "1.41", m[1])
}

func TestCheckEnvoyVersionFake(t *testing.T) {
	dir := t.TempDir()
	write := func(name, version string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\necho 'envoy  version: abc/"+version+"/Clean/RELEASE/BoringSSL'\n"), 0o755))
		return p
	}
	require.NoError(t, checkEnvoyVersion(write("good", "1.40.3")))
	require.ErrorContains(t, checkEnvoyVersion(write("old", "1.39.0")), "want 1.40")
	require.Error(t, checkExecutable(dir))
	require.NoError(t, checkExecutable(write("exe", "1.40.0")))
	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, nil, 0o644))
	require.Error(t, checkExecutable(plain))
}

func TestWaitHTTPPolls(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNotFound) // any status below 500 means "up"
	}))
	defer srv.Close()
	require.NoError(t, waitHTTP(srv.Client(), srv.URL, 5*time.Second))
	require.GreaterOrEqual(t, calls.Load(), int32(3))

	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer down.Close()
	err := waitHTTP(down.Client(), down.URL, 200*time.Millisecond)
	require.ErrorContains(t, err, "status 502")
}

func TestRenderBootstrap(t *testing.T) {
	src := "listen:\n  socket_address: { address: 0.0.0.0, port_value: 8443 }\ntls: /etc/tls/server.crt # keep\n"
	out, err := renderBootstrap(src, []Rewrite{
		SocketRewrite("0.0.0.0", 8443, 20001),
		{Old: "/etc/tls/server.crt", New: "/tmp/x/server.crt"},
	})
	require.NoError(t, err)
	require.Equal(t, "listen:\n  socket_address: { address: 127.0.0.1, port_value: 20001 }\ntls: /tmp/x/server.crt # keep\n", out)

	tests := []struct {
		name     string
		rewrites []Rewrite
		wantErr  string
	}{
		{"text missing", []Rewrite{SocketRewrite("0.0.0.0", 8443, 1), {Old: "/etc/tls/other.crt", New: "x"}}, `"/etc/tls/other.crt" occurs 0 times`},
		{"text twice", []Rewrite{SocketRewrite("0.0.0.0", 8443, 1), {Old: "tls", New: "x"}}, `"tls" occurs 2 times`},
		{"empty", []Rewrite{SocketRewrite("0.0.0.0", 8443, 1), {}}, `"" occurs`},
		{"public listener left", nil, "still binds 0.0.0.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderBootstrap(src, tc.rewrites)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
