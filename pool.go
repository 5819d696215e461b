package poold

import (
	"context"
	"fmt"
	"iter"
	"sync/atomic"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/pool"
	"github.com/poold/poold/internal/tasks"
)

func errorf(format string, a ...any) error { return fmt.Errorf("poold: "+format, a...) }

// Pool is a set of worker processes running tasks. Its methods are safe for
// concurrent use.
type Pool struct {
	p  *pool.Pool
	cb callbacks
}

// New starts the workers and returns once each has completed its handshake.
// If workers keep failing to start, New returns an error wrapping
// ErrWorkerStart that says how the last one failed.
func New(ctx context.Context, opts ...Option) (*Pool, error) {
	var cfg config
	for _, o := range opts {
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	p, err := pool.New(ctx, cfg.pool())
	if err != nil {
		return nil, poolErr(err, "")
	}
	return &Pool{p: p}, nil
}

// Size is the number of worker processes the pool keeps.
func (p *Pool) Size() int { return p.p.Size() }

// PIDs returns the process ids of the ready workers, by slot (0 for a slot
// whose worker is being replaced).
func (p *Pool) PIDs() []int { return p.p.PIDs() }

// Stats are counters over a pool's life.
type Stats struct {
	WorkersStarted int // worker processes that completed the handshake
	WorkersLost    int // worker processes that died with work in flight, or were killed
	StartFailures  int // worker starts that failed: no process, or none that completed the handshake
	TasksDone      int // tasks whose worker answered, with a result or an error
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats { return stats(p.p.Stats()) }

// Close stops the pool from accepting work; what was submitted still runs,
// and each worker exits when nothing is left for it. Close does not wait
// (Join does). Idempotent.
func (p *Pool) Close() error { return poolErr(p.p.Close(), "") }

// Terminate stops the pool now: every task not yet finished fails with kind
// terminated, and the workers are sent SIGTERM, then SIGKILL after the kill
// grace. It returns once every worker has exited. Idempotent.
func (p *Pool) Terminate() error { return poolErr(p.p.Terminate(), "") }

// Join waits until every worker has exited, or ctx ends. On a pool that is
// still running (neither Close nor Terminate was called) it returns
// ErrPoolRunning at once. If ctx ends first, Join returns ctx.Err().
func (p *Pool) Join(ctx context.Context) error {
	err := p.p.Join(ctx)
	if err != nil && err == ctx.Err() {
		return err
	}
	return poolErr(err, "")
}

// Apply runs the task name with args on a worker and waits for its result.
// args is encoded as msgpack ([Raw] is sent as it is). The error is the
// task's, or ErrPoolClosed, or ctx.Err() if ctx ends first (the task goes on).
func (p *Pool) Apply(ctx context.Context, name string, args any, opts ...CallOption) (Result[Raw], error) {
	return apply(ctx, p, name, args, opts, decodeRaw)
}

// ApplyAsync submits the task name with args and returns at once.
func (p *Pool) ApplyAsync(name string, args any, opts ...CallOption) (*AsyncResult[Raw], error) {
	return applyAsync(p, name, args, opts, decodeRaw)
}

// Map runs name once for each of args and returns the results in input
// order, with the first failure in input order as the error. Tasks travel to
// workers in chunks (see [ChunkSize]).
func (p *Pool) Map(ctx context.Context, name string, args []any, opts ...CallOption) ([]Result[Raw], error) {
	return mapSync(ctx, p, name, args, opts, decodeRaw)
}

// MapAsync is Map without the wait.
func (p *Pool) MapAsync(name string, args []any, opts ...CallOption) (*MapResult[Raw], error) {
	return mapAsync(p, name, args, opts, decodeRaw)
}

// IMap runs name once for each value of args and yields the results in
// input order. It reads args lazily, keeping at most a window of tasks in
// flight or waiting to be yielded (see [Window]). The error of each pair is
// the task's; a pool or context failure is yielded once, last.
func (p *Pool) IMap(ctx context.Context, name string, args iter.Seq[any], opts ...CallOption) iter.Seq2[Result[Raw], error] {
	return imap(ctx, p, name, args, opts, decodeRaw, true)
}

// IMapUnordered is IMap yielding results as they finish.
func (p *Pool) IMapUnordered(ctx context.Context, name string, args iter.Seq[any], opts ...CallOption) iter.Seq2[Result[Raw], error] {
	return imap(ctx, p, name, args, opts, decodeRaw, false)
}

// Func is a typed handle on a registered task, returned by [Register]. Its
// methods are the pool's, with typed arguments and results.
type Func[A, R any] struct{ name string }

// Name is the name the task was registered under.
func (f Func[A, R]) Name() string { return f.name }

// Apply runs the task on one of p's workers and waits for its result.
func (f Func[A, R]) Apply(ctx context.Context, p *Pool, args A, opts ...CallOption) (Result[R], error) {
	return apply(ctx, p, f.name, args, opts, decodeTyped[R])
}

// ApplyAsync submits the task and returns at once.
func (f Func[A, R]) ApplyAsync(p *Pool, args A, opts ...CallOption) (*AsyncResult[R], error) {
	return applyAsync(p, f.name, args, opts, decodeTyped[R])
}

// Map runs the task once for each of args; see [Pool.Map].
func (f Func[A, R]) Map(ctx context.Context, p *Pool, args []A, opts ...CallOption) ([]Result[R], error) {
	return mapSync(ctx, p, f.name, args, opts, decodeTyped[R])
}

// MapAsync is Map without the wait.
func (f Func[A, R]) MapAsync(p *Pool, args []A, opts ...CallOption) (*MapResult[R], error) {
	return mapAsync(p, f.name, args, opts, decodeTyped[R])
}

// IMap runs the task once for each value of args, lazily; see [Pool.IMap].
func (f Func[A, R]) IMap(ctx context.Context, p *Pool, args iter.Seq[A], opts ...CallOption) iter.Seq2[Result[R], error] {
	return imap(ctx, p, f.name, args, opts, decodeTyped[R], true)
}

// IMapUnordered is IMap yielding results as they finish.
func (f Func[A, R]) IMapUnordered(ctx context.Context, p *Pool, args iter.Seq[A], opts ...CallOption) iter.Seq2[Result[R], error] {
	return imap(ctx, p, f.name, args, opts, decodeTyped[R], false)
}

// call is what every verb shares: options, result decoding and callbacks.
type call[R any] struct {
	p         *Pool
	name      string
	cfg       callConfig
	decode    func(Raw, *R) error
	onSuccess func(Result[R])
}

func newCall[R any](p *Pool, name string, opts []CallOption, decode func(Raw, *R) error) (*call[R], error) {
	c := new(call[R])
	return c, c.init(p, name, opts, decode)
}

func (c *call[R]) init(p *Pool, name string, opts []CallOption, decode func(Raw, *R) error) error {
	c.p, c.name, c.decode = p, name, decode
	for _, o := range opts {
		o.applyCall(&c.cfg)
	}
	if c.cfg.onSuccess != nil {
		fn, ok := c.cfg.onSuccess.(func(Result[R]))
		if !ok {
			return errorf("OnSuccess callback is a %T; this call's results are %T", c.cfg.onSuccess, Result[R]{})
		}
		c.onSuccess = fn
	}
	if c.cfg.chunkSet && c.cfg.chunk < 1 {
		return fmt.Errorf("%w, not %d", ErrChunkSize, c.cfg.chunk)
	}
	return nil
}

// task builds the internal task for one argument. An argument that cannot be
// encoded gives a task already failed, which settle reports like any other.
func (c *call[R]) task(args any) (t *pool.Task, ok bool) {
	t = new(pool.Task)
	return t, c.fill(t, args, nil)
}

// fill sets up t for one argument, as task does, encoding it into buf's
// array when it fits.
func (c *call[R]) fill(t *pool.Task, args any, buf []byte) (ok bool) {
	t.Func, t.Timeout, t.Retries = c.name, c.cfg.timeout, c.cfg.retries
	var err error
	switch a := args.(type) {
	case Raw:
		t.Args = []byte(a)
	case nil:
	default:
		t.Args, err = tasks.AppendMarshal(buf, a)
	}
	if err != nil {
		t.Args = nil
		t.Err = &TaskError{Kind: KindEncode, Func: c.name, Message: "encoding the arguments: " + err.Error()}
		return false
	}
	return true
}

// settle stores the outcome of one call in *dst, runs the callback, then
// calls done.
func (c *call[R]) settle(o *pool.Outcome, index int, dst *Result[R], done func()) {
	setResult(dst, o, c.name, index, c.decode)
	if c.onSuccess == nil && c.cfg.onError == nil {
		done()
		return
	}
	c.p.cb.run(func() {
		if dst.Err == nil && c.onSuccess != nil {
			c.onSuccess(*dst)
		} else if dst.Err != nil && c.cfg.onError != nil {
			c.cfg.onError(dst.Err)
		}
		done()
	})
}

// submit hands the encodable tasks to the pool, then settles the others.
func (c *call[R]) submit(ts []*pool.Task, bad []*pool.Task, chunk int) error {
	if err := c.p.p.Submit(c.name, ts, chunk); err != nil {
		return poolErr(err, c.name)
	}
	for _, t := range bad {
		t.Done(t)
	}
	return nil
}

func apply[A, R any](ctx context.Context, p *Pool, name string, args A, opts []CallOption, decode func(Raw, *R) error) (Result[R], error) {
	a, err := applyAsync(p, name, args, opts, decode)
	if err != nil {
		return Result[R]{}, err
	}
	return a.Get(ctx)
}

func applyAsync[A, R any](p *Pool, name string, args A, opts []CallOption, decode func(Raw, *R) error) (*AsyncResult[R], error) {
	// One allocation for the result, the task, the call and small encoded
	// arguments: a pool's throughput of single tasks is bounded by the
	// memory each one costs.
	a := new(AsyncResult[R])
	if err := a.c.init(p, name, opts, decode); err != nil {
		return nil, err
	}
	t := &a.task
	ok := a.c.fill(t, args, a.arg[:0])
	t.Owner, t.Done = a, asyncDone[R]
	var err error
	if ok {
		err = a.c.submit([]*pool.Task{t}, nil, 1)
	} else {
		err = a.c.submit(nil, []*pool.Task{t}, 1)
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// asyncDone is the Done of an AsyncResult's task: a function, not a
// closure, so that it costs no allocation.
func asyncDone[R any](t *pool.Task) {
	t.Err = outcomeErr(t.Err) // once, so that every Get returns the same error
	a := t.Owner.(*AsyncResult[R])
	c := &a.c
	if c.onSuccess == nil && c.cfg.onError == nil {
		a.complete() // the result is decoded when asked for
		return
	}
	c.p.cb.run(func() {
		r := a.result()
		if r.Err == nil && c.onSuccess != nil {
			c.onSuccess(r)
		} else if r.Err != nil && c.cfg.onError != nil {
			c.cfg.onError(r.Err)
		}
		a.complete()
	})
}

func mapSync[A, R any](ctx context.Context, p *Pool, name string, args []A, opts []CallOption, decode func(Raw, *R) error) ([]Result[R], error) {
	m, err := mapAsync(p, name, args, opts, decode)
	if err != nil {
		return nil, err
	}
	return m.Get(ctx)
}

// DefaultChunkSize is Map's chunk size for n tasks on workers workers:
// ceil(n / (4 × workers)), as in CPython; 0 for no tasks.
func DefaultChunkSize(n, workers int) int {
	if n == 0 {
		return 0
	}
	return (n + 4*workers - 1) / (4 * workers)
}

func mapAsync[A, R any](p *Pool, name string, args []A, opts []CallOption, decode func(Raw, *R) error) (*MapResult[R], error) {
	c, err := newCall(p, name, opts, decode)
	if err != nil {
		return nil, err
	}
	m := &MapResult[R]{done: make(chan struct{}), results: make([]Result[R], len(args))}
	if len(args) == 0 {
		if p.p.Closed() {
			return nil, ErrPoolClosed
		}
		close(m.done)
		return m, nil
	}
	chunk := c.cfg.chunk
	if !c.cfg.chunkSet {
		chunk = DefaultChunkSize(len(args), p.Size())
	}
	var left atomic.Int64
	left.Store(int64(len(args)))
	finishOne := func() {
		if left.Add(-1) == 0 {
			close(m.done)
		}
	}
	// Each chunk is one task holding its arguments back to back, all of
	// them in one buffer: a Map of a million items is a few allocations
	// besides its results. Tag is the index of a chunk's first item.
	each := func(t *pool.Task, i int, o *pool.Outcome) {
		c.settle(o, t.Tag+i, &m.results[t.Tag+i], finishOne)
	}
	single := func(t *pool.Task) {
		if t.Calls <= 1 { // a chunk of one is a plain task: its outcome is its own
			each(t, 0, &t.Outcome)
		}
	}
	if c.onSuccess == nil && c.cfg.onError == nil {
		// No callbacks: a result is final once stored, and a chunk counts
		// down once rather than once per call, which two readers would
		// contend for.
		each = func(t *pool.Task, i int, o *pool.Outcome) {
			setResult(&m.results[t.Tag+i], o, name, t.Tag+i, c.decode)
		}
		single = func(t *pool.Task) {
			if t.Calls <= 1 {
				setResult(&m.results[t.Tag], &t.Outcome, name, t.Tag, c.decode)
			}
			if left.Add(-int64(max(t.Calls, 1))) == 0 {
				close(m.done)
			}
		}
	}
	// Each chunk is submitted as soon as it is encoded, so that the workers
	// start while the rest is encoded. An argument that does not encode
	// fails alone: its chunk ends before it, the next begins after it.
	var bad []int
	var badErr []error
	submitted := false
	var buf []byte
	sizeHint := 0
	first, n := 0, 0 // the chunk being built: items [first, first+n)
	send := func() error {
		if n == 0 {
			return nil
		}
		t := &pool.Task{
			Func: name, Args: buf, Calls: n, Tag: first,
			Timeout: c.cfg.timeout, Retries: c.cfg.retries, Each: each, Done: single,
		}
		if err := c.p.p.Submit(name, []*pool.Task{t}, 1); err != nil {
			return err
		}
		submitted = true
		sizeHint = len(buf) + len(buf)/8 // the next chunk's buffer, made when needed
		buf = nil
		first, n = first+n, 0
		return nil
	}
	// fail ends a Map whose submission failed: with nothing submitted yet,
	// the Map fails; otherwise the items not submitted fail (the pool
	// stopped meanwhile) and the rest of the Map runs on.
	fail := func(err error) (*MapResult[R], error) {
		if !submitted {
			return nil, poolErr(err, name)
		}
		for i := first; i < len(args); i++ {
			o := pool.Outcome{Err: &TaskError{Kind: KindTerminated, Func: name, Message: "the pool stopped before this part of the Map was submitted: " + err.Error()}}
			c.settle(&o, i, &m.results[i], finishOne)
		}
		for k, i := range bad {
			o := pool.Outcome{Err: &TaskError{Kind: KindEncode, Func: name, Message: "encoding the arguments: " + badErr[k].Error()}}
			c.settle(&o, i, &m.results[i], finishOne)
		}
		return m, nil
	}
	for i, a := range args {
		if n == chunk {
			if err := send(); err != nil {
				return fail(err)
			}
		}
		if buf == nil && sizeHint > 0 {
			buf = make([]byte, 0, sizeHint)
		}
		mark := len(buf)
		var err error
		if raw, ok := any(a).(Raw); ok {
			if len(raw) == 0 {
				raw = Raw{0xc0} // nil, as a task of its own would send it
			}
			if err = ipc.Validate(raw); err == nil {
				buf = append(buf, raw...)
			}
		} else {
			buf, err = tasks.AppendMarshal(buf, a)
		}
		if err != nil {
			buf = buf[:mark]
			if err := send(); err != nil {
				return fail(err)
			}
			first++
			bad, badErr = append(bad, i), append(badErr, err)
			continue
		}
		n++
	}
	if err := send(); err != nil {
		return fail(err)
	}
	for k, i := range bad {
		o := pool.Outcome{Err: &TaskError{Kind: KindEncode, Func: name, Message: "encoding the arguments: " + badErr[k].Error()}}
		c.settle(&o, i, &m.results[i], finishOne)
	}
	return m, nil
}

func imap[A, R any](ctx context.Context, p *Pool, name string, args iter.Seq[A], opts []CallOption, decode func(Raw, *R) error, ordered bool) iter.Seq2[Result[R], error] {
	return func(yield func(Result[R], error) bool) {
		c, err := newCall(p, name, opts, decode)
		if err != nil {
			yield(Result[R]{}, err)
			return
		}
		chunk := max(c.cfg.chunk, 1)
		window := c.cfg.window
		if window <= 0 {
			window = 4 * p.Size() * chunk
		}
		window = max(window, chunk)

		type done struct {
			index int
			res   Result[R]
		}
		// Every task in flight has a place here, so Done never blocks, even
		// if the consumer stops early and never reads again.
		finished := make(chan done, window)
		parked := make([]*Result[R], window) // ordered: results waiting for their turn, by index % window
		var batch, bad []*pool.Task
		submitted, yielded := 0, 0

		flush := func() error {
			err := c.submit(batch, bad, chunk)
			batch, bad = batch[:0], bad[:0]
			return err
		}
		// receive waits for one result and yields what it can; false: stop.
		receive := func() bool {
			var d done
			select {
			case d = <-finished:
			case <-ctx.Done():
				yield(Result[R]{}, ctx.Err())
				return false
			}
			if !ordered {
				yielded++
				return yield(d.res, d.res.Err)
			}
			parked[d.index%window] = &d.res
			for {
				r := parked[yielded%window]
				if r == nil {
					return true
				}
				parked[yielded%window] = nil
				yielded++
				if !yield(*r, r.Err) {
					return false
				}
			}
		}

		for a := range args {
			index := submitted
			t, ok := c.task(a)
			t.Done = func(t *pool.Task) {
				d := done{index: index}
				c.settle(&t.Outcome, index, &d.res, func() { finished <- d })
			}
			if ok {
				batch = append(batch, t)
			} else {
				bad = append(bad, t)
			}
			submitted++
			if len(batch)+len(bad) == chunk {
				if err := flush(); err != nil {
					yield(Result[R]{}, err)
					return
				}
			}
			for submitted-yielded >= window {
				if !receive() {
					return
				}
			}
		}
		if len(batch)+len(bad) > 0 {
			if err := flush(); err != nil {
				yield(Result[R]{}, err)
				return
			}
		}
		for yielded < submitted {
			if !receive() {
				return
			}
		}
	}
}
