package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"unicode"

	"github.com/tollgate-ai/tollgate/policy"
	"github.com/tollgate-ai/tollgate/policy/secrets"
)

const secretsUsage = `usage: tollgate secrets seal --kek-id ID [--config FILE | --kek env:NAME|file:PATH] < secret
       tollgate secrets rewrap --config FILE --to KEK-ID
       tollgate secrets new-kek [--out FILE]

seal     read a secret from stdin (never the command line) and print it sealed under the KEK
         ID, for a provider credential (credential: or credentials.primary / next)
rewrap   seal every sealed value of the config again under the KEK KEK-ID (listed in
         security.keks), writing the file atomically; refused, file untouched, when any
         value does not open
new-kek  print fresh KEK material (32 random bytes, base64), or write it to a new file
         (mode 0600)`

// stdinLimit bounds what seal reads: the largest secret plus room for trailing whitespace.
const stdinLimit = secrets.MaxSealedPlaintext + 1024

func runSecrets(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, secretsUsage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "seal":
		return runSeal(args[1:], stdin, stdout, stderr)
	case "rewrap":
		return runRewrap(args[1:], stdout, stderr)
	case "new-kek":
		return runNewKEK(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, secretsUsage)
		return nil
	default:
		fmt.Fprintln(stderr, secretsUsage)
		return errors.New("secrets: unknown subcommand (seal, rewrap, new-kek)")
	}
}

func runSeal(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("secrets seal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kekID := fs.String("kek-id", "", "id of the KEK to seal under (required)")
	cfgPath := fs.String("config", "", "config file whose security.keks lists the KEK (default tollgate.yaml unless --kek)")
	kekRef := fs.String("kek", "", "the KEK itself, env:NAME or file:PATH (instead of --config)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		// Never echo it: it may be the secret itself, typed where it does not belong.
		return errors.New("secrets seal: the secret is read from stdin, never from the command line " +
			"(arguments stay in shell history and are visible to other users in ps); nothing sealed")
	}
	if !secrets.ValidKEKID(*kekID) {
		return fmt.Errorf("--kek-id is required: 1-%d characters of [A-Za-z0-9_-]", secrets.MaxKEKIDLen)
	}
	if *cfgPath != "" && *kekRef != "" {
		return errors.New("give --config or --kek, not both")
	}
	ring, err := sealingKeyring(*kekID, *cfgPath, *kekRef)
	if err != nil {
		return err
	}
	defer ring.Wipe()

	raw, err := io.ReadAll(io.LimitReader(stdin, stdinLimit+1))
	defer clear(raw)
	if err != nil {
		return fmt.Errorf("secrets seal: read stdin: %w", err)
	}
	if len(raw) > stdinLimit {
		return fmt.Errorf("secrets seal: %w (limit %d bytes)", secrets.ErrTooLarge, secrets.MaxSealedPlaintext)
	}
	// Trailing whitespace goes, as for file: references (echo adds a newline).
	secret := bytes.TrimRightFunc(raw, unicode.IsSpace)
	if len(secret) == 0 {
		return errors.New("secrets seal: stdin is empty: pipe the secret in, e.g. `tollgate secrets seal --kek-id k1 < key.txt`")
	}
	for _, c := range secret {
		if c < 0x20 || c == 0x7f {
			return errors.New("secrets seal: the secret holds control characters or line breaks, which a credential header cannot carry; nothing sealed")
		}
	}
	sealed, err := ring.Seal(*kekID, secret, rand.Reader)
	if err != nil {
		return fmt.Errorf("secrets seal: %w", err)
	}
	fmt.Fprintln(stdout, sealed)
	return nil
}

// sealingKeyring loads the one KEK seal needs: from --kek, or from the config's security.keks.
func sealingKeyring(id, cfgPath, kekRef string) (*secrets.Keyring, error) {
	if kekRef != "" {
		return policy.LoadKeyring([]policy.KEKConfig{{ID: id, Key: kekRef}}, ".", secrets.Resolver{})
	}
	if cfgPath == "" {
		cfgPath = "tollgate.yaml"
	}
	l, err := readConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	for _, k := range l.cfg.Security.KEKs {
		if k.ID == id {
			return policy.LoadKeyring([]policy.KEKConfig{k}, l.dir, secrets.Resolver{})
		}
	}
	return nil, fmt.Errorf("security.keks in %s lists no KEK %q: add {id: %s, key: file:PATH} (and the key file) first, "+
		"so tollgate can open what you seal", cfgPath, id, id)
}

func runNewKEK(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("secrets new-kek", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "write the KEK to this new file (mode 0600) instead of stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("secrets new-kek: flags only")
	}
	k, err := secrets.GenerateKEK(rand.Reader)
	if err != nil {
		return err
	}
	if *out == "" {
		fmt.Fprintln(stdout, k)
		return nil
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("secrets new-kek: %w (an existing KEK is never overwritten)", err)
	}
	if _, err := fmt.Fprintln(f, k); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote a new KEK to %s; list it in security.keks as {id: ..., key: file:%s}\n", *out, *out)
	return nil
}
