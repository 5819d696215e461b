//go:build !linux

package worker

import "golang.org/x/sys/unix"

// processCPU is the CPU time of this process so far (user and system, all
// its threads), in ns, from getrusage(RUSAGE_SELF), which counts
// microseconds.
func processCPU() (int64, bool) {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}

// childrenCPU is the CPU time, user and system, of the children of this
// process that were waited for, in ns; prev if it cannot be read.
func childrenCPU(prev int64) int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_CHILDREN, &ru) != nil {
		return prev
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
