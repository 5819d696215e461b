package worker

import "time"

// peakAfter is how long a call must run for the worker to read its peak
// resident memory after it: on Linux that reads /proc/self/status (the
// getrusage figure, ru_maxrss, starts at the parent's size at the fork, so
// a worker of a 2 GiB parent would say 2 GiB), about 10 µs, under 1 % of
// such a call. A shorter call reports the last figure read: it had little
// time to grow.
const peakAfter = time.Millisecond

// peakMeter keeps the worker's peak resident memory as last read.
type peakMeter struct {
	bytes int64 // 0: unknown
}

// after returns the peak to report for a call that ran for d, reading it
// again when the call was long.
func (m *peakMeter) after(d time.Duration) int64 {
	if d >= peakAfter || m.bytes == 0 {
		if b := peakRSS(); b > 0 {
			m.bytes = b
		}
	}
	return m.bytes
}
