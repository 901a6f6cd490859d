package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
)

// Report is the outcome of Verify. Problem is nil when the set verified.
type Report struct {
	// Files are the files in chain order, as verified.
	Files []FileReport
	// Records counts chained records (events and drop markers) verified.
	Records uint64
	// Events counts event records.
	Events uint64
	// Dropped sums the counts of "dropped" marker records: events the emitter
	// could not record (queue full, shutdown). They are not tampering.
	Dropped uint64
	// Checkpoints counts checkpoint records verified.
	Checkpoints uint64
	// Segments counts chains (emitter lifetimes) in the set.
	Segments int
	// FirstSeq and LastSeq are the seq of the first and last record.
	FirstSeq, LastSeq uint64
	// StartsMidChain reports that the first record is not the start of its
	// chain: earlier files are not in the set (retention removed them, or
	// they were not given).
	StartsMidChain bool
	// MACsChecked and SignaturesChecked say which keys Verify had.
	MACsChecked, SignaturesChecked bool
	// Problem is the first problem found, or nil.
	Problem *Problem
}

// FileReport summarizes one file of the set.
type FileReport struct {
	Path              string
	Lines             int
	Records           uint64
	Checkpoints       uint64
	FirstSeq, LastSeq uint64
}

// Problem locates the first integrity problem in a file set. It wraps one of
// the verification sentinels (ErrModified, ErrMissing, ...). Detail holds
// only sequence numbers, counts and positions, never record content.
type Problem struct {
	Err    error
	File   string
	Line   int    // 1-based line number in File
	Seq    uint64 // seq the offending record claims; 0 when none
	Detail string
}

