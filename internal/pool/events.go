package pool

import "time"

// EventKind says what an [Event] reports.
type EventKind uint8

const (
	// WorkerStarted: a worker is ready (a process said hello; in a Threads
	// pool, a worker goroutine began). Replaces is the PID (threads: the
	// slot + 1) of the worker it replaces in its slot, 0 for a slot's first.
	WorkerStarted EventKind = iota + 1
	// WorkerExited: a worker that had started is gone (reaped; in a Threads
	// pool, given up on): Exit says how, Blame and Reason why the pool
	// killed it, if it did.
	WorkerExited
	// TaskRun: one attempt of one call ran, retried attempts included, each
	// its own event.
	TaskRun
)

// Event is what Config.Events and ThreadsConfig.Events are told of a pool's
// life. It is called without holding the pool's locks, from pool
// goroutines, possibly several at once, and must not block; the event and
// what it points to are valid only during the call.
type Event struct {
	Kind   EventKind
	Time   int64  // unix nanoseconds, when the pool saw it (worker events)
	Host   string // where the worker runs: "" for this machine
	PID    int    // the worker process (threads: this process)
	Worker int    // the slot

	Replaces int // WorkerStarted: the worker it replaces, 0 if none

	Exit   *Exit  // WorkerExited: how it ended (nil in a Threads pool)
	Blame  Kind   // WorkerExited: the kind the pool blamed it for, "" if none
	Reason string // WorkerExited: why it ended, in words

	// TaskRun: the call, its attempt, and its times in the worker.
	Func     string
	Name     string // the task's Name
	Index    int    // Base + the call's index in its task, for an Indexed task; else -1
	Attempts int
	Start    int64 // unix nanoseconds
	End      int64
	CPU      time.Duration // its CPU time in the worker; negative: unknown
	MaxRSS   int64         // the worker's peak memory when it ended, bytes; 0: unknown
	Fail     Kind          // "" when it succeeded
	Lost     bool          // its worker died under it: Start is the worker's last known idle time, End when the pool noticed
}

// runEvent fills e for an attempt of call i of t.
func runEvent(e *Event, t *Task, i int) {
	for t.parent != nil {
		i += t.offset
		t = t.parent
	}
	e.Kind, e.Func, e.Name, e.Index = TaskRun, t.Func, t.Name, -1
	if t.Indexed {
		e.Index = t.Base + i
	}
}

func now() int64 { return time.Now().UnixNano() }
