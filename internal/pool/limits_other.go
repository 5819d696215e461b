//go:build !linux

package pool

import (
	"errors"
	"fmt"
	"runtime"
)

// checkMemoryLimit refuses a memory limit: the pool measures a worker's
// resident memory in /proc, which these systems lack (FreeBSD's procfs,
// when mounted, has no statm), and their own ways (darwin's proc_pidinfo,
// FreeBSD's kinfo_proc through sysctl) are not in x/sys. A limit that New
// accepted and never enforced would be worse than none.
func checkMemoryLimit(limit int64) error {
	if limit > 0 {
		return fmt.Errorf("max worker memory on %s: %w (the pool reads a worker's resident memory from /proc, which only Linux has)", runtime.GOOS, errors.ErrUnsupported)
	}
	return nil
}

// readRSS and readPeakRSS are never called here: New refuses a memory
// limit, so the watchdog never runs.
func readRSS(int, int64) int64 { return 0 }
func readPeakRSS(int) int64    { return 0 }
