// Package procstat reads a process's CPU time and resident memory from /proc/<pid>/stat,
// the system's load average from /proc/loadavg, and the machine's CPU model.
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Sample is one reading of a process.
type Sample struct {
	CPU time.Duration // user + system time of every thread so far
	RSS int64         // resident set size in bytes
}

// ErrFormat means a /proc file did not have the expected shape.
var ErrFormat = errors.New("procstat: unexpected format")

// clockTicks is USER_HZ, the unit of utime and stime (getconf CLK_TCK; 100 on Linux).
var clockTicks = func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}()

var pageSize = int64(os.Getpagesize())

// Read reads /proc/<pid>/stat.
func Read(pid int) (Sample, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Sample{}, err
	}
	return Parse(b, clockTicks, pageSize)
}

// Parse parses the content of /proc/<pid>/stat: utime and stime (fields 14 and 15, in
// ticks of 1/ticks s) and rss (field 24, in pages of pageBytes). The command name (field 2)
// may hold spaces and parentheses, so fields are counted after its last ')'.
func Parse(b []byte, ticks, pageBytes int64) (Sample, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Sample{}, fmt.Errorf("%w: no ')' in stat", ErrFormat)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 22 {
		return Sample{}, fmt.Errorf("%w: %d fields after the name", ErrFormat, len(f))
	}
	var v [3]int64
	for j, n := range []int{14, 15, 24} {
		x, err := strconv.ParseInt(f[n-3], 10, 64)
		if err != nil {
			return Sample{}, fmt.Errorf("%w: field %d: %v", ErrFormat, n, err)
		}
		v[j] = x
	}
	cpu := time.Duration((v[0] + v[1]) * int64(time.Second) / ticks)
	return Sample{CPU: cpu, RSS: v[2] * pageBytes}, nil
}

// LoadAvg returns the 1-, 5- and 15-minute load averages.
func LoadAvg() ([3]float64, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return [3]float64{}, err
	}
	return ParseLoadAvg(b)
}

// ParseLoadAvg parses /proc/loadavg.
func ParseLoadAvg(b []byte) ([3]float64, error) {
	var out [3]float64
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return out, fmt.Errorf("%w: loadavg %q", ErrFormat, b)
	}
	for i := range 3 {
		x, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return out, fmt.Errorf("%w: loadavg: %v", ErrFormat, err)
		}
		out[i] = x
	}
	return out, nil
}

// CPUModel returns the "model name" of the first CPU in /proc/cpuinfo.
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
