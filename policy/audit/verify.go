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

// Verify checks a set of audit files written by FileSink (or captured from a
// WriterSink) and reports every problem it finds, going on after each one: an
// edited record (mac mismatch), deleted records (a seq gap, a checkpoint
// covering more records than present, or a chain whose start record does not
// follow the chain before it), whole files removed from either end of the set
// (see below), reordered or repeated records, a broken prev link, a file that
// ends in records not followed by a checkpoint (except at the end of the
// set), a checkpoint that disagrees with its records, or a bad checkpoint or
// gap signature.
//
// Ends of a set. Each checkpoint says which file of its chain it closes and
// why it was written. A set whose first record is not the first of its trail
// (it starts mid-chain, or with a chain whose start record links to an
// earlier one) is missing its oldest files: a problem, unless
// VerifyOptions.AllowRetention says they were removed on purpose (then
// Report.StartsMidChain notes it). A chain whose last checkpoint in the set
// was written on rotation, with no later file continuing it, is missing its
// newest files: always a problem. Checkpoints written before these members
// existed (Report.LegacyCheckpoints) cannot tell: a set whose first chain has
// them is accepted as before, and their tails are not checked.
//
// What is not a problem, and is reported as a note: records the emitter
// dropped (drop markers), records the file sink could not write (signed gap
// records), a chain that ended without a checkpoint when the next chain's
// start record links to its last record (a crash), and an unsealed tail: the
// records at the end of the set's last file that no checkpoint covers yet (a
// file still being written), possibly ending in an incomplete line.
//
// The paths may be given in any order: Verify orders them by the chain (see
// orderFiles), so a shell glob of a rotated set works. Empty files are
// skipped.
//
// chainKey checks every record's mac; pub checks every checkpoint's and gap
// record's signature. Either may be nil to skip that check (Report says which
// ran); without chainKey an edited field goes unnoticed, without pub a forged
// checkpoint or gap record does.
//
// The error is the first *Problem (also Report.Problem; Report.Problems has
// them all) when the set fails verification, or an I/O or argument error.
//
// Limits: records cut from the end of an unsealed tail leave no trace (with
// VerifyOptions.RequireSealed an unsealed tail fails), nor do records cut
// from the end of a crashed chain before the next start linked to what was
// left. Ship records elsewhere (the
// webhook sink) to anchor them.
func Verify(paths []string, chainKey []byte, pub ed25519.PublicKey) (Report, error) {
	return VerifyWithOptions(paths, chainKey, pub, VerifyOptions{})
}

// VerifyOptions changes what Verify accepts.
type VerifyOptions struct {
	// AllowRetention accepts a set that does not start at the beginning of
	// its trail, because older files were removed on purpose: that is then a
	// note (Report.StartsMidChain) instead of a problem. Files missing at the
	// end of a set are never accepted.
	AllowRetention bool
	// RequireSealed says the set's writer has stopped (or the set is an
	// archive): an unsealed tail, which is what a file still being written
	// looks like, is then a problem. Without it, a stopped gateway's newest
	// files could be removed and the checkpoint before them cut, and the set
	// would pass as one still being written.
	RequireSealed bool
}

// VerifyWithOptions is Verify with opts.
func VerifyWithOptions(paths []string, chainKey []byte, pub ed25519.PublicKey, opts VerifyOptions) (Report, error) {
	return verify(osOpen, paths, chainKey, pub, opts)
}

func verify(open opener, paths []string, chainKey []byte, pub ed25519.PublicKey, opts VerifyOptions) (Report, error) {
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
	v := &verifier{rep: &rep, pub: pub, open: open, opts: opts, files: orderFiles(heads), chains: map[string]bool{}}
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
	opts  VerifyOptions
	files []fileHead

	have    bool   // a chained record (or gap) was seen
	lastSeq uint64 // seq and mac of the last chained record (or the end of a gap)
	lastMAC string
	last    location
	covered bool   // the last record is covered by a checkpoint
	lastCP  string // checkpointHash of that checkpoint
	resync  bool   // the position is unknown after a bad gap record: take the next record as is
	chains  map[string]bool

	fileCount uint64        // chained records in this file since its start or its last checkpoint
	fileGap   bool          // a gap record in this file since then
	fileFirst uint64        // seq of the first of them (or of the gap); 0 when none
	tail      *UnsealedTail // the records since then

	cp        lastCheckpoint // the checkpoint that covers the chain position, when covered
	chainFile uint64         // chain_file the chain's next checkpoint must carry; 0 when unknown
	head      *head          // where the set starts, when that is not the start of its trail
}

func (v *verifier) run() error {
	for fi, f := range v.files {
		fr := FileReport{Path: f.path}
		v.fileCount, v.fileGap, v.fileFirst, v.tail = 0, false, 0, nil
		lastFile := fi == len(v.files)-1
		incomplete := false
		err := forEachLine(v.open, f.path, func(n int, line []byte, complete bool) bool {
			fr.Lines = n
			if !complete {
				if lastFile && recordStart(line) {
					incomplete = true // a record being written
				} else {
					v.report(v.problem(location{fi, n}, 0, ErrTruncated, "last line is incomplete"))
				}
				return false
			}
			v.line(location{fi, n}, line, &fr)
			return true
		})
		if errors.Is(err, errLineTooLong) {
			v.report(v.problem(location{fi, fr.Lines + 1}, 0, ErrMalformed, "line longer than MaxLineBytes"))
		} else if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		switch {
		case v.tail != nil && lastFile:
			v.tail.Incomplete = incomplete
			v.rep.Unsealed = v.tail
		case v.tail != nil:
			v.report(v.problem(v.last, v.lastSeq, ErrTruncated, fmt.Sprintf(
				"file ends after seq %d without a checkpoint (truncated, or a crash)", v.lastSeq)))
		case incomplete:
			v.rep.Unsealed = &UnsealedTail{File: f.path, Line: fr.Lines, Incomplete: true}
		}
		v.rep.Files = append(v.rep.Files, fr)
	}
	v.decideHead(nil, location{})
	v.checkEnd()
	if v.rep.Records == 0 {
		v.report(&Problem{Err: ErrNoRecords, File: v.files[0].path})
	}
	return nil
}

