package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/tollgate-ai/tollgate/policy"
)

// handshakeLogEvery bounds how often refused clients are logged, per listener (a variable so
// tests can see every refusal).
var handshakeLogEvery = 10 * time.Second

// errListenerNeedsRestart refuses a reload that changes a listener's address or TLS files.
var errListenerNeedsRestart = errors.New("listener addresses and TLS files are fixed at startup: restart tollgate to apply the change (the running config keeps serving)")

// surfaces are the ext_proc and admin listeners and how each authenticates its clients:
//
//   - ext_proc: plaintext on loopback or a unix socket, or mutual TLS (always with a verified,
//     allow-listed client certificate), checked at the handshake and again for every stream.
//   - admin: /healthz is always open; /metrics, /usage and the detailed /readyz need the
//     bearer token or an allowed client certificate whenever either is configured (a
//     non-loopback admin must configure one: policy validation refuses it otherwise).
//
// The SAN allow-lists and the token hash follow config reloads; addresses and TLS files
// need a restart (a reload changing them is refused); certificate contents are re-read when
// the files change.
type surfaces struct {
	running    policy.Config // as started, for refusing reloads that need a restart
	extprocTLS *tlsSource    // nil: plaintext
	adminTLS   *tlsSource    // nil: plain HTTP
	adminToken atomic.Pointer[policy.AdminToken]
	extprocHS  *refusalLog
	adminHS    *refusalLog
	refused    prometheus.Counter
	log        *zap.Logger
}

// openSurfaces validates cfg (defaults applied) and loads the listeners' TLS material. It is
// the last gate before a socket opens: an ext_proc or admin listener off loopback without
// authentication never starts.
func openSurfaces(cfg policy.Config, dir string, log *zap.Logger, reg prometheus.Registerer) (*surfaces, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := newTLSMetrics(reg)
	s := &surfaces{running: cfg, log: log,
		extprocHS: &refusalLog{listener: "extproc", log: log, metrics: m, every: handshakeLogEvery, now: time.Now},
		adminHS:   &refusalLog{listener: "admin", log: log, metrics: m, every: handshakeLogEvery, now: time.Now},
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollgate_admin_unauthorized_total", Help: "Admin requests refused for a missing or wrong token or client certificate.",
		}),
	}
	reg.MustRegister(s.refused)
	var err error
	if cfg.Listen.ExtProcTLS.Enabled() {
		if s.extprocTLS, err = newTLSSource("extproc", "listen.extproc_tls", cfg.Listen.ExtProcTLS, true, dir, log, m); err != nil {
			return nil, err
		}
	}
	if cfg.Admin.TLS.Enabled() {
		if s.adminTLS, err = newTLSSource("admin", "admin.tls", cfg.Admin.TLS, false, dir, log, m); err != nil {
			return nil, err
		}
	}
	s.apply(cfg)
	if s.adminTLS == nil && s.adminToken.Load() != nil && !policy.IsLoopbackAddr(cfg.Listen.Admin) {
		log.Warn("the admin token crosses the network in cleartext: set admin.tls to protect it")
	}
	return s, nil
}

// checkReload refuses a config that changes what only a restart applies.
func (s *surfaces) checkReload(next policy.Config) error {
	if s == nil {
		return nil
	}
	if changed := s.running.SurfaceChanges(&next); len(changed) > 0 {
		return fmt.Errorf("%s changed: %w", strings.Join(changed, ", "), errListenerNeedsRestart)
	}
	return nil
}

// apply takes the reloadable settings of a validated config: the SAN allow-lists and the
// admin token hash.
func (s *surfaces) apply(cfg policy.Config) {
	if s == nil {
		return
	}
	s.extprocTLS.setSANs(cfg.Listen.ExtProcTLS.AllowedSANs)
	s.adminTLS.setSANs(cfg.Admin.TLS.AllowedSANs)
	var tok *policy.AdminToken
	if cfg.Admin.TokenSHA256 != "" {
		tok, _ = policy.ParseAdminToken(cfg.Admin.TokenSHA256) // validated: cannot fail
	}
	s.adminToken.Store(tok)
}

// watch re-reads certificate files as they change, until ctx ends.
func (s *surfaces) watch(ctx context.Context, every time.Duration) {
	for _, t := range []*tlsSource{s.extprocTLS, s.adminTLS} {
		if t != nil {
			go t.watch(ctx, every)
		}
	}
}

