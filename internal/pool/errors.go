package pool

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Errors of the pool itself. Every error a pool method returns wraps one of
// these, so that callers can test for them with errors.Is.
var (
	// ErrPoolClosed: work was submitted after Close or Terminate.
	ErrPoolClosed = errors.New("pool is closed")
	// ErrPoolRunning: Join was called before Close or Terminate, as in
	// CPython's "Pool is still running".
	ErrPoolRunning = errors.New("pool is still running")
	// ErrWorkerStart: a worker could not be started, or failed before its
	// handshake, more times than the pool retries.
	ErrWorkerStart = errors.New("worker could not start")
)

// Kind says why a task failed. It travels as a string, so that a worker and
// a parent of different builds agree on it.
type Kind string

// Task failure kinds. The worker reports the first group; the parent decides
// the second.
const (
	KindError          Kind = "error"            // the task returned an error
	KindPanic          Kind = "panic"            // the task panicked; the worker recovered and lives on
	KindBadArgs        Kind = "bad_args"         // the arguments did not decode into the task's type
	KindUnknownFunc    Kind = "unknown_func"     // no task of that name in the worker
	KindEncode         Kind = "encode"           // the arguments or the result could not be encoded
	KindResultTooLarge Kind = "result_too_large" // the result did not fit in a frame
	KindCanceled       Kind = "canceled"         // the task returned after its context was cancelled

	KindWorkerLost  Kind = "worker_lost"  // the worker died while running the task
	KindTimeout     Kind = "timeout"      // the task ran past its time limit
	KindMemoryLimit Kind = "memory_limit" // the worker passed its memory limit while running the task
	KindProtocol    Kind = "protocol"     // the worker broke the wire protocol while running the task
	KindTerminated  Kind = "terminated"   // the pool was terminated before the task finished
	KindStart       Kind = "start"        // no worker could be started to run the task
	KindBadTask     Kind = "bad_task"     // the task itself was malformed (a task-file entry, say)
)

// Sentinels for the kinds, for errors.Is: errors.Is(err, ErrWorkerLost) holds
// for every *TaskError of kind KindWorkerLost.
var (
	ErrTaskFailed     = &kindError{KindError}
	ErrPanic          = &kindError{KindPanic}
	ErrBadArgs        = &kindError{KindBadArgs}
	ErrUnknownFunc    = &kindError{KindUnknownFunc}
	ErrEncode         = &kindError{KindEncode}
	ErrResultTooLarge = &kindError{KindResultTooLarge}
	ErrCanceled       = &kindError{KindCanceled}
	ErrWorkerLost     = &kindError{KindWorkerLost}
	ErrTimeout        = &kindError{KindTimeout}
	ErrMemoryLimit    = &kindError{KindMemoryLimit}
	ErrProtocol       = &kindError{KindProtocol}
	ErrTerminated     = &kindError{KindTerminated}
	ErrStart          = &kindError{KindStart}
	ErrBadTask        = &kindError{KindBadTask}
)

type kindError struct{ kind Kind }

func (e *kindError) Error() string { return "task failed: " + string(e.kind) }

// TaskError is how every failed task reports: what kind of failure, where,
// and, for a worker-side failure, the worker's own message and stack.
type TaskError struct {
	Kind     Kind
	Func     string
	Message  string
	Stack    string // the worker-side stack of a panic, when there is one
	PID      int    // the worker that ran the task; 0 if it never ran
	Attempts int
	Cause    error // for worker_lost, timeout, memory_limit and protocol: a *WorkerExitError
}

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

// Is makes errors.Is(err, ErrPanic) and its siblings hold by kind.
func (e *TaskError) Is(target error) bool {
	k, ok := target.(*kindError)
	return ok && k.kind == e.Kind
}

func (e *TaskError) Unwrap() error { return e.Cause }

// WorkerExitError describes how a worker process ended.
type WorkerExitError struct {
	PID      int
	ExitCode int            // -1 when a signal ended it
	Signal   syscall.Signal // 0 when it exited by itself
	CoreDump bool
	Reason   string   // why the pool killed it, if it did ("timeout", "protocol error: ...", ...)
	Stderr   []string // the last lines the worker wrote to stderr
}

func (e *WorkerExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "worker pid %d ", e.PID)
	if e.Signal != 0 {
		fmt.Fprintf(&b, "killed by signal %d (%s)", int(e.Signal), e.Signal)
		if e.CoreDump {
			b.WriteString(", core dumped")
		}
	} else {
		fmt.Fprintf(&b, "exited with code %d", e.ExitCode)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, " [%s]", e.Reason)
	}
	if tail := lastMeaningful(e.Stderr); tail != "" {
		fmt.Fprintf(&b, "; stderr: %s", tail)
	}
	return b.String()
}

// lastMeaningful picks the stderr line that best says what happened: Go's
// "fatal error:" or "panic:" line if there is one, else the last line.
func lastMeaningful(lines []string) string {
	for _, l := range lines {
		if isHeadline(l) {
			return l
		}
	}
	if len(lines) > 0 {
		return lines[len(lines)-1]
	}
	return ""
}
