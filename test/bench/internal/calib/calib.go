// Package calib measures what this machine charges for the two things an ext_proc exchange
// is made of besides the work itself: a system call, and a message round trip between two
// goroutines over loopback TCP (a write, a wake-up, a read, and back). On a virtual machine
// these can cost far more than on bare metal, and every ext_proc message pays them.
package calib

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/tollgate-ai/tollgate/test/bench/internal/procstat"
)

// Result is one calibration.
type Result struct {
	SyscallNs          float64 `json:"syscall_ns"`           // getppid(2), wall time per call
	LoopbackRTTMicros  float64 `json:"loopback_rtt_us"`      // 64-byte ping-pong over 127.0.0.1, wall time per round trip
	LoopbackCPUMicros  float64 `json:"loopback_cpu_us"`      // process CPU per round trip (both ends)
	LoopbackRoundTrips int     `json:"loopback_round_trips"` // how many were timed
}

// Run measures the machine: syscalls calls of getppid and roundTrips loopback round trips.
func Run(syscalls, roundTrips int) (Result, error) {
	r := Result{LoopbackRoundTrips: roundTrips}
	start := time.Now()
	for range syscalls {
		syscall.Getppid()
	}
	r.SyscallNs = float64(time.Since(start).Nanoseconds()) / float64(syscalls)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return r, err
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				done <- nil
				return
			}
			if _, err := c.Write(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return r, err
	}
	buf := make([]byte, 64)
	before, err := procstat.Read(os.Getpid())
	if err != nil {
		c.Close()
		return r, err
	}
	start = time.Now()
	for range roundTrips {
		if _, err := c.Write(buf); err != nil {
			c.Close()
			return r, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			c.Close()
			return r, err
		}
	}
	wall := time.Since(start)
	after, err := procstat.Read(os.Getpid())
	c.Close()
	if err2 := <-done; err == nil && err2 != nil && !errors.Is(err2, net.ErrClosed) {
		err = err2
	}
	r.LoopbackRTTMicros = float64(wall.Nanoseconds()) / 1e3 / float64(roundTrips)
	r.LoopbackCPUMicros = float64((after.CPU - before.CPU).Nanoseconds()) / 1e3 / float64(roundTrips)
	return r, err
}
