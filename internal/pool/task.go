package pool

import (
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Task is one call of a worker function: what the caller submits and, once
// Done has been called, its outcome. From submission until Done the pool owns
// the task; the caller must not touch it.
type Task struct {
	Func    string
	Args    msgpack.RawMessage
	Timeout time.Duration // 0: the pool's default
	Retries int           // -1: none; 0: the pool's default

	// Done is called exactly once, from a pool goroutine, when the outcome
	// is known. It must not block.
	Done func(*Task)
	Tag  int // the caller's, untouched: lets one Done serve many tasks

	// The outcome.
	Value    msgpack.RawMessage // when Err is nil
	Err      error              // nil, or a *TaskError
	PID      int
	Worker   int // the worker slot, 0 ≤ Worker < Config.Workers
	Attempts int
	Start    int64 // unix nanoseconds, in the worker; 0 if the task never started
	End      int64
	Output   []byte

	finished atomic.Bool
}

// job is what travels in one Task frame: one or more tasks of one function.
type job struct {
	id      uint64
	fn      string
	timeout time.Duration
	tasks   []*Task
	one     [1]*Task  // backs tasks for a job of one task: no second allocation
	sent    time.Time // when the writer handed it to the pipe
}

// finish records the outcome and calls Done; a second call is a bug and is
// ignored, so that no caller ever sees two outcomes.
func (t *Task) finish() bool {
	if !t.finished.CompareAndSwap(false, true) {
		return false
	}
	if t.Done != nil {
		t.Done(t)
	}
	return true
}

func (t *Task) fail(kind Kind, msg string, pid int, cause error) {
	t.Value = nil
	if pid != 0 {
		t.PID = pid
	}
	t.Err = &TaskError{Kind: kind, Func: t.Func, Message: msg, PID: pid, Attempts: t.Attempts, Cause: cause}
	if t.End == 0 {
		t.End = time.Now().UnixNano()
	}
}
