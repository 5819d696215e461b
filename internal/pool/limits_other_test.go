//go:build !linux

package pool

import (
	"errors"
	"testing"
)

// Without /proc the pool cannot measure a worker's memory: New must refuse
// a limit rather than accept one it would never enforce.
func TestMemoryLimitRefused(t *testing.T) {
	if _, err := (Config{MaxWorkerMemory: 1 << 30}).withDefaults(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("a memory limit gave %v; want errors.ErrUnsupported", err)
	}
	if _, err := (Config{}).withDefaults(); err != nil {
		t.Errorf("no memory limit gave %v", err)
	}
}
