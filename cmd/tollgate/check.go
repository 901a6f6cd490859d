package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tollgate-ai/tollgate/cmd/tollgate/internal/envoycheck"
	"github.com/tollgate-ai/tollgate/extproc"
	"github.com/tollgate-ai/tollgate/policy"
)

const checkUsage = `usage: tollgate check --config FILE --envoy FILE [--json]

Checks a Tollgate config and the Envoy bootstrap in front of it, together and without
starting anything: secrets in the config, the pepper, exposed listeners, and whether Envoy
sends every provider request through Tollgate, fails closed, strips internal headers,
normalizes paths and keeps credentials out of its logs. The Envoy file is decoded strictly
with Envoy 1.40's protos. Either file may be left out to check the other alone.

Each finding has a severity, where it is, what is wrong and how to fix it.
Exit status: 0 no high finding, 1 at least one high finding, 2 the check could not run
(a file cannot be read, bad flags).

  --config FILE  the Tollgate config (as for tollgate serve)
  --envoy FILE   the Envoy bootstrap (YAML or JSON)
  --json         print {"findings": [...], "counts": {...}} instead of text
`

// errHighFindings is returned when the check found at least one high finding.
var errHighFindings = errors.New("high findings")

// exitError carries a process exit status other than the default 2.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode returns the exit status for an error returned by run: an *exitError's code,
// otherwise 2.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 2
}

// runCheck implements `tollgate check`.
func runCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, checkUsage) }
	cfgPath := fs.String("config", "", "Tollgate config file")
	envoyPath := fs.String("envoy", "", "Envoy bootstrap file")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprint(stderr, checkUsage)
		return fmt.Errorf("check: unexpected argument %q", fs.Arg(0))
	}
	if *cfgPath == "" && *envoyPath == "" {
		fmt.Fprint(stderr, checkUsage)
		return errors.New("check: give --config, --envoy, or both")
	}
	opt := envoycheck.Options{
		RoutingHeader:     policy.RoutingHeader,
		InternalPrefix:    policy.InternalHeaderPrefix,
		MetadataNamespace: extproc.MetadataNamespace,
	}
	var all []envoycheck.Finding
	if *cfgPath != "" {
		found, err := checkConfig(*cfgPath, &opt)
		if err != nil {
			return fmt.Errorf("check: %w", err)
		}
		all = append(all, found...)
	}
	if *envoyPath != "" {
		raw, err := os.ReadFile(*envoyPath)
		if err != nil {
			return fmt.Errorf("check: %w", err)
		}
		all = append(all, envoycheck.Check(raw, opt)...)
	}
	envoycheck.Sort(all)
	counts := envoycheck.Count(all)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(envoycheck.Report{Findings: all, Counts: counts}); err != nil {
			return err
		}
	} else {
		printFindings(stdout, all, counts)
	}
	if counts.High > 0 {
		return &exitError{code: 1, err: fmt.Errorf("check: %w (%d)", errHighFindings, counts.High)}
	}
	return nil
}

// printFindings writes the text report.
func printFindings(w io.Writer, all []envoycheck.Finding, c envoycheck.Counts) {
	for _, f := range all {
		fmt.Fprintf(w, "%-6s  %s\n", strings.ToUpper(f.Severity.String()), f.ID)
		where := f.File
		if f.Path != "" {
			where += ": " + f.Path
		}
		fmt.Fprintf(w, "  where: %s\n  what:  %s\n  fix:   %s\n\n", where, f.Problem, f.Fix)
	}
	fmt.Fprintf(w, "%d high, %d medium, %d low\n", c.High, c.Medium, c.Low)
}
