package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Options locate the binaries and the repository.
type Options struct {
	Repo     string // repository root (envoy/envoy.yaml, examples/config.yaml)
	Tollgate string // the tollgate binary
	Envoy    string // an Envoy 1.40 binary
	Self     string // the bench binary (runs the upstream and the do-nothing server)
	Work     string // working directory for configs, state and logs
	// Concurrency is Envoy's worker count (--concurrency).
	Concurrency int
	// Marker is the text the W3 prompt carries and the guardrails must redact.
	Marker string
	// ExtProcEnv is added to the environment of both ext_proc servers (Tollgate and the
	// do-nothing server), e.g. GOMAXPROCS=1.
	ExtProcEnv []string
	// Unix puts both ext_proc servers on unix sockets instead of loopback TCP.
	Unix bool
}

// Stack is a running bench stack.
type Stack struct {
	Ports       Ports
	AdminPort   int // Tollgate's admin listener (/metrics)
	ControlPort int // upstream's control endpoint
	Key         string
	Envoy       *Process
	Tollgate    *Process
	Noop        *Process
	Upstream    *Process
	Work        string

	tollgateBin, tollgateCfg string
	extProcEnv               []string
}

// Procs returns the processes whose resources are accounted.
func (s *Stack) Procs() []*Process {
	return []*Process{s.Envoy, s.Tollgate, s.Noop, s.Upstream}
}

// Start builds the configs and starts the upstream, the do-nothing server, Tollgate and
// Envoy, and waits until each is ready. On error whatever started is stopped.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	ports, err := FreePorts(9)
	if err != nil {
		return nil, err
	}
	s := &Stack{Ports: Ports{D: ports[0], N: ports[1], F: ports[2], EnvoyAdmin: ports[3], Tollgate: ports[4],
		Noop: ports[5], Upstream: ports[6]}, AdminPort: ports[7], ControlPort: ports[8], Work: o.Work}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if err := os.MkdirAll(filepath.Join(o.Work, "examples"), 0o700); err != nil {
		return nil, err
	}
	s.extProcEnv = o.ExtProcEnv
	if o.Unix {
		s.Ports.TollgateSock, s.Ports.NoopSock = filepath.Join(o.Work, "tollgate.sock"), filepath.Join(o.Work, "noop.sock")
	}
	cfgPath, err := s.tollgateState(ctx, o)
	if err != nil {
		return nil, err
	}
	logs := filepath.Join(o.Work, "logs")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return nil, err
	}
	s.Upstream, err = start("upstream", exec.Command(o.Self, "upstream",
		"--listen", addr(s.Ports.Upstream), "--control", addr(s.ControlPort),
		"--provider-key-file", filepath.Join(o.Work, ".dev", "mock-openai-key"), "--marker", o.Marker),
		nil, filepath.Join(logs, "upstream.log"))
	if err != nil {
		return nil, err
	}
	noopAddr := addr(s.Ports.Noop)
	if s.Ports.NoopSock != "" {
		noopAddr = "unix:" + s.Ports.NoopSock
	}
	noop := exec.Command(o.Self, "noop", "--listen", noopAddr)
	noop.Env = append(os.Environ(), o.ExtProcEnv...)
	s.Noop, err = start("noop", noop, nil, filepath.Join(logs, "noop.log"))
	if err != nil {
		return nil, err
	}
	s.tollgateBin, s.tollgateCfg = o.Tollgate, cfgPath
	if err := s.startTollgate(); err != nil {
		return nil, err
	}
	src, err := os.ReadFile(filepath.Join(o.Repo, "envoy", "envoy.yaml"))
	if err != nil {
		return nil, err
	}
	boot, err := EnvoyBootstrap(src, s.Ports)
	if err != nil {
		return nil, err
	}
	bootPath := filepath.Join(o.Work, "envoy-bench.yaml")
	if err := os.WriteFile(bootPath, boot, 0o600); err != nil {
		return nil, err
	}
	conc := o.Concurrency
	if conc <= 0 {
		conc = 2
	}
	// The access log (stdout) is written as users run it and discarded.
	s.Envoy, err = start("envoy", exec.Command(o.Envoy, "--use-dynamic-base-id", "--log-level", "warn",
		"--concurrency", strconv.Itoa(conc), "-c", bootPath), nil, filepath.Join(logs, "envoy.log"))
	if err != nil {
		return nil, err
	}
	for _, w := range []error{
		waitListening(s.Upstream, addr(s.Ports.Upstream), 20*time.Second),
		waitListening(s.Noop, noopAddr, 20*time.Second),
		s.waitTollgate(),
		waitHTTP(s.Envoy, "http://"+addr(s.Ports.EnvoyAdmin)+"/ready", "LIVE", 60*time.Second),
	} {
		if w != nil {
			return nil, fmt.Errorf("%w (logs in %s)", w, logs)
		}
	}
	return s, nil
}

