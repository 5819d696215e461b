package pool

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// Large arguments and large results, short enough to be pipelined: both
// pipes fill at once. The pool must keep reading results while it writes
// tasks, or the worker (blocked writing a result) never reads its next task.
func TestBigPipelinedNoDeadlock(t *testing.T) {
	p := newTestPool(t, Config{Workers: 1})
	arg := raw(t, strings.Repeat("x", 900<<10))
	const n = 60
	var wg sync.WaitGroup
	wg.Add(n)
	ts := make([]*Task, n)
	for i := range ts {
		ts[i] = &Task{Args: arg, Done: func(*Task) { wg.Done() }}
	}
	for _, task := range ts {
		if err := p.Submit("echo", []*Task{task}, 1); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("deadlock: tasks with large arguments and results did not finish")
	}
	for i, task := range ts {
		if task.Err != nil || len(task.Value) != len(arg) {
			t.Errorf("task %d: %d bytes back, %v", i, len(task.Value), task.Err)
		}
	}
}