// extprocAuth names the ext_proc listener's authentication, for the startup log.
func (s *surfaces) extprocAuth() string {
	if s.extprocTLS != nil {
		return "mtls"
	}
	return "none (loopback or unix socket)"
}

// adminAuth names the admin listener's authentication, for the startup log.
func (s *surfaces) adminAuth() string {
	var parts []string
	if s.adminToken.Load() != nil {
		parts = append(parts, "token")
	}
	if s.adminTLS != nil && s.adminTLS.auth != tls.NoClientCert {
		parts = append(parts, "mtls")
	}
	if len(parts) == 0 {
		return "none (loopback)"
	}
	return strings.Join(parts, "+")
}

// grpcOptions are the ext_proc server's transport options: TLS credentials that log refused
// handshakes, and a per-stream check of the client certificate against the allow-list in
// force (so a SAN removed by a reload is refused on connections opened before it).
func (s *surfaces) grpcOptions() []grpc.ServerOption {
	if s.extprocTLS == nil {
		return nil
	}
	creds := observedCreds{TransportCredentials: credentials.NewTLS(s.extprocTLS.serverConfig()), failed: s.extprocHS.refused}
	return []grpc.ServerOption{
		grpc.Creds(creds),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := s.authorizeStream(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := s.authorizeStream(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
	}
}

// errStreamRefused is what a client whose certificate is no longer allowed gets.
var errStreamRefused = status.Error(codes.PermissionDenied, "client certificate not allowed")

func (s *surfaces) authorizeStream(ctx context.Context) error {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return errStreamRefused
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || !s.extprocTLS.clientAllowed(&info.State) {
		s.extprocHS.refused(stageStream, p.Addr.String(), errClientNotAllowed)
		return errStreamRefused
	}
	return nil
}

// observedCreds reports every failed server handshake.
type observedCreds struct {
	credentials.TransportCredentials
	failed func(stage, remote string, err error)
}

func (c observedCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	nc, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		c.failed(stageHandshake, conn.RemoteAddr().String(), err)
	}
	return nc, info, err
}

func (c observedCreds) Clone() credentials.TransportCredentials {
	return observedCreds{TransportCredentials: c.TransportCredentials.Clone(), failed: c.failed}
}

// listenAdmin opens the admin listener, with TLS when admin.tls is set.
func (s *surfaces) listenAdmin() (net.Listener, error) {
	l, err := net.Listen("tcp", s.running.Listen.Admin)
	if err != nil {
		return nil, err
	}
	if s.adminTLS != nil {
		return tls.NewListener(l, s.adminTLS.serverConfig()), nil
	}
	return l, nil
}

// adminErrorLog receives net/http's own errors: refused TLS handshakes are counted, and every
// line is logged through the rate-limited refusal log.
func (s *surfaces) adminErrorLog() *log.Logger {
	return log.New(errorLogWriter(func(line string) {
		stage := ""
		if strings.Contains(line, "TLS handshake error") {
			stage = stageHandshake
		}
		s.adminHS.refused(stage, "", errors.New(line))
	}), "", 0)
}

type errorLogWriter func(string)

func (w errorLogWriter) Write(p []byte) (int, error) {
	w(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// adminAuthorized reports whether r may see the protected admin endpoints: it carries the
// bearer token or comes with an allowed client certificate. With neither configured, only a
// loopback admin is open; a nil receiver refuses.
func (s *surfaces) adminAuthorized(r *http.Request) bool {
	if s == nil {
		return false
	}
	tok := s.adminToken.Load()
	mtls := s.adminTLS != nil && s.adminTLS.auth != tls.NoClientCert
	if tok == nil && !mtls {
		return policy.IsLoopbackAddr(s.running.Listen.Admin)
	}
	if mtls && s.adminTLS.clientAllowed(r.TLS) {
		return true
	}
	if tok == nil {
		return false
	}
	presented, ok := bearer(r)
	return ok && tok.Verify(presented)
}

// bearer returns the token of a single `Authorization: Bearer TOKEN` header.
func bearer(r *http.Request) (string, bool) {
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// requireAdmin wraps a protected admin endpoint: unauthorized requests get a 401 that says
// nothing about why (missing, wrong, or a certificate not allowed look the same), and
// nothing presented is logged.
func (s *surfaces) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.adminAuthorized(r) {
			if s != nil {
				s.refused.Inc()
			}
			w.Header().Set("content-type", "application/json")
			w.Header().Set("www-authenticate", `Bearer realm="tollgate-admin"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"unauthorized"}` + "\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
