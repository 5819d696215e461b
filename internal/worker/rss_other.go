//go:build !linux

package worker

// residentRSS is, where /proc is missing, the peak resident set so far:
// a limit on it is a limit on the resident set, reached no later.
func residentRSS() int64 { return peakRSS() }
