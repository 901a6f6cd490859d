package llm

import "bytes"

// UsageChunkFilter removes the final usage chunk from an OpenAI Chat Completions or
// Completions stream: the event whose "choices" is an empty array and whose "usage" is an
// object. Tollgate adds stream_options.include_usage to streamed requests so it can settle
// the budget from that chunk, but a client that did not ask for it does not expect it: the
// most common client loop, chunk.choices[0].delta.content, fails on a chunk without
// choices. The usage is still read from the unfiltered stream (UsageParser).
//
// Every other event passes byte for byte, in order. Feed releases the complete events of
// the bytes seen so far; only an event cut across chunks waits for its end. Each call is
// O(len(chunk)) plus the partial event it completes; a partial event is held up to
// MaxSSEEventSize and released as it stands past that (no usage chunk is that large).
//
// Events end at a blank line ("\n\n", "\r\r", "\r\n\r\n"), as SSEParser reads them. The zero
// value is ready to use; it is not safe for concurrent use.
type UsageChunkFilter struct {
	held      []byte // the start of the current event, from earlier chunks
	ends      []int  // scratch: offsets in the current chunk just past each blank line
	midLine   bool   // the last byte seen did not end a line
	skipLF    bool   // the last chunk ended in '\r': a leading '\n' completes that line end
	crEnded   bool   // that '\r' also ended an event, so the '\n' belongs to that event
	crDropped bool   // and that event was removed
	leadLF    bool   // scratch: the current chunk starts with such a '\n
	holdLimit int    // MaxSSEEventSize; tests lower it
	dropped   int
}

// Feed reads the next chunk of the stream and returns the bytes to release in its place.
// same reports that they are exactly chunk (nothing held or removed): out is then chunk
// itself and the caller can pass the chunk on unchanged.
func (f *UsageChunkFilter) Feed(chunk []byte) (out []byte, same bool) {
	f.leadLF = false
	f.scan(chunk)
	if len(chunk) == 0 {
		return chunk, true
	}
	first := 0 // where the first event of chunk starts
	if f.leadLF {
		first = 1
	}
	tail := first // where the last complete event of chunk ends
	if n := len(f.ends); n > 0 {
		tail = f.ends[n-1]
	}
	if len(f.held) == 0 && tail == len(chunk) && !(f.leadLF && f.crDropped) {
		drop := false
		prev := first
		for _, e := range f.ends {
			if isUsageOnlyEvent(chunk[prev:e]) {
				drop = true
				break
			}
			prev = e
		}
		if !drop {
			f.crDropped = false
			return chunk, true
		}
	}
	if f.leadLF && !f.crDropped {
		out = append(out, '\n')
	}
	prev := first
	for _, e := range f.ends {
		ev := chunk[prev:e]
		if len(f.held) > 0 {
			f.held = append(f.held, ev...)
			ev = f.held
		}
		drop := isUsageOnlyEvent(ev)
		if drop {
			f.dropped++
		} else {
			out = append(out, ev...)
		}
		f.crDropped = drop
		f.held = f.held[:0]
		prev = e
	}
	f.held = append(f.held, chunk[prev:]...)
	if limit := f.limit(); len(f.held) > limit {
		out = append(out, f.held...)
		f.held = f.held[:0]
	}
	if cap(f.held) > keepBuffer && len(f.held) == 0 {
		f.held = nil
	}
	return out, false
}

// Finish ends the stream and returns the held partial event, unless it is a usage chunk
// (a stream cut before its blank line).
func (f *UsageChunkFilter) Finish() []byte {
	ev := f.held
	f.held = nil
	if len(ev) == 0 {
		return nil
	}
	if isUsageOnlyEvent(ev) {
		f.dropped++
		return nil
	}
	return ev
}

// Dropped reports how many usage chunks were removed.
func (f *UsageChunkFilter) Dropped() int { return f.dropped }

func (f *UsageChunkFilter) limit() int {
	if f.holdLimit > 0 {
		return f.holdLimit
	}
	return MaxSSEEventSize
}

// scan records in f.ends the offsets just past each blank line of chunk, carrying the
// line state across chunks.
func (f *UsageChunkFilter) scan(chunk []byte) {
	f.ends = f.ends[:0]
	i := 0
	if f.skipLF {
		f.skipLF = false
		if len(chunk) > 0 && chunk[0] == '\n' {
			i = 1
			// The rest of the blank line that ended the last chunk's final event: it goes
			// with that event (out on its own, or removed with it), not with the next.
			f.leadLF = f.crEnded
		}
	}
	f.crEnded = false
	for i < len(chunk) {
		j := bytes.IndexAny(chunk[i:], "\r\n")
		if j < 0 {
			f.midLine = true
			return
		}
		blank := j == 0 && !f.midLine
		e := i + j
		next := e + 1
		if chunk[e] == '\r' {
			if next == len(chunk) {
				f.skipLF, f.crEnded = true, blank
			} else if chunk[next] == '\n' {
				next++
			}
		}
		if blank {
			f.ends = append(f.ends, next)
		}
		f.midLine = false
		i = next
	}
}

// isUsageOnlyEvent reports whether a raw SSE event's data is a JSON object whose "choices"
// is an empty array and whose "usage" is an object: the chunk include_usage adds.
func isUsageOnlyEvent(ev []byte) bool {
	if !bytes.Contains(ev, []byte(`"usage"`)) || !bytes.Contains(ev, []byte(`"choices"`)) {
		return false
	}
	var data []byte
	lines := 0
	for len(ev) > 0 {
		i := bytes.IndexAny(ev, "\r\n")
		line := ev
		if i >= 0 {
			line, ev = ev[:i], ev[i+1:]
		} else {
			ev = nil
		}
		v, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		v = bytes.TrimPrefix(v, []byte(" "))
		if lines > 0 {
			data = append(data, '\n')
		}
		data = append(data, v...)
		lines++
	}
	return usageOnlyJSON(data)
}

// usageOnlyJSON reports whether b is one JSON object with "choices": [] and an object
// "usage" at its top level.
func usageOnlyJSON(b []byte) bool {
	var s scanner
	s.Reset(b, ErrInvalidJSON, ErrTooDeep)
	s.SkipWS()
	if s.Pos >= len(b) || b[s.Pos] != '{' {
		return false
	}
	emptyChoices, usage := false, false
	o := s.Object()
	for o.Next() {
		key := o.Key()
		vs := s.Pos
		if !s.Value(1) {
			return false
		}
		v := b[vs:s.Pos]
		switch string(key) {
		case "choices":
			emptyChoices = len(v) >= 2 && v[0] == '[' && len(bytes.TrimSpace(v[1:len(v)-1])) == 0
		case "usage":
			usage = v[0] == '{'
		}
	}
	return o.Done() && emptyChoices && usage && s.End()
}
