package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// parseStart decodes a start record from its head (B without the final "}"),
// strictly.
func parseStart(head []byte) (startRecord, bool) {
	var s startRecord
	dec := json.NewDecoder(bytes.NewReader(append(bytes.Clone(head), '}')))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil || dec.More() || s.V != SchemaVersion || s.Type != "start" || s.Seq != 1 ||
		!isMAC(s.AfterMAC) || (s.AfterCheckpoint != "" && !isMAC(s.AfterCheckpoint)) {
		return startRecord{}, false
	}
	return s, true
}

// chainStart checks seq 1 of a chain (c, with its start record when it has
// one) against the end of the chain before it in the set. A start record
// names that end; without one (files of the previous version, or a trail
// that began anew) the chain before must be closed by a checkpoint. It
// returns link's (advance, count).
func (v *verifier) chainStart(at location, c chained, start *startRecord) (advance, count bool) {
	if v.chains[string(c.prev)] {
		v.report(v.problem(at, c.seq, ErrDuplicate, "this chain already started earlier in the set"))
		return false, false
	}
	v.chains[string(c.prev)] = true
	v.newSegment()
	here := fmt.Sprintf("%s:%d", v.files[at.file].path, at.line)
	switch {
	case !v.have:
		if start != nil {
			v.rep.StartsMidChain, v.rep.StartsAfterSeq = true, start.AfterSeq
			v.head = &head{at: at, seq: c.seq}
		}
	case v.covered && v.cp.reason == reasonRotate && (start == nil || start.AfterSeq == v.lastSeq && start.AfterMAC == v.lastMAC):
		// Linked or not, the files after the rotation are gone (or the
		// gateway stopped right after rotating, and what it was writing is).
		v.report(v.filesAfter("the chain ends there: a new chain starts at " + here))
	case start == nil:
		if !v.covered {
			v.report(v.problem(v.last, v.lastSeq, ErrTruncated, fmt.Sprintf(
				"seq %d is not followed by a checkpoint before a new chain starts at %s", v.lastSeq, here)))
		}
	case start.AfterSeq != v.lastSeq || start.AfterMAC != v.lastMAC:
		v.report(v.problem(at, c.seq, ErrMissing, fmt.Sprintf(
			"a chain segment is missing: this chain follows seq %d of another chain, the chain before it in the set ends at seq %d",
			start.AfterSeq, v.lastSeq)))
	case start.AfterCheckpoint != "" && !v.covered:
		v.report(v.problem(at, c.seq, ErrMissing, fmt.Sprintf(
			"the checkpoint after seq %d that this chain follows is not in the set", v.lastSeq)))
	case start.AfterCheckpoint != "" && start.AfterCheckpoint != v.lastCP:
		v.report(v.problem(at, c.seq, ErrCheckpointMismatch, fmt.Sprintf(
			"this chain follows another checkpoint after seq %d than the one in the set", v.lastSeq)))
	case start.AfterCheckpoint == "" && v.covered:
		v.report(v.problem(at, c.seq, ErrCheckpointMismatch, fmt.Sprintf(
			"this chain follows seq %d with no checkpoint after it, but the set has one", v.lastSeq)))
	case !v.covered:
		v.rep.Unclosed = append(v.rep.Unclosed, ChainEnd{File: v.files[v.last.file].path, Line: v.last.line, Seq: v.lastSeq})
	}
	// The previous chain's records are accounted for (or reported) here; the
	// new chain's checkpoints count only its own records.
	v.newChain()
	return true, true
}

// gapRecord checks a signed gap record: the sequence numbers the file sink
// could not write. A valid one moves the chain position past them.
func (v *verifier) gapRecord(at location, line []byte) {
	g, body, sig, ok := parseGap(line)
	if !ok {
		v.report(v.problem(at, 0, ErrMalformed, "unreadable gap record"))
		return
	}
	if v.pub != nil && !verifyGap(v.pub, body, sig) {
		v.report(v.problem(at, g.FromSeq, ErrBadSignature, "gap record"))
		v.resync = true
		return
	}
	here := fmt.Sprintf("%s:%d", v.files[at.file].path, at.line)
	switch {
	case g.FromSeq == 1:
		v.newSegment()
		switch {
		case v.have && !v.covered:
			v.report(v.problem(v.last, v.lastSeq, ErrTruncated, fmt.Sprintf(
				"seq %d is not followed by a checkpoint before a new chain starts at %s", v.lastSeq, here)))
		case v.have && v.cp.reason == reasonRotate:
			v.report(v.filesAfter("the chain ends there: a new chain starts at " + here))
		}
		v.newChain()
	case !v.have:
		v.startsMidChain(at, g.FromSeq)
	case g.FromSeq != v.lastSeq+1:
		v.gap(at, g.FromSeq, v.lastSeq+1, fmt.Sprintf("gap record from seq %d follows seq %d", g.FromSeq, v.lastSeq))
	case g.FromPrev != v.lastMAC:
		v.report(v.problem(at, g.FromSeq, ErrChainBroken, fmt.Sprintf("gap record does not follow the mac of seq %d", v.lastSeq)))
	}
	v.rep.Gaps = append(v.rep.Gaps, Gap{File: v.files[at.file].path, Line: at.line, FromSeq: g.FromSeq, ToSeq: g.ToSeq})
	v.rep.Lost += g.ToSeq - g.FromSeq + 1
	if v.fileCount == 0 && !v.fileGap {
		v.fileFirst = g.FromSeq
	}
	v.fileGap = true
	v.advance(at, g.ToSeq, g.ToMAC, 0)
}

