package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/policy"
)

// testAdminToken is the admin bearer token of these tests.
const testAdminToken = "admin-token-5f1c0e2b9a7d4c3e8b6a0f1d2c3b4a59"

func sha256Hex(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }

func hashToken(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	prev := adminTokenInput
	adminTokenInput = strings.NewReader(stdin)
	defer func() { adminTokenInput = prev }()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"admin", "hash-token"}, args...), &out, &errb)
	if err != nil {
		for _, secret := range append([]string{strings.TrimSpace(stdin)}, args...) {
			if len(secret) > 2 {
				require.NotContains(t, err.Error()+out.String()+errb.String(), secret, "the token is never echoed")
			}
		}
	}
	return out.String(), err
}

func TestAdminHashToken(t *testing.T) {
	tests := []struct {
		name, stdin string
		args        []string
		want        string
		wantErr     error
	}{
		{name: "token with a newline", stdin: testAdminToken + "\n", want: sha256Hex(testAdminToken) + "\n"},
		{name: "token with CRLF", stdin: testAdminToken + "\r\n", want: sha256Hex(testAdminToken) + "\n"},
		{name: "token without newline", stdin: testAdminToken, want: sha256Hex(testAdminToken) + "\n"},
		{name: "too short", stdin: "hunter2-hunter2\n", wantErr: policy.ErrWeakToken},
		{name: "a space inside", stdin: "admin token 5f1c0e2b9a7d4c3e8b6a0f1d2c3b4a59\n", wantErr: policy.ErrWeakToken},
		{name: "two lines", stdin: testAdminToken + "\n" + testAdminToken + "\n", wantErr: policy.ErrWeakToken},
		{name: "empty", stdin: "", wantErr: policy.ErrWeakToken},
		{name: "huge", stdin: strings.Repeat("a", 10000), wantErr: policy.ErrWeakToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := hashToken(t, tc.stdin, tc.args...)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Empty(t, out)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, out)
		})
	}

	out, err := hashToken(t, "", testAdminToken)
	require.ErrorContains(t, err, "read from stdin")
	require.NotContains(t, err.Error(), testAdminToken, "a token given as an argument is not echoed")
	require.Empty(t, out)
	_, err = hashToken(t, "", "-h")
	require.True(t, errors.Is(err, flag.ErrHelp))
	err = run(context.Background(), []string{"admin", "rotate"}, io.Discard, io.Discard)
	require.ErrorContains(t, err, `unknown subcommand "rotate"`)
}

