package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tollgate-ai/tollgate/policy/audit"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

const auditUsage = `usage: tollgate audit verify [--chain-key REF] [--checkpoint-pub FILE] [--allow-retention] [--sealed] FILE...

Verifies a set of audit files (a rotated set may be given in any order) and
prints every edited, deleted, reordered or truncated record it finds, and
whole files missing at either end of the set. Exits non-zero on any problem.
A file still being written passes: its records not yet covered by a
checkpoint are verified and reported as an "unsealed tail".

  --chain-key REF        the audit chain HMAC key: env:NAME or file:PATH
  --checkpoint-pub FILE  the checkpoint Ed25519 public key: PEM "PUBLIC KEY"
                         (PKIX) or standard base64 of the raw 32 bytes
  --allow-retention      older files were removed on purpose: a set that does
                         not start at the beginning of its trail is a note,
                         not a failure (missing newest files still fail)
  --sealed               the gateway has stopped (or the set is an archive):
                         an unsealed tail fails too
At least one key is required; give both for a full check.
`

// runAudit implements `tollgate audit verify`. It prints the report to stdout
// and returns an error when the files fail verification or cannot be read.
func runAudit(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(stderr, auditUsage)
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			return flag.ErrHelp
		}
		return fmt.Errorf("audit: unknown subcommand %q", args[0])
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, auditUsage) }
	keyRef := fs.String("chain-key", "", "chain HMAC key reference (env:NAME or file:PATH)")
	pubFile := fs.String("checkpoint-pub", "", "checkpoint public key file")
	var opts audit.VerifyOptions
	fs.BoolVar(&opts.AllowRetention, "allow-retention", false, "accept a set whose oldest files were removed on purpose")
	fs.BoolVar(&opts.RequireSealed, "sealed", false, "the writer has stopped: an unsealed tail fails")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, auditUsage)
		return errors.New("audit verify: no files given")
	}
	if *keyRef == "" && *pubFile == "" {
		return errors.New("audit verify: give --chain-key, --checkpoint-pub, or both")
	}
	var key []byte
	if *keyRef != "" {
		ref, err := secrets.ParseRef(*keyRef)
		if err != nil {
			return fmt.Errorf("audit verify: --chain-key: %w", err)
		}
		v, err := secrets.Resolver{}.Resolve(ref, ".")
		if err != nil {
			return fmt.Errorf("audit verify: --chain-key: %w", err)
		}
		key = v.Bytes()
		defer clear(key)
	}
	var pub ed25519.PublicKey
	if *pubFile != "" {
		b, err := os.ReadFile(*pubFile)
		if err != nil {
			return fmt.Errorf("audit verify: --checkpoint-pub: %w", err)
		}
		if pub, err = audit.ParseCheckpointPublicKey(b); err != nil {
			return fmt.Errorf("audit verify: --checkpoint-pub %s: %w", *pubFile, err)
		}
	}
	rep, err := audit.VerifyWithOptions(fs.Args(), key, pub, opts)
	var p *audit.Problem
	if err != nil && !errors.As(err, &p) {
		return err
	}
	if werr := rep.WriteText(stdout); werr != nil {
		return werr
	}
	if p != nil {
		return fmt.Errorf("audit verify: %w", p)
	}
	return nil
}
