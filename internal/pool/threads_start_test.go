package pool

import (
	"context"
	"testing"
)

// TestThreadsTerminateAtOnce: Terminate right after NewThreads, before the
// worker goroutines have run at all, finds no call under way (a fresh
// thread's run word is claimed from the start, not once its goroutine
// runs).
func TestThreadsTerminateAtOnce(t *testing.T) {
	for range 200 {
		p, err := NewThreads(context.Background(), ThreadsConfig{Workers: 8, Registry: testRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Terminate(); err != nil {
			t.Fatal(err)
		}
	}
}
