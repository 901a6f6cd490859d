package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
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
	admin := fs.String("admin", policy.DefaultAdminAddr, "tollgate admin address (loopback)")
	asJSON := fs.Bool("json", false, "print the raw JSON report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+*admin+"/usage", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
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
