package poold

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poold/poold/internal/pool"
	"github.com/poold/poold/internal/tasks"
)

// Raw is a value as it travels: one msgpack-encoded value. The untyped pool
// methods take and return it; Decode turns it into a Go value.
type Raw []byte

// Decode decodes r into v, as msgpack.Unmarshal does (json struct tags are
// honoured).
func (r Raw) Decode(v any) error { return tasks.Unmarshal(r, v) }

// Result is the outcome of one task.
type Result[R any] struct {
	Value    R     // the task's result, when Err is nil
	Err      error // nil, or a *TaskError
	Index    int   // the task's position in the input of Map and IMap; 0 for Apply
	Func     string
	Host     string // where the worker ran: "" for this machine
	PID      int    // the worker process that ran the task; 0 if none did
	Worker   int    // the worker's slot, 0 ≤ Worker < workers
	Attempts int
	Start    time.Time // in the worker
	End      time.Time
	// CPU is the task's CPU time, user and system, measured in its worker
	// around the call; negative when it was not measured (see the README's
	// "processes or threads?").
	CPU time.Duration
	// MaxRSS is the worker process's peak resident memory, in bytes, when
	// the task ended: the most it held up to then (read after tasks of 1 ms
	// or more; a shorter one reports the last figure read). 0: unknown, and
	// always in threads mode, where the workers share this process.
	MaxRSS int64
	Output []byte // what the task wrote to stdout (its stderr goes to the pool's logger)
}

// Duration is how long the task ran in its worker.
func (r Result[R]) Duration() time.Duration { return r.End.Sub(r.Start) }

// AsyncResult is a task in flight, like Python's AsyncResult.
type AsyncResult[R any] struct {
	task  pool.Task      // its outcome is the result, decoded when asked for
	err   error          // the outcome's error, made once (set before ready)
	cbErr *CallbackError // its callback's panic, the result's error if not nil (set before ready)
	s     settler[R]     // what of its call its outcome needs
	arg   [32]byte       // holds the encoded arguments when they fit
	ready atomic.Bool
	mu    sync.Mutex
	ch    chan struct{} // made for the first waiter that comes before the result
}

