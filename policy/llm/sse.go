package llm

import "bytes"

// MaxSSEEventSize caps the bytes one server-sent event may buffer: its data
// and event lines plus the line being read. An event that grows past it is
// dropped whole (see SSEParser.Dropped), so a hostile or broken upstream
// cannot make Tollgate buffer without bound.
const MaxSSEEventSize = 8 << 20

// utf8BOM is stripped from the first line of a stream, as the SSE spec's
// UTF-8 decode step does.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

var newline = []byte{'\n'}

// keepBuffer is the largest buffer capacity an SSEParser keeps between
// events; a buffer that grew past it for one large event is given back
// rather than held for the rest of a long stream.
const keepBuffer = 64 << 10

// SSEParser splits a text/event-stream body into events, following the
// WHATWG "event stream interpretation" rules: lines end in "\n", "\r\n" or
// "\r"; a blank line ends an event; "data" lines are joined with "\n" (one
// space after the colon is removed); "event" sets the type; lines starting
// with ':' are comments; "id", "retry" and unknown fields are ignored. An
// event without any data line is not dispatched.
//
// Feed accepts the body in chunks cut at arbitrary bytes, including between
// the "\r" and "\n" of a line ending. Each call costs O(len(chunk)) amortized:
// only the unfinished line and the current event's fields are kept, and no
// byte is scanned twice. Bytes are not UTF-8 decoded.
//
// The zero value is ready to use. An SSEParser is not safe for concurrent
// use, and emit must not call back into the parser.
type SSEParser struct {
	line    []byte // the unterminated line carried over from earlier chunks
	data    []byte // the current event's data lines, joined with '\n'
	event   []byte // the current event's type
	ref     []byte // a single data value still inside the caller's chunk
	hasRef  bool   // data is ref, not p.data
	hasData bool   // the current event has at least one data line
	evBytes int    // raw bytes of the current event's data and event lines

	skipLF  bool // the last chunk ended in '\r': a leading '\n' ends nothing
	started bool // a line has been read, so a BOM is no longer stripped
	discard bool // the current event outgrew MaxSSEEventSize: skip to its end
	partial bool // while discarding: the current line has bytes
	dropped int
}

// Feed parses chunk and calls emit for every event it completes, in order.
// event is the value of the last "event" field, empty when there was none
// (which the SSE spec calls "message"). The data slice aliases chunk or
// memory owned by the parser: it is valid only until emit returns and must
// not be modified or retained. emit may be nil.
func (p *SSEParser) Feed(chunk []byte, emit func(event, data []byte)) {
	i := 0
	if p.skipLF && len(chunk) > 0 {
		p.skipLF = false
		if chunk[0] == '\n' {
			i = 1
		}
	}
	// nextLF and nextCR cache the positions of the next '\n' and '\r' (or
	// len(chunk) when there is none), so that a chunk of many "\r"-ended
	// lines is not rescanned for '\n' once per line.
	nextLF, nextCR := -1, -1
	for i < len(chunk) {
		if nextLF < i {
			nextLF = indexFrom(chunk, i, '\n')
		}
		if nextCR < i {
			nextCR = indexFrom(chunk, i, '\r')
		}
		end := min(nextLF, nextCR)
		if end == len(chunk) {
			p.carry(chunk[i:])
			break
		}
		next := end + 1
		if chunk[end] == '\r' {
			switch {
			case next == len(chunk):
				p.skipLF = true
			case chunk[next] == '\n':
				next++
			}
		}
		p.endLine(chunk[i:end], emit)
		i = next
	}
	if p.hasRef {
		// The caller may reuse chunk after Feed returns.
		p.data = appendBounded(p.data[:0], p.ref)
		p.ref, p.hasRef = nil, false
	}
}

// Flush ends the stream: an unterminated last line is read as if it were
// terminated, and an event that has data is dispatched even though no blank
// line ended it (the SSE spec would discard it; Tollgate wants the usage of a
// stream that was cut). The parser is then reset for a new stream; the
// Dropped count is kept.
func (p *SSEParser) Flush(emit func(event, data []byte)) {
	if !p.discard {
		if len(p.line) > 0 {
			p.processLine(p.line, false, emit)
		}
		if !p.discard && p.hasData {
			p.dispatch(emit)
		}
	}
	p.resetEvent()
	p.line = release(p.line)
	p.skipLF, p.started, p.discard, p.partial = false, false, false, false
}

// Dropped returns how many events were discarded for exceeding
// MaxSSEEventSize.
func (p *SSEParser) Dropped() int { return p.dropped }

