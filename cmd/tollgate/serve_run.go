package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/tollgate-ai/tollgate/extproc"
	"github.com/tollgate-ai/tollgate/policy"
)

// Shutdown bounds besides listen.drain_timeout.
const (
	// stopGrace bounds how long shutdown waits, after the drain timeout stopped the open
	// streams, for their handlers to settle and emit their audit events. It exceeds
	// extproc's settlement timeout (2s).
	stopGrace = 5 * time.Second
	// auditCloseTimeout bounds flushing and closing the audit trail.
	auditCloseTimeout = 5 * time.Second
	// adminShutdownTimeout bounds closing the admin listener's open requests.
	adminShutdownTimeout = 2 * time.Second
)

// runServe runs `tollgate serve` until ctx ends (a signal) or a listener fails. Its steps:
// read the config and build the logger, open the ledger, build the gateway, open the
// surfaces (listeners) and the audit trail, start serving, wait, drain, then close.
//
// The shutdown order is fixed: stop accepting and drain the open streams within
// listen.drain_timeout, wait (bounded by stopGrace) for their handlers' deferred
// settlement and audit event, shut the admin listener, then close the audit trail and
// the ledger. The closes are deferred in the reverse of that order, so every early
// return also closes what was opened.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfgPath, cpuProfile, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		stopProfile, err := startCPUProfile(cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile() // after shutdown (deferred first, runs last)
	}
	l, log, err := readServeConfig(cfgPath, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	traces, err := openTracing(ctx, log.Named("tracing"))
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer traces.shutdown() // after the streams ended (below), so their spans are flushed
	cfg := l.cfg

	ledger, err := openLedger(ctx, cfg.Budget, l.dir, log.Named("ledger"))
	if err != nil {
		return err
	}
	defer closeLedger(ledger, log)

	g, reg, err := buildGateway(cfgPath, cfg.Budget, ledger, log)
	if err != nil {
		return err
	}
	surf, lis, adminLis, err := openListeners(cfg, l.dir, log, reg)
	if err != nil {
		return err
	}
	g.surfaces = surf
	auditCfg, closeAudit, err := openAudit(cfg.Audit, l.dir, stdout, log, reg)
	if err != nil {
		// Nothing serves yet: free the addresses, so a caller (or a restart in the same
		// process) can bind them again.
		_ = lis.Close()
		_ = adminLis.Close()
		return err
	}
	g.audit = auditHealthOf(auditCfg)
	defer closeAuditTrail(closeAudit, log)

	s := newServers(g, log, reg, surf, auditCfg, cfg.Metrics, traces)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go g.watch(watchCtx, cfg.Reload)
	surf.watch(watchCtx, cfg.Reload)

	errc := s.start(lis, adminLis)
	serveErr := waitForStop(ctx, errc)
	s.shutdown(stopWatch, cfg.Listen.DrainTimeout)
	return serveErr
}

// parseServeFlags parses serve's flags and returns the config path and the CPU profile path
// ("" for none).
func parseServeFlags(args []string, stderr io.Writer) (string, string, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "tollgate.yaml", "config file (YAML)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file at shutdown (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return "", "", err
	}
	return *cfgPath, *cpuProfile, nil
}

// startCPUProfile profiles the process's CPU into path (runtime/pprof) until the returned
// function is called. Used by the load harness (make bench) to show where Tollgate spends
// its time; the profile holds function names and sample counts, no request data.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// readServeConfig reads the config (with defaults) and builds the root logger from it. The
// first load decides the log settings; a broken config never starts a server.
func readServeConfig(path string, stderr io.Writer) (*loaded, *zap.Logger, error) {
	l, err := readConfig(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	l.cfg.ApplyDefaults()
	log, err := newLogger(l.cfg.Log.Level, l.cfg.Log.Format, stderr)
	if err != nil {
		return nil, nil, fmt.Errorf("log.level: %w", err)
	}
	return l, log, nil
}

// closeLedger closes the budget ledger, logging a failure.
func closeLedger(ledger *ledgerHandle, log *zap.Logger) {
	if err := ledger.Close(); err != nil {
		log.Error("closing the budget ledger", zap.Error(err))
	}
}

// buildGateway loads and compiles the config into a gateway on ledger, and creates the
// metrics registry with the config and ledger metrics.
func buildGateway(path string, b policy.BudgetConfig, ledger *ledgerHandle, log *zap.Logger) (*gateway, *prometheus.Registry, error) {
	g := &gateway{path: path, log: log.Named("config"), ledger: ledger.Ledger, ledgerH: ledger, budget: b}
	if err := g.load(); err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tollgate_config_reloads_total", Help: "Config reloads that took effect.",
	}, func() float64 { return float64(g.reloads.Load()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tollgate_config_reload_failures_total", Help: "Config reloads refused; the last good config kept serving.",
	}, func() float64 { return float64(g.failed.Load()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tollgate_config_current",
		Help: "1 when the config in force is the config files' current content, 0 from a refused reload until one takes effect.",
	}, func() float64 {
		if g.configCurrent() {
			return 1
		}
		return 0
	}))
	ledger.register(reg)
	return g, reg, nil
}

