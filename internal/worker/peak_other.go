//go:build !linux

package worker

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// peakRSS is this process's peak resident set size in bytes, from
// getrusage's ru_maxrss (bytes on darwin, KiB elsewhere); 0 if it cannot
// be read.
func peakRSS() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return int64(ru.Maxrss)
	}
	return int64(ru.Maxrss) << 10
}
