package audit

import "fmt"

// lastCheckpoint is the checkpoint that covers the verifier's chain position.
type lastCheckpoint struct {
	at        location
	reason    string // "" for a legacy or unreadable checkpoint
	chainFile uint64
}

// head is where a set starts when that is not the start of its trail: a
// record after seq 1 of its chain, or a start record (a chain linked to an
// earlier one).
type head struct {
	at      location
	seq     uint64
	decided bool
}

// startsMidChain notes that the set's first record, seq, is not the first of
// its chain.
func (v *verifier) startsMidChain(at location, seq uint64) {
	v.rep.StartsMidChain = true
	v.head = &head{at: at, seq: seq}
	v.newSegment()
}

// newSegment counts a chain. The first chain of the set ends here, so the
// head is decided now if none of its checkpoints did.
func (v *verifier) newSegment() {
	if v.rep.Segments == 1 {
		v.decideHead(nil, location{})
	}
	v.rep.Segments++
}

// newChain resets the per-file counts for a chain that starts at seq 1: its
// checkpoints count only its own records, and its first one closes file 1.
func (v *verifier) newChain() {
	v.fileCount, v.fileGap, v.fileFirst, v.tail = 0, false, 0, nil
	v.chainFile, v.cp.reason = 1, ""
}

// decideHead decides, once, whether a set that does not start at the start of
// its trail fails: cp is the first checkpoint of the set's first chain (at
// cpAt), or nil when that chain has none in the set. A legacy checkpoint
// cannot tell retention from removal: that stays a note, as it was.
// Otherwise it is a problem unless retention is allowed. Without any
// checkpoint the format is unknown, and the set is held to the current one.
func (v *verifier) decideHead(cp *checkpointRecord, cpAt location) {
	h := v.head
	if h == nil || h.decided {
		return
	}
	h.decided = true
	if cp != nil && cp.legacy() {
		return
	}
	if cp != nil && cpAt.file == h.at.file && v.rep.StartsAfterSeq == 0 {
		v.rep.StartsAtFile = cp.ChainFile
	}
	if v.opts.AllowRetention {
		return
	}
	var detail string
	switch n := v.rep.StartsAtFile; {
	case v.rep.StartsAfterSeq > 0:
		detail = fmt.Sprintf("the set starts with a chain that follows seq %d of an earlier chain, which is not in the set",
			v.rep.StartsAfterSeq)
	case n > 1:
		detail = fmt.Sprintf("the set starts at seq %d, in file %d of its chain: %d earlier file(s) are not in the set",
			h.seq, n, n-1)
	default:
		detail = fmt.Sprintf("the set starts at seq %d of its chain: earlier records are not in the set", h.seq)
	}
	v.rep.HeadMissing = true
	v.reportFirst(v.problem(h.at, h.seq, ErrMissing, detail))
}

// checkEnd checks the end of the set. A chain whose last checkpoint was
// written on rotation goes on in a later file with at least one whole record:
// an empty file or a partial line does not count, or any number of files
// could be replaced by one. With RequireSealed, the set must end in a
// checkpoint.
func (v *verifier) checkEnd() {
	if v.have && v.covered && v.cp.reason == reasonRotate {
		v.report(v.filesAfter("no later file continues the chain"))
	}
	if u := v.rep.Unsealed; u != nil && v.opts.RequireSealed {
		at := location{len(v.files) - 1, u.Line}
		for i, f := range v.files {
			if f.path == u.File {
				at.file = i
			}
		}
		v.report(v.problem(at, u.FromSeq, ErrTruncated,
			"the set ends in records no checkpoint covers, but it was given as sealed (its writer stopped)"))
	}
}

// filesAfter is the problem for a chain whose last checkpoint in the set was
// written on rotation but that does not go on: the files after it are gone.
func (v *verifier) filesAfter(why string) *Problem {
	return v.problem(v.cp.at, v.lastSeq, ErrMissing, fmt.Sprintf(
		"file(s) after it removed: its checkpoint (file %d of its chain) was written on rotation and %s", v.cp.chainFile, why))
}

// reportFirst records p ahead of the problems found so far: it is about the
// set's first record.
func (v *verifier) reportFirst(p *Problem) {
	v.rep.Problem = p
	v.rep.ProblemCount++
	v.rep.Problems = append([]*Problem{p}, v.rep.Problems...)
	if len(v.rep.Problems) > MaxProblems {
		v.rep.Problems = v.rep.Problems[:MaxProblems]
	}
}