// adminGet is GET url with an optional Authorization header; it returns status, headers, body.
func adminGet(t *testing.T, c *http.Client, url string, authorization ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for _, a := range authorization {
		req.Header.Add("Authorization", a)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// TestAdminTokenAuth binds the admin listener on every interface with a token: /healthz and
// the bare /readyz stay open for probes, everything else needs the token.
func TestAdminTokenAuth(t *testing.T) {
	tr := newTrial(t)
	_, port, err := net.SplitHostPort(tr.admin)
	require.NoError(t, err)
	tr.setListen(t, `{extproc: "`+tr.extproc+`", admin: "0.0.0.0:`+port+`"}`, "admin: {token_sha256: "+sha256Hex(testAdminToken)+"}\n")
	tr.start(t)
	base := "http://" + tr.admin
	c := http.DefaultClient
	wrong := []struct{ name, header string }{
		{"wrong token", "Bearer " + strings.Replace(testAdminToken, "5f1c", "5f1d", 1)},
		{"token prefix", "Bearer " + testAdminToken[:len(testAdminToken)-1]},
		{"the stored hash", "Bearer " + sha256Hex(testAdminToken)},
		{"basic scheme", "Basic " + testAdminToken},
		{"no scheme", testAdminToken},
	}

	for _, path := range []string{"/metrics", "/usage"} {
		t.Run(path, func(t *testing.T) {
			code, hdr, body := adminGet(t, c, base+path)
			require.Equal(t, http.StatusUnauthorized, code, "missing token")
			require.JSONEq(t, `{"error":"unauthorized"}`, body)
			require.Equal(t, `Bearer realm="tollgate-admin"`, hdr.Get("www-authenticate"))
			for _, w := range wrong {
				code, _, wbody := adminGet(t, c, base+path, w.header)
				require.Equal(t, http.StatusUnauthorized, code, w.name)
				require.Equal(t, body, wbody, "%s: a wrong token looks exactly like a missing one", w.name)
			}
			code, _, _ = adminGet(t, c, base+path, "Bearer "+testAdminToken, "Bearer "+testAdminToken)
			require.Equal(t, http.StatusUnauthorized, code, "two Authorization headers")
			code, _, body = adminGet(t, c, base+path, "bearer "+testAdminToken)
			require.Equal(t, http.StatusOK, code, body)
		})
	}
	t.Run("/healthz is open", func(t *testing.T) {
		code, _, body := adminGet(t, c, base+"/healthz")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "ok\n", body)
	})
	t.Run("/readyz: the status for anyone, details with the token", func(t *testing.T) {
		code, _, body := adminGet(t, c, base+"/readyz")
		require.Equal(t, http.StatusOK, code)
		require.JSONEq(t, `{"ready":true}`, body)
		code, _, body = adminGet(t, c, base+"/readyz", wrong[0].header)
		require.Equal(t, http.StatusOK, code)
		require.JSONEq(t, `{"ready":true}`, body)
		code, _, body = adminGet(t, c, base+"/readyz", "Bearer "+testAdminToken)
		require.Equal(t, http.StatusOK, code)
		var full map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &full))
		require.Equal(t, true, full["ready"])
		require.Contains(t, full, "keys")
		require.Contains(t, full, "config_loaded_at")
	})
	t.Run("tollgate usage", func(t *testing.T) {
		var out bytes.Buffer
		err := run(context.Background(), []string{"usage", "--admin", tr.admin}, &out, &out)
		require.ErrorContains(t, err, "401")
		require.ErrorContains(t, err, "--token-file")
		tokFile := filepath.Join(tr.dir, "admin-token")
		require.NoError(t, os.WriteFile(tokFile, []byte(testAdminToken+"\n"), 0o600))
		out.Reset()
		require.NoError(t, run(context.Background(), []string{"usage", "--admin", "http://" + tr.admin, "--token-file", tokFile, "--json"}, &out, &out))
		require.Contains(t, out.String(), `"limits"`)
	})
	t.Run("a rotated token applies on reload", func(t *testing.T) {
		next := "next-admin-token-00000000000000000000000000000"
		tr.setListen(t, `{extproc: "`+tr.extproc+`", admin: "0.0.0.0:`+port+`"}`, "admin: {token_sha256: "+sha256Hex(next)+"}\n")
		require.Eventually(t, func() bool {
			code, _, _ := adminGet(t, c, base+"/metrics", "Bearer "+next)
			return code == http.StatusOK
		}, 10*time.Second, 20*time.Millisecond)
		code, _, _ := adminGet(t, c, base+"/metrics", "Bearer "+testAdminToken)
		require.Equal(t, http.StatusUnauthorized, code, "the old token no longer works")
		tr.setListen(t, `{extproc: "`+tr.extproc+`", admin: "0.0.0.0:`+port+`"}`, "")
		require.Eventually(t, func() bool { return strings.Contains(tr.logs.String(), "listen.admin: a non-loopback address needs") },
			10*time.Second, 20*time.Millisecond, "removing the token is refused like any invalid config")
		code, _, _ = adminGet(t, c, base+"/metrics")
		require.Equal(t, http.StatusUnauthorized, code, "and the last good config keeps protecting /metrics")
	})
	logs := tr.logs.String()
	require.Contains(t, logs, `"admin_auth":"token"`)
	require.Contains(t, logs, "admin token crosses the network in cleartext")
	require.NotContains(t, logs, testAdminToken)
	require.NotContains(t, logs, wrong[0].header[len("Bearer "):])
}

