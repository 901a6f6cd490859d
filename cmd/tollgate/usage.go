package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/budget"
)

// runUsage prints spend and remaining budget per key and team, read from a running tollgate's
// admin endpoint (which holds the ledger connection).
func runUsage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("usage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", policy.DefaultAdminAddr, "tollgate admin address: host:port, or an http:// or https:// URL")
	asJSON := fs.Bool("json", false, "print the raw JSON report")
	tokenFile := fs.String("token-file", "", "file holding the admin bearer token (admin.token_sha256 is its hash)")
	caFile := fs.String("cacert", "", "PEM CA the admin's certificate must chain to (https)")
	certFile := fs.String("cert", "", "client certificate (PEM) for an admin listener with mutual TLS")
	keyFile := fs.String("key", "", "client private key (PEM) for --cert")
	if err := fs.Parse(args); err != nil {
		return err
	}
	base := *admin
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	client, err := adminClient(*caFile, *certFile, *keyFile)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/usage", nil)
	if err != nil {
		return err
	}
	if *tokenFile != "" {
		raw, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("usage: --token-file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(raw)))
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("usage: admin answered %s: give the admin token (--token-file) or an allowed client certificate (--cert, --key)", resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("usage: admin answered %s", resp.Status)
	}
	if *asJSON {
		_, err = stdout.Write(body)
		return err
	}
	var rep struct {
		Limits []policy.UsageEntry `json:"limits"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tID\tTEAM\tLIMIT\tUSED\tRESERVED\tREMAINING\tMAX\tWINDOW ENDS")
	for _, e := range rep.Limits {
		f := func(v int64) string { return fmt.Sprint(v) }
		if e.Unit == "usd_micros" {
			f = func(v int64) string { return "$" + budget.FormatUSD(v) }
		}
		end := "-"
		if e.WindowEnd != nil {
			end = e.WindowEnd.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Scope, e.ID, e.Team, e.Limit,
			f(e.Used), f(e.Reserved), f(e.Remaining), f(e.Max), end)
	}
	return tw.Flush()
}

// adminClient is an HTTP client for the admin endpoint: the system roots or caFile for an
// https admin, and a client certificate when certFile is given.
func adminClient(caFile, certFile, keyFile string) (*http.Client, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return http.DefaultClient, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadCAFile(caFile, ".")
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}, nil
}
