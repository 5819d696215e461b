package pool

import (
	"bytes"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/poold/poold/internal/ipc"
)

// Task is the one shape of work: Calls calls of function Func, whose
// arguments travel back to back in Args. Apply submits a Task of one call;
// Map and IMap submit chunks, so that a Map of a million items costs the
// pool a few Tasks rather than a million objects. From Submit until Done the
// pool owns the task; the caller must not touch it.
//
// Every field the caller sets is final: the caller resolved the defaults
// (see the root package's options), and no value stands for "the pool's
// default".
type Task struct {
	Func    string
	Args    msgpack.RawMessage // Calls msgpack values back to back
	Calls   int                // ≥ 1
	Timeout time.Duration      // per call, from its start in the worker; 0: none
	Retries int                // times a call may run again after a failure of a kind in RetryOn; 0: none
	RetryOn []Kind             // the kinds of failure that are retried
	// AtMostOnce: no call runs twice. It is never retried, the worker
	// reports each call before it starts the next, and a call lost with its
	// worker fails with kind worker_lost rather than run again.
	AtMostOnce bool

	// Each, if set, receives the outcome of every call, in no set order and
	// possibly from several goroutines at once (the calls of a chunk whose
	// worker died run again one by one, anywhere). o, and the slices in it,
	// are valid only during the call. It must not block. Without Each (only
	// for Calls == 1) the outcome is stored in Outcome, its slices copied.
	Each func(t *Task, i int, o *Outcome)
	// Done is called exactly once, from a pool goroutine, after the outcome
	// of every call has been delivered. It must not block.
	Done  func(*Task)
	Group *Group // if set, CancelGroup of it cancels this task too
	Tag   int    // the caller's, untouched: lets one Each serve many tasks
	Owner any    // the caller's, untouched: lets Done be a function rather than a closure
	// Name, Base and Indexed name the task's calls in [Event]s: Name, and,
	// if Indexed, Base + the call's index. Untouched otherwise.
	Name    string
	Base    int
	Indexed bool

	Outcome // of the single call of a Task without Each, when Done is called

	// Set by the pool.
	id         uint64       // names one dispatch of the task to one worker; fresh for each (guarded by Pool.mu)
	size       int          // about the bytes of its frame
	settled    atomic.Bool  // its outcome has been delivered: a second delivery is a bug, ignored
	left       atomic.Int64 // a task as submitted: calls whose outcome is still to come
	parent     *Task        // a part cut from a task: the task it delivers to
	offset     int          // the index in parent of the part's first call
	tries      int          // how many times its calls were started (guarded by Pool.mu)
	reported   int          // calls of the dispatch under way whose outcome its worker sent (guarded by Pool.mu)
	unstarted  int          // times its worker died with it sent and, its progress said, not started (guarded by Pool.mu)
	cancel     bool         // the caller cancelled it (guarded by Pool.mu)
	cancelSent bool         // its worker was told (guarded by Pool.mu)
}

// Outcome is how one call ended, and where it ran.
type Outcome struct {
	Value    msgpack.RawMessage // when Fail is nil
	Fail     *Failure           // nil on success
	Host     string             // where the worker ran: "" for this machine
	PID      int                // the worker process; 0 if no worker ran the call
	Worker   int                // the worker slot, 0 ≤ Worker < Config.Workers
	Attempts int                // how many times the call was started
	Start    int64              // unix nanoseconds, in the worker; 0 if it never started
	End      int64
	// CPU is the CPU time of the call (user and system), measured in its
	// worker; negative: not measured.
	CPU time.Duration
	// MaxRSS is the worker process's peak resident memory, in bytes, when
	// the call ended; 0: unknown (and always in a Threads pool, whose
	// workers share one process's memory).
	MaxRSS int64
	Output []byte // what the call wrote to its standard output
}

// Failure says why a call failed.
type Failure struct {
	Kind    Kind
	Message string
	Stack   string // the worker-side stack of a panic
	Type    string // the Go type of the task's error, or of its panic's value
	Detail  []byte // what the task's error says beyond its message, one msgpack value; nil: nothing
	Exit    *Exit  // how the worker ended, for the kinds its end decides
	Host    string // where the worker that ran it runs, when no Exit says: "" for this machine
}

// nilValue is the msgpack nil, the argument of a call given none.
var nilValue = msgpack.RawMessage{0xc0}

// dispatchSize is about the bytes of t's frame: header, kind, id, name,
// timeout, and the arguments.
func (t *Task) dispatchSize() int { return 32 + len(t.Func) + len(t.Args) + t.Calls }

// deliver hands the outcome of call i of t to the task as the caller
// submitted it, and completes that task after its last call.
func (t *Task) deliver(i int, o *Outcome) {
	for t.parent != nil {
		i += t.offset
		t = t.parent
	}
	if t.Each != nil {
		t.Each(t, i, o)
	} else {
		t.Outcome = *o
		t.Value = bytes.Clone(o.Value) // o's slices may be a reader's buffer
		t.Output = bytes.Clone(o.Output)
	}
	if t.left.Add(-1) == 0 && t.Done != nil {
		t.Done(t)
	}
}

// claim marks t as settled; false if it was already, which is a bug that
// must not show a caller two outcomes.
func (t *Task) claim() bool { return t.settled.CompareAndSwap(false, true) }

// failAll delivers the same failure to calls from, from+1, ... of t (the
// calls before from had their outcomes already).
func (t *Task) failAll(f *Failure, pid, slot, from int) {
	if !t.claim() {
		return
	}
	o := Outcome{Fail: f, Host: f.Host, PID: pid, Worker: slot, Attempts: t.tries, End: time.Now().UnixNano(), CPU: -1}
	if f.Exit != nil {
		o.Host = f.Exit.Host
	}
	for i := from; i < t.Calls; i++ {
		t.deliver(i, &o)
	}
}

// splitAt cuts t into its first k calls and the rest (0 < k < t.Calls).
func (t *Task) splitAt(k int) (head, tail *Task) {
	off := argsLen(t.Args, k)
	return t.part(0, k, t.Args[:off:off]), t.part(k, t.Calls, t.Args[off:])
}

// one is call i of t as a part of its own.
func (t *Task) one(i int) *Task { return t.sub(i, i+1) }

// sub is calls [from, to) of t as a part of their own.
func (t *Task) sub(from, to int) *Task {
	off := argsLen(t.Args, from)
	end := off + argsLen(t.Args[off:], to-from)
	return t.part(from, to, t.Args[off:end:end])
}

func (t *Task) part(from, to int, args msgpack.RawMessage) *Task {
	p := &Task{Func: t.Func, Args: args, Calls: to - from, Timeout: t.Timeout, Retries: t.Retries, RetryOn: t.RetryOn, AtMostOnce: t.AtMostOnce, parent: t, offset: from}
	p.tries = t.tries
	return p
}

// argsLen is the length of the first k values in args, which Submit counted.
func argsLen(args msgpack.RawMessage, k int) int {
	off := 0
	for range k {
		off += valueLen(args[off:])
	}
	return off
}

func valueLen(args msgpack.RawMessage) int {
	l, err := ipc.ValueLen(args)
	if err != nil {
		return len(args) // cannot happen: Submit counted them
	}
	return l
}