// openListeners sets up the listeners' authentication and opens the ext_proc and admin
// listeners. If the admin listener fails, the ext_proc listener is closed.
func openListeners(cfg policy.Config, dir string, log *zap.Logger, reg prometheus.Registerer) (*surfaces, net.Listener, net.Listener, error) {
	surf, err := openSurfaces(cfg, dir, log.Named("listen"), reg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("config: %w", err)
	}
	mode, _ := policy.ParseSocketMode(cfg.Listen.ExtProcSocketMode) // validated with the config
	lis, err := listen(cfg.Listen.ExtProc, mode)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("listen.extproc: %w", err)
	}
	adminLis, err := surf.listenAdmin()
	if err != nil {
		lis.Close()
		return nil, nil, nil, fmt.Errorf("listen.admin: %w", err)
	}
	return surf, lis, adminLis, nil
}

// closeAuditTrail flushes and closes the audit trail within auditCloseTimeout, logging a
// failure.
func closeAuditTrail(closeAudit func(context.Context) error, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), auditCloseTimeout)
	defer cancel()
	if err := closeAudit(ctx); err != nil {
		log.Error("closing the audit trail", zap.Error(err))
	}
}

// servers are the ext_proc server and the admin server of one serve run.
type servers struct {
	g     *gateway
	log   *zap.Logger
	surf  *surfaces
	srv   *extproc.Server
	gs    *grpc.Server
	admin *http.Server
}

// newServers builds the ext_proc server (with metrics, and audit when auditCfg is set) on
// its gRPC server, and the admin server.
func newServers(g *gateway, log *zap.Logger, reg *prometheus.Registry, surf *surfaces, auditCfg *extproc.AuditConfig, m policy.MetricsConfig, traces *tracing) *servers {
	opts := []extproc.Option{extproc.WithMetrics(extproc.NewMetrics(reg, extproc.MetricsOptions{PerKeyLabels: m.PerKeyLabels})),
		extproc.WithTracing(traces.provider())}
	if auditCfg != nil {
		opts = append(opts, extproc.WithAudit(*auditCfg))
	}
	srv := extproc.New(g, log, opts...)
	gs := grpc.NewServer(append(extproc.GRPCServerOptions(), surf.grpcOptions()...)...)
	srv.Register(gs)
	admin := &http.Server{Handler: adminHandler(g, reg, surf), ErrorLog: surf.adminErrorLog(), ReadHeaderTimeout: 5 * time.Second}
	return &servers{g: g, log: log, surf: surf, srv: srv, gs: gs, admin: admin}
}

// start serves ext_proc on lis and the admin endpoints on adminLis, then reports ready. The
// channel receives the error of a listener that stops serving.
func (s *servers) start(lis, adminLis net.Listener) <-chan error {
	errc := make(chan error, 2)
	go func() { errc <- s.gs.Serve(lis) }()
	go func() {
		if err := s.admin.Serve(adminLis); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	s.g.ready.Store(true)
	s.log.Info("tollgate serving",
		zap.String("version", version),
		zap.String("extproc", lis.Addr().String()),
		zap.String("extproc_auth", s.surf.extprocAuth()),
		zap.String("admin", adminLis.Addr().String()),
		zap.String("admin_auth", s.surf.adminAuth()),
		zap.Int("keys", s.g.Snapshot().KeyCount()))
	return errc
}

// waitForStop blocks until ctx ends (nil) or a listener fails (its error).
func waitForStop(ctx context.Context, errc <-chan error) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// shutdown reports not ready (Envoy health checks move away), stops watching the config
// (stopWatch), lets open streams finish within drainTimeout, waits for their handlers, then
// shuts the admin server. The audit trail and the ledger are closed after it returns.
func (s *servers) shutdown(stopWatch func(), drainTimeout time.Duration) {
	s.g.ready.Store(false)
	stopWatch()
	s.drain(drainTimeout)
	s.awaitHandlers()
	shutCtx, cancel := context.WithTimeout(context.Background(), adminShutdownTimeout)
	defer cancel()
	_ = s.admin.Shutdown(shutCtx)
	s.log.Info("stopped")
}

// drain stops accepting streams and lets the open ones finish within timeout, then closes
// those still open.
func (s *servers) drain(timeout time.Duration) {
	s.log.Info("draining", zap.Int("open_streams", s.srv.Active()), zap.Duration("drain_timeout", timeout))
	done := make(chan struct{})
	go func() { s.gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		s.log.Warn("drain timeout; closing open streams", zap.Int("open_streams", s.srv.Active()))
		s.gs.Stop()
	}
}

// awaitHandlers waits, at most stopGrace, for the stream handlers to return. Stop cancels
// the open streams but does not wait for their handlers, whose deferred work (settlement,
// the audit event) must reach the ledger and the audit trail before they close. The wait is
// bounded: a handler stuck in a hung store must not hold the process forever.
func (s *servers) awaitHandlers() {
	select {
	case <-s.srv.Idle():
	case <-time.After(stopGrace):
		s.log.Error("streams still running after the shutdown grace; their reservations expire on their own",
			zap.Int("open_streams", s.srv.Active()))
	}
}
