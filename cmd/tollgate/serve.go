package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
)

// gateway holds the snapshot in force and the reload state.
type gateway struct {
	path    string
	log     *zap.Logger
	ledger  budget.Ledger
	ledgerH *ledgerHandle       // readiness; nil in tests that build a gateway by hand
	budget  policy.BudgetConfig // what the ledger was opened with: a reload may not change it
	snap    atomic.Pointer[policy.Snapshot]
	files   atomic.Pointer[[]string]
	// loadedFP fingerprints the bytes the snapshot in force was compiled from.
	loadedFP atomic.Pointer[[32]byte]
	ready    atomic.Bool
	reloads  atomic.Int64 // successful reloads
	failed   atomic.Int64 // refused reloads (the last good config kept serving)
	// lastFailure is the last refused reload, shown on /readyz; nil until one is refused.
	lastFailure atomic.Pointer[reloadFailure]
	audit       *auditHealth // set before the admin listener serves; nil when audit is off
	// surfaces are the listeners' authentication: a reload may not change what needs a
	// restart, and applies the rest. Nil in tests that build a gateway by hand.
	surfaces *surfaces
}

// Snapshot implements extproc.Source.
func (g *gateway) Snapshot() *policy.Snapshot { return g.snap.Load() }

// load reads, validates and compiles the config, then swaps it in. On any error the snapshot
// in force stays.
func (g *gateway) load() error {
	l, err := readConfig(g.path)
	if err != nil {
		return err
	}
	if err := checkLedgerReload(g.budget, l.cfg.Budget); err != nil {
		return err
	}
	if err := g.surfaces.checkReload(l.cfg); err != nil {
		return err
	}
	s, err := compile(l, time.Now(), policy.WithLedger(g.ledger))
	if err != nil {
		return err
	}
	for _, w := range s.Warnings {
		g.log.Warn("config warning", zap.String("warning", w))
	}
	g.snap.Store(s)
	g.files.Store(&l.files)
	g.loadedFP.Store(&l.fp)
	g.surfaces.apply(l.cfg) // validated by compile
	return nil
}

// reload is one reload attempt, logged and counted. It reports whether it took effect.
func (g *gateway) reload(why string) bool {
	if err := g.load(); err != nil {
		g.failed.Add(1)
		g.lastFailure.Store(newReloadFailure(err, time.Now()))
		g.log.Error("config reload refused; the last good config keeps serving",
			zap.String("trigger", why), zap.Error(err))
		return false
	}
	g.reloads.Add(1)
	g.log.Info("config reloaded", zap.String("trigger", why), zap.Int("keys", g.Snapshot().KeyCount()))
	return true
}

// fingerprint hashes the contents of files. Contents, not mtimes: mounted ConfigMaps and
// Secrets change through symlink swaps that keep old mtimes.
func fingerprint(files []string) [32]byte {
	h := sha256.New()
	for _, f := range files {
		raw, err := os.ReadFile(f)
		fingerprintFile(h, f, raw, err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// fingerprintFile adds one file, as read, to a fingerprint.
func fingerprintFile(h hash.Hash, path string, raw []byte, err error) {
	if err != nil {
		raw = []byte("unreadable")
	}
	fmt.Fprintf(h, "%s\x00%d\x00", path, len(raw))
	h.Write(raw)
}

// watch polls the config files and listens for SIGHUP until ctx ends. A file that fails to
// load is reported once per distinct content, not on every tick.
func (g *gateway) watch(ctx context.Context, every time.Duration) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(every)
	defer t.Stop()
	// last is what the snapshot in force was built from (the bytes its load read), or, after
	// a refused reload, what the files held just before it: a change written at any moment
	// after that differs from last and is picked up at the next tick.
	last := *g.loadedFP.Load()
	attempt := func(why string) {
		cur := fingerprint(*g.files.Load())
		if g.reload(why) {
			last = *g.loadedFP.Load()
		} else {
			last = cur
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			attempt("sighup")
		case <-t.C:
			if fingerprint(*g.files.Load()) != last {
				attempt("file_change")
			}
		}
	}
}

func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.Set(level); err != nil {
		return nil, err
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "ts"
	ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	ec.EncodeDuration = zapcore.MillisDurationEncoder
	var enc zapcore.Encoder
	if format == "console" {
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		enc = zapcore.NewJSONEncoder(ec)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
}

// listen opens the ext_proc listener: TCP, or a unix socket given mode (see
// policy.ParseSocketMode). A stale socket from a previous run is removed, but nothing else
// at the path is: a mistyped path must not delete a file.
func listen(addr string, mode uint32) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket: refusing to replace it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// The socket is created with the umask's mode; connecting needs write permission.
	if err := os.Chmod(path, fs.FileMode(mode)); err != nil {
		_ = l.Close()
		return nil, err
	}
	return l, nil
}

// adminHandler serves liveness, readiness, metrics and the usage report. Nothing it serves
// holds a key or content: the usage report names keys by their public id. /metrics and
// /usage need the admin token or an allowed client certificate whenever the admin listener
// has either (surfaces.adminAuthorized); /healthz is always open, for probes; /readyz
// answers every caller with its status code, and shows its details only to authorized
// callers (an unauthenticated probe gets {"ready":BOOL}).
func adminHandler(g *gateway, reg *prometheus.Registry, auth *surfaces) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", auth.requireAdmin(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	mux.Handle("GET /usage", auth.requireAdmin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "application/json")
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		rep, err := g.Snapshot().UsageReport(ctx, time.Now())
		if err != nil {
			g.log.Error("usage report", zap.Error(err))
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":"budget ledger unavailable"}`+"\n")
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"limits": rep})
	})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("content-type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "application/json")
		status := map[string]any{"ready": true}
		code := http.StatusOK
		notReady := func() { status["ready"], code = false, http.StatusServiceUnavailable }
		if !g.ready.Load() || g.Snapshot() == nil {
			notReady()
		} else {
			status["keys"], status["config_reloads"], status["config_reload_failures"] =
				g.Snapshot().KeyCount(), g.reloads.Load(), g.failed.Load()
			g.reloadStatus(status)
		}
		if g.ledgerH != nil && !g.ledgerH.Ready() {
			// The ledger fails closed: requests under a limit get 503 until it answers again.
			status["ledger"] = "unavailable"
			notReady()
		}
		// With fail_closed, an unwritable trail refuses requests.
		if ok, audit := g.audit.readyz(); audit != nil {
			status["audit"] = audit
			if !ok {
				notReady()
			}
		}
		if !auth.adminAuthorized(r) {
			// Reload errors name files and fields, audit sinks their state: not for anyone
			// who can reach the port. The status code alone serves a kubelet probe.
			status = map[string]any{"ready": status["ready"]}
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(status)
	})
	return mux
}
