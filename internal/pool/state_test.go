package pool

import (
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Every move of the worker state table is legal or refused as documented,
// and setStateLocked panics on an illegal one.
func TestWorkerStateMoves(t *testing.T) {
	t.Parallel()
	legal := map[[2]workerState]bool{
		{starting, ready}: true, {starting, exited}: true,
		{ready, draining}: true, {ready, exited}: true,
		{draining, exited}: true,
	}
	all := []workerState{starting, ready, draining, exited}
	for _, from := range all {
		for _, to := range all {
			if got, want := legalMove(from, to), legal[[2]workerState{from, to}]; got != want {
				t.Errorf("%s → %s: legal %v, want %v", from, to, got, want)
			}
			if legal[[2]workerState{from, to}] {
				continue
			}
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s → %s did not panic", from, to)
					}
				}()
				p := &Pool{}
				p.setStateLocked(&worker{p: p, state: from}, to)
			}()
		}
	}
}

// A worker that dies just as New returns, before its caller takes the
// pool's lock again, is replaced and the pool works on. Under the race
// detector this also checks that New reads no guarded state after
// unlocking (it once counted its ready workers for a log line so, racing
// with the dead worker's exit).
func TestWorkerDiesAsNewReturns(t *testing.T) {
	t.Parallel()
	var first atomic.Int64
	exited := make(chan struct{})
	p := newTestPool(t, Config{Workers: 1, Events: func(e Event) {
		switch {
		case e.Kind == WorkerStarted:
			first.CompareAndSwap(0, int64(e.PID))
		case e.Kind == WorkerExited && e.PID == int(first.Load()):
			close(exited)
		}
	}})
	// The event is told just after New's wake-up; waiting for it takes no
	// lock that the dead worker's exit would take after.
	deadline := time.Now().Add(5 * time.Second)
	for first.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	pid := int(first.Load())
	if pid == 0 {
		t.Fatal("no WorkerStarted event within 5 s of New")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Its exit is settled before this goroutine takes the pool's lock again.
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("no WorkerExited event within 10 s of SIGKILL")
	}
	c := run(t, p, "echo", 1, 7)[0]
	if c.Fail != nil || value[int](t, c) != 7 || c.PID == pid {
		t.Fatalf("after the first worker died: %+v from pid %d; want 7 from a new worker (not %d)", c.Fail, c.PID, pid)
	}
}
