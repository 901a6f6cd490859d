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
	"github.com/tollgate-ai/tollgate/policy/keys"
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
	if _, err := writeOnce(filepath.Join(dir, devCheckpoint), func() ([]byte, error) {
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
	pepperCreated := false
	for _, name := range []string{devPepper, devOpenAIKey, devAnthropicKey, devChainKey} {
		prefix := map[string]string{devPepper: "", devOpenAIKey: "sk-mock-", devAnthropicKey: "sk-ant-mock-"}[name]
		created, err := writeOnce(filepath.Join(dir, name), func() ([]byte, error) {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return nil, err
			}
			return []byte(prefix + hex.EncodeToString(b) + "\n"), nil
		})
		if err != nil {
			return err
		}
		pepperCreated = pepperCreated || (created && name == devPepper)
	}
	if err := devKeysInit(dir, pepperCreated, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "local trial state ready in %s (pepper, mock provider keys, demo key, audit keys, TLS)\n", dir)
	return nil
}

// devKeysInit makes sure the key file holds a demo key that works with the pepper in dir.
// Keys are stored as HMACs under the pepper, so a new pepper (the old one deleted) or an edited
// one leaves every key in the file dead: the file is then moved aside, a new demo key is
// minted, and the user is told to mint their other keys again.
func devKeysInit(dir string, pepperCreated bool, stdout io.Writer) error {
	raw, err := os.ReadFile(filepath.Join(dir, devPepper))
	if err != nil {
		return err
	}
	pepper := []byte(strings.TrimSpace(string(raw)))
	keyFile := filepath.Join(dir, devKeys)
	_, err = os.Stat(keyFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return mintDemoKey(dir, pepper)
	case err != nil:
		return err
	}
	var kf struct {
		Keys []policy.KeyConfig `mapstructure:"keys"`
	}
	if err := decodeYAML(keyFile, &kf); err != nil {
		return fmt.Errorf("%s: %w (fix it, or delete it and run dev init again for a new demo key)", keyFile, err)
	}
	stale := pepperCreated && len(kf.Keys) > 0
	demo, demoErr := readDemoKey(dir)
	if demoErr == nil && !stale {
		for _, k := range kf.Keys {
			if k.ID == demo.ID {
				if k.Hash == keys.Hash(pepper, demo.Secret).String() {
					return nil // the demo key works
				}
				stale = true
			}
		}
	}
	if !stale {
		// The demo key is missing or was removed from the file: mint a new one beside the
		// other keys, which still match the pepper.
		return mintDemoKey(dir, pepper)
	}
	moved := keyFile + ".stale-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(keyFile, moved); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "note: %s no longer matches the keys in %s (it was recreated or changed), so none of them works;\n"+
		"      moved that file to %s and minted a new demo key. Mint your other keys again with\n"+
		"      tollgate keys new --config examples/config.yaml --team T --name N --append %s\n",
		filepath.Join(dir, devPepper), keyFile, moved, keyFile)
	return mintDemoKey(dir, pepper)
}

// mintDemoKey adds a new demo key to the key file and saves its token for the trial banner.
func mintDemoKey(dir string, pepper []byte) error {
	demo, err := mintKey(pepper, policy.KeyConfig{Team: "platform", Name: "demo"})
	if err != nil {
		return err
	}
	if err := appendKey(filepath.Join(dir, devKeys), demo.entry); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, devDemoKey), []byte(demo.token.Reveal()+"\n"), 0o600)
}

// readDemoKey reads the token saved by mintDemoKey.
func readDemoKey(dir string) (keys.Token, error) {
	raw, err := os.ReadFile(filepath.Join(dir, devDemoKey))
	if err != nil {
		return keys.Token{}, err
	}
	return keys.Parse(strings.TrimSpace(string(raw)))
}

// writeOnce writes what gen returns to path unless path exists; it reports whether it wrote.
func writeOnce(path string, gen func() ([]byte, error)) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	b, err := gen()
	if err != nil {
		return false, err
	}
	return true, os.WriteFile(path, b, 0o600)
}
