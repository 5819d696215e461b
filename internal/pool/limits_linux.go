package pool

import (
	"bytes"
	"os"
	"strconv"
)

// checkMemoryLimit: Linux can measure a worker's memory (from /proc), so
// any limit goes.
func checkMemoryLimit(int64) error { return nil }

// readRSS returns a process's resident set in bytes, from /proc/PID/statm
// (one small read; 0 if the process is gone).
func readRSS(pid int, page int64) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[1]), 10, 64)
	return n * page
}

// readPeakRSS returns VmHWM, the process's peak resident set, in bytes.
func readPeakRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := bytes.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
