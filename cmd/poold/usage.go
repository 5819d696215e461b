package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The final usage report, for poold compare (and any program that runs
// poold and wants to know what it cost): with POOLD_USAGE_FD=N in its
// environment, poold writes one JSON object (a usageReport) on file
// descriptor N when its run is over, then closes it. "Over" is after the
// last worker was reaped, so the children's figures include every worker.
// poold takes the variable out of its environment at once, so that its
// workers and the programs its tasks run do not inherit it, and marks N
// close-on-exec. A process that dies (a signal, or a task's os.Exit in
// --mode threads) writes nothing: the reader then knows that poold did not
// reach its ordinary end.
const usageFDVar = "POOLD_USAGE_FD"

// usageReport is what poold writes there: getrusage(2) of itself and of
// its children, at exit, and on Linux its own peak memory. Times are in
// milliseconds, sizes in bytes.
//
// The ru_maxrss figures are upper bounds: on Linux a process started by
// fork (or vfork) and exec keeps as its ru_maxrss the resident set its
// parent had when it forked, so poold's is at least that of the program
// that started it, and each worker's at least poold's. peak_bytes, VmHWM
// from /proc/self/status, counts only poold's own memory since its exec.
type usageReport struct {
	Status         int     `json:"status"`                // the exit status poold is about to exit with
	UserMS         float64 `json:"user_ms"`               // poold's own user CPU time (RUSAGE_SELF)
	SysMS          float64 `json:"sys_ms"`                // and system CPU time
	MaxRSS         int64   `json:"maxrss_bytes"`          // poold's ru_maxrss
	Peak           int64   `json:"peak_bytes,omitempty"`  // poold's own peak resident set (VmHWM; Linux only)
	ChildrenUserMS float64 `json:"children_user_ms"`      // of the processes poold waited for (RUSAGE_CHILDREN): its workers, the programs exec tasks ran, and what those waited for
	ChildrenSysMS  float64 `json:"children_sys_ms"`       //
	ChildrenMaxRSS int64   `json:"children_maxrss_bytes"` // the largest ru_maxrss among them
}

// takeUsageFD returns the descriptor that POOLD_USAGE_FD names, or nil,
// and takes the variable out of the environment.
func takeUsageFD(stderr io.Writer) *os.File {
	v, ok := os.LookupEnv(usageFDVar)
	if !ok {
		return nil
	}
	os.Unsetenv(usageFDVar)
	fd, err := strconv.Atoi(v)
	if err == nil && fd > 2 {
		if _, err = unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			unix.CloseOnExec(fd)
			return os.NewFile(uintptr(fd), "usage report")
		}
	}
	fmt.Fprintf(stderr, "poold: %s=%s: not an open file descriptor above 2; no usage report\n", usageFDVar, v)
	return nil
}

// writeUsage writes the usage report on f and closes it; f may be nil.
func writeUsage(f *os.File, status int) {
	if f == nil {
		return
	}
	defer f.Close()
	var self, children syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) != nil || syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children) != nil {
		return
	}
	b, _ := json.Marshal(usageReport{
		Status: status,
		UserMS: ms(tvDuration(self.Utime)), SysMS: ms(tvDuration(self.Stime)), MaxRSS: maxRSSBytes(&self), Peak: selfPeak(),
		ChildrenUserMS: ms(tvDuration(children.Utime)), ChildrenSysMS: ms(tvDuration(children.Stime)), ChildrenMaxRSS: maxRSSBytes(&children),
	})
	f.Write(append(b, '\n'))
}

func tvDuration(tv syscall.Timeval) time.Duration { return time.Duration(tv.Nano()) }

// ms is d in milliseconds, fractional, as poold's JSON writes durations.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// maxRSSBytes is ru_maxrss in bytes: the kernel gives KiB (darwin: bytes).
func maxRSSBytes(ru *syscall.Rusage) int64 { return int64(ru.Maxrss) * maxRSSUnit }