// recordStart reports whether an incomplete last line can be the start of a
// record being written.
func recordStart(line []byte) bool {
	return bytes.HasPrefix(line, []byte(recordPrefix)) || bytes.HasPrefix([]byte(recordPrefix), line)
}

func (v *verifier) problem(at location, seq uint64, err error, detail string) *Problem {
	return &Problem{Err: err, File: v.files[at.file].path, Line: at.line, Seq: seq, Detail: detail}
}

// report records p and goes on.
func (v *verifier) report(p *Problem) {
	if v.rep.Problem == nil {
		v.rep.Problem = p
	}
	v.rep.ProblemCount++
	if len(v.rep.Problems) < MaxProblems {
		v.rep.Problems = append(v.rep.Problems, p)
	}
}

// line checks one complete line.
func (v *verifier) line(at location, line []byte, fr *FileReport) {
	switch {
	case len(line) == 0:
		v.report(v.problem(at, 0, ErrMalformed, "empty line"))
		return
	case isCheckpoint(line):
		v.checkpoint(at, line, fr)
		return
	case isGap(line):
		v.gapRecord(at, line)
		return
	}
	c, ok := parseChained(line)
	if !ok {
		v.report(v.problem(at, 0, ErrMalformed, "not a chained record"))
		return
	}
	if v.mac != nil && !hmac.Equal([]byte(macOf(v.mac, c.head)), c.mac) {
		v.report(v.problem(at, c.seq, ErrModified, "mac mismatch"))
	}
	var start *startRecord
	if bytes.HasPrefix(line, []byte(startPrefix)) {
		if s, ok := parseStart(c.head); ok && c.seq == 1 {
			start = &s
		} else {
			v.report(v.problem(at, c.seq, ErrMalformed, "unreadable start record"))
		}
	}
	advance, count := true, true
	switch {
	case c.seq == 1:
		advance, count = v.chainStart(at, c, start)
	case !v.have:
		v.startsMidChain(at, c.seq)
	case v.resync:
	default:
		advance, count = v.link(at, c)
	}
	v.resync = false
	if !count {
		return
	}
	if bytes.HasPrefix(line, []byte(dropPrefix)) {
		var d dropRecord
		if err := json.Unmarshal(append(c.head, '}'), &d); err != nil {
			v.report(v.problem(at, c.seq, ErrMalformed, "unreadable drop marker"))
		}
		v.rep.Dropped += d.Count
	} else if !bytes.HasPrefix(line, []byte(startPrefix)) {
		v.rep.Events++
	}
	if v.rep.Records == 0 {
		v.rep.FirstSeq = c.seq
	}
	if fr.Records == 0 {
		fr.FirstSeq = c.seq
	}
	if v.fileCount == 0 && !v.fileGap {
		v.fileFirst = c.seq
	}
	v.fileCount++
	v.rep.Records++
	v.rep.LastSeq = c.seq
	fr.Records++
	fr.LastSeq = c.seq
	if advance {
		v.advance(at, c.seq, string(c.mac), 1)
	}
}

// advance moves the chain position to seq, the mac of a record (records = 1)
// or the end of a gap record (records = 0) at at, which no checkpoint covers
// yet.
func (v *verifier) advance(at location, seq uint64, mac string, records uint64) {
	if v.tail == nil {
		v.tail = &UnsealedTail{File: v.files[at.file].path, Line: at.line, FromSeq: seq}
	}
	v.tail.ToSeq = seq
	v.tail.Records += records
	v.have, v.covered, v.last = true, false, at
	v.lastSeq, v.lastMAC = seq, mac
}

// link checks that c continues the chain. It reports whether c becomes the
// chain position (advance) and whether it counts as a record of the file.
func (v *verifier) link(at location, c chained) (advance, count bool) {
	want := v.lastSeq + 1
	switch {
	case c.seq == v.lastSeq && string(c.mac) == v.lastMAC:
		v.report(v.problem(at, c.seq, ErrDuplicate, "record repeated"))
		return false, false
	case c.seq > want:
		v.gap(at, c.seq, want, fmt.Sprintf("expected seq %d", want))
	case c.seq < want:
		v.report(v.problem(at, c.seq, ErrReordered, fmt.Sprintf("seq %d comes after seq %d", c.seq, v.lastSeq)))
		return false, true
	case string(c.prev) != v.lastMAC:
		v.report(v.problem(at, c.seq, ErrChainBroken, fmt.Sprintf("prev does not match the mac of seq %d", v.lastSeq)))
	}
	return true, true
}

// gap reports seq want missing at the point where seq got appears: as a
// reordering when want turns up later in the same chain, else as a deletion.
// It returns true for a reordering.
func (v *verifier) gap(at location, got, want uint64, what string) bool {
	if l, ok := findSeq(v.open, v.files, at, want); ok {
		v.report(v.problem(at, got, ErrReordered, fmt.Sprintf("%s; seq %d is later, at %s:%d",
			what, want, v.files[l.file].path, l.line)))
		return true
	}
	missing := fmt.Sprintf("seq %d", want)
	if got > want+1 {
		missing = fmt.Sprintf("seq %d to %d", want, got-1)
	}
	v.report(v.problem(at, got, ErrMissing, fmt.Sprintf("%s; %s not in the set", what, missing)))
	return false
}
