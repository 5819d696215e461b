package poold

import (
	"context"
	"fmt"
	"time"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/kind"
	"github.com/poold/poold/internal/pool"
	"github.com/poold/poold/internal/tasks"
)

// call is what every verb shares: its options, resolved once against the
// pool's defaults, the decoding of results, and the callbacks.
type call[R any] struct {
	settler[R]
	cfg     callConfig
	timeout time.Duration     // every task's, resolved
	retries int               // every task's, resolved
	retryOn []pool.Kind       // every task's, resolved
	onMap   func([]Result[R]) // OnMapSuccess
}

// settler is what a call's outcomes need once its tasks are submitted:
// whose they are, how their values decode, and the per-task callbacks. An
// AsyncResult keeps only this of its call, 48 bytes rather than the call's
// 272: a pool's throughput of single tasks is bounded by the fresh memory
// each queued one costs (BenchmarkApplyAsyncPipelined: 897 → 641 B a task).
type settler[R any] struct {
	p         *Pool
	name      string
	decode    func(Raw, *R) error
	onSuccess func(Result[R])
	onError   func(error)
}

// verb is what a call is, for the options that only some verbs take.
type verb string

const (
	verbApply verb = "Apply" // Apply, ApplyAsync
	verbMap   verb = "Map"   // Map, MapAsync
	verbIMap  verb = "IMap"  // IMap, IMapUnordered, and their Err forms
)

func newCall[R any](p *Pool, v verb, name string, opts []CallOption, decode func(Raw, *R) error) (*call[R], error) {
	c := new(call[R])
	return c, c.init(p, v, name, opts, decode)
}

// typed is the callback fn that option opt set (an any, for its type names
// the call's R) as an F, the callback type of a call whose results are
// Result[R]: nil if fn is nil, an error if fn is of another type.
func typed[F, R any](opt string, fn any) (F, error) {
	f, ok := fn.(F)
	if fn != nil && !ok {
		return f, errorf("%s callback is a %T; this call's results are %T", opt, fn, Result[R]{})
	}
	return f, nil
}

// init applies opts and resolves what a task gets: this is the one place
// where a call's defaults are decided.
func (c *call[R]) init(p *Pool, v verb, name string, opts []CallOption, decode func(Raw, *R) error) error {
	c.p, c.name, c.decode = p, name, decode
	if len(opts) > 0 {
		// Options are interfaces: what they are handed escapes. A copy,
		// so that c itself may stay on its caller's stack (applyAsync's
		// does: its AsyncResult keeps only c.settler).
		cfg := new(callConfig)
		for _, o := range opts {
			o.applyCall(cfg)
		}
		c.cfg = *cfg
	}
	var err error
	if c.onSuccess, err = typed[func(Result[R]), R]("OnSuccess", c.cfg.onSuccess); err != nil {
		return err
	}
	c.onError = c.cfg.onError
	if v == verbApply && c.cfg.failFast {
		return errorf("FailFast is an option of Map and IMap, not of %s", v)
	}
	if v != verbMap && (c.cfg.onMapSuccess != nil || c.cfg.onMapError != nil) {
		return errorf("OnMapSuccess and OnMapError are callbacks of a whole Map or MapAsync, not of %s", v)
	}
	if c.onMap, err = typed[func([]Result[R]), R]("OnMapSuccess", c.cfg.onMapSuccess); err != nil {
		return err
	}
	if c.cfg.chunkSet && c.cfg.chunk < 1 {
		return fmt.Errorf("%w, not %d", ErrChunkSize, c.cfg.chunk)
	}
	if c.cfg.windowSet && c.cfg.window < 1 {
		return fmt.Errorf("%w, not %d", ErrWindow, c.cfg.window)
	}
	c.timeout, c.retries = p.timeout, p.retries
	if c.cfg.timeoutSet {
		if c.cfg.timeout < 0 {
			return errorf("timeout must not be negative, not %v", c.cfg.timeout)
		}
		c.timeout = c.cfg.timeout
	}
	if c.cfg.retriesSet {
		c.retries = c.cfg.retries
	}
	c.retryOn = p.retryOn
	if c.cfg.retryOnSet {
		if c.cfg.retryOnErr != nil {
			return c.cfg.retryOnErr
		}
		c.retryOn = poolKinds(c.cfg.retryOn)
	}
	return nil
}

