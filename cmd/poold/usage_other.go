//go:build !linux

package main

// selfPeak is unknown without /proc: the usage report's maxrss_bytes
// stands instead.
func selfPeak() int64 { return 0 }
