package poold

import (
	"context"
	"fmt"
	"iter"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold/internal/pool"
	"github.com/poold/poold/internal/trace"
	"github.com/poold/poold/internal/worker"
)

func errorf(format string, a ...any) error { return fmt.Errorf("poold: "+format, a...) }

// Pool is a set of workers running tasks: worker processes, or goroutines
// of this process with [WithThreads]. Its methods are safe for concurrent
// use.
type Pool struct {
	p       executor
	timeout time.Duration // a task's time limit unless its call says otherwise
	retries int           // a task's retries unless its call says otherwise
	retryOn []pool.Kind   // the kinds a task is retried for unless its call says otherwise
	cb      callbacks
	log     hclog.Logger  // the pool's (WithLogger); nil: none
	trace   *trace.Writer // WithTrace's; nil: none
}

// executor is what runs a Pool's tasks: today worker processes
// (*pool.Pool); the root's verbs know nothing else of it, so that another
// executor (goroutines in this process, say) can stand behind the same
// API. Its tests use one that runs the tasks in the calling process.
type executor interface {
	Submit(t *pool.Task) error
	Accepts(fn string) error // the error Submit would return for a task of fn
	Cancel(t *pool.Task)     // stops what of t has not finished (see pool.Pool.Cancel)
	CancelGroup(g *pool.Group)
	Size() int
	PIDs() []int
	Stats() pool.Stats
	Closed() bool
	Close() error
	Terminate() error
	Join(ctx context.Context) error
}

// New starts the workers and returns once each has completed its handshake.
// If workers keep failing to start, New returns an error wrapping
// ErrWorkerStart that says how the last one failed.
func New(ctx context.Context, opts ...Option) (*Pool, error) {
	if worker.IsWorker() {
		// Say so on stderr too, where the parent reads it: the parent then
		// gives up at once instead of starting copies that cannot serve.
		fmt.Fprintf(os.Stderr, "%s%v\n", worker.FatalPrefix, ErrInWorker)
		return nil, ErrInWorker
	}
	var cfg config
	for _, o := range opts {
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	var p executor
	var err error
	var tw *trace.Writer
	if cfg.trace != nil {
		tw = trace.New(cfg.trace, cfg.threads != nil)
		cfg.events = tw.Event
	}
	if cfg.threads != nil {
		if err := cfg.refuseForThreads(); err != nil {
			return nil, err
		}
		p, err = newThreads(ctx, &cfg)
	} else {
		pcfg := cfg.pool()
		if len(cfg.hosts) > 0 {
			pcfg.Hosts = cfg.poolHosts(ctx, pcfg)
		}
		p, err = pool.New(ctx, pcfg)
	}
	if err != nil {
		if tw != nil {
			tw.Close()
		}
		return nil, poolErr(err, "")
	}
	retryOn := cfg.retryOn
	if retryOn == nil {
		retryOn = defaultRetryOn()
	}
	return &Pool{p: p, timeout: cfg.timeout, retries: cfg.retries, retryOn: poolKinds(retryOn), log: cfg.logger, trace: tw}, nil
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
	// TasksAbandoned counts, in threads mode, tasks given up on while they
	// ran: they ignored their context past the kill grace after a timeout or
	// a cancellation, and no goroutine can be killed, so they run on and
	// their results are dropped. Always 0 for processes.
	TasksAbandoned int
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
func (p *Pool) Terminate() error {
	err := p.p.Terminate()
	p.endTrace()
	return poolErr(err, "")
}

// endTrace finishes the trace of a pool that has exited.
func (p *Pool) endTrace() {
	if p.trace != nil {
		p.trace.Close()
	}
}

// Join waits until every worker has exited, or ctx ends. On a pool that is
// still running (neither Close nor Terminate was called) it returns
// ErrPoolRunning at once. If ctx ends first, Join returns ctx.Err().
func (p *Pool) Join(ctx context.Context) error {
	err := p.p.Join(ctx)
	if err != nil && err == ctx.Err() {
		return err
	}
	if err == nil {
		p.endTrace()
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
// the task's; a pool or context failure is yielded once, last. On a pool
// that is closed or terminated, IMap yields ErrPoolClosed once and reads
// nothing of args (Map, too, returns it, even for no input).
func (p *Pool) IMap(ctx context.Context, name string, args iter.Seq[any], opts ...CallOption) iter.Seq2[Result[Raw], error] {
	return imap(ctx, p, name, noErrors(args), opts, decodeRaw, true)
}

// IMapUnordered is IMap yielding results as they finish.
func (p *Pool) IMapUnordered(ctx context.Context, name string, args iter.Seq[any], opts ...CallOption) iter.Seq2[Result[Raw], error] {
	return imap(ctx, p, name, noErrors(args), opts, decodeRaw, false)
}

// IMapErr is IMap over an input that can fail midway, as reading lines
// from a file can: a pair of args with a non-nil error ends the input (its
// value is not run, and args is read no further). The results of what was
// submitted before it are yielded, then that error, once, last, wrapped
// (errors.Is finds it).
func (p *Pool) IMapErr(ctx context.Context, name string, args iter.Seq2[any, error], opts ...CallOption) iter.Seq2[Result[Raw], error] {
	return imap(ctx, p, name, args, opts, decodeRaw, true)
}

// IMapUnorderedErr is IMapErr yielding results as they finish.
func (p *Pool) IMapUnorderedErr(ctx context.Context, name string, args iter.Seq2[any, error], opts ...CallOption) iter.Seq2[Result[Raw], error] {
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
	return imap(ctx, p, f.name, noErrors(args), opts, decodeTyped[R], true)
}

// IMapUnordered is IMap yielding results as they finish.
func (f Func[A, R]) IMapUnordered(ctx context.Context, p *Pool, args iter.Seq[A], opts ...CallOption) iter.Seq2[Result[R], error] {
	return imap(ctx, p, f.name, noErrors(args), opts, decodeTyped[R], false)
}

// IMapErr is IMap over an input that can fail midway; see [Pool.IMapErr].
func (f Func[A, R]) IMapErr(ctx context.Context, p *Pool, args iter.Seq2[A, error], opts ...CallOption) iter.Seq2[Result[R], error] {
	return imap(ctx, p, f.name, args, opts, decodeTyped[R], true)
}

// IMapUnorderedErr is IMapErr yielding results as they finish.
func (f Func[A, R]) IMapUnorderedErr(ctx context.Context, p *Pool, args iter.Seq2[A, error], opts ...CallOption) iter.Seq2[Result[R], error] {
	return imap(ctx, p, f.name, args, opts, decodeTyped[R], false)
}