// Error returns "FILE:LINE: seq N: KIND: DETAIL".
func (p *Problem) Error() string {
	s := fmt.Sprintf("%s:%d: ", p.File, p.Line)
	if p.Seq > 0 {
		s += fmt.Sprintf("seq %d: ", p.Seq)
	}
	s += p.Err.Error()
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// Unwrap returns the sentinel.
func (p *Problem) Unwrap() error { return p.Err }

// Verify checks a set of audit files written by FileSink (or captured from a
// WriterSink) and reports the first problem: an edited record (mac mismatch),
// deleted records (a seq gap, or a checkpoint covering more records than
// present), reordered or repeated records, a broken prev link, records not
// followed by a checkpoint (a truncated tail, a crash, or a file still being
// written), a checkpoint that disagrees with its records, or a bad checkpoint
// signature.
//
// The paths may be given in any order: Verify orders them by the chain (see
// orderFiles), so a shell glob of a rotated set works. Empty files are
// skipped. A set whose first record is not the start of its chain verifies,
// with Report.StartsMidChain set: that is what retention of old files looks
// like.
//
// chainKey checks every record's mac; pub checks every checkpoint's
// signature. Either may be nil to skip that check (Report says which ran);
// without chainKey an edited field goes unnoticed, without pub a forged
// checkpoint does.
//
// The error is a *Problem (also in Report.Problem) when the set fails
// verification, or an I/O or argument error.
//
// Limits: whole files or whole chain segments removed from the beginning or
// the end of a set leave no trace inside it. Ship checkpoints elsewhere (the
// webhook sink) to anchor them.
func Verify(paths []string, chainKey []byte, pub ed25519.PublicKey) (Report, error) {
	return verify(osOpen, paths, chainKey, pub)
}

func verify(open opener, paths []string, chainKey []byte, pub ed25519.PublicKey) (Report, error) {
	rep := Report{MACsChecked: chainKey != nil, SignaturesChecked: pub != nil}
	if len(paths) == 0 {
		return rep, fmt.Errorf("%w: no files given", ErrNoRecords)
	}
	if chainKey != nil && len(chainKey) < MinKeyLen {
		return rep, fmt.Errorf("chain key: %w", ErrWeakKey)
	}
	if pub != nil && len(pub) != ed25519.PublicKeySize {
		return rep, ErrBadCheckpointKey
	}
	heads := make([]fileHead, 0, len(paths))
	for _, p := range paths {
		h, err := scanHead(open, p)
		if err != nil {
			return rep, fmt.Errorf("audit verify: %w", err)
		}
		heads = append(heads, h)
	}
	v := &verifier{rep: &rep, pub: pub, open: open, files: orderFiles(heads), chains: map[string]bool{}}
	if chainKey != nil {
		v.mac = hmac.New(sha256.New, chainKey)
	}
	if err := v.run(); err != nil {
		return rep, err
	}
	if rep.Problem != nil {
		return rep, rep.Problem
	}
	return rep, nil
}

// verifier is the state of one verification pass over the ordered files.
type verifier struct {
	rep   *Report
	mac   hash.Hash
	pub   ed25519.PublicKey
	open  opener
	files []fileHead

	have      bool   // a chained record was seen
	lastSeq   uint64 // seq and mac of the last chained record
	lastMAC   string
	last      location
	covered   bool // the last chained record is covered by a checkpoint
	fileCount uint64
	chains    map[string]bool // chain ids (prev of seq 1) seen
}

func (v *verifier) run() error {
	for fi, f := range v.files {
		fr := FileReport{Path: f.path}
		v.fileCount = 0
		var p *Problem
		lastLine := 0
		err := forEachLine(v.open, f.path, func(n int, line []byte, complete bool) bool {
			fr.Lines, lastLine = n, n
			if !complete {
				p = v.problem(location{fi, n}, 0, ErrTruncated, "last line is incomplete")
				return false
			}
			p = v.line(location{fi, n}, line, &fr)
			return p == nil
		})
		if errors.Is(err, errLineTooLong) {
			p = v.problem(location{fi, fr.Lines + 1}, 0, ErrMalformed, "line longer than MaxLineBytes")
		} else if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		if p == nil && v.fileCount > 0 {
			p = v.problem(location{fi, lastLine}, v.lastSeq, ErrTruncated, fmt.Sprintf(
				"file ends after seq %d without a checkpoint (truncated, crashed, or still being written)", v.lastSeq))
		}
		v.rep.Files = append(v.rep.Files, fr)
		if p != nil {
			v.rep.Problem = p
			return nil
		}
	}
	if v.rep.Records == 0 {
		v.rep.Problem = &Problem{Err: ErrNoRecords, File: v.files[0].path}
	}
	return nil
}

func (v *verifier) problem(at location, seq uint64, err error, detail string) *Problem {
	return &Problem{Err: err, File: v.files[at.file].path, Line: at.line, Seq: seq, Detail: detail}
}

// line checks one complete line.
func (v *verifier) line(at location, line []byte, fr *FileReport) *Problem {
	if len(line) == 0 {
		return v.problem(at, 0, ErrMalformed, "empty line")
	}
	if isCheckpoint(line) {
		return v.checkpoint(at, line, fr)
	}
	c, ok := parseChained(line)
	if !ok {
		return v.problem(at, 0, ErrMalformed, "not a chained record")
	}
	if v.mac != nil && !hmac.Equal([]byte(macOf(v.mac, c.head)), c.mac) {
		return v.problem(at, c.seq, ErrModified, "mac mismatch")
	}
	switch {
	case c.seq == 1:
		if v.chains[string(c.prev)] {
			return v.problem(at, c.seq, ErrDuplicate, "this chain already started earlier in the set")
		}
		if v.have && !v.covered {
			return v.problem(v.last, v.lastSeq, ErrTruncated, fmt.Sprintf(
				"seq %d is not followed by a checkpoint before a new chain starts at %s:%d",
				v.lastSeq, v.files[at.file].path, at.line))
		}
		v.chains[string(c.prev)] = true
		v.rep.Segments++
	case !v.have:
		v.rep.StartsMidChain = true
		v.rep.Segments++
	default:
		if p := v.link(at, c); p != nil {
			return p
		}
	}
	if bytes.HasPrefix(line, []byte(dropPrefix)) {
		var d dropRecord
		if err := json.Unmarshal(append(c.head, '}'), &d); err != nil {
			return v.problem(at, c.seq, ErrMalformed, "unreadable drop marker")
		}
		v.rep.Dropped += d.Count
	} else {
		v.rep.Events++
	}
	if v.rep.Records == 0 {
		v.rep.FirstSeq = c.seq
	}
	if fr.Records == 0 {
		fr.FirstSeq = c.seq
	}
	v.have, v.covered, v.last = true, false, at
	v.lastSeq, v.lastMAC = c.seq, string(c.mac)
	v.fileCount++
	v.rep.Records++
	v.rep.LastSeq = c.seq
	fr.Records++
	fr.LastSeq = c.seq
	return nil
}

// link checks that c continues the chain.
func (v *verifier) link(at location, c chained) *Problem {
	want := v.lastSeq + 1
	switch {
	case c.seq == v.lastSeq && string(c.mac) == v.lastMAC:
		return v.problem(at, c.seq, ErrDuplicate, "record repeated")
	case c.seq > want:
		return v.gap(at, c.seq, want, fmt.Sprintf("expected seq %d", want))
	case c.seq < want:
		return v.problem(at, c.seq, ErrReordered, fmt.Sprintf("seq %d comes after seq %d", c.seq, v.lastSeq))
	case string(c.prev) != v.lastMAC:
		return v.problem(at, c.seq, ErrChainBroken, fmt.Sprintf("prev does not match the mac of seq %d", v.lastSeq))
	}
	return nil
}

// gap reports seq want missing at the point where seq got appears: as a
// reordering when want turns up later in the same chain, else as a deletion.
func (v *verifier) gap(at location, got, want uint64, what string) *Problem {
	if l, ok := findSeq(v.open, v.files, at, want); ok {
		return v.problem(at, got, ErrReordered, fmt.Sprintf("%s; seq %d is later, at %s:%d",
			what, want, v.files[l.file].path, l.line))
	}
	missing := fmt.Sprintf("seq %d", want)
	if got > want+1 {
		missing = fmt.Sprintf("seq %d to %d", want, got-1)
	}
	return v.problem(at, got, ErrMissing, fmt.Sprintf("%s; %s not in the set", what, missing))
}

// checkpoint checks a checkpoint line against the records before it.
func (v *verifier) checkpoint(at location, line []byte, fr *FileReport) *Problem {
	cp, body, sig, ok := parseCheckpoint(line)
	if !ok {
		return v.problem(at, 0, ErrMalformed, "unreadable checkpoint")
	}
	if v.pub != nil && !verifyCheckpoint(v.pub, body, sig) {
		return v.problem(at, cp.Seq, ErrBadSignature, "")
	}
	switch {
	case v.fileCount == 0 && v.covered && cp.Seq == v.lastSeq && cp.LastMAC == v.lastMAC:
		return v.problem(at, cp.Seq, ErrDuplicate, "checkpoint repeated")
	case v.fileCount == 0:
		return v.problem(at, cp.Seq, ErrMissing, fmt.Sprintf(
			"checkpoint covers %d records through seq %d, none precede it in this file", cp.Count, cp.Seq))
	case cp.Seq > v.lastSeq:
		return v.gap(at, cp.Seq, v.lastSeq+1, fmt.Sprintf("checkpoint covers through seq %d, the last record is seq %d", cp.Seq, v.lastSeq))
	case cp.Seq < v.lastSeq:
		return v.problem(at, cp.Seq, ErrReordered, fmt.Sprintf("checkpoint for seq %d comes after seq %d", cp.Seq, v.lastSeq))
	case cp.LastMAC != v.lastMAC:
		return v.problem(at, cp.Seq, ErrCheckpointMismatch, fmt.Sprintf("last_mac is not the mac of seq %d", v.lastSeq))
	case cp.Count > v.fileCount:
		return v.problem(at, cp.Seq, ErrMissing, fmt.Sprintf(
			"checkpoint counts %d records in this file, %d are present", cp.Count, v.fileCount))
	case cp.Count != v.fileCount:
		return v.problem(at, cp.Seq, ErrCheckpointMismatch, fmt.Sprintf(
			"checkpoint counts %d records in this file, %d are present", cp.Count, v.fileCount))
	}
	v.covered = true
	v.fileCount = 0
	v.rep.Checkpoints++
	fr.Checkpoints++
	return nil
}
