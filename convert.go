package poold

import (
	"errors"
	"fmt"
	"strings"

	"github.com/poold/poold/internal/pool"
)

// The internal pool's values become the root's here, and only here.

// taskError is the failure of outcome o of a call of fn, as the root
// reports it.
func taskError(fn string, o *pool.Outcome) *TaskError {
	f := o.Fail
	te := &TaskError{Kind: Kind(f.Kind), Func: fn, Message: f.Message, Stack: f.Stack, Type: f.Type, Detail: Raw(f.Detail), PID: o.PID, Attempts: o.Attempts}
	if x := f.Exit; x != nil {
		te.Exit = &WorkerExitError{
			PID: x.PID, ExitCode: x.ExitCode, Signal: x.Signal, CoreDump: x.CoreDump,
			Reason: x.Reason, Stderr: x.Stderr, Host: x.Host, Launcher: x.Launcher, LauncherPID: x.LauncherPID,
		}
	}
	return te
}

// outcomeErr is the error of outcome o of a call of fn: nil, or a
// *TaskError.
func outcomeErr(fn string, o *pool.Outcome) error {
	if o.Fail == nil {
		return nil
	}
	return taskError(fn, o)
}

// exit is e as the internal pool has it, whose text is the one text of a
// worker's end.
func (e *WorkerExitError) exit() *pool.Exit {
	return &pool.Exit{PID: e.PID, ExitCode: e.ExitCode, Signal: e.Signal, CoreDump: e.CoreDump, Reason: e.Reason, Stderr: e.Stderr,
		Host: e.Host, Launcher: e.Launcher, LauncherPID: e.LauncherPID}
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

// poolKinds is ks as the internal pool has them.
func poolKinds(ks []Kind) []pool.Kind {
	out := make([]pool.Kind, len(ks))
	for i, k := range ks {
		out[i] = pool.Kind(k)
	}
	return out
}

// stats is s as the root reports it.
func stats(s pool.Stats) Stats {
	return Stats{
		WorkersStarted: s.WorkersStarted, WorkersLost: s.WorkersLost,
		StartFailures: s.StartFailures, TasksDone: s.TasksDone,
		TasksAbandoned: s.TasksAbandoned,
	}
}
