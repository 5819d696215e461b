package poold

import (
	"errors"
	"sync/atomic"

	"github.com/poold/poold/internal/kind"
	"github.com/poold/poold/internal/pool"
)

// FailFast makes a Map or IMap stop at its first failure, as errgroup or
// concurrent.futures.wait(FIRST_EXCEPTION) do: the tasks not yet finished
// are cancelled (those not started never start; those that run have their
// context cancelled) and end with kind canceled, an IMap reads no more of
// its input, and the call's error is that first failure. Other verbs refuse
// it.
func FailFast() CallOption {
	return callOptionFunc(func(c *callConfig) { c.failFast = true })
}

// failFast stops a Map or IMap at its first failure: it cancels the call's
// group of chunks once.
type failFast struct {
	on    bool
	fired atomic.Bool
	exec  executor
	group *pool.Group
}

// observe looks at an outcome of the call; a failure of its own (not a
// cancellation, which the stop itself causes) stops the rest.
func (f *failFast) observe(o *pool.Outcome) {
	if f.on && o.Fail != nil && o.Fail.Kind != kind.Canceled && f.fired.CompareAndSwap(false, true) {
		f.exec.CancelGroup(f.group)
	}
}

// firstErr is the error of rs: the first failure in input order that is
// not a cancellation, else the first cancellation, else nil.
func firstErr[R any](rs []Result[R]) error {
	var cancelled error
	for i := range rs {
		switch err := rs[i].Err; {
		case err == nil:
		case errors.Is(err, KindCanceled):
			if cancelled == nil {
				cancelled = err
			}
		default:
			return err
		}
	}
	return cancelled
}
