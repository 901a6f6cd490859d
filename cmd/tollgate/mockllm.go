package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/tollgate-ai/tollgate/examples/mockllm"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

func runMock(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mockllm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("listen", "127.0.0.1:9000", "listen address")
	openaiRef := fs.String("openai-key", "", "expected OpenAI-style provider key: env:NAME or file:PATH (empty: no check)")
	anthropicRef := fs.String("anthropic-key", "", "expected Anthropic provider key: env:NAME or file:PATH (empty: no check)")
	latency := fs.Duration("latency", 0, "delay before response headers")
	chunks := fs.Int("chunks", 5, "content chunks per streamed answer")
	cadence := fs.Duration("cadence", 20*time.Millisecond, "delay between streamed chunks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := mockllm.Options{Latency: *latency, Chunks: *chunks, Cadence: *cadence,
		Logger: slog.New(slog.NewJSONHandler(stderr, nil))}
	for _, kv := range []struct {
		ref string
		dst *string
	}{{*openaiRef, &opts.OpenAIKey}, {*anthropicRef, &opts.AnthropicKey}} {
		if kv.ref == "" {
			continue
		}
		r, err := secrets.ParseRef(kv.ref)
		if err != nil {
			return err
		}
		v, err := r.Resolve(".")
		if err != nil {
			return err
		}
		*kv.dst = v.Reveal()
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mockllm.New(opts), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "mock LLM listening on http://%s\n", lis.Addr())
	go func() {
		<-ctx.Done()
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(c)
	}()
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
