package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"math"
	"time"
)

// Record layout. Every chained record is one line:
//
//	B' + `,"mac":"` + hex(HMAC-SHA256(chainKey, B)) + `"}` + "\n"
//
// where B = B' + "}" is the JSON object as serialized without the mac member,
// and B ends with the members `"seq":N,"prev":"<64 hex>"`. A verifier recovers B
// from the line by cutting the fixed-size mac suffix and appending "}", so it
// never re-marshals anything.
const (
	macKey       = `,"mac":"`
	macHexLen    = 2 * sha256.Size
	macSuffixLen = len(macKey) + macHexLen + len(`"}`)
	seqKey       = `,"seq":`
	prevKey      = `,"prev":"`
	maxSeqDigits = 20
	// recordPrefix starts every record this package writes (schema v1).
	recordPrefix = `{"v":1,`
	// dropPrefix starts a chained drop marker record.
	dropPrefix = `{"v":1,"type":"dropped",`
	// startPrefix starts a chained start record.
	startPrefix = `{"v":1,"type":"start",`
)

// dropRecord is a chained record the emitter writes when events were dropped
// (queue full, emitter closed, or unencodable) since the previous record, so
// the trail itself says that it is incomplete there.
type dropRecord struct {
	V     int       `json:"v"`
	Type  string    `json:"type"`
	Time  time.Time `json:"time"`
	Count uint64    `json:"count"`
	Seq   uint64    `json:"seq"`
	Prev  string    `json:"prev"`
}

// startRecord is the first record (seq 1) of a chain that continues an
// existing trail: it names the last record the sink found at start (after_seq
// and after_mac) and, when that record was closed by a checkpoint, the
// SHA-256 of the checkpoint line (after_checkpoint). Verify checks that the
// chain before it in the set ends exactly there, so a whole process
// lifetime deleted from between two others is reported. Its own prev is a
// random chain id, as for any seq 1.
type startRecord struct {
	V               int       `json:"v"`
	Type            string    `json:"type"`
	Time            time.Time `json:"time"`
	AfterSeq        uint64    `json:"after_seq"`
	AfterMAC        string    `json:"after_mac"`
	AfterCheckpoint string    `json:"after_checkpoint,omitempty"`
	Seq             uint64    `json:"seq"`
	Prev            string    `json:"prev"`
}

// chain stamps seq, prev and mac onto records. It is owned by one goroutine.
type chain struct {
	mac  hash.Hash
	seq  uint64
	prev string
	buf  []byte
}

// newChain starts a chain whose first record carries id (32 random bytes, hex)
// as its prev, so two emitter lifetimes never produce the same segment.
func newChain(key []byte, id [32]byte) *chain {
	return &chain{mac: hmac.New(sha256.New, key), prev: hex.EncodeToString(id[:])}
}

// nextEvent serializes e as the next record and returns the line.
func (c *chain) nextEvent(e Event) ([]byte, error) {
	e.Seq, e.Prev, e.MAC = c.seq+1, c.prev, ""
	body, err := json.Marshal(&e)
	if err != nil {
		return nil, err
	}
	return c.seal(body), nil
}

// nextDrop serializes a drop marker as the next record.
func (c *chain) nextDrop(t time.Time, n uint64) []byte {
	body, _ := json.Marshal(dropRecord{V: SchemaVersion, Type: "dropped", Time: t.UTC(), Count: n, Seq: c.seq + 1, Prev: c.prev})
	return c.seal(body)
}

// nextStart serializes the start record linking the chain to a.
func (c *chain) nextStart(t time.Time, a Anchor) []byte {
	body, _ := json.Marshal(startRecord{V: SchemaVersion, Type: "start", Time: t.UTC(), AfterSeq: a.Seq, AfterMAC: a.MAC,
		AfterCheckpoint: a.Checkpoint, Seq: c.seq + 1, Prev: c.prev})
	return c.seal(body)
}

// seal appends the mac of body (which ends with seq and prev) and a newline,
// and advances the chain.
func (c *chain) seal(body []byte) []byte {
	c.mac.Reset()
	c.mac.Write(body)
	c.buf = c.mac.Sum(c.buf[:0])
	line := make([]byte, 0, len(body)-1+macSuffixLen+1)
	line = append(line, body[:len(body)-1]...)
	line = append(line, macKey...)
	line = hex.AppendEncode(line, c.buf)
	line = append(line, '"', '}', '\n')
	c.seq++
	c.prev = string(line[len(line)-1-2-macHexLen : len(line)-3])
	return line
}

// chained holds the chain members parsed from the end of a record line.
type chained struct {
	seq  uint64
	prev []byte // 64 lowercase hex, aliasing the line
	mac  []byte // 64 lowercase hex, aliasing the line
	// head is B' (the line before the mac member); B is head + "}".
	head []byte
}

// parseChained parses the chain members at the end of line (without its
// newline). It is strict, so that any change to these bytes fails: lowercase
// hex only, no leading zeros, seq at least 1.
func parseChained(line []byte) (chained, bool) {
	if len(line) < len(recordPrefix)+len(seqKey)+1+len(prevKey)+macHexLen+1+macSuffixLen ||
		!bytes.HasPrefix(line, []byte(recordPrefix)) || !bytes.HasSuffix(line, []byte(`"}`)) {
		return chained{}, false
	}
	head := line[:len(line)-macSuffixLen]
	suffix := line[len(head):]
	if !bytes.HasPrefix(suffix, []byte(macKey)) {
		return chained{}, false
	}
	mac := suffix[len(macKey) : len(macKey)+macHexLen]
	if !isLowerHex(mac) {
		return chained{}, false
	}
	// head ends with `,"seq":N,"prev":"<hex>"`.
	if head[len(head)-1] != '"' {
		return chained{}, false
	}
	prevEnd := len(head) - 1
	prevStart := prevEnd - macHexLen
	prev := head[prevStart:prevEnd]
	if !isLowerHex(prev) || !bytes.HasSuffix(head[:prevStart], []byte(prevKey)) {
		return chained{}, false
	}
	digitsEnd := prevStart - len(prevKey)
	digitsStart := digitsEnd
	for digitsStart > 0 && digitsEnd-digitsStart < maxSeqDigits+1 && isDigit(head[digitsStart-1]) {
		digitsStart--
	}
	digits := head[digitsStart:digitsEnd]
	if len(digits) == 0 || len(digits) > maxSeqDigits || digits[0] == '0' ||
		!bytes.HasSuffix(head[:digitsStart], []byte(seqKey)) {
		return chained{}, false
	}
	var seq uint64
	for _, d := range digits {
		if seq > (math.MaxUint64-9)/10 {
			return chained{}, false
		}
		seq = seq*10 + uint64(d-'0')
	}
	return chained{seq: seq, prev: prev, mac: mac, head: head}, true
}

// macOf returns the hex HMAC of the record body whose head (B') is given.
func macOf(m hash.Hash, head []byte) string {
	m.Reset()
	m.Write(head)
	m.Write([]byte{'}'})
	return hex.EncodeToString(m.Sum(nil))
}

// trimNewline returns rec without one trailing "\n".
func trimNewline(rec []byte) []byte {
	if n := len(rec); n > 0 && rec[n-1] == '\n' {
		return rec[:n-1]
	}
	return rec
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func isLowerHex(s []byte) bool {
	for _, b := range s {
		if !isDigit(b) && (b < 'a' || b > 'f') {
			return false
		}
	}
	return true
}
