// Command bench is Tollgate's load harness (`make bench`): one Envoy 1.40 with three
// listeners sharing one upstream (D = Envoy only, N = ext_proc to a do-nothing server,
// F = ext_proc to Tollgate with the full policy of examples/config.yaml), an open-loop
// driver measuring them interleaved in rounds, and a report with charts regenerated from
// the JSON results.
//
//	bench run    --repo ../.. --tollgate ../../bin/tollgate --envoy ENVOY --out results
//	bench soak   --repo ../.. --tollgate ../../bin/tollgate --envoy ENVOY --out results
//	bench report --out results            (REPORT.md and the PNGs from the JSON)
//	bench upstream | noop                 (started by run and soak)
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
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-ai/tollgate/test/bench/internal/noop"
	"github.com/tollgate-ai/tollgate/test/bench/internal/upstream"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

const usage = "usage: bench run|soak|report|upstream|noop [flags] (bench CMD -h for flags)"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "run":
		return runBench(ctx, args[1:], stdout, stderr)
	case "soak":
		return runSoak(ctx, args[1:], stdout, stderr)
	case "report":
		return runReport(args[1:], stdout, stderr)
	case "upstream":
		return runUpstream(ctx, args[1:], stderr)
	case "noop":
		return runNoop(ctx, args[1:], stderr)
	}
	fmt.Fprintln(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// runUpstream serves the zero-delay upstream until ctx ends.
func runUpstream(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9000", "upstream address")
	control := fs.String("control", "127.0.0.1:9001", "control address (PUT /shape, GET /stats)")
	keyFile := fs.String("provider-key-file", "", "file with the mock provider key Tollgate swaps in")
	marker := fs.String("marker", "", "text whose arrival in a request body is counted")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var key string
	if *keyFile != "" {
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		key = strings.TrimSpace(string(b))
	}
	up := upstream.New(key, *marker)
	srv := &http.Server{Addr: *listen, Handler: up, ReadHeaderTimeout: 10 * time.Second}
	ctl := &http.Server{Addr: *control, Handler: up.ControlHandler(), ReadHeaderTimeout: 10 * time.Second}
	return serveAll(ctx, srv, ctl)
}

// serveAll runs the servers until ctx ends or one fails.
func serveAll(ctx context.Context, srvs ...*http.Server) error {
	errc := make(chan error, len(srvs))
	for _, s := range srvs {
		go func() { errc <- s.ListenAndServe() }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, s := range srvs {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.Shutdown(sctx)
		cancel()
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// runNoop serves the do-nothing ext_proc server until ctx ends.
func runNoop(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("noop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:50052", "ext_proc address (h2c): host:port or unix:/path")
	if err := fs.Parse(args); err != nil {
		return err
	}
	network, address := "tcp", *listen
	if path, ok := strings.CutPrefix(address, "unix:"); ok {
		network, address = "unix", path
	}
	lis, err := net.Listen(network, address)
	if err != nil {
		return err
	}
	gs := grpc.NewServer(noop.ServerOptions()...)
	extprocv3.RegisterExternalProcessorServer(gs, noop.Server{})
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	select {
	case <-ctx.Done():
		gs.Stop()
		return nil
	case err := <-errc:
		return err
	}
}