// closedChan is what Done returns once the result is ready.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// complete publishes the result and wakes any waiter.
func (a *AsyncResult[R]) complete() {
	a.mu.Lock()
	a.ready.Store(true)
	ch := a.ch
	a.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// Get waits for the task and returns its result, with the task's error
// also as the second value. If ctx ends first, Get returns ctx.Err(); the
// task goes on, and a later Get can still collect it.
func (a *AsyncResult[R]) Get(ctx context.Context) (Result[R], error) {
	if err := a.Wait(ctx); err != nil {
		return Result[R]{}, err
	}
	r := a.result()
	return r, r.Err
}

// result decodes the task's outcome. It is not kept: 100,000 tasks in
// flight would hold 100,000 decoded copies beside their outcomes.
func (a *AsyncResult[R]) result() Result[R] {
	r := resultOf(&a.task.Outcome, a.err, a.s.name, 0, a.s.decode)
	if a.cbErr != nil {
		r.Err = a.cbErr
	}
	return r
}

// Wait waits until the task is done or ctx ends.
func (a *AsyncResult[R]) Wait(ctx context.Context) error {
	if a.ready.Load() {
		return nil
	}
	select {
	case <-a.Done():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the result is ready (after its callback has run).
func (a *AsyncResult[R]) Done() <-chan struct{} {
	if a.ready.Load() {
		return closedChan
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ready.Load() {
		return closedChan
	}
	if a.ch == nil {
		a.ch = make(chan struct{}) // only a waiter pays for a channel
	}
	return a.ch
}

// Cancel stops the task unless it has finished: if it is still queued it
// never starts; if it runs, its context is cancelled, and its worker is
// killed if it has not returned after the kill grace. It then ends with a
// *TaskError of kind canceled (a task that finishes first keeps its
// result). Get, Wait and the callbacks see the outcome as usual. Safe to
// repeat.
func (a *AsyncResult[R]) Cancel() { a.s.p.p.Cancel(&a.task) }

// Ready reports whether the task is done.
func (a *AsyncResult[R]) Ready() bool { return a.ready.Load() }

// Successful reports whether the task succeeded; ErrNotReady if it is not
// done yet.
func (a *AsyncResult[R]) Successful() (bool, error) {
	if !a.Ready() {
		return false, ErrNotReady
	}
	return a.result().Err == nil, nil
}

// MapResult is a Map in flight.
type MapResult[R any] struct {
	done    chan struct{}
	results []Result[R]
	exec    executor    // nil for a Map of nothing
	group   *pool.Group // its chunks'

	cbErr *CallbackError // its whole-call callback's panic, its error if not nil (set before done)
}

// Get waits for every task and returns the results in input order, with the
// first failure in input order as the error (or, if OnMapSuccess or
// OnMapError panicked, a *CallbackError wrapping it). If ctx ends first it
// returns ctx.Err(); the tasks go on.
func (m *MapResult[R]) Get(ctx context.Context) ([]Result[R], error) {
	select {
	case <-m.done:
		return m.results, m.err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// err is the error of a Map that is done.
func (m *MapResult[R]) err() error {
	if m.cbErr != nil {
		return m.cbErr
	}
	return firstErr(m.results)
}

// Wait waits until every task is done or ctx ends.
func (m *MapResult[R]) Wait(ctx context.Context) error {
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Cancel stops the tasks of the Map that have not finished, as
// AsyncResult.Cancel does each: they end with kind canceled. Safe to
// repeat.
func (m *MapResult[R]) Cancel() {
	if m.exec != nil {
		m.exec.CancelGroup(m.group)
	}
}

// Done is closed when every result is ready.
func (m *MapResult[R]) Done() <-chan struct{} { return m.done }

// Ready reports whether every task is done.
func (m *MapResult[R]) Ready() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// Successful reports whether every task succeeded; ErrNotReady if some are
// not done yet.
func (m *MapResult[R]) Successful() (bool, error) {
	if !m.Ready() {
		return false, ErrNotReady
	}
	return m.err() == nil, nil
}

// setResult stores the outcome of one call of function fn in *dst, decoding
// its value in place (a Result on the stack would escape through decode).
// The outcome's slices may be the pool's buffers: what is kept is copied.
func setResult[R any](dst *Result[R], o *pool.Outcome, fn string, index int, decode func(Raw, *R) error) {
	*dst = Result[R]{
		Err: outcomeErr(fn, o), Index: index, Func: fn, Host: o.Host, PID: o.PID, Worker: o.Worker,
		Attempts: o.Attempts, Start: unixTime(o.Start), End: unixTime(o.End), CPU: o.CPU, MaxRSS: o.MaxRSS,
	}
	if len(o.Output) > 0 {
		dst.Output = bytes.Clone(o.Output)
	}
	if dst.Err == nil {
		if err := decode(Raw(o.Value), &dst.Value); err != nil {
			dst.Err = &TaskError{Kind: KindEncode, Func: fn, PID: o.PID, Attempts: o.Attempts,
				Message: "decoding the result: " + err.Error()}
		}
	}
}

// resultOf is setResult for an outcome the caller owns (its slices are
// not copied) and whose error err it made already, returned by value.
func resultOf[R any](o *pool.Outcome, err error, fn string, index int, decode func(Raw, *R) error) Result[R] {
	r := Result[R]{
		Err: err, Index: index, Func: fn, Host: o.Host, PID: o.PID, Worker: o.Worker,
		Attempts: o.Attempts, Start: unixTime(o.Start), End: unixTime(o.End), CPU: o.CPU, MaxRSS: o.MaxRSS, Output: o.Output,
	}
	if r.Err == nil {
		v := new(R) // decode is a func value: whatever it gets escapes
		if err := decode(Raw(o.Value), v); err != nil {
			r.Err = &TaskError{Kind: KindEncode, Func: fn, PID: o.PID, Attempts: o.Attempts,
				Message: "decoding the result: " + err.Error()}
		} else {
			r.Value = *v
		}
	}
	return r
}

// unixTime turns the pool's unix nanoseconds into a time; 0 (unknown) stays
// the zero time.
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func decodeRaw(raw Raw, v *Raw) error { *v = bytes.Clone(raw); return nil }

func decodeTyped[R any](raw Raw, v *R) error { return tasks.Unmarshal(raw, v) }
