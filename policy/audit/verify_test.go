package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/audit"
)

// smallFile makes FileSink rotate every two events.
const smallFile = 1500

func TestVerifyUntouchedRotatedSet(t *testing.T) {
	t.Parallel()
	files := writeSet(t, t.TempDir(), 12, smallFile)
	require.Len(t, files, 6, "two events per file")

	// Any argument order: the set is ordered by its chain.
	shuffled := append([]string(nil), files...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	rep, err := audit.Verify(shuffled, chainKey, ckPub)
	require.NoError(t, err)
	require.Nil(t, rep.Problem)
	require.Equal(t, uint64(12), rep.Records)
	require.Equal(t, uint64(12), rep.Events)
	require.Equal(t, uint64(6), rep.Checkpoints)
	require.Equal(t, 1, rep.Segments)
	require.Equal(t, [2]uint64{1, 12}, [2]uint64{rep.FirstSeq, rep.LastSeq})
	require.False(t, rep.StartsMidChain)
	require.True(t, rep.MACsChecked && rep.SignaturesChecked)
	for i, f := range rep.Files {
		require.Equal(t, files[i], f.Path)
		require.Equal(t, uint64(2*i+1), f.FirstSeq)
	}

	// The oldest files removed: a problem, unless retention is allowed;
	// then it is flagged.
	_, err = audit.Verify(files[2:], chainKey, ckPub)
	require.ErrorIs(t, err, audit.ErrMissing)
	rep, err = audit.VerifyWithOptions(files[2:], chainKey, ckPub, audit.VerifyOptions{AllowRetention: true})
	require.NoError(t, err)
	require.True(t, rep.StartsMidChain)
	require.Equal(t, uint64(5), rep.FirstSeq)
	require.Equal(t, uint64(3), rep.StartsAtFile)

	// Without keys only the structure is checked, and the report says so.
	rep, err = audit.Verify(files, nil, nil)
	require.NoError(t, err)
	require.False(t, rep.MACsChecked || rep.SignaturesChecked)
	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	require.Contains(t, out.String(), "edited fields cannot be detected")
}

// TestChainKnownAnswer recomputes every mac and signature exactly as SCHEMA.md
// describes, with nothing but the standard library: the format is verifiable
// without this package.
func TestChainKnownAnswer(t *testing.T) {
	t.Parallel()
	files := writeSet(t, t.TempDir(), 5, smallFile)
	prevMAC := ""
	for _, f := range files {
		for _, line := range readLines(t, f) {
			line = bytes.TrimSuffix(line, []byte("\n"))
			var m map[string]any
			require.NoError(t, json.Unmarshal(line, &m))
			if m["type"] == "checkpoint" {
				body := append(bytes.Clone(line[:len(line)-len(`,"sig":"`)-128-2]), '}')
				sig, err := hex.DecodeString(m["sig"].(string))
				require.NoError(t, err)
				require.True(t, ed25519.Verify(ckPub, append([]byte("tollgate audit checkpoint v1\n"), body...), sig))
				require.Equal(t, prevMAC, m["last_mac"])
				continue
			}
			body := append(bytes.Clone(line[:len(line)-74]), '}')
			h := hmac.New(sha256.New, chainKey)
			h.Write(body)
			require.Equal(t, hex.EncodeToString(h.Sum(nil)), m["mac"])
			require.True(t, strings.HasSuffix(string(body), `,"prev":"`+m["prev"].(string)+`"}`))
			if prevMAC != "" {
				require.Equal(t, prevMAC, m["prev"])
			}
			prevMAC = m["mac"].(string)
		}
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	otherPub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	type set = []string // files in chain order, two events and a checkpoint each
	for _, tc := range []struct {
		name    string
		tamper  func(t *testing.T, files set)
		pub     ed25519.PublicKey
		noPub   bool
		key     []byte
		opts    audit.VerifyOptions // retention allowed: the head check does not mask the one under test
		want    error
		file    int // index into the set
		line    int
		seq     uint64
		message string
	}{
		{name: "edited field", want: audit.ErrModified, file: 1, line: 1, seq: 3, message: "mac mismatch",
			tamper: func(t *testing.T, files set) {
				replaceInLine(t, files[1], 0, `"status":200`, `"status":201`)
			}},
		{name: "edited token count", want: audit.ErrModified, file: 4, line: 2, seq: 10,
			tamper: func(t *testing.T, files set) {
				replaceInLine(t, files[4], 1, `"output":164`, `"output":16`)
			}},
		{name: "deleted record at file start", want: audit.ErrMissing, file: 2, line: 1, seq: 6, message: "seq 5 not in the set",
			tamper: func(t *testing.T, files set) { deleteLine(t, files[2], 0) }},
		{name: "deleted record before checkpoint", want: audit.ErrMissing, file: 2, line: 2, seq: 6,
			tamper: func(t *testing.T, files set) { deleteLine(t, files[2], 1) }},
		{name: "deleted first record of the set", want: audit.ErrMissing, file: 0, line: 2, seq: 2,
			message: "checkpoint counts 2 records in this file, 1 are present", opts: audit.VerifyOptions{AllowRetention: true},
			tamper: func(t *testing.T, files set) { deleteLine(t, files[0], 0) }},
		{name: "deleted whole middle file", want: audit.ErrMissing, file: 3, line: 1, seq: 7, message: "seq 5 to 6 not in the set",
			tamper: func(t *testing.T, files set) { require.NoError(t, os.Remove(files[2])) }},
		{name: "swapped records", want: audit.ErrReordered, file: 2, line: 1, seq: 6, message: "seq 5 is later",
			tamper: func(t *testing.T, files set) { swapLines(t, files[2], 0, 1) }},
		{name: "record swapped with checkpoint", want: audit.ErrReordered, file: 2, line: 2, seq: 6,
			tamper: func(t *testing.T, files set) { swapLines(t, files[2], 1, 2) }},
		{name: "duplicated record", want: audit.ErrDuplicate, file: 2, line: 2, seq: 5,
			tamper: func(t *testing.T, files set) {
				l := readLines(t, files[2])
				writeLines(t, files[2], [][]byte{l[0], l[0], l[1], l[2]})
			}},
		// The same at the end of the last file is an unsealed tail: see TestVerifyLiveFile.
		{name: "truncated file: checkpoint removed", want: audit.ErrTruncated, file: 2, line: 2, seq: 6,
			tamper: func(t *testing.T, files set) { deleteLine(t, files[2], 2) }},
		{name: "truncated file: cut mid-line", want: audit.ErrTruncated, file: 2, line: 3, message: "incomplete",
			tamper: func(t *testing.T, files set) {
				b, err := os.ReadFile(files[2])
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(files[2], b[:len(b)-40], 0o600))
			}},
		{name: "bad checkpoint signature: wrong key", pub: otherPub, want: audit.ErrBadSignature, file: 0, line: 3, seq: 2,
			tamper: func(*testing.T, set) {}},
		{name: "bad checkpoint signature: edited count", want: audit.ErrBadSignature, file: 1, line: 3, seq: 4,
			tamper: func(t *testing.T, files set) { replaceInLine(t, files[1], 2, `"count":2`, `"count":3`) }},
		{name: "bad checkpoint signature: rotation made a close", want: audit.ErrBadSignature, file: 4, line: 3, seq: 10,
			tamper: func(t *testing.T, files set) {
				replaceInLine(t, files[4], 2, `"reason":"rotate"`, `"reason":"close"`)
				require.NoError(t, os.Remove(files[5]))
			}},
		{name: "checkpoint names another file of its chain", want: audit.ErrCheckpointMismatch, file: 2, line: 3, seq: 6,
			message: "checkpoint closes file 4 of its chain, file 3 was expected",
			tamper:  func(t *testing.T, files set) { resignCheckpoint(t, files[2], 2, `"chain_file":3`, `"chain_file":4`) }},
		{name: "checkpoint names another first seq", want: audit.ErrCheckpointMismatch, file: 2, line: 3, seq: 6,
			message: "checkpoint says the records in this file start at seq 6, the first one present is seq 5",
			tamper:  func(t *testing.T, files set) { resignCheckpoint(t, files[2], 2, `"first_seq":5`, `"first_seq":6`) }},
		{name: "unknown checkpoint reason", want: audit.ErrMalformed, file: 2, line: 3, message: "unreadable checkpoint",
			tamper: func(t *testing.T, files set) {
				resignCheckpoint(t, files[2], 2, `"reason":"rotate"`, `"reason":"pause"`)
			}},
		{name: "checkpoint with only some of the new members", want: audit.ErrMalformed, file: 2, line: 3,
			tamper: func(t *testing.T, files set) { resignCheckpoint(t, files[2], 2, `"chain_file":3,`, ``) }},
		{name: "checkpoint edited without a public key", noPub: true, want: audit.ErrMissing, file: 1, line: 3, seq: 4,
			tamper: func(t *testing.T, files set) { replaceInLine(t, files[1], 2, `"count":2`, `"count":3`) }},
		{name: "records from another chain", want: audit.ErrChainBroken, file: 2, line: 1, seq: 5,
			tamper: func(t *testing.T, files set) {
				// Same key, same events, another chain id: seq 5 from that chain.
				other := writeSetWithID(t, t.TempDir(), 12, 9)
				mine, theirs := readLines(t, files[2]), readLines(t, other[2])
				mine[0] = theirs[0]
				writeLines(t, files[2], mine)
			}},
		{name: "wrong chain key", key: []byte("another-chain-key-0123456789abcd"), want: audit.ErrModified, file: 0, line: 1, seq: 1,
			tamper: func(*testing.T, set) {}},
		{name: "blank line inserted", want: audit.ErrMalformed, file: 0, line: 2, message: "empty line",
			tamper: func(t *testing.T, files set) {
				l := readLines(t, files[0])
				writeLines(t, files[0], [][]byte{l[0], []byte("\n"), l[1], l[2]})
			}},
		{name: "repeated checkpoint", want: audit.ErrDuplicate, file: 0, line: 4, seq: 2,
			tamper: func(t *testing.T, files set) {
				l := readLines(t, files[0])
				writeLines(t, files[0], append(l, l[2]))
			}},
		{name: "all records of a file deleted", want: audit.ErrMissing, file: 0, line: 1, seq: 2,
			opts: audit.VerifyOptions{AllowRetention: true},
			tamper: func(t *testing.T, files set) {
				l := readLines(t, files[0])
				writeLines(t, files[0], l[2:])
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files := writeSet(t, t.TempDir(), 12, smallFile)
			tc.tamper(t, files)
			pub, key := ckPub, chainKey
			if tc.pub != nil || tc.noPub {
				pub = tc.pub
			}
			if tc.key != nil {
				key = tc.key
			}
			var existing []string
			for _, f := range files {
				if _, err := os.Stat(f); err == nil {
					existing = append(existing, f)
				}
			}
			rep, err := audit.VerifyWithOptions(existing, key, pub, tc.opts)
			require.ErrorIs(t, err, tc.want)
			var p *audit.Problem
			require.ErrorAs(t, err, &p)
			require.Same(t, p, rep.Problem)
			require.Equal(t, files[tc.file], p.File, p.Error())
			require.Equal(t, tc.line, p.Line, p.Error())
			require.Equal(t, tc.seq, p.Seq, p.Error())
			require.Contains(t, p.Error(), tc.message)
		})
	}
}

func TestVerifyRestartsAndCrashes(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, path string, id byte, n int, closeIt bool) {
		fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: path, Fsync: audit.FsyncNever, CheckpointKey: ckPriv})
		require.NoError(t, err)
		e := newEmitter(t, audit.EmitterConfig{Rand: zeroRand{id}}, fs)
		for i := range n {
			ev := sampleEvent(i)
			e.Emit(&ev)
		}
		if closeIt {
			closeEmitter(t, e)
			return
		}
		// A crash: the records reach the file, the checkpoint never does.
		closeEmitter(t, e)
		l := readLines(t, path)
		writeLines(t, path, l[:len(l)-1])
	}
	t.Run("clean restarts append new segments", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "audit.log")
		run(t, path, 1, 3, true)
		run(t, path, 2, 2, true)
		rep, err := audit.Verify([]string{path}, chainKey, ckPub)
		require.NoError(t, err)
		require.Equal(t, 2, rep.Segments)
		require.Equal(t, uint64(5), rep.Events)
		require.Equal(t, uint64(6), rep.Records, "the second chain starts with a record linking it to the first")
	})
	t.Run("a crash leaves an unclosed segment the next one links to", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "audit.log")
		run(t, path, 1, 3, false)
		run(t, path, 2, 2, true)
		rep, err := audit.Verify([]string{path}, chainKey, ckPub)
		require.NoError(t, err)
		require.Equal(t, []audit.ChainEnd{{File: path, Line: 3, Seq: 3}}, rep.Unclosed)
	})
	t.Run("a replayed segment is a duplicate", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "audit.log")
		run(t, path, 1, 2, true)
		l := readLines(t, path)
		writeLines(t, path, append(l, l...))
		_, err := audit.Verify([]string{path}, chainKey, ckPub)
		require.ErrorIs(t, err, audit.ErrDuplicate)
	})
	t.Run("empty files and empty sets", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		empty := filepath.Join(dir, "empty.log")
		require.NoError(t, os.WriteFile(empty, nil, 0o600))
		_, err := audit.Verify([]string{empty}, chainKey, ckPub)
		require.ErrorIs(t, err, audit.ErrNoRecords)
		_, err = audit.Verify(nil, chainKey, ckPub)
		require.ErrorIs(t, err, audit.ErrNoRecords)
		files := writeSet(t, dir, 2, smallFile)
		rep, err := audit.Verify(append(files, empty), chainKey, ckPub)
		require.NoError(t, err)
		require.Len(t, rep.Files, 2)
	})
	t.Run("argument errors", func(t *testing.T) {
		t.Parallel()
		_, err := audit.Verify([]string{"x"}, []byte("short"), nil)
		require.ErrorIs(t, err, audit.ErrWeakKey)
		_, err = audit.Verify([]string{"x"}, nil, ed25519.PublicKey{1})
		require.ErrorIs(t, err, audit.ErrBadCheckpointKey)
		_, err = audit.Verify([]string{filepath.Join(t.TempDir(), "missing")}, chainKey, nil)
		require.ErrorIs(t, err, os.ErrNotExist)
	})
}

