package poold

import (
	"errors"
	"fmt"
	"strings"

	"github.com/poold/poold/internal/pool"
)

// The internal pool's values become the root's here, and only here.

// taskError is e as the root reports it.
func taskError(e *pool.TaskError) *TaskError {
	te := &TaskError{
		Kind: Kind(e.Kind), Func: e.Func, Message: e.Message, Stack: e.Stack,
		PID: e.PID, Attempts: e.Attempts,
	}
	var exit *pool.WorkerExitError
	if errors.As(e.Cause, &exit) {
		te.Exit = &WorkerExitError{
			PID: exit.PID, ExitCode: exit.ExitCode, Signal: exit.Signal, CoreDump: exit.CoreDump,
			Reason: exit.Reason, Stderr: exit.Stderr,
		}
	}
	return te
}

// outcomeErr is the error of an outcome as the root reports it: nil, or a
// *TaskError (one the pool made is converted; one the root made stays).
func outcomeErr(err error) error {
	if e, ok := err.(*pool.TaskError); ok {
		return taskError(e)
	}
	return err
}

// sentinels pairs the internal pool's sentinel errors with the root's.
var sentinels = [...]struct{ internal, root error }{
	{pool.ErrPoolClosed, ErrPoolClosed},
	{pool.ErrPoolRunning, ErrPoolRunning},
	{pool.ErrWorkerStart, ErrWorkerStart},
}

// poolErr is an error of the internal pool's New, Submit, Close, Terminate
// or Join as the root returns it, prefixed "poold: ": an internal sentinel
// becomes the root's (the error then matches both), and an unknown task
// name becomes a *TaskError of kind unknown_func about task fn.
func poolErr(err error, fn string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pool.ErrUnknownFunc) {
		msg := strings.TrimPrefix(err.Error(), pool.ErrUnknownFunc.Error()+": ")
		return &TaskError{Kind: KindUnknownFunc, Func: fn, Message: msg}
	}
	for _, s := range sentinels {
		if err == s.internal {
			return s.root
		}
		if errors.Is(err, s.internal) {
			return &wrapped{root: s.root, err: err}
		}
	}
	return fmt.Errorf("poold: %w", err)
}

// wrapped is an internal error that stands for a root sentinel.
type wrapped struct{ root, err error }

func (w *wrapped) Error() string   { return "poold: " + w.err.Error() }
func (w *wrapped) Unwrap() []error { return []error{w.root, w.err} }

// stats is s as the root reports it.
func stats(s pool.Stats) Stats {
	return Stats{
		WorkersStarted: s.WorkersStarted, WorkersLost: s.WorkersLost,
		StartFailures: s.StartFailures, TasksDone: s.TasksDone,
	}
}