// startTollgate starts `tollgate serve` with the bench config and extra flags.
func (s *Stack) startTollgate(extra ...string) error {
	tg := exec.Command(s.tollgateBin, append([]string{"serve", "--config", s.tollgateCfg}, extra...)...)
	tg.Dir = s.Work
	tg.Env = append(os.Environ(), s.extProcEnv...)
	p, err := start("tollgate", tg, nil, filepath.Join(s.Work, "logs", "tollgate.log"))
	if err != nil {
		return err
	}
	s.Tollgate = p
	return nil
}

func (s *Stack) waitTollgate() error {
	return waitHTTP(s.Tollgate, "http://"+addr(s.AdminPort)+"/readyz", "", 30*time.Second)
}

// RestartTollgate stops Tollgate and starts it again with extra flags (e.g. a CPU profile),
// and waits until it is ready.
func (s *Stack) RestartTollgate(extra ...string) error {
	s.Tollgate.Stop(20 * time.Second)
	if err := s.startTollgate(extra...); err != nil {
		return err
	}
	return s.waitTollgate()
}

// tollgateState writes the bench's Tollgate config beside a fresh .dev state (pepper, mock
// provider keys, audit keys), mints the bench key and returns the config path.
func (s *Stack) tollgateState(ctx context.Context, o Options) (string, error) {
	src, err := os.ReadFile(filepath.Join(o.Repo, "examples", "config.yaml"))
	if err != nil {
		return "", err
	}
	extproc := addr(s.Ports.Tollgate)
	if s.Ports.TollgateSock != "" {
		extproc = "unix:" + s.Ports.TollgateSock
	}
	cfg, err := TollgateConfig(src, extproc, s.AdminPort)
	if err != nil {
		return "", err
	}
	cfgPath := filepath.Join(o.Work, "examples", "config.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return "", err
	}
	if _, err := run(ctx, o.Work, o.Tollgate, "dev", "init", "--dir", ".dev"); err != nil {
		return "", err
	}
	out, err := run(ctx, o.Work, o.Tollgate, "keys", "new", "--config", cfgPath, "--team", BenchTeam, "--name", "bench",
		"--append", filepath.Join(o.Work, ".dev", "keys.yaml"))
	if err != nil {
		return "", err
	}
	s.Key, err = keyFrom(out)
	return cfgPath, err
}

// keyFrom finds the virtual key in the output of `tollgate keys new`.
func keyFrom(out string) (string, error) {
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "tgk_") {
			return f, nil
		}
	}
	return "", errors.New("tollgate keys new printed no tgk_ key")
}

// Stop stops every process, Envoy first.
func (s *Stack) Stop() {
	for _, p := range []*Process{s.Envoy, s.Tollgate, s.Noop, s.Upstream} {
		if p != nil {
			p.Stop(10 * time.Second)
		}
	}
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// Addr returns the loopback address of port.
func Addr(port int) string { return addr(port) }
