package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/examples/devtls"
)

// providerMode is how a fake provider answers.
type providerMode string

const (
	answerOK  providerMode = "ok"
	answer429 providerMode = "429"
	answer503 providerMode = "503"
	// answerReset reads the whole request, then closes the connection with a TCP RST before
	// any response byte: a reset in the middle of the exchange, retriable.
	answerReset providerMode = "reset"
	// answerResetAfterStart sends 200 and part of the body, waits until the gateway has
	// passed the response headers on (release), then resets: not retriable any more.
	answerResetAfterStart providerMode = "reset-after-start"
)

// providerRequest is what a fake provider received.
type providerRequest struct {
	Header http.Header
	Host   string
	SNI    string
	Path   string
	Body   []byte
}

// fakeProvider is an HTTPS LLM provider on loopback with its own CA and host name, so that
// a request reaching it over Envoy proves the TLS context (trust, SNI, SAN) of its cluster.
type fakeProvider struct {
	name, host string
	port       int
	caFile     string // PEM of the CA that signed its certificate (and only its)

	mu      sync.Mutex
	mode    providerMode
	release chan struct{} // answerResetAfterStart resets once this is closed
	reqs    []providerRequest
	sent    [][]byte // response bodies sent, in order
}

func startFakeProvider(t *testing.T, name, host string) *fakeProvider {
	t.Helper()
	now := time.Now()
	ca, err := devtls.NewCA(name+" CA", now)
	require.NoError(t, err)
	p := &fakeProvider{name: name, host: host, mode: answerOK, caFile: filepath.Join(t.TempDir(), name+"-ca.crt")}
	require.NoError(t, ca.WriteCert(p.caFile))
	certPEM, keyPEM, err := ca.Issue(devtls.Leaf{CommonName: host, DNSNames: []string{host}, Server: true}, now)
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.port = ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		// HTTP/1.1 only: the reset modes hijack the connection.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	tlsLn := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12})
	go func() { _ = srv.Serve(tlsLn) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

// answer sets how the next requests are answered and forgets earlier requests.
func (p *fakeProvider) answer(m providerMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode, p.reqs, p.sent, p.release = m, nil, nil, make(chan struct{})
}

// releaseReset lets an answerResetAfterStart response reset its connection.
func (p *fakeProvider) releaseReset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.release:
	default:
		close(p.release)
	}
}

func (p *fakeProvider) requests() []providerRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]providerRequest(nil), p.reqs...)
}

func (p *fakeProvider) responses() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.sent...)
}

func (p *fakeProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := providerRequest{Header: r.Header.Clone(), Host: r.Host, Path: r.URL.Path, Body: body}
	if r.TLS != nil {
		rec.SNI = r.TLS.ServerName
	}
	p.mu.Lock()
	p.reqs = append(p.reqs, rec)
	mode, release := p.mode, p.release
	p.mu.Unlock()

	var req struct {
		Model string `json:"model"`
	}
	_ = json.Unmarshal(body, &req)
	var out []byte
	w.Header().Set("content-type", "application/json")
	switch mode {
	case answer429:
		out = fmt.Appendf(nil, `{"error":{"message":"rate limited by %s","type":"rate_limit_error"}}`, p.name)
		w.Header().Set("retry-after", "1")
		w.WriteHeader(http.StatusTooManyRequests)
	case answer503:
		out = fmt.Appendf(nil, `{"error":{"message":"%s is overloaded","type":"server_error"}}`, p.name)
		w.WriteHeader(http.StatusServiceUnavailable)
	case answerReset:
		resetConn(w)
		return
	case answerResetAfterStart:
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"id":"cmpl-partial","model":"`)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second): // the test failed already; do not hang
		}
		resetConn(w)
		return
	default:
		out = fmt.Appendf(nil, `{"id":"cmpl-%s","object":"chat.completion","model":%q,`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"hello from %s"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}`, p.name, req.Model, p.name)
	}
	p.mu.Lock()
	p.sent = append(p.sent, out)
	p.mu.Unlock()
	_, _ = w.Write(out)
}

// resetConn closes the client connection with a TCP RST (SO_LINGER 0).
func resetConn(w http.ResponseWriter) {
	c, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if tc, ok := c.(*tls.Conn); ok {
		// Close the socket under TLS: no close_notify, just the RST.
		if nc, ok := tc.NetConn().(*net.TCPConn); ok {
			_ = nc.SetLinger(0)
			_ = nc.Close()
			return
		}
	}
	_ = c.Close()
}
