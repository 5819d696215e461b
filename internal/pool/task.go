package pool

import (
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/poold/poold/internal/ipc"
)

// Task is one call of a worker function, or a chunk: many calls of one
// function whose arguments travel back to back in Args, so that a Map of a
// million items costs the pool a few chunks rather than a million objects.
// From submission until Done the pool owns the task; the caller must not
// touch it.
type Task struct {
	Func    string
	Args    msgpack.RawMessage // one msgpack value; for a chunk, Calls values back to back
	Calls   int                // the calls in Args: above 1 for a chunk; 0 means 1
	Timeout time.Duration      // 0: the pool's default
	Retries int                // -1: none; 0: the pool's default

	// Done is called exactly once, from a pool goroutine, when the outcome
	// is known; for a chunk, once Each has had the outcome of every call. It
	// must not block.
	Done func(*Task)
	// Each receives the outcome of each call of a chunk, in no set order and
	// possibly from several goroutines at once (the calls of a chunk whose
	// worker died run again one by one, anywhere). o, and the slices in it,
	// are valid only during the call. It must not block.
	Each  func(t *Task, i int, o *Outcome)
	Tag   int // the caller's, untouched: lets one Done serve many tasks
	Owner any // the caller's, untouched: lets Done be a function rather than a closure

	Outcome // of a single call, when Done is called

	finished atomic.Bool
	left     atomic.Int64 // a chunk as submitted: calls whose outcome is still to come
	parent   *Task        // a part split off a chunk: the chunk
	offset   int          // the index in parent of the part's first call
}

// Outcome is how one call ended.
type Outcome struct {
	Value    msgpack.RawMessage // when Err is nil
	Err      error              // nil, or a *TaskError
	PID      int
	Worker   int // the worker slot, 0 ≤ Worker < Config.Workers
	Attempts int
	Start    int64 // unix nanoseconds, in the worker; 0 if the call never started
	End      int64
	Output   []byte
}

// job is what travels in one Task frame: one or more tasks of one function.
type job struct {
	id      uint64
	fn      string
	timeout time.Duration
	tasks   []*Task
	calls   int      // over all tasks
	size    int      // about the bytes of its frame
	one     [1]*Task // backs tasks for a job of one task: no second allocation
}

func (j *job) add(t *Task) {
	if len(j.tasks) == 0 {
		j.size = 32 + len(j.fn) // header, kind, id, name, timeout
	}
	j.tasks = append(j.tasks, t)
	j.calls += t.calls()
	j.size += len(t.Args) + 1
}

func (t *Task) calls() int { return max(t.Calls, 1) }

// finish records the outcome and calls Done; a second call is a bug and is
// ignored, so that no caller ever sees two outcomes. A chunk finished this
// way failed whole: each of its calls gets its outcome.
func (t *Task) finish() bool {
	if !t.finished.CompareAndSwap(false, true) {
		return false
	}
	switch {
	case t.calls() > 1:
		for i := range t.calls() {
			o := t.Outcome
			t.deliver(i, &o)
		}
	case t.parent != nil:
		t.parent.deliver(t.offset, &t.Outcome)
	case t.Done != nil:
		t.Done(t)
	}
	return true
}

// deliver hands the outcome of call i of t to the chunk it belongs to as the
// caller submitted it, and completes that chunk after its last call.
func (t *Task) deliver(i int, o *Outcome) {
	for t.parent != nil {
		i += t.offset
		t = t.parent
	}
	if t.Each != nil {
		t.Each(t, i, o)
	}
	if t.left.Add(-1) == 0 && t.Done != nil {
		t.Done(t)
	}
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

// split cuts chunk t into parts of at most size calls each, in order. The
// parts deliver their outcomes to t; t itself no longer runs.
func (t *Task) split(size int) []*Task {
	n := t.calls()
	parts := make([]*Task, 0, (n+size-1)/size)
	off := 0
	for from := 0; from < n; from += size {
		to := min(from+size, n)
		end := off + argsLen(t.Args[off:], to-from)
		parts = append(parts, t.part(from, to, t.Args[off:end:end]))
		off = end
	}
	return parts
}

// splitAt cuts chunk t into its first k calls and the rest.
func (t *Task) splitAt(k int) (head, tail *Task) {
	off := argsLen(t.Args, k)
	return t.part(0, k, t.Args[:off:off]), t.part(k, t.calls(), t.Args[off:])
}

func (t *Task) part(from, to int, args msgpack.RawMessage) *Task {
	p := &Task{Func: t.Func, Args: args, Calls: to - from, Timeout: t.Timeout, Retries: t.Retries, parent: t, offset: from}
	p.Attempts = t.Attempts
	return p
}

// argsLen is the length of the first k values in args, which Submit counted.
func argsLen(args msgpack.RawMessage, k int) int {
	off := 0
	for range k {
		l, err := ipc.ValueLen(args[off:])
		if err != nil {
			return len(args) // cannot happen: Submit counted them
		}
		off += l
	}
	return off
}
