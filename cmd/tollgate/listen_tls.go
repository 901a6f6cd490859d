package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// maxPEMFile bounds a certificate, key or CA file read for a listener.
const maxPEMFile = 1 << 20

// errClientNotAllowed refuses a verified client certificate whose SANs are not allow-listed.
var errClientNotAllowed = errors.New("client certificate has no allowed SAN")

// errNoClientCert refuses a handshake without a client certificate where one is required.
var errNoClientCert = errors.New("client certificate required")

// tlsSource is one listener's TLS material (server certificate and key, client CAs) and its
// SAN allow-list. The files are re-read when their content changes (polled, and on SIGHUP):
// handshakes after a successful reload use the new material; connections already open keep
// theirs. A file that fails to load keeps the last good material, logged and counted.
type tlsSource struct {
	listener string // "extproc" or "admin": the metrics label
	field    string // "listen.extproc_tls" or "admin.tls": names the config block in errors
	files    [3]string
	min      uint16
	auth     tls.ClientAuthType
	alpn     []string
	sans     atomic.Pointer[policy.SANAllowList] // nil: client certificates are not checked
	cur      atomic.Pointer[tlsMaterial]
	sum      [32]byte // fingerprint of the files cur was loaded from; owned by the watcher
	log      *zap.Logger
	metrics  *tlsMetrics
}

// tlsMaterial is one loaded generation: the per-handshake config, and the leaf for metrics.
type tlsMaterial struct {
	cfg  *tls.Config
	leaf *x509.Certificate
}

// newTLSSource loads c's files (paths relative to dir). requireClient makes a verified client
// certificate mandatory (ext_proc); otherwise one is verified when given (admin: probes reach
// /healthz without one). Errors name the field and the file, never file contents.
func newTLSSource(listener, field string, c policy.TLSListenerConfig, requireClient bool, dir string, log *zap.Logger, m *tlsMetrics) (*tlsSource, error) {
	min, err := policy.ParseTLSVersion(c.MinVersion)
	if err != nil {
		return nil, fmt.Errorf("%s.min_version: %w", field, err)
	}
	s := &tlsSource{listener: listener, field: field, min: min, log: log, metrics: m, auth: tls.NoClientCert}
	if !requireClient {
		// The admin listener speaks HTTP/1.1; gRPC adds h2 to the ext_proc listener itself.
		s.alpn = []string{"http/1.1"}
	}
	for i, p := range []string{c.CertFile, c.KeyFile, c.ClientCAFile} {
		if p != "" {
			p = strings.TrimPrefix(p, secrets.KindFile+":")
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
		}
		s.files[i] = p
	}
	if c.ClientCAFile != "" {
		s.auth = tls.VerifyClientCertIfGiven
		if requireClient {
			s.auth = tls.RequireAndVerifyClientCert
		}
		s.setSANs(c.AllowedSANs)
	} else if requireClient {
		return nil, fmt.Errorf("%s.client_ca_file: is required", field)
	}
	mat, sum, err := s.load()
	if err != nil {
		return nil, err
	}
	s.cur.Store(mat)
	s.sum = sum
	m.notAfter.WithLabelValues(listener).Set(float64(mat.leaf.NotAfter.Unix()))
	return s, nil
}

// setSANs swaps the allow-list (on start and on a config reload).
func (s *tlsSource) setSANs(sans []string) {
	if s != nil && s.auth != tls.NoClientCert {
		s.sans.Store(policy.NewSANAllowList(sans))
	}
}

// readPEM reads one listener file, bounded.
func readPEM(field, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", field, path, err)
	}
	if len(b) > maxPEMFile {
		return nil, fmt.Errorf("%s: %s: larger than %d bytes", field, path, maxPEMFile)
	}
	return b, nil
}

// load reads the files and builds a handshake config. The fingerprint covers the contents,
// not mtimes: mounted Secrets change through symlink swaps that keep old mtimes.
func (s *tlsSource) load() (*tlsMaterial, [32]byte, error) {
	var raw [3][]byte
	h := sha256.New()
	for i, name := range []string{"cert_file", "key_file", "client_ca_file"} {
		if s.files[i] == "" {
			continue
		}
		b, err := readPEM(s.field+"."+name, s.files[i])
		if err != nil {
			return nil, [32]byte{}, err
		}
		raw[i] = b
		fmt.Fprintf(h, "%d\x00", len(b))
		h.Write(b)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))

	// tls.X509KeyPair's errors describe the mismatch, never the key bytes.
	cert, err := tls.X509KeyPair(raw[0], raw[1])
	if err != nil {
		return nil, sum, fmt.Errorf("%s.cert_file/key_file: %w", s.field, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, sum, fmt.Errorf("%s.cert_file: %w", s.field, err)
		}
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   s.min,
		ClientAuth:   s.auth,
		NextProtos:   s.alpn,
		// A resumed session would skip the client CA check against the current pool; Envoy
		// keeps its connections open, so resumption buys nothing here.
		SessionTicketsDisabled: true,
		VerifyConnection:       s.verifyConnection,
	}
	if s.files[2] != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw[2]) {
			return nil, sum, fmt.Errorf("%s.client_ca_file: %s: no PEM certificate", s.field, s.files[2])
		}
		cfg.ClientCAs = pool
	}
	return &tlsMaterial{cfg: cfg, leaf: cert.Leaf}, sum, nil
}

