package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tollgate-ai/tollgate/policy"
)

const adminUsage = `usage: tollgate admin hash-token < TOKEN_FILE

Reads the admin bearer token from stdin (never from the command line, where
it would land in shell history and the process list) and prints its SHA-256
for admin.token_sha256. The token must be at least 32 printable characters
without spaces, e.g. from: openssl rand -hex 32
`

// maxTokenInput bounds what hash-token reads from stdin.
const maxTokenInput = 4096

// adminTokenInput is where `admin hash-token` reads the token; tests replace it.
var adminTokenInput io.Reader = os.Stdin

// runAdmin implements `tollgate admin hash-token`.
func runAdmin(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "hash-token" {
		fmt.Fprint(stderr, adminUsage)
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			return flag.ErrHelp
		}
		return fmt.Errorf("admin: unknown subcommand %q", args[0])
	}
	fs := flag.NewFlagSet("admin hash-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		// Never echo it: a positional argument here is most likely the token itself.
		return fmt.Errorf("admin hash-token: the token is read from stdin, not from arguments")
	}
	raw, err := io.ReadAll(io.LimitReader(adminTokenInput, maxTokenInput+1))
	if err != nil {
		return fmt.Errorf("admin hash-token: reading stdin: %w", err)
	}
	if len(raw) > maxTokenInput {
		return fmt.Errorf("admin hash-token: stdin: %w", policy.ErrWeakToken)
	}
	// One trailing line break (echo, a file) is not part of the token.
	raw = bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
	sum, err := policy.HashAdminToken(string(raw))
	if err != nil {
		return fmt.Errorf("admin hash-token: %w", err)
	}
	fmt.Fprintln(stdout, sum)
	return nil
}