// indexFrom returns the index of the first c in b at or after i, or len(b).
func indexFrom(b []byte, i int, c byte) int {
	if j := bytes.IndexByte(b[i:], c); j >= 0 {
		return i + j
	}
	return len(b)
}

// carry keeps the unterminated tail of a chunk for the next Feed.
func (p *SSEParser) carry(seg []byte) {
	if p.discard {
		p.partial = true
		return
	}
	if p.evBytes+len(p.line)+len(seg) > MaxSSEEventSize {
		p.drop()
		p.partial = true
		return
	}
	p.line = appendBounded(p.line, seg)
}

// endLine handles a terminated line whose bytes in this chunk are seg.
func (p *SSEParser) endLine(seg []byte, emit func(event, data []byte)) {
	if p.discard {
		empty := len(seg) == 0 && !p.partial
		p.partial = false
		p.started = true
		if empty {
			p.discard = false
		}
		return
	}
	if len(p.line) == 0 {
		p.processLine(seg, true, emit)
		return
	}
	if p.evBytes+len(p.line)+len(seg) > MaxSSEEventSize {
		p.drop()
		p.line = p.line[:0]
		return
	}
	p.line = appendBounded(p.line, seg)
	p.processLine(p.line, false, emit)
	p.line = release(p.line)
}

// processLine interprets one complete line. fromChunk reports that line lies
// in the caller's chunk rather than in p.line.
func (p *SSEParser) processLine(line []byte, fromChunk bool, emit func(event, data []byte)) {
	first := !p.started
	p.started = true
	if len(line) == 0 {
		p.dispatch(emit)
		return
	}
	// The check uses the raw line, before any BOM is stripped, so that the
	// outcome does not depend on where chunks were cut.
	if p.evBytes+len(line) > MaxSSEEventSize {
		p.drop()
		return
	}
	if first {
		line = bytes.TrimPrefix(line, utf8BOM)
		if len(line) == 0 {
			p.dispatch(emit)
			return
		}
	}
	if line[0] == ':' {
		return
	}
	name, value := line, []byte(nil)
	if c := bytes.IndexByte(line, ':'); c >= 0 {
		name, value = line[:c], line[c+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "data":
		p.evBytes += len(line)
		p.addData(value, fromChunk)
	case "event":
		p.evBytes += len(line)
		p.event = appendBounded(p.event[:0], value)
	}
}

// addData appends one data value to the current event. The first value of
// an event that lies in the caller's chunk is referenced, not copied, so the
// common one-line event costs no copy.
func (p *SSEParser) addData(value []byte, fromChunk bool) {
	if !p.hasData {
		p.hasData = true
		if fromChunk {
			p.ref, p.hasRef = value, true
			return
		}
		p.data = appendBounded(p.data[:0], value)
		return
	}
	if p.hasRef {
		p.data = appendBounded(p.data[:0], p.ref)
		p.ref, p.hasRef = nil, false
	}
	p.data = appendBounded(p.data, newline)
	p.data = appendBounded(p.data, value)
}

// dispatch emits the current event if it has data, then starts a new one.
func (p *SSEParser) dispatch(emit func(event, data []byte)) {
	if p.hasData && emit != nil {
		data := p.data
		if p.hasRef {
			data = p.ref
		}
		emit(p.event[:len(p.event):len(p.event)], data[:len(data):len(data)])
	}
	p.resetEvent()
}

// drop discards the current event and skips the rest of it.
func (p *SSEParser) drop() {
	p.dropped++
	p.discard = true
	p.partial = false
	p.resetEvent()
	p.line = release(p.line)
}

// resetEvent clears the current event's fields, keeping their buffers
// unless they grew large.
func (p *SSEParser) resetEvent() {
	p.data = release(p.data)
	p.event = release(p.event)
	p.ref, p.hasRef = nil, false
	p.hasData = false
	p.evBytes = 0
}

// appendBounded appends src to dst like append, but grows dst to at most
// MaxSSEEventSize (or exactly the length needed, if more), so buffers never
// exceed the cap by append's growth factor.
func appendBounded(dst, src []byte) []byte {
	need := len(dst) + len(src)
	if need > cap(dst) {
		c := max(need, min(2*cap(dst)+512, MaxSSEEventSize))
		grown := make([]byte, len(dst), c)
		copy(grown, dst)
		dst = grown
	}
	return append(dst, src...)
}

// release empties b, dropping it if it grew past keepBuffer.
func release(b []byte) []byte {
	if cap(b) > keepBuffer {
		return nil
	}
	return b[:0]
}
