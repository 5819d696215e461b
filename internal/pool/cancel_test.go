package pool

import (
	"sync"
	"testing"
	"time"

	"github.com/poold/poold/internal/kind"
)

// submitOne submits one call of fn and returns its task and a wait for its
// outcome.
func submitOne(t *testing.T, p *Pool, fn string, arg any) (*Task, func() Outcome) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	task := &Task{Func: fn, Args: raw(t, arg), Calls: 1, Done: func(*Task) { wg.Done() }}
	if err := p.Submit(task); err != nil {
		t.Fatal(err)
	}
	return task, func() Outcome {
		t.Helper()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the task did not finish")
		}
		return task.Outcome
	}
}

// A cancelled task that was still queued never runs: its side effect is
// absent, and it fails with kind canceled, no worker named.
func TestCancelQueued(t *testing.T) {
	t.Parallel()
	p, l := newGoPool(t, Config{Workers: 1})
	_, busy := submitOne(t, p, "sleep_ms", 200)
	task, wait := submitOne(t, p, "mark", nil)
	p.Cancel(task)
	o := wait()
	if o.Fail == nil || o.Fail.Kind != kind.Canceled || o.PID != 0 {
		t.Fatalf("cancelled while queued: %+v, pid %d", o.Fail, o.PID)
	}
	busy()
	if c := run(t, p, "echo", 1, 1)[0]; value[int](t, c) != 1 {
		t.Error("the pool did not go on")
	}
	if n := l.marks.Load(); n != 0 {
		t.Errorf("the cancelled task ran %d times", n)
	}
	p.Cancel(task) // settled: nothing happens
}

// A running task that watches its context ends with kind canceled, and its
// worker lives on.
func TestCancelRunning(t *testing.T) {
	t.Parallel()
	p, _ := newGoPool(t, Config{Workers: 1, KillGrace: 5 * time.Second})
	before := p.PIDs()[0]
	task, wait := submitOne(t, p, "sleep_ms", 5000)
	time.Sleep(50 * time.Millisecond)
	begin := time.Now()
	p.Cancel(task)
	o := wait()
	if o.Fail == nil || o.Fail.Kind != kind.Canceled || o.PID != before {
		t.Fatalf("cancelled while running: %+v on pid %d", o.Fail, o.PID)
	}
	if el := time.Since(begin); el > time.Second {
		t.Errorf("a task that watches its context took %v to end", el)
	}
	if after := p.PIDs()[0]; after != before {
		t.Errorf("the worker was replaced (pid %d, then %d)", before, after)
	}
}

// A running task that ignores its context is killed after the grace, with
// kind canceled; its worker is replaced, and the other worker's task is
// unaffected.
func TestCancelRunningIgnored(t *testing.T) {
	t.Parallel()
	const grace = 100 * time.Millisecond
	p, _ := newGoPool(t, Config{Workers: 2, KillGrace: grace})
	task, wait := submitOne(t, p, "hang", nil)
	_, other := submitOne(t, p, "sleep_ms", 400)
	time.Sleep(50 * time.Millisecond)
	begin := time.Now()
	p.Cancel(task)
	o := wait()
	if o.Fail == nil || o.Fail.Kind != kind.Canceled || o.Fail.Exit == nil {
		t.Fatalf("an ignored cancellation: %+v", o.Fail)
	}
	if el := time.Since(begin); el > grace+time.Second {
		t.Errorf("the worker was killed after %v; grace %v", el, grace)
	}
	if o := other(); o.Fail != nil {
		t.Errorf("the other task: %+v", o.Fail)
	}
	deadline := time.Now().Add(grace + time.Second)
	for (p.PIDs()[0] == 0 || p.PIDs()[1] == 0) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if pids := p.PIDs(); pids[0] == 0 || pids[1] == 0 {
		t.Errorf("the killed worker was not replaced within grace + 1 s: %v", pids)
	}
}

// Cancelling a chunk: the call that runs is cancelled, the calls behind it
// never start.
func TestCancelChunk(t *testing.T) {
	t.Parallel()
	p, _ := newGoPool(t, Config{Workers: 1})
	var wg sync.WaitGroup
	wg.Add(1)
	outs := make([]Outcome, 5)
	args := append(append(append(append(raw(t, 50), raw(t, 5000)...), raw(t, 50)...), raw(t, 50)...), raw(t, 50)...)
	task := &Task{Func: "sleep_ms", Args: args, Calls: 5, Each: func(_ *Task, i int, o *Outcome) { outs[i] = *o }, Done: func(*Task) { wg.Done() }}
	if err := p.Submit(task); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	p.Cancel(task)
	wg.Wait()
	if outs[0].Fail != nil {
		t.Errorf("call 0, done before the cancellation: %+v", outs[0].Fail)
	}
	for i, o := range outs[1:] {
		if o.Fail == nil || o.Fail.Kind != kind.Canceled {
			t.Errorf("call %d: %+v, want canceled", i+1, o.Fail)
		}
		if i > 0 && o.Start != 0 {
			t.Errorf("call %d started after the cancellation", i+1)
		}
	}
}
