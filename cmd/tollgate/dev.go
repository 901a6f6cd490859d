package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tollgate-ai/tollgate/examples/devtls"
	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/audit"
)

// Files of the local trial's state directory (default .dev, git-ignored). examples/config.yaml
// refers to them; none of them is ever committed.
const (
	devPepper       = "pepper"
	devOpenAIKey    = "mock-openai-key"
	devAnthropicKey = "mock-anthropic-key"
	devKeys         = "keys.yaml"
	devDemoKey      = "demo-key"
	devChainKey     = "audit-chain-key"
	devCheckpoint   = "audit-checkpoint.pem"
	devCheckpointPb = "audit-checkpoint.pub.pem"
	devTLS          = "tls"
)

func runDev(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "init" && args[0] != "certs") {
		fmt.Fprintln(stderr, "usage: tollgate dev init [--dir .dev] | tollgate dev certs [--dir .dev/tls]")
		return flag.ErrHelp
	}
	fset := flag.NewFlagSet("dev "+args[0], flag.ContinueOnError)
	fset.SetOutput(stderr)
	def := ".dev"
	if args[0] == "certs" {
		def = filepath.Join(".dev", devTLS)
	}
	dir := fset.String("dir", def, "output directory")
	if err := fset.Parse(args[1:]); err != nil {
		return err
	}
	if args[0] == "certs" {
		created, err := devtls.Ensure(*dir, nil, time.Now())
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintf(stdout, "wrote development certificates to %s (CA: %s)\n", *dir, filepath.Join(*dir, "ca.crt"))
		}
		return nil
	}
	return devInit(*dir, stdout)
}

// devInit creates, once, everything the local trial needs: TLS certificates, a pepper, fake
// provider keys for the mock and a key file with demo keys. Existing files are kept, so the
// demo key stays the same across runs.
func devInit(dir string, stdout io.Writer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if _, err := devtls.Ensure(filepath.Join(dir, devTLS), nil, time.Now()); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	if err := writeOnce(filepath.Join(dir, devCheckpoint), func() ([]byte, error) {
		priv, pub, err := audit.GenerateCheckpointKey()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, devCheckpointPb), pub, 0o644); err != nil {
			return nil, err
		}
		return audit.MarshalCheckpointPrivateKey(priv)
	}); err != nil {
		return err
	}
	for _, name := range []string{devPepper, devOpenAIKey, devAnthropicKey, devChainKey} {
		prefix := map[string]string{devPepper: "", devOpenAIKey: "sk-mock-", devAnthropicKey: "sk-ant-mock-"}[name]
		if err := writeOnce(filepath.Join(dir, name), func() ([]byte, error) {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return nil, err
			}
			return []byte(prefix + hex.EncodeToString(b) + "\n"), nil
		}); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, devKeys)); errors.Is(err, fs.ErrNotExist) {
		pepper, err := os.ReadFile(filepath.Join(dir, devPepper))
		if err != nil {
			return err
		}
		p := []byte(strings.TrimSpace(string(pepper)))
		demo, err := mintKey(p, policy.KeyConfig{Team: "platform", Name: "demo"})
		if err != nil {
			return err
		}
		if err := appendKey(filepath.Join(dir, devKeys), demo.entry); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, devDemoKey), []byte(demo.token.Reveal()+"\n"), 0o600); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "local trial state ready in %s (pepper, mock provider keys, demo key, audit keys, TLS)\n", dir)
	return nil
}

func writeOnce(path string, gen func() ([]byte, error)) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	b, err := gen()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
