package worker

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/tasks"
)

// hold allocates and touches mb MiB, keeps it for ms milliseconds, and
// frees it.
func holdTask() tasks.Func {
	return tasks.Typed(func(_ context.Context, a struct{ MB, MS int }) (int, error) {
		b := make([]byte, a.MB<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		time.Sleep(time.Duration(a.MS) * time.Millisecond)
		runtime.KeepAlive(b)
		return len(b), nil
	})
}

// Each item carries the worker's peak memory when its call ended: it grows
// with a call that held memory for a while, and a short call reports the
// last figure read, not 0.
func TestPeakMemoryPerCall(t *testing.T) {
	c := startProcess(t, Settings{})
	c.hello()
	first := c.task(1, "hold", map[string]int{"MB": 0, "MS": 0}).Items[0]
	big := c.task(2, "hold", map[string]int{"MB": 96, "MS": 5}).Items[0]
	after := c.task(3, "double", 2).Items[0]
	for _, it := range []ipc.Item{first, big, after} {
		if !it.OK || it.MaxRSS <= 0 {
			t.Fatalf("item %+v: want ok with a peak", it)
		}
	}
	if big.MaxRSS < first.MaxRSS+80<<20 {
		t.Errorf("peak %d MiB after holding 96 MiB, %d MiB before: want at least 80 MiB more", big.MaxRSS>>20, first.MaxRSS>>20)
	}
	if after.MaxRSS < big.MaxRSS {
		t.Errorf("peak %d MiB after a short call, %d MiB before: a peak does not shrink", after.MaxRSS>>20, big.MaxRSS>>20)
	}
}