// TestAdminLoopbackStaysOpenWithoutToken: the default admin (loopback, no token) answers
// everything, as before; with a token configured even a loopback admin asks for it.
func TestAdminLoopbackStaysOpenWithoutToken(t *testing.T) {
	tr := newTrial(t)
	tr.start(t)
	for _, path := range []string{"/metrics", "/usage", "/healthz"} {
		code, _, _ := adminGet(t, http.DefaultClient, "http://"+tr.admin+path)
		require.Equal(t, http.StatusOK, code, path)
	}
	_, _, body := adminGet(t, http.DefaultClient, "http://"+tr.admin+"/readyz")
	require.Contains(t, body, `"keys":`)

	tr.writeConfig(t, "admin: {token_sha256: "+sha256Hex(testAdminToken)+"}\n")
	require.Eventually(t, func() bool {
		code, _, _ := adminGet(t, http.DefaultClient, "http://"+tr.admin+"/metrics")
		return code == http.StatusUnauthorized
	}, 10*time.Second, 20*time.Millisecond)
	_, _, body = adminGet(t, http.DefaultClient, "http://"+tr.admin+"/readyz")
	require.JSONEq(t, `{"ready":true}`, body)
}

// TestAdminMTLS serves admin over TLS on every interface with client certificates as the
// only authentication: probes without a certificate reach /healthz and the bare /readyz.
func TestAdminMTLS(t *testing.T) {
	tr := newTrial(t)
	p := newPKI(t, tr.dir)
	_, port, err := net.SplitHostPort(tr.admin)
	require.NoError(t, err)
	const promSAN = "spiffe://tollgate.test/ns/monitoring/sa/prometheus"
	tr.setListen(t, `{extproc: "`+tr.extproc+`", admin: "0.0.0.0:`+port+`"}`, "admin: {tls: "+p.tlsBlock(promSAN)+"}\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", tr.cfg}, tr.logs, tr.logs) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS(p.pool, certs...)}}
	}
	base := "https://" + tr.admin
	anon := client()
	require.Eventually(t, func() bool {
		resp, err := anon.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "logs:\n%s", tr.logs)

	code, _, _ := adminGet(t, anon, base+"/metrics")
	require.Equal(t, http.StatusUnauthorized, code)
	_, _, body := adminGet(t, anon, base+"/readyz")
	require.JSONEq(t, `{"ready":true}`, body)

	prom := client(p.client(t, p.ca, devtls.Leaf{URIs: []string{promSAN}, Client: true}))
	code, _, body = adminGet(t, prom, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "tollgate_admin_unauthorized_total 1")
	_, _, body = adminGet(t, prom, base+"/readyz")
	require.Contains(t, body, `"keys":`)
	var out bytes.Buffer
	cert, key, err := p.ca.IssueFiles(p.dir, "prom", devtls.Leaf{URIs: []string{promSAN}, Client: true}, time.Now())
	require.NoError(t, err)
	require.NoError(t, run(context.Background(), []string{"usage", "--admin", base, "--cacert", p.caFile, "--cert", cert, "--key", key, "--json"}, &out, &out))
	require.Contains(t, out.String(), `"limits"`)

	for name, c := range map[string]*http.Client{
		"another CA":     client(p.client(t, p.other, devtls.Leaf{URIs: []string{promSAN}, Client: true})),
		"SAN not listed": client(p.client(t, p.ca, devtls.Leaf{URIs: []string{envoySAN}, Client: true})),
	} {
		_, err := c.Get(base + "/healthz")
		require.Error(t, err, "%s: the handshake is refused", name)
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	resp, err := plain.Get("http://" + tr.admin + "/metrics")
	if err == nil {
		resp.Body.Close()
		require.NotEqual(t, http.StatusOK, resp.StatusCode, "plain HTTP gets no metrics")
	}
	require.Eventually(t, func() bool { return strings.Contains(tr.logs.String(), `"listener":"admin"`) }, 5*time.Second, 20*time.Millisecond)
	require.Contains(t, tr.logs.String(), `"admin_auth":"mtls"`)
}
