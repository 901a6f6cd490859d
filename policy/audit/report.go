package audit

import (
	"fmt"
	"io"
	"strings"
)

// MaxProblems is the most problems a Report lists; ProblemCount counts them
// all.
const MaxProblems = 100

// Report is the outcome of Verify. Problem is nil when the set verified.
type Report struct {
	// Files are the files in chain order, as verified.
	Files []FileReport
	// Records counts chained records (events, drop markers and start records)
	// verified.
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
	// chain, or starts a chain that follows an earlier one (StartsAfterSeq):
	// earlier files are not in the set (retention removed them, or they were
	// not given). It is a problem (HeadMissing) unless retention was allowed
	// or the set's first chain has legacy checkpoints.
	StartsMidChain bool
	// StartsAfterSeq is the seq of the earlier chain's last record named by
	// the set's first record when that is a start record; 0 otherwise.
	StartsAfterSeq uint64
	// StartsAtFile is the position in its chain of the set's first file, as
	// its checkpoint names it, when the set starts mid-chain; 0 when unknown.
	StartsAtFile uint64
	// HeadMissing reports that StartsMidChain was reported as a problem.
	HeadMissing bool
	// LegacyCheckpoints counts checkpoints written before checkpoints named
	// their file's position in the chain and why they were written: files
	// removed from the head or the tail of their chains cannot be detected.
	LegacyCheckpoints uint64
	// MACsChecked and SignaturesChecked say which keys Verify had.
	MACsChecked, SignaturesChecked bool
	// Gaps are the signed gap records: sequence numbers the file sink could
	// not write (a full disk). They are not tampering. Lost sums their sizes.
	Gaps []Gap
	Lost uint64
	// Unclosed are chains that ended without a checkpoint (the writer crashed
	// or was killed) and that the next chain's start record links to, so no
	// record is missing at their end. They are not tampering.
	Unclosed []ChainEnd
	// Unsealed is the tail of the set's last file not yet covered by a
	// checkpoint: a file still being written, or one whose writer stopped
	// without closing it. It verified as far as it goes, but records deleted
	// from its end cannot be detected. Nil when the set ends in a checkpoint.
	Unsealed *UnsealedTail
	// Problem is the first problem found, or nil. Problems lists every problem
	// (up to MaxProblems), in order; ProblemCount counts them all.
	Problem      *Problem
	Problems     []*Problem
	ProblemCount int
}

// FileReport summarizes one file of the set.
type FileReport struct {
	Path              string
	Lines             int
	Records           uint64
	Checkpoints       uint64
	FirstSeq, LastSeq uint64
}

// Gap locates a signed gap record: seq FromSeq to ToSeq were not written.
type Gap struct {
	File           string
	Line           int
	FromSeq, ToSeq uint64
}

// ChainEnd locates the last record of a chain.
type ChainEnd struct {
	File string
	Line int
	Seq  uint64
}

// UnsealedTail describes records at the end of a set that no checkpoint
// covers yet.
type UnsealedTail struct {
	File string
	// Line is the line of the tail's first record.
	Line int
	// FromSeq and ToSeq are the first and last seq of the tail; Records counts
	// its records. All three are 0 when the tail is only an incomplete line.
	FromSeq, ToSeq uint64
	Records        uint64
	// Incomplete reports that the file ends in a partial line, the start of a
	// record being written, which was not verified.
	Incomplete bool
}

// Problem locates an integrity problem in a file set. It wraps one of the
// verification sentinels (ErrModified, ErrMissing, ...). Detail holds only
// sequence numbers, counts and positions, never record content.
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