// writeSetWithID is writeSet with another chain id.
func writeSetWithID(t *testing.T, dir string, n int, id byte) []string {
	t.Helper()
	path := filepath.Join(dir, "audit.log")
	fs, err := audit.NewFileSink(audit.FileSinkConfig{Path: path, MaxBytes: smallFile, Fsync: audit.FsyncNever, CheckpointKey: ckPriv, Now: fixedClock()})
	require.NoError(t, err)
	e := newEmitter(t, audit.EmitterConfig{Now: fixedClock(), Rand: zeroRand{id}, BatchSize: 3}, fs)
	for i := range n {
		ev := sampleEvent(i)
		e.Emit(&ev)
	}
	closeEmitter(t, e)
	return rotatedFiles(t, path)
}

func replaceInLine(t *testing.T, path string, i int, old, new string) {
	t.Helper()
	l := readLines(t, path)
	require.Contains(t, string(l[i]), old)
	l[i] = []byte(strings.Replace(string(l[i]), old, new, 1))
	writeLines(t, path, l)
}

// resignCheckpoint replaces old with new in the checkpoint on line i and signs
// it again with the checkpoint key: what only the key holder can write.
func resignCheckpoint(t *testing.T, path string, i int, old, new string) {
	t.Helper()
	l := readLines(t, path)
	line := string(bytes.TrimSuffix(l[i], []byte("\n")))
	require.Contains(t, line, `"type":"checkpoint"`)
	require.Contains(t, line, old)
	body := strings.Replace(line[:len(line)-len(`,"sig":"`)-128-2]+"}", old, new, 1)
	sig := ed25519.Sign(ckPriv, []byte("tollgate audit checkpoint v1\n"+body))
	l[i] = []byte(body[:len(body)-1] + `,"sig":"` + hex.EncodeToString(sig) + "\"}\n")
	writeLines(t, path, l)
}

func deleteLine(t *testing.T, path string, i int) {
	t.Helper()
	l := readLines(t, path)
	writeLines(t, path, append(l[:i:i], l[i+1:]...))
}

func swapLines(t *testing.T, path string, i, j int) {
	t.Helper()
	l := readLines(t, path)
	l[i], l[j] = l[j], l[i]
	writeLines(t, path, l)
}
