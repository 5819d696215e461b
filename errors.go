package poold

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Errors of the pool itself, returned by its methods and verbs; every error
// that they return for one of these reasons matches it with errors.Is. A
// failed task's error is a *[TaskError] instead, matched by its [Kind].
var (
	// ErrPoolClosed: work was submitted after Close or Terminate.
	ErrPoolClosed = errors.New("poold: pool is closed")
	// ErrPoolRunning: Join was called before Close or Terminate.
	ErrPoolRunning = errors.New("poold: pool is still running")
	// ErrWorkerStart: New could not start the workers; the error says how
	// the last attempt failed.
	ErrWorkerStart = errors.New("poold: worker could not start")
	// ErrInWorker: New was called in a process that a pool started as its
	// worker: the program did not call Init first thing in main (or, for
	// a test binary, in TestMain). Without this error every worker would
	// start a pool of its own, and so on.
	ErrInWorker = errors.New("poold: New called in a worker process: call poold.Init(reg) first thing in main, and in TestMain for tests, with every task registered before it")
	// ErrNotReady: Successful was called on a result that is not ready.
	ErrNotReady = errors.New("poold: result is not ready")
	// ErrChunkSize: a chunk size below 1 (see [ChunkSize]).
	ErrChunkSize = errors.New("poold: chunk size must be at least 1")
	// ErrWindow: an IMap window below 1 (see [Window]).
	ErrWindow = errors.New("poold: window must be at least 1")
	// ErrCallbackPanic: a result callback ([OnSuccess], [OnError],
	// [OnMapSuccess], [OnMapError]) panicked; the error is a
	// *[CallbackError].
	ErrCallbackPanic = errors.New("poold: callback panicked")
)

// Kind says why a task failed. It is an error, so that errors.Is tests a
// task error's kind: errors.Is(err, poold.KindWorkerLost).
type Kind string

// Task failure kinds. The worker reports the first group; the pool decides
// the second.
const (
	KindError          Kind = "error"            // the task returned an error
	KindPanic          Kind = "panic"            // the task panicked; the worker recovered and lives on
	KindBadArgs        Kind = "bad_args"         // the arguments did not decode into the task's type
	KindUnknownFunc    Kind = "unknown_func"     // no task of that name in the workers
	KindEncode         Kind = "encode"           // the arguments or the result could not be encoded or decoded
	KindResultTooLarge Kind = "result_too_large" // the result did not fit in a frame
	KindCanceled       Kind = "canceled"         // the task returned after its context was cancelled
	KindExitStatus     Kind = "exit_status"      // a command the task ran exited non-zero or was killed by a signal (the built-in exec)

	KindWorkerLost  Kind = "worker_lost"  // the worker died while running the task
	KindTimeout     Kind = "timeout"      // the task ran past its time limit
	KindMemoryLimit Kind = "memory_limit" // the worker passed its memory limit while running the task
	KindProtocol    Kind = "protocol"     // the worker broke the wire protocol while running the task
	KindTerminated  Kind = "terminated"   // the pool was terminated before the task finished
	KindStart       Kind = "start"        // no worker could be started to run the task
	KindBadTask     Kind = "bad_task"     // the task itself was malformed (a task-file entry, say)
)

// Error returns the kind's name, as a string conversion does.
func (k Kind) Error() string { return string(k) }

// TaskError is the error of every failed task.
type TaskError struct {
	Kind    Kind
	Func    string // the task's name
	Message string // the task's error, the panic's value, or what the pool saw
	Stack   string // the worker-side stack of a panic
	// Type is the Go type of the error the task returned (the first in its
	// chain that is not a plain wrapper: "*fs.PathError"), or of the value
	// it panicked with ("runtime.boundsError", "string").
	Type string
	// Detail is what the task's error says beyond its message, when it
	// says more (a failed command's exit code and output, say): one
	// msgpack value, or nil.
	Detail   Raw
	PID      int // the worker that ran the task; 0 if none did
	Attempts int
	// Exit is how the worker process ended under the task (kinds
	// worker_lost, timeout, memory_limit, protocol); nil if it did not.
	Exit *WorkerExitError
}

// Error says "task <Func>: <Kind> (pid <PID>): <Message>".
func (e *TaskError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "task %s: %s", e.Func, e.Kind)
	if e.PID != 0 {
		fmt.Fprintf(&b, " (pid %d)", e.PID)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Is reports whether target is e's [Kind].
func (e *TaskError) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// Unwrap returns e.Exit, or nil.
func (e *TaskError) Unwrap() error {
	if e.Exit == nil {
		return nil
	}
	return e.Exit
}

// CallbackError is the error of a result whose callback panicked: the
// process lives on, the panic is logged on the pool's logger, and the
// result (its Err, and what Get returns) carries this error instead of the
// task's own, which it wraps; the result's Value stays. It matches
// [ErrCallbackPanic] with errors.Is, and the task's error's kind too. A
// Map whose OnMapSuccess or OnMapError panicked returns one from Get, with
// its results.
type CallbackError struct {
	Func     string // the task's name
	Callback string // the callback that panicked: "OnSuccess", "OnError", "OnMapSuccess" or "OnMapError"
	Value    any    // what it panicked with
	Stack    string // its goroutine's stack at the panic
	Err      error  // the task's own error, or the Map's (what OnError or OnMapError was given); nil after a success
}

// Error says "poold: <Callback> callback of task <Func> panicked: <Value>",
// then the task's error if it had one.
func (e *CallbackError) Error() string {
	s := fmt.Sprintf("poold: %s callback of task %s panicked: %v", e.Callback, e.Func, e.Value)
	if e.Err != nil {
		s += "; the task's error: " + e.Err.Error()
	}
	return s
}

// Is reports whether target is ErrCallbackPanic.
func (e *CallbackError) Is(target error) bool { return target == ErrCallbackPanic }

// Unwrap returns the task's own error, or nil.
func (e *CallbackError) Unwrap() error { return e.Err }

// WorkerExitError says how a worker process ended.
type WorkerExitError struct {
	PID      int
	ExitCode int            // -1 when a signal ended it
	Signal   syscall.Signal // 0 when it exited by itself
	CoreDump bool
	Reason   string   // why the pool killed it, if it did ("timeout", "protocol error: ...", ...)
	Stderr   []string // the last lines the worker wrote to stderr
	Host     string   // where it ran: "" for this machine
	// Launcher and LauncherPID name the program that started the worker
	// and reported its end ("ssh", "srun"), when that is not the worker
	// itself: ExitCode and Signal are then the launcher's. ssh's 255 is
	// its own failure: a lost or failed connection, or a worker killed by
	// a signal.
	Launcher    string
	LauncherPID int
}

// Error says "worker pid <PID> exited with code <ExitCode>" or "... killed
// by signal <Signal>", the pool's reason, and the stderr line that best says
// what happened.
func (e *WorkerExitError) Error() string { return e.exit().Error() }
