package worker

import (
	"bytes"
	"os"
	"strconv"
)

// residentRSS is this process's resident set now, in bytes, from
// /proc/self/statm; 0 if it cannot be read.
func residentRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(string(f[1]), 10, 64)
	return pages * int64(os.Getpagesize())
}
