package main

import (
	"bytes"
	"os"
	"strconv"
)

// selfPeak is this process's own peak resident set since its exec
// (VmHWM); 0 if unknown.
func selfPeak() int64 {
	hwm, _ := procStatus("self")
	return hwm
}

// procStatus is the VmHWM and VmRSS of process pid ("self" included) in
// bytes, from /proc/PID/status; zeros if it is gone.
func procStatus(pid string) (hwm, rss int64) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			hwm = kbField(v)
		} else if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			rss = kbField(v)
		}
	}
	return hwm, rss
}

func kbField(v []byte) int64 {
	f := bytes.Fields(v)
	if len(f) == 0 {
		return 0
	}
	kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
	return kb << 10
}
