package poold

import "github.com/poold/poold/internal/pool"

// Errors. Pool-level failures are returned by pool methods; every failed
// task's error is a *[TaskError], which matches the sentinel of its kind with
// errors.Is (errors.Is(err, poold.ErrWorkerLost)) and, when a worker process
// ended, unwraps to a *[WorkerExitError] with its PID, exit code or signal,
// and last stderr lines.
var (
	ErrPoolClosed  = pool.ErrPoolClosed  // work submitted after Close or Terminate
	ErrPoolRunning = pool.ErrPoolRunning // Join before Close or Terminate
	ErrWorkerStart = pool.ErrWorkerStart // workers could not be started
	ErrNotReady    = errNotReady         // Successful on a result that is not ready
	ErrChunkSize   = errChunkSize        // a chunk size below 1

	ErrTaskFailed     = pool.ErrTaskFailed     // kind "error": the task returned an error
	ErrPanic          = pool.ErrPanic          // kind "panic": the task panicked (the worker survives)
	ErrBadArgs        = pool.ErrBadArgs        // kind "bad_args": arguments of the wrong shape
	ErrUnknownFunc    = pool.ErrUnknownFunc    // kind "unknown_func": no task of that name
	ErrEncode         = pool.ErrEncode         // kind "encode": arguments or result could not be encoded
	ErrResultTooLarge = pool.ErrResultTooLarge // kind "result_too_large"
	ErrCanceled       = pool.ErrCanceled       // kind "canceled"
	ErrWorkerLost     = pool.ErrWorkerLost     // kind "worker_lost": the worker died running the task
	ErrTimeout        = pool.ErrTimeout        // kind "timeout"
	ErrMemoryLimit    = pool.ErrMemoryLimit    // kind "memory_limit"
	ErrProtocol       = pool.ErrProtocol       // kind "protocol": the worker broke the wire protocol
	ErrTerminated     = pool.ErrTerminated     // kind "terminated": the pool was terminated first
	ErrStart          = pool.ErrStart          // kind "start": no worker could start to run the task
)

type (
	// TaskError is the error of every failed task.
	TaskError = pool.TaskError
	// WorkerExitError says how a worker process ended.
	WorkerExitError = pool.WorkerExitError
	// Kind names a kind of task failure ("panic", "worker_lost", ...).
	Kind = pool.Kind
)

// Task failure kinds.
const (
	KindError          = pool.KindError
	KindPanic          = pool.KindPanic
	KindBadArgs        = pool.KindBadArgs
	KindUnknownFunc    = pool.KindUnknownFunc
	KindEncode         = pool.KindEncode
	KindResultTooLarge = pool.KindResultTooLarge
	KindCanceled       = pool.KindCanceled
	KindWorkerLost     = pool.KindWorkerLost
	KindTimeout        = pool.KindTimeout
	KindMemoryLimit    = pool.KindMemoryLimit
	KindProtocol       = pool.KindProtocol
	KindTerminated     = pool.KindTerminated
	KindStart          = pool.KindStart
	KindBadTask        = pool.KindBadTask
)
