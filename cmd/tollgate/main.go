// Command tollgate is the Tollgate LLM gateway: an Envoy ext_proc server that swaps virtual
// keys for provider keys. Subcommands: serve, keys, secrets, mockllm, dev, version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "tollgate:", err)
		}
		os.Exit(exitCode(err))
	}
}

const usage = `usage: tollgate <command> [flags]

commands:
  serve     run the ext_proc server (--config FILE)
  keys new  create a virtual key, checked against --config; print its entry or --append it
  audit verify  check an audit trail for edited, deleted, reordered or truncated records
  secrets seal    seal a provider key read from stdin under a KEK (prints sealed:v1...)
  secrets rewrap  seal every sealed value of --config again under the KEK --to
  secrets new-kek print fresh KEK material
  check     check a Tollgate config and its Envoy bootstrap together (--config, --envoy)
  usage     print spend and remaining budget per key and team (from the admin endpoint)
  admin hash-token  read an admin bearer token from stdin, print admin.token_sha256
  mockllm   run the mock LLM upstream used by the local trial and tests
  dev init  create the local trial's certificates, pepper, provider and demo keys
            (a new demo key when the pepper no longer matches .dev/keys.yaml)
  dev certs create development TLS certificates only
  version   print the version
`

// run is the whole CLI, callable in-process by tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "keys":
		return runKeys(args[1:], stdout, stderr)
	case "mockllm":
		return runMock(ctx, args[1:], stdout, stderr)
	case "dev":
		return runDev(args[1:], stdout, stderr)
	case "usage":
		return runUsage(ctx, args[1:], stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr)
	case "secrets":
		return runSecrets(args[1:], os.Stdin, stdout, stderr)
	case "admin":
		return runAdmin(args[1:], stdout, stderr)
	case "check":
		return runCheck(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "tollgate", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