// checkpoint checks a checkpoint line against the records before it. After a
// problem it still closes the records before it, so one problem is reported
// once, except when it is out of place (a repeat or a reordering).
func (v *verifier) checkpoint(at location, line []byte, fr *FileReport) {
	cp, body, sig, ok := parseCheckpoint(line)
	if !ok {
		v.report(v.problem(at, 0, ErrMalformed, "unreadable checkpoint"))
		v.closeRecords("")
		v.cp, v.chainFile = lastCheckpoint{at: at}, 0
		return
	}
	if v.pub != nil && !verifyCheckpoint(v.pub, body, sig) {
		v.report(v.problem(at, cp.Seq, ErrBadSignature, ""))
	}
	empty := v.fileCount == 0 && !v.fileGap
	switch {
	case empty && v.covered && cp.Seq == v.lastSeq && cp.LastMAC == v.lastMAC:
		v.report(v.problem(at, cp.Seq, ErrDuplicate, "checkpoint repeated"))
		return
	case empty:
		v.report(v.problem(at, cp.Seq, ErrMissing, fmt.Sprintf(
			"checkpoint covers %d records through seq %d, none precede it in this file", cp.Count, cp.Seq)))
		v.lastSeq, v.lastMAC, v.have = cp.Seq, cp.LastMAC, true
	case cp.Seq > v.lastSeq:
		if v.gap(at, cp.Seq, v.lastSeq+1, fmt.Sprintf("checkpoint covers through seq %d, the last record is seq %d", cp.Seq, v.lastSeq)) {
			return
		}
		v.lastSeq, v.lastMAC = cp.Seq, cp.LastMAC
	case cp.Seq < v.lastSeq:
		v.report(v.problem(at, cp.Seq, ErrReordered, fmt.Sprintf("checkpoint for seq %d comes after seq %d", cp.Seq, v.lastSeq)))
		return
	case cp.LastMAC != v.lastMAC:
		v.report(v.problem(at, cp.Seq, ErrCheckpointMismatch, fmt.Sprintf("last_mac is not the mac of seq %d", v.lastSeq)))
	case cp.Count > v.fileCount:
		v.report(v.problem(at, cp.Seq, ErrMissing, fmt.Sprintf(
			"checkpoint counts %d records in this file, %d are present", cp.Count, v.fileCount)))
	case cp.Count != v.fileCount:
		v.report(v.problem(at, cp.Seq, ErrCheckpointMismatch, fmt.Sprintf(
			"checkpoint counts %d records in this file, %d are present", cp.Count, v.fileCount)))
	case !cp.legacy() && cp.FirstSeq != v.fileFirst:
		v.report(v.problem(at, cp.Seq, ErrCheckpointMismatch, fmt.Sprintf(
			"checkpoint says the records in this file start at seq %d, the first one present is seq %d", cp.FirstSeq, v.fileFirst)))
	case !cp.legacy() && v.chainFile != 0 && cp.ChainFile != v.chainFile:
		v.report(v.problem(at, cp.Seq, ErrCheckpointMismatch, fmt.Sprintf(
			"checkpoint closes file %d of its chain, file %d was expected", cp.ChainFile, v.chainFile)))
	}
	if v.rep.Segments == 1 {
		v.decideHead(&cp, at)
	}
	v.closeRecords(checkpointHash(line))
	v.cp, v.chainFile = lastCheckpoint{at: at, reason: cp.Reason, chainFile: cp.ChainFile}, 0
	if cp.Reason == reasonRotate {
		v.chainFile = cp.ChainFile + 1
	}
	if cp.legacy() {
		v.rep.LegacyCheckpoints++
	}
	v.rep.Checkpoints++
	fr.Checkpoints++
}

// closeRecords marks the records so far as covered by the checkpoint whose
// line hashes to cp.
func (v *verifier) closeRecords(cp string) {
	v.covered, v.lastCP = true, cp
	v.fileCount, v.fileGap, v.fileFirst, v.tail = 0, false, 0, nil
}
