// Package kind names the ways a task can fail.
//
// A kind travels as a string on the wire, not as a number, so that a worker
// and a parent of different builds agree on it: a kind one side does not
// know still reads as what it says.
package kind

// Kind says why a task failed.
type Kind string

// Task failure kinds. The worker decides the first group and reports it in
// the task's result; the parent decides the second.
const (
	Error          Kind = "error"            // worker: the task returned an error
	Panic          Kind = "panic"            // worker: the task panicked; the worker recovered and lives on
	BadArgs        Kind = "bad_args"         // worker: the arguments did not decode into the task's type
	UnknownFunc    Kind = "unknown_func"     // worker: no task of that name in the worker
	Encode         Kind = "encode"           // worker or parent: the arguments or the result could not be encoded
	ResultTooLarge Kind = "result_too_large" // worker: the result did not fit in a frame
	Canceled       Kind = "canceled"         // worker: the task returned after its context was cancelled
	ExitStatus     Kind = "exit_status"      // worker: a command the task ran exited non-zero or was killed by a signal (the built-in exec)

	WorkerLost  Kind = "worker_lost"  // parent: the worker died while running the task
	Timeout     Kind = "timeout"      // parent, or the worker when the task's context ran out: the task ran past its time limit
	MemoryLimit Kind = "memory_limit" // parent: the worker passed its memory limit while running the task
	Protocol    Kind = "protocol"     // parent: the worker broke the wire protocol while running the task
	Terminated  Kind = "terminated"   // parent: the pool was terminated before the task finished
	Start       Kind = "start"        // parent: no worker could be started to run the task
	BadTask     Kind = "bad_task"     // parent: the task itself was malformed (a task-file entry, say)
)

// String returns the kind as it travels on the wire.
func (k Kind) String() string { return string(k) }
