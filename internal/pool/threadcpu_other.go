//go:build !(linux || darwin || freebsd)

package pool

import "time"

// threadCPU: this OS has no thread CPU clock poold reads; CPU time is
// unknown.
func threadCPU() time.Duration { return -1 }
