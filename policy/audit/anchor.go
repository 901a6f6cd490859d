package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
)

// Anchor is the end of the trail a sink found when it started: the last
// chained record in its files and the checkpoint that closed it, if one did.
// An Emitter whose sink reports an anchor starts its chain with a "start"
// record naming it, so Verify can tell that the chain before it in the set
// ends exactly there and that no whole process lifetime is missing between
// the two.
type Anchor struct {
	// Seq and MAC are the seq and mac of the last record (or the end of a gap
	// record) in the trail.
	Seq uint64
	MAC string
	// Checkpoint is the lowercase hex SHA-256 of the checkpoint line (without
	// its newline) that follows that record, or "" when the trail ends in
	// records not covered by a checkpoint (the previous process crashed).
	Checkpoint string
}

// anchorer is a sink that can say where the trail it appends to ends.
type anchorer interface {
	ChainAnchor() (Anchor, bool)
}

// findAnchor returns the anchor of the first sink that has one.
func findAnchor(sinks []Sink) *Anchor {
	for _, s := range sinks {
		if a, ok := s.(anchorer); ok {
			if an, ok := a.ChainAnchor(); ok {
				return &an
			}
		}
	}
	return nil
}

// checkpointHash is the value of a start record's after_checkpoint for the
// checkpoint line cp (without its newline).
func checkpointHash(cp []byte) string {
	h := sha256.Sum256(cp)
	return hex.EncodeToString(h[:])
}

// fileSetAnchor returns the end of the trail in a FileSink's files: the active
// file path if it holds a record, else the newest rotated file (path.(next-1)).
func fileSetAnchor(path string, next int) (Anchor, bool, error) {
	a, ok, err := fileAnchor(path)
	if err != nil || ok || next <= 1 {
		return a, ok, err
	}
	return fileAnchor(path + "." + strconv.Itoa(next-1))
}

// fileAnchor scans one file for the last chained record or gap record and the
// checkpoint after it. A missing file has no anchor. Lines that do not parse
// (a record torn by a crash) are skipped: Verify reports them.
func fileAnchor(path string) (Anchor, bool, error) {
	var a Anchor
	found := false
	err := forEachLine(osOpen, path, func(_ int, line []byte, complete bool) bool {
		switch {
		case !complete:
		case isCheckpoint(line):
			if cp, _, _, ok := parseCheckpoint(line); ok && found && cp.Seq == a.Seq && cp.LastMAC == a.MAC {
				a.Checkpoint = checkpointHash(line)
			}
		case isGap(line):
			if g, _, _, ok := parseGap(line); ok {
				a, found = Anchor{Seq: g.ToSeq, MAC: g.ToMAC}, true
			}
		default:
			if c, ok := parseChained(line); ok {
				a, found = Anchor{Seq: c.seq, MAC: string(c.mac)}, true
			}
		}
		return true
	})
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Anchor{}, false, nil
	case errors.Is(err, errLineTooLong):
		// What was read before the long line still anchors; Verify reports it.
		return a, found, nil
	}
	return a, found, err
}