// fill makes t a task of this call: calls calls whose arguments are args.
func (c *call[R]) fill(t *pool.Task, args []byte, calls int) {
	t.Func, t.Args, t.Calls, t.Timeout, t.Retries, t.RetryOn = c.name, args, calls, c.timeout, c.retries, c.retryOn
	t.AtMostOnce = c.cfg.atMostOnce
	t.Name = c.cfg.traceName
}

func (s *settler[R]) callbacks() bool { return s.onSuccess != nil || s.onError != nil }

// settle stores the outcome of one call in *dst, runs the callback, then
// calls done.
func (c *call[R]) settle(o *pool.Outcome, index int, dst *Result[R], done func()) {
	setResult(dst, o, c.name, index, c.decode)
	if !c.callbacks() {
		done()
		return
	}
	c.p.cb.run(func() {
		c.fire(dst)
		done()
	})
}

// fire runs the callback that r's outcome asks for. If it panics, r.Err
// becomes the *CallbackError, which fire returns.
func (s *settler[R]) fire(r *Result[R]) *CallbackError {
	var cbErr *CallbackError
	if r.Err == nil && s.onSuccess != nil {
		cbErr = s.p.guard(s.name, "OnSuccess", nil, func() { s.onSuccess(*r) })
	} else if r.Err != nil && s.onError != nil {
		cbErr = s.p.guard(s.name, "OnError", r.Err, func() { s.onError(r.Err) })
	}
	if cbErr != nil {
		r.Err = cbErr
	}
	return cbErr
}

// submit hands t to the executor.
func (c *call[R]) submit(t *pool.Task) error { return poolErr(c.p.p.Submit(t), c.name) }

// encodeFailure is the outcome of a call whose argument did not encode.
func encodeFailure(err error) *pool.Outcome {
	return &pool.Outcome{Fail: &pool.Failure{Kind: kind.Encode, Message: "encoding the arguments: " + err.Error()}, CPU: -1}
}

// appendArg appends the msgpack encoding of a to buf; a Raw is taken as it
// is, once checked, and nil as the msgpack nil.
func appendArg(buf []byte, a any) ([]byte, error) {
	switch a := a.(type) {
	case Raw:
		if len(a) == 0 {
			return append(buf, 0xc0), nil // nil, as a task of its own would send it
		}
		if err := ipc.Validate(a); err != nil {
			return buf, err
		}
		return append(buf, a...), nil
	case nil:
		return append(buf, 0xc0), nil
	}
	return tasks.AppendMarshal(buf, a)
}

func apply[A, R any](ctx context.Context, p *Pool, name string, args A, opts []CallOption, decode func(Raw, *R) error) (Result[R], error) {
	a, err := applyAsync(p, name, args, opts, decode)
	if err != nil {
		return Result[R]{}, err
	}
	r, err := a.Get(ctx)
	if ctx.Err() != nil && err == ctx.Err() {
		a.Cancel() // nobody can collect this result now
	}
	return r, err
}

func applyAsync[A, R any](p *Pool, name string, args A, opts []CallOption, decode func(Raw, *R) error) (*AsyncResult[R], error) {
	// One allocation for the result, its task, what of its call it needs
	// (c stays on this stack) and small encoded arguments: a pool's
	// throughput of single tasks is bounded by the memory each one costs.
	a := new(AsyncResult[R])
	var c call[R]
	if err := c.init(p, verbApply, name, opts, decode); err != nil {
		return nil, err
	}
	a.s = c.settler
	buf, err := appendArg(a.arg[:0], any(args))
	c.fill(&a.task, buf, 1)
	a.task.Owner, a.task.Done = a, asyncDone[R]
	if err != nil {
		if err := poolErr(p.p.Accepts(name), name); err != nil {
			return nil, err
		}
		a.task.Outcome = *encodeFailure(err)
		asyncDone[R](&a.task)
		return a, nil
	}
	if err := c.submit(&a.task); err != nil {
		return nil, err
	}
	return a, nil
}

// asyncDone is the Done of an AsyncResult's task: a function, not a
// closure, so that it costs no allocation.
func asyncDone[R any](t *pool.Task) {
	a := t.Owner.(*AsyncResult[R])
	a.err = outcomeErr(a.s.name, &t.Outcome) // once, so that every Get returns the same error
	s := &a.s
	if !s.callbacks() {
		a.complete() // the result is decoded when asked for
		return
	}
	s.p.cb.run(func() {
		r := a.result()
		a.cbErr = s.fire(&r)
		a.complete()
	})
}
