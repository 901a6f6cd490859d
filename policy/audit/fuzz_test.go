package audit_test

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

// validFile returns the bytes of a verified single-file, single-chain audit
// log with three events and a checkpoint.
func validFile(f *testing.F) []byte {
	f.Helper()
	files := writeSet(f, f.TempDir(), 3, 1<<20)
	if len(files) != 1 {
		f.Fatalf("expected one file, got %d", len(files))
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzVerify mutates a valid audit file. Verify must never panic, and any
// change to the bytes must be reported: the only inputs that verify are the
// original and the original cut short (an unsealed tail, as a file still being
// written looks).
func FuzzVerify(f *testing.F) {
	valid := validFile(f)
	lines := bytes.SplitAfter(valid, []byte("\n"))
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add(bytes.Replace(valid, []byte(`"status":200`), []byte(`"status":500`), 1))
	f.Add(bytes.Join(append(lines[1:2:2], lines[0], lines[2], lines[3]), nil))
	f.Add(bytes.Join(lines[:3], nil))
	f.Add(append(bytes.Clone(valid), lines[0]...))
	f.Add([]byte{})
	f.Add([]byte("\n"))
	f.Add([]byte(`{"v":1,"type":"checkpoint","seq":1}` + "\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := audit.VerifyBytes(map[string][]byte{"audit.log": data}, []string{"audit.log"}, chainKey, ckPub)
		if bytes.Equal(data, valid) {
			if err != nil {
				t.Fatalf("the original must verify: %v", err)
			}
			return
		}
		if err == nil && !isUnsealedPrefix(data, valid, rep) {
			t.Fatalf("mutation not detected (%d records, %d checkpoints)", rep.Records, rep.Checkpoints)
		}
		if err == nil {
			return
		}
		var p *audit.Problem
		if !errors.As(err, &p) || p != rep.Problem {
			t.Fatalf("a content problem must be a *Problem in the report: %v", err)
		}
	})
}

// isUnsealedPrefix reports whether data is valid cut short, which Verify
// accepts as an unsealed tail (a file still being written): its complete
// lines are the first lines of valid, and what follows them, if anything, is
// the start of a record.
func isUnsealedPrefix(data, valid []byte, rep audit.Report) bool {
	complete := data[:bytes.LastIndexByte(data, '\n')+1]
	rest := data[len(complete):]
	return rep.Unsealed != nil && bytes.HasPrefix(valid, complete) &&
		(bytes.HasPrefix(rest, []byte(`{"v":1,`)) || bytes.HasPrefix([]byte(`{"v":1,`), rest))
}

// FuzzVerifySet mutates one file of a rotated set of three, given in a fixed
// wrong order. Ordering by the chain must cope with whatever the file
// becomes, and any change must be reported: emptying or cutting the first
// file (a missing head) and emptying the last one (a missing tail) included.
// The one exception is the last file cut short, which is what a file still
// being written looks like (an unsealed tail).
func FuzzVerifySet(f *testing.F) {
	paths := writeSet(f, f.TempDir(), 6, smallFile)
	if len(paths) != 3 {
		f.Fatalf("expected three files, got %d", len(paths))
	}
	files := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		files[filepath.Base(p)] = b
	}
	names := []string{"audit.log.1", "audit.log.2", "audit.log"}
	for i, name := range names {
		valid := files[name]
		lines := bytes.SplitAfter(valid, []byte("\n"))
		f.Add(uint8(i), valid)
		f.Add(uint8(i), []byte{})
		f.Add(uint8(i), bytes.Join(lines[1:], nil))
		f.Add(uint8(i), bytes.Join(lines[:len(lines)-2], nil))
		f.Add(uint8(i), bytes.Join(append(lines[1:2:2], lines[0]), nil))
		f.Add(uint8(i), files[names[(i+1)%3]])
		f.Add(uint8(i), []byte(`{"v":1,"time":"2026-`))
	}
	f.Add(uint8(1), append(bytes.Clone(files["audit.log.2"]), files["audit.log"]...))
	order := []string{"audit.log", "audit.log.2", "audit.log.1"}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		name := names[int(which)%len(names)]
		valid := files[name]
		set := map[string][]byte{}
		for k, v := range files {
			set[k] = v
		}
		set[name] = data
		rep, err := audit.VerifyBytes(set, order, chainKey, ckPub)
		if bytes.Equal(data, valid) {
			if err != nil {
				t.Fatalf("the original must verify: %v", err)
			}
			return
		}
		if err == nil && !(name == "audit.log" && isUnsealedPrefix(data, valid, rep)) {
			t.Fatalf("mutation of %s not detected (%d records, %d checkpoints)", name, rep.Records, rep.Checkpoints)
		}
	})
}

// FuzzTruncateAddr checks that TruncateAddr never panics, never echoes input
// that is not an address, and always returns a masked prefix or a full
// address.
func FuzzTruncateAddr(f *testing.F) {
	for _, s := range []string{"203.0.113.7", "203.0.113.7:443", "[2001:db8::1]:443", "fe80::1%eth0",
		"::ffff:1.2.3.4", "", "sk-live-xyz", "1.2.3.4:", "[::1]", "::"} {
		f.Add(s, 24, 48)
	}
	f.Fuzz(func(t *testing.T, addr string, v4, v6 int) {
		out := audit.TruncateAddr(addr, v4, v6)
		if out == "" {
			return
		}
		if p, err := netip.ParsePrefix(out); err == nil {
			if p.Masked() != p {
				t.Fatalf("%q: host bits kept", out)
			}
			return
		}
		if _, err := netip.ParseAddr(out); err != nil {
			t.Fatalf("%q is neither a prefix nor an address", out)
		}
	})
}

// FuzzParseCheckpointPublicKey checks that key parsing never panics and fails
// only with the fixed sentinel, which cannot echo the input.
func FuzzParseCheckpointPublicKey(f *testing.F) {
	_, pubPEM, err := audit.GenerateCheckpointKey()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pubPEM)
	f.Add([]byte("MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE="))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pub, err := audit.ParseCheckpointPublicKey(data)
		if err != nil {
			if err != audit.ErrBadCheckpointKey {
				t.Fatalf("error is not the sentinel: %v", err)
			}
			return
		}
		if len(pub) != 32 {
			t.Fatalf("key of %d bytes", len(pub))
		}
		if _, err := audit.ParseCheckpointPrivateKey(data); err == nil && bytes.Contains(data, []byte("PUBLIC")) {
			t.Fatal("a public key parsed as a private key")
		}
	})
}