// verifyConnection runs after crypto/tls verified the client's chain against the client CAs
// (with the client-auth key usage): the leaf must also carry an allowed SAN. Where client
// certificates are optional (admin), a connection without one passes here and is
// authenticated per request instead.
func (s *tlsSource) verifyConnection(cs tls.ConnectionState) error {
	if s.auth == tls.NoClientCert {
		return nil
	}
	if len(cs.PeerCertificates) == 0 {
		if s.auth == tls.RequireAndVerifyClientCert {
			return errNoClientCert
		}
		return nil
	}
	if !s.sans.Load().Allows(cs.PeerCertificates[0]) {
		return fmt.Errorf("%w in %s.allowed_sans (it has %s)", errClientNotAllowed, s.field, policy.DescribeSANs(cs.PeerCertificates[0]))
	}
	return nil
}

// serverConfig is the listener's config: every handshake takes the current material.
func (s *tlsSource) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: s.min,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load().cfg, nil
		},
	}
}

// clientAllowed reports whether a connection's verified client certificate is allow-listed
// now (the list may have been reloaded since the handshake).
func (s *tlsSource) clientAllowed(cs *tls.ConnectionState) bool {
	return s != nil && cs != nil && len(cs.VerifiedChains) > 0 && len(cs.PeerCertificates) > 0 &&
		s.sans.Load().Allows(cs.PeerCertificates[0])
}

// reload re-reads the files. It reports whether new material took effect; on an error, sum
// is the fingerprint of the content that failed (zero when a file could not be read).
func (s *tlsSource) reload() (changed bool, sum [32]byte, err error) {
	mat, sum, err := s.load()
	if err != nil || sum == s.sum {
		return false, sum, err
	}
	s.sum = sum
	s.cur.Store(mat)
	s.metrics.notAfter.WithLabelValues(s.listener).Set(float64(mat.leaf.NotAfter.Unix()))
	return true, sum, nil
}

// watch polls the files every interval, and re-reads them on SIGHUP, until ctx ends. A
// content that fails to load is reported once, not on every tick.
func (s *tlsSource) watch(ctx context.Context, every time.Duration) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(every)
	defer t.Stop()
	var failed *[32]byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		case <-t.C:
		}
		changed, sum, err := s.reload()
		switch {
		case err != nil:
			if failed != nil && *failed == sum {
				continue
			}
			failed = &sum
			s.metrics.reloadFailures.WithLabelValues(s.listener).Inc()
			s.log.Error("tls reload refused; the last good certificate keeps serving", zap.String("listener", s.listener), zap.Error(err))
		case changed:
			failed = nil
			leaf := s.cur.Load().leaf
			s.metrics.reloads.WithLabelValues(s.listener).Inc()
			s.log.Info("tls certificate reloaded", zap.String("listener", s.listener),
				zap.String("subject", leaf.Subject.String()), zap.Time("not_after", leaf.NotAfter))
		default:
			failed = nil
		}
	}
}

// tlsMetrics are the listener TLS series, labelled by listener (extproc, admin).
type tlsMetrics struct {
	reloads, reloadFailures, refused *prometheus.CounterVec
	notAfter                         *prometheus.GaugeVec
}

func newTLSMetrics(reg prometheus.Registerer) *tlsMetrics {
	m := &tlsMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_tls_reloads_total", Help: "Listener certificates reloaded after their files changed.",
		}, []string{"listener"}),
		reloadFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_tls_reload_failures_total", Help: "Listener certificate files that failed to load; the last good ones kept serving.",
		}, []string{"listener"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tollgate_tls_clients_refused_total",
			Help: "Clients refused: at the TLS handshake (no, unknown or not allow-listed client certificate, not TLS), or per stream (ext_proc: a SAN no longer allowed).",
		}, []string{"listener", "stage"}),
		notAfter: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tollgate_tls_cert_not_after_timestamp_seconds", Help: "Expiry of the serving certificate, per listener.",
		}, []string{"listener"}),
	}
	reg.MustRegister(m.reloads, m.reloadFailures, m.refused, m.notAfter)
	return m
}

// Stages at which a client is refused (the stage label).
const (
	stageHandshake = "handshake"
	stageStream    = "stream"
)

// refusalLog counts refused clients and logs them at most once per interval per listener,
// with the number suppressed in between: anyone can open a connection, so the log must not
// become theirs to flood.
type refusalLog struct {
	listener string
	log      *zap.Logger
	metrics  *tlsMetrics
	every    time.Duration
	now      func() time.Time

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// refused records one refusal at stage (counted), or, with stage "", another server error
// (logged only).
func (h *refusalLog) refused(stage, remote string, err error) {
	if stage != "" {
		h.metrics.refused.WithLabelValues(h.listener, stage).Inc()
	}
	h.mu.Lock()
	now := h.now()
	if !h.last.IsZero() && now.Sub(h.last) < h.every {
		h.suppressed++
		h.mu.Unlock()
		return
	}
	suppressed := h.suppressed
	h.last, h.suppressed = now, 0
	h.mu.Unlock()
	msg := "tls client refused"
	if stage == "" {
		msg = "admin server error"
	}
	h.log.Warn(msg, zap.String("listener", h.listener), zap.String("stage", stage), zap.String("remote", remote),
		zap.Int("suppressed_since_last", suppressed), zap.Error(err))
}
