package pool

import (
	"strings"
	"testing"
)

// Large arguments and large results, short enough to be pipelined: both
// pipes fill at once. The pool must keep reading results while it writes
// tasks, or the worker (blocked writing a result) never reads its next task.
func TestBigPipelinedNoDeadlock(t *testing.T) {
	p := newTestPool(t, Config{Workers: 1})
	arg := strings.Repeat("x", 900<<10)
	const n = 60
	args := make([]any, n)
	for i := range args {
		args[i] = arg
	}
	for i, c := range run(t, p, "echo", 1, args...) {
		if c.Fail != nil || value[string](t, c) != arg {
			t.Errorf("task %d: %d bytes back, %+v", i, len(c.Value), c.Fail)
		}
	}
}
