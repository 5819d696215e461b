package pool

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	child "github.com/poold/poold/internal/worker"
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

// A job dispatched to a worker whose reader has closed its stdin, and not
// yet settled its death, is not read by the flush that finds it: the death
// puts the job back in the queue and the replacement's dispatch rewrites its
// id, and nothing orders that after such a flush. Under the race detector
// this checks that ordering (the flush once encoded the job all the same,
// racing with the new dispatch: a caller's Apply just after a task ended its
// worker, in CI). The test paces the first worker's end: readLoop waits in
// Exited, then, once it has closed stdin, in its tail's lock, while the
// test's Submit dispatches to the worker and flushes. What would write to
// the closed stdin waits for the death to be settled, so that the flush takes
// no lock after the death does.
func TestFlushAfterStdinClosedReadsNoJob(t *testing.T) {
	t.Parallel()
	l := &pacedLauncher{goLauncher: newGoLauncher(),
		exiting: make(chan struct{}), proceed: make(chan struct{}), closed: make(chan struct{}), settled: make(chan struct{})}
	proceed, settled := sync.OnceFunc(func() { close(l.proceed) }), sync.OnceFunc(func() { close(l.settled) })
	p := newTestPool(t, Config{Workers: 1, Launcher: l, Events: func(e Event) {
		if e.Kind == WorkerExited {
			settled()
		}
	}})
	t.Cleanup(proceed) // before Terminate (cleanups run last first): no wait outlives a failure
	t.Cleanup(settled)
	p.mu.Lock()
	w := p.slots[0].w
	p.mu.Unlock()
	w.signal(SIGKILL)
	wait := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s within 10 s", what)
		}
	}
	wait(l.exiting, "the killed worker did not end")
	wait(w.logged, "its stderr was not read to its end")
	w.tail.mu.Lock() // readLoop stops here after closing stdin, before onExit
	unlocked := false
	defer func() {
		if !unlocked {
			w.tail.mu.Unlock()
		}
	}()
	proceed()
	wait(l.closed, "its stdin was not closed")
	w.pipe.mu.Lock() // readLoop has let go of the pipe
	//lint:ignore SA2001 taking and dropping the lock is the point: it waits for readLoop to let go
	w.pipe.mu.Unlock()
	// Once the job is dispatched and its flush has taken it out of the
	// outbox, the death goes on. Seeing that takes only locks that the
	// flush took before it could read the job.
	unlocked = true
	go func() {
		defer w.tail.mu.Unlock()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			p.mu.Lock()
			dispatched := len(w.inflight) == 1
			p.mu.Unlock()
			w.box.mu.Lock()
			taken := dispatched && len(w.box.jobs) == 0
			w.box.mu.Unlock()
			if taken {
				return
			}
		}
	}()
	c := run(t, p, "pid", 1, struct{}{})[0]
	if c.Fail != nil || value[int](t, c) == w.pid || c.Attempts != 1 {
		t.Errorf("a job sent to a worker as it died: %+v from pid %d after %d attempts; want a new worker's pid (not %d), 1 attempt", c.Fail, c.PID, c.Attempts, w.pid)
	}
	if n := l.late.Load(); n > 0 {
		t.Errorf("%d bytes written to a stdin after the pool closed it: a flush read jobs that its worker's death gives to another", n)
	}
}

// pacedLauncher is a goLauncher whose first worker's end the test paces.
type pacedLauncher struct {
	*goLauncher
	n       atomic.Int64
	exiting chan struct{} // closed when the first worker has ended (readLoop calls Exited)
	proceed chan struct{} // closed by the test: Exited returns
	closed  chan struct{} // closed when the pool closes the first worker's stdin
	settled chan struct{} // closed by the test once the death is settled: a write after closed fails
	late    atomic.Int64  // bytes written to the first worker's stdin after it was closed
}

func (l *pacedLauncher) Launch(s child.Settings) (*Conn, error) {
	c, err := l.goLauncher.Launch(s)
	if err != nil || l.n.Add(1) != 1 {
		return c, err
	}
	c.Proc = &pacedProcess{Process: c.Proc, l: l}
	c.Stdin = &pacedStdin{WriteCloser: c.Stdin, l: l}
	return c, nil
}

type pacedProcess struct {
	Process
	l *pacedLauncher
}

func (p *pacedProcess) Exited() {
	p.Process.Exited()
	close(p.l.exiting)
	<-p.l.proceed
}

type pacedStdin struct {
	io.WriteCloser
	l      *pacedLauncher
	isShut atomic.Bool
}

func (s *pacedStdin) Write(b []byte) (int, error) {
	if !s.isShut.Load() {
		return s.WriteCloser.Write(b)
	}
	// No system call, as for a closed *os.File, and no lock: the write
	// fails once the death is settled.
	s.l.late.Add(int64(len(b)))
	select {
	case <-s.l.settled:
	case <-time.After(10 * time.Second):
	}
	return 0, os.ErrClosed
}

func (s *pacedStdin) Close() error {
	if s.isShut.CompareAndSwap(false, true) {
		close(s.l.closed)
	}
	return s.WriteCloser.Close()
}
