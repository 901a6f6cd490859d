package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"time"
)

// Gap record layout. A FileSink that failed to write records (a full disk)
// writes, when writing resumes, one signed line before the next record:
//
//	{"v":1,"type":"gap","from_seq":A,"from_prev":"<hex>","to_seq":B,"to_mac":"<hex>","time":"...","sig":"<128 hex>"}
//
// Records A to B of the chain are missing from the file: from_prev is the prev
// of record A (the mac of the record before the gap) and to_mac the mac of
// record B (the prev of the record after it), so the gap is bound to its place
// in the chain. sig is Ed25519 with the checkpoint key over gapContext
// followed by the line's bytes without the sig member, as for checkpoints.
// A gap record is not chained and not counted by checkpoints.
const (
	gapContext = "tollgate audit gap v1\n"
	gapPrefix  = `{"v":1,"type":"gap",`
)

// gapRecord is the content of a gap record.
type gapRecord struct {
	V        int       `json:"v"`
	Type     string    `json:"type"`
	FromSeq  uint64    `json:"from_seq"`
	FromPrev string    `json:"from_prev"`
	ToSeq    uint64    `json:"to_seq"`
	ToMAC    string    `json:"to_mac"`
	Time     time.Time `json:"time"`
}

// pendingGap collects the chained records a FileSink could not write, until
// a gap record for them is written.
type pendingGap struct {
	active   bool
	fromSeq  uint64
	fromPrev string
	toSeq    uint64
	toMAC    string
	count    uint64
}

// add records rec (a chained line) as lost.
func (g *pendingGap) add(rec []byte) {
	c, ok := parseChained(trimNewline(rec))
	if !ok {
		return
	}
	if !g.active {
		g.active, g.fromSeq, g.fromPrev = true, c.seq, string(c.prev)
	}
	g.toSeq, g.toMAC = c.seq, string(c.mac)
	g.count++
}

// line returns the signed gap record.
func (g *pendingGap) line(priv ed25519.PrivateKey, now time.Time) []byte {
	body, _ := json.Marshal(gapRecord{V: SchemaVersion, Type: "gap", FromSeq: g.fromSeq, FromPrev: g.fromPrev,
		ToSeq: g.toSeq, ToMAC: g.toMAC, Time: now.UTC()})
	return signLine(priv, gapContext, body)
}

// isGap reports whether line is (claims to be) a gap record.
func isGap(line []byte) bool { return bytes.HasPrefix(line, []byte(gapPrefix)) }

// parseGap parses a gap line (without newline) strictly, like parseCheckpoint.
func parseGap(line []byte) (gapRecord, []byte, []byte, bool) {
	var g gapRecord
	body, sig, ok := parseSigned(line, gapPrefix, &g)
	if !ok || g.V != SchemaVersion || g.Type != "gap" || g.FromSeq == 0 || g.ToSeq < g.FromSeq ||
		!isMAC(g.FromPrev) || !isMAC(g.ToMAC) {
		return gapRecord{}, nil, nil, false
	}
	return g, body, sig, true
}

// verifyGap checks sig over body with pub.
func verifyGap(pub ed25519.PublicKey, body, sig []byte) bool {
	return ed25519.Verify(pub, append([]byte(gapContext), body...), sig)
}
