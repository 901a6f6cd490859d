package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// MaxLineBytes is the longest record Verify reads. Sealed content makes lines
// long; anything longer is reported as malformed.
const MaxLineBytes = 64 << 20

// opener opens a file of the set: os.Open, or an in-memory fake in tests.
type opener func(path string) (io.ReadCloser, error)

func osOpen(path string) (io.ReadCloser, error) { return os.Open(path) }

// forEachLine calls fn with each line of the file at path (1-based number, the
// line without its newline, and whether the newline was there). fn returns
// false to stop.
func forEachLine(open opener, path string, fn func(n int, line []byte, complete bool) bool) error {
	f, err := open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 32<<10)
	var long []byte
	for n := 1; ; n++ {
		line, err := r.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(line) > MaxLineBytes {
				return fmt.Errorf("%s:%d: %w", path, n, errLineTooLong)
			}
			long = append(long, line...)
			line, err = r.ReadSlice('\n')
		}
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if len(line) > MaxLineBytes+1 {
			return fmt.Errorf("%s:%d: %w", path, n, errLineTooLong)
		}
		complete := len(line) > 0 && line[len(line)-1] == '\n'
		if len(line) > 0 && !fn(n, trimNewline(line), complete) {
			return nil
		}
		if err != nil { // io.EOF
			return nil
		}
	}
}

// fileHead is what ordering needs to know about one file: its first and last
// chained records (a gap record counts as the records it names), read
// without checking any mac or signature.
type fileHead struct {
	path      string
	ok        bool // the file holds at least one parseable chained record
	firstSeq  uint64
	firstPrev string
	firstTime time.Time
	lastSeq   uint64
	lastMAC   string
}

func scanHead(open opener, path string) (fileHead, error) {
	h := fileHead{path: path}
	err := forEachLine(open, path, func(_ int, line []byte, _ bool) bool {
		if isCheckpoint(line) {
			return true
		}
		if isGap(line) {
			if g, _, _, ok := parseGap(line); ok {
				if !h.ok {
					h.ok, h.firstSeq, h.firstPrev, h.firstTime = true, g.FromSeq, g.FromPrev, g.Time
				}
				h.lastSeq, h.lastMAC = g.ToSeq, g.ToMAC
			}
			return true
		}
		c, ok := parseChained(line)
		if !ok {
			return true
		}
		if !h.ok {
			h.ok, h.firstSeq, h.firstPrev = true, c.seq, string(c.prev)
			var t struct {
				Time time.Time `json:"time"`
			}
			if json.Unmarshal(append(c.head, '}'), &t) == nil {
				h.firstTime = t.Time
			}
		}
		h.lastSeq, h.lastMAC = c.seq, string(c.mac)
		return true
	})
	if errors.Is(err, errLineTooLong) {
		err = nil // reported with its location by the verification pass
	}
	return h, err
}

// orderFiles returns the files in chain order. A file follows another when
// its first record's prev is the other's last mac and its seq the next one.
// Files that follow none (a chain's first file, a file after a restart, or a
// file whose predecessor is missing) are chain starts, ordered by the time of
// their first record. Files without any chained record go last, by path; the
// verification pass then reports what is wrong with them.
func orderFiles(heads []fileHead) []fileHead {
	pred := make([]int, len(heads))
	for i, b := range heads {
		pred[i] = -1
		if !b.ok || b.firstSeq == 1 {
			continue
		}
		for j, a := range heads {
			if j != i && a.ok && a.lastMAC == b.firstPrev && a.lastSeq+1 == b.firstSeq {
				pred[i] = j
				break
			}
		}
	}
	byTime := func(x, y int) int {
		a, b := heads[x], heads[y]
		if c := a.firstTime.Compare(b.firstTime); c != 0 {
			return c
		}
		if a.firstSeq != b.firstSeq {
			if a.firstSeq < b.firstSeq {
				return -1
			}
			return 1
		}
		return strings.Compare(a.path, b.path)
	}
	var roots, rest []int
	for i, h := range heads {
		switch {
		case h.ok && pred[i] < 0:
			roots = append(roots, i)
		case !h.ok:
			rest = append(rest, i)
		}
	}
	slices.SortStableFunc(roots, byTime)
	seen := make([]bool, len(heads))
	var out []fileHead
	for _, r := range roots {
		for i := r; i >= 0 && !seen[i]; {
			seen[i] = true
			out = append(out, heads[i])
			next := -1
			for j := range heads {
				if pred[j] == i && !seen[j] && (next < 0 || heads[j].path < heads[next].path) {
					next = j
				}
			}
			i = next
		}
	}
	// Files in a cycle of links (only possible with duplicated files) and
	// files without records.
	var left []int
	for i, h := range heads {
		if h.ok && !seen[i] {
			left = append(left, i)
		}
	}
	slices.SortStableFunc(left, byTime)
	slices.SortStableFunc(rest, func(x, y int) int { return strings.Compare(heads[x].path, heads[y].path) })
	for _, i := range append(left, rest...) {
		out = append(out, heads[i])
	}
	return out
}

// location is a line in the ordered set.
type location struct {
	file int
	line int
}

// findSeq looks for a chained record claiming seq after from, up to the start
// of the next chain segment. It reads the files again: it runs only to tell a
// reordering from a deletion, after a problem is found.
func findSeq(open opener, files []fileHead, from location, seq uint64) (location, bool) {
	var found location
	ok := false
	for fi := from.file; fi < len(files) && !ok; fi++ {
		stop := false
		_ = forEachLine(open, files[fi].path, func(n int, line []byte, _ bool) bool {
			if fi == from.file && n <= from.line {
				return true
			}
			c, parsed := parseChained(line)
			switch {
			case !parsed:
				return true
			case c.seq == seq:
				found, ok = location{fi, n}, true
				return false
			case c.seq == 1:
				stop = true
				return false
			}
			return true
		})
		if stop {
			break
		}
	}
	return found, ok
}
