package testutil

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// WaitHTTP polls GET url every 50 ms until the server answers with a status
// below 500, and fails the test if that does not happen within timeout. A 5xx
// counts as not ready (a proxy that is up while its backend is not).
//
// For https URLs the server certificate is NOT verified: this is a liveness
// probe only. Use TLSClient for requests whose TLS matters.
func WaitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	c := &http.Client{
		Timeout: time.Second,
		Transport: &http.Transport{
			// Liveness only (see the doc comment): the certificate is not checked.
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			DisableKeepAlives: true,
		},
	}
	if err := waitHTTP(c, url, timeout); err != nil {
		t.Fatalf("testutil: %v", err)
	}
}

func waitHTTP(c *http.Client, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		resp, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s not ready after %s: %v", url, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TLSClient returns a client that trusts only the CA in caFile (PEM, e.g. the
// ca.crt written by examples/devtls) and negotiates h2 or HTTP/1.1 by ALPN
// (h2 when the server offers it, as Envoy's listener does). It has no overall
// timeout, because SSE streams are long: bound requests with a context.
//
// If caFile cannot be loaded, every request made with the client fails with
// that error.
func TLSClient(caFile string) *http.Client {
	return tlsClient(caFile, true)
}

// TLSClientHTTP1 is TLSClient restricted to HTTP/1.1 (ALPN offers only
// http/1.1), for testing the HTTP/1.1 path through Envoy.
func TLSClientHTTP1(caFile string) *http.Client {
	return tlsClient(caFile, false)
}

func tlsClient(caFile string, h2 bool) *http.Client {
	pool, err := loadCA(caFile)
	if err != nil {
		return &http.Client{Transport: errTransport{err}}
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 16,
	}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	if h2 {
		tr.Protocols.SetHTTP2(true)
	}
	return &http.Client{Transport: tr}
}

func loadCA(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("testutil: CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("testutil: CA %s: no PEM certificate", caFile)
	}
	return pool, nil
}

// errTransport fails every request with err.
type errTransport struct{ err error }

func (e errTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return nil, e.err
}

// ErrorBody is the error envelope of OpenAI-style error responses, as Envoy's
// local replies in envoy/envoy.yaml produce them.
type ErrorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	} `json:"error"`
}

// IsJSONContentType reports whether a content-type header value is
// application/json (parameters such as charset are ignored).
func IsJSONContentType(v string) bool {
	mt, _, _ := strings.Cut(v, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}