// WriteText prints r for people: the verdict, every problem, what was
// checked, notes, and the files in chain order.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	switch {
	case r.Problem != nil:
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "FAIL %s\n", p.Error())
		}
		if more := r.ProblemCount - len(r.Problems); more > 0 {
			fmt.Fprintf(&b, "FAIL ... and %d more problem(s)\n", more)
		}
	case r.Unsealed != nil:
		b.WriteString("OK (unsealed tail)\n")
	default:
		b.WriteString("OK\n")
	}
	checked := []string{"sequence", "links", "checkpoint coverage"}
	if r.MACsChecked {
		checked = append(checked, "record macs")
	}
	if r.SignaturesChecked {
		checked = append(checked, "checkpoint signatures")
	}
	fmt.Fprintf(&b, "checked: %s\n", strings.Join(checked, ", "))
	if !r.MACsChecked {
		b.WriteString("warning: no chain key: edited fields cannot be detected\n")
	}
	if !r.SignaturesChecked {
		b.WriteString("warning: no checkpoint public key: forged checkpoints cannot be detected\n")
	}
	fmt.Fprintf(&b, "records: %d (%d events), seq %d..%d, %d chain segment(s), %d checkpoint(s)\n",
		r.Records, r.Events, r.FirstSeq, r.LastSeq, r.Segments, r.Checkpoints)
	switch {
	case r.HeadMissing:
		b.WriteString("hint: if older files were removed on purpose (retention), verify with --allow-retention\n")
	case r.StartsAfterSeq > 0:
		fmt.Fprintf(&b, "note: the set starts with a chain that follows seq %d of an earlier one; earlier records are not in it\n", r.StartsAfterSeq)
	case r.StartsMidChain && r.StartsAtFile > 1:
		fmt.Fprintf(&b, "note: the set starts at seq %d, in file %d of its chain; %d earlier file(s) are not in it\n",
			r.FirstSeq, r.StartsAtFile, r.StartsAtFile-1)
	case r.StartsMidChain:
		fmt.Fprintf(&b, "note: the set starts at seq %d; earlier records are not in it\n", r.FirstSeq)
	}
	if r.LegacyCheckpoints > 0 {
		fmt.Fprintf(&b, "note: %d checkpoint(s) from an older version do not name their file's place in the chain: "+
			"whole files removed from the head or the tail of their chains cannot be detected\n", r.LegacyCheckpoints)
	}
	if r.Dropped > 0 {
		fmt.Fprintf(&b, "note: the emitter recorded %d dropped event(s)\n", r.Dropped)
	}
	for _, g := range r.Gaps {
		fmt.Fprintf(&b, "note: %s:%d: seq %d..%d (%d records) could not be written (signed gap record)\n",
			g.File, g.Line, g.FromSeq, g.ToSeq, g.ToSeq-g.FromSeq+1)
	}
	for _, c := range r.Unclosed {
		fmt.Fprintf(&b, "note: %s:%d: the chain ending at seq %d has no checkpoint (the writer stopped without closing); the next chain links to it\n",
			c.File, c.Line, c.Seq)
	}
	if u := r.Unsealed; u != nil {
		if u.Records > 0 {
			fmt.Fprintf(&b, "note: unsealed tail: seq %d..%d (%d record(s)) in %s from line %d are not covered by a checkpoint yet "+
				"(the file is still being written, or its writer stopped without closing it); records cut from its end cannot be detected\n",
				u.FromSeq, u.ToSeq, u.Records, u.File, u.Line)
		}
		if u.Incomplete {
			fmt.Fprintf(&b, "note: unsealed tail: %s ends in an incomplete line (a record being written), not verified\n", u.File)
		}
	}
	for _, f := range r.Files {
		switch {
		case f.Lines == 0:
			fmt.Fprintf(&b, "  %s: empty\n", f.Path)
			continue
		case f.Records == 0:
			fmt.Fprintf(&b, "  %s: no valid record\n", f.Path)
			continue
		}
		fmt.Fprintf(&b, "  %s: %d record(s), seq %d..%d, %d checkpoint(s)\n", f.Path, f.Records, f.FirstSeq, f.LastSeq, f.Checkpoints)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
