package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
	"github.com/tollgate-ai/tollgate/policy/budget/redisledger"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

// Ledger probing, for /readyz.
const (
	ledgerProbeEvery   = time.Second
	ledgerProbeTimeout = 2 * time.Second
	// ledgerCloseTimeout bounds the last attempt to record queued settlements at shutdown.
	ledgerCloseTimeout = 5 * time.Second
	// maxCAFile bounds a CA bundle read from budget.redis.tls.ca_file.
	maxCAFile = 1 << 20
)

// ledgerHandle is the process's budget ledger: it lives for the whole process (a reload that
// changes budget.ledger or its connection is refused: see checkLedgerReload). Settlements
// and releases the ledger misses are retried (budget.Retrying).
type ledgerHandle struct {
	// Ledger is what the policy reserves and settles against.
	Ledger *budget.Retrying
	closer func() error
	ready  atomic.Bool
}

// Ready reports whether the ledger answered its last probe. The ledger fails closed, so a
// Tollgate whose ledger does not answer refuses every request under a limit: not ready.
func (h *ledgerHandle) Ready() bool { return h.ready.Load() }

// Close records what is still queued (within ledgerCloseTimeout), then closes the ledger.
func (h *ledgerHandle) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), ledgerCloseTimeout)
	defer cancel()
	return errors.Join(h.Ledger.Close(ctx), h.closer())
}

// openLedger opens the configured budget ledger. A Redis ledger that does not answer yet is
// not an error: it is logged, /readyz says not ready, and a probe every ledgerProbeEvery
// (until ctx ends) flips readiness when it comes back.
func openLedger(ctx context.Context, b policy.BudgetConfig, dir string, log *zap.Logger) (*ledgerHandle, error) {
	switch b.Ledger {
	case policy.LedgerRedis:
		cc, err := redisClientConfig(b.Redis, dir, secrets.Resolver{})
		if err != nil {
			return nil, err
		}
		client, err := redisledger.NewClient(cc)
		if err != nil {
			return nil, fmt.Errorf("budget.redis: %w", err)
		}
		l, err := redisledger.New(client, redisledger.WithTimeout(b.Redis.Timeout))
		if err != nil {
			_ = client.Close()
			return nil, fmt.Errorf("budget.redis: %w", err)
		}
		h := &ledgerHandle{Ledger: budget.NewRetrying(l), closer: client.Close}
		h.probe(ctx, l.LoadScripts, log)
		return h, nil
	default:
		path := b.Embedded.Path
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		e, err := budget.OpenEmbedded(path, budget.WithFlushInterval(b.Embedded.FlushInterval))
		if err != nil {
			return nil, fmt.Errorf("budget.embedded: %w", err)
		}
		go e.Run(ctx)
		h := &ledgerHandle{Ledger: budget.NewRetrying(e), closer: e.Close}
		h.ready.Store(true) // in process: it answers until Close
		return h, nil
	}
}

// probe checks the ledger now and then every ledgerProbeEvery until ctx ends, logging each
// change. The check loads the scripts, which also spares the first calls after a Redis
// restart a round trip.
func (h *ledgerHandle) probe(ctx context.Context, check func(context.Context) error, log *zap.Logger) {
	try := func() error {
		c, cancel := context.WithTimeout(ctx, ledgerProbeTimeout)
		defer cancel()
		return check(c)
	}
	if err := try(); err != nil {
		log.Warn("budget ledger unreachable at startup: not ready, and requests under a limit are refused (503) until it answers", zap.Error(err))
	} else {
		h.ready.Store(true)
	}
	go func() {
		t := time.NewTicker(ledgerProbeEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := try()
			if ctx.Err() != nil {
				return
			}
			switch was := h.ready.Swap(err == nil); {
			case err != nil && was:
				log.Warn("budget ledger unreachable: not ready", zap.Error(err))
			case err == nil && !was:
				log.Info("budget ledger reachable: ready")
			}
		}
	}()
}

// register exports the ledger's readiness and retry counters.
func (h *ledgerHandle) register(reg prometheus.Registerer) {
	stat := func(f func(budget.RetryStats) int64) func() float64 {
		return func() float64 { return float64(f(h.Ledger.Stats())) }
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tollgate_budget_ledger_ready",
			Help: "1 when the budget ledger answered its last probe."},
			func() float64 {
				if h.Ready() {
					return 1
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tollgate_budget_settle_deferred_total",
			Help: "Settlements the ledger missed, queued for retry."}, stat(func(s budget.RetryStats) int64 { return s.Deferred })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tollgate_budget_reserve_releases_total",
			Help: "Releases queued for reservations that failed (they may still reach the ledger)."}, stat(func(s budget.RetryStats) int64 { return s.Releases })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tollgate_budget_settle_retries_total",
			Help: "Retry attempts of queued settlements and releases."}, stat(func(s budget.RetryStats) int64 { return s.Retries })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tollgate_budget_settle_recovered_total",
			Help: "Queued settlements and releases that reached the ledger."}, stat(func(s budget.RetryStats) int64 { return s.Recovered })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tollgate_budget_settle_dropped_total",
			Help: "Settlements and releases lost: queue full, refused by the ledger, or still failing at shutdown."}, stat(func(s budget.RetryStats) int64 { return s.Dropped })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tollgate_budget_settle_pending",
			Help: "Settlements and releases waiting for a retry."}, stat(func(s budget.RetryStats) int64 { return s.Pending })),
	)
}

// errLedgerNeedsRestart refuses a reload that changes the ledger or its connection.
var errLedgerNeedsRestart = errors.New("the budget ledger and its connection are fixed at startup: restart tollgate to apply the change (the running config keeps serving)")

// checkLedgerReload refuses next when it changes what the running ledger was opened with.
func checkLedgerReload(running, next policy.BudgetConfig) error {
	if changed := running.LedgerChanges(next); len(changed) > 0 {
		return fmt.Errorf("%s changed: %w", strings.Join(changed, ", "), errLedgerNeedsRestart)
	}
	return nil
}

// redisClientConfig resolves the Redis connection settings: secret references for the
// username (when it is one) and password, and the CA file. Errors name the field, never a
// secret value.
func redisClientConfig(r policy.RedisConfig, dir string, res secrets.Resolver) (redisledger.ClientConfig, error) {
	cc := redisledger.ClientConfig{Addrs: r.Addrs, DB: r.DB, Timeout: r.Timeout, ServerName: r.TLS.ServerName, Username: r.Username}
	resolve := func(field, ref string) (string, error) {
		parsed, err := secrets.ParseRef(ref)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		v, err := res.Resolve(parsed, dir)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		return v.Reveal(), nil
	}
	var err error
	if secrets.LooksLikeReference(r.Username) {
		if cc.Username, err = resolve("budget.redis.username", r.Username); err != nil {
			return cc, err
		}
	}
	if r.Password != "" {
		if cc.Password, err = resolve("budget.redis.password", r.Password); err != nil {
			return cc, err
		}
	}
	if r.TLS.CAFile != "" {
		if cc.RootCAs, err = loadCAFile(r.TLS.CAFile, dir); err != nil {
			return cc, fmt.Errorf("budget.redis.tls.ca_file: %w", err)
		}
	}
	return cc, nil
}

// loadCAFile reads a PEM bundle of CA certificates; path may be written "file:PATH" and is
// relative to dir.
func loadCAFile(path, dir string) (*x509.CertPool, error) {
	path = strings.TrimPrefix(path, secrets.KindFile+":")
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pem, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, err
	}
	if len(pem) > maxCAFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxCAFile)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}
