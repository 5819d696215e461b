package poold

import (
	"io"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold/internal/pool"
	"github.com/poold/poold/internal/remote"
	"github.com/poold/poold/internal/tasks"
)

// Option configures a [Pool]; the With functions make them.
type Option interface {
	apply(*config) error
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// config is what the options set; New turns it into the internal pool's.
type config struct {
	workers           int
	logger            hclog.Logger
	command           []string
	env               []string
	timeout           time.Duration
	retries           int
	retryOn           []Kind // nil: defaultRetryOn
	maxTasksPerWorker int
	maxWorkerMemory   int64
	killGrace         time.Duration
	startTimeout      time.Duration
	maxFrame          int
	initializer       string
	initializerArgs   Raw
	threads           *Registry // WithThreads: goroutines running its tasks
	trace             io.Writer // WithTrace
	events            func(pool.Event)
	hosts             []remote.Host // WithSSH; nil: this machine only
	ssh               []string      // WithSSH: the ssh program and its options
	remoteWorker      []string      // WithSSH: the worker's command line on the hosts
}

func (c *config) pool() pool.Config {
	return pool.Config{
		Workers: c.workers, Command: c.command, Env: c.env, Logger: c.logger,
		MaxFrame: c.maxFrame, StartTimeout: c.startTimeout, KillGrace: c.killGrace,
		MaxTasksPerWorker: c.maxTasksPerWorker, MaxWorkerMemory: c.maxWorkerMemory,
		Initializer: c.initializer, InitializerArgs: []byte(c.initializerArgs),
		Events: c.events,
	}
}

// atLeast is the option that sets the field of a config that field returns
// to v, unless v is below least: then New fails with "poold: <name> must
// <rule>, not <v>".
func atLeast[T int | int64 | time.Duration](name, rule string, least, v T, field func(*config) *T) Option {
	return optionFunc(func(c *config) error {
		if v < least {
			return errorf("%s must %s, not %v", name, rule, v)
		}
		*field(c) = v
		return nil
	})
}

// WithWorkers sets the number of worker processes (default: the number of
// CPUs).
func WithWorkers(n int) Option {
	return atLeast("workers", "be at least 1", 1, n, func(c *config) *int { return &c.workers })
}

// WithTrace writes a trace of the pool's run to w as it runs, in the
// Chrome trace-event format that Perfetto (ui.perfetto.dev) and
// chrome://tracing open: one complete event for each attempt of each task,
// on the track of the worker process that ran it (the slot's in threads
// mode), and instant events for each worker's start, end and replacement.
// A task's event is named by its [TraceName], or its function's name (a
// Map's or IMap's items add their index: "square[3]"). The trace is
// flushed at least every 100 ms and holds nothing per task in memory. Its
// closing bracket is written once the pool has exited, when [Pool.Join]
// or [Pool.Terminate] returns; a process that ends before leaves it out,
// which both viewers accept. The pool does not close w.
func WithTrace(w io.Writer) Option {
	return optionFunc(func(c *config) error {
		if w == nil {
			return errorf("WithTrace needs a writer, not nil")
		}
		c.trace = w
		return nil
	})
}

// WithLogger sends the pool's logs, and every worker's, to l. Worker lines
// carry the worker's pid. Default: no logs.
func WithLogger(l hclog.Logger) Option {
	return optionFunc(func(c *config) error { c.logger = l; return nil })
}

// WithWorkerCommand runs name with args as the worker program instead of
// re-executing this binary. The program must call [Init] (cmd/worker in this
// module is such a program).
func WithWorkerCommand(name string, args ...string) Option {
	return optionFunc(func(c *config) error {
		if name == "" {
			return errorf("empty worker command")
		}
		c.command = append([]string{name}, args...)
		return nil
	})
}

// WithEnv adds "KEY=value" entries to the workers' environment.
func WithEnv(kv ...string) Option {
	return optionFunc(func(c *config) error { c.env = append(c.env, kv...); return nil })
}

// WithTimeout sets the default time limit of each task, counted from when it
// starts in a worker. When it passes, the task's context is cancelled; if the
// task has not returned after the kill grace, its worker is killed and
// replaced, and the task fails with kind timeout.
func WithTimeout(d time.Duration) Option {
	return atLeast("timeout", "not be negative", 0, d, func(c *config) *time.Duration { return &c.timeout })
}

// WithRetries sets how many times a task is tried again when its worker is
// lost or it times out. Errors the task returns itself are not retried.
func WithRetries(n int) Option {
	return atLeast("retries", "not be negative", 0, n, func(c *config) *int { return &c.retries })
}

// WithRetryOn sets the kinds of failure that a task is retried for, up to
// its retries (default: KindWorkerLost and KindTimeout). A kind a task
// reports itself (KindError, or a kind of the task's own such as
// "exit_status") is retried only when named here.
func WithRetryOn(kinds ...Kind) Option {
	return optionFunc(func(c *config) error {
		k, err := retryKinds(kinds)
		c.retryOn = k
		return err
	})
}

// defaultRetryOn is what a task is retried for unless WithRetryOn or
// RetryOn says otherwise: the failures that are the worker's, not the
// task's.
func defaultRetryOn() []Kind { return []Kind{KindWorkerLost, KindTimeout} }

// retryKinds checks a list of kinds to retry.
func retryKinds(kinds []Kind) ([]Kind, error) {
	for _, k := range kinds {
		switch k {
		case "":
			return nil, errorf("an empty kind to retry")
		case KindTerminated, KindStart, KindBadTask, KindUnknownFunc:
			return nil, errorf("kind %s cannot be retried: it is the pool's or the caller's, not the task's", k)
		}
	}
	return slices.Clone(kinds), nil
}

// WithMaxTasksPerWorker retires each worker after n tasks (counted in tasks,
// not chunks) and starts a fresh one; 0 means never.
func WithMaxTasksPerWorker(n int) Option {
	return atLeast("max tasks per worker", "not be negative", 0, n, func(c *config) *int { return &c.maxTasksPerWorker })
}

// WithMaxWorkerMemory kills a worker whose resident memory passes bytes; its
// task fails with kind memory_limit. 0 means no limit.
func WithMaxWorkerMemory(bytes int64) Option {
	return atLeast("max worker memory", "not be negative", 0, bytes, func(c *config) *int64 { return &c.maxWorkerMemory })
}

// WithKillGrace sets how long a worker has between SIGTERM and SIGKILL, and a
// timed-out task between the cancellation of its context and the kill of its
// worker (default 500 ms).
func WithKillGrace(d time.Duration) Option {
	return atLeast("kill grace", "be positive", 1, d, func(c *config) *time.Duration { return &c.killGrace })
}

// WithStartTimeout bounds the time from starting a worker to its handshake
// (default 10 s).
func WithStartTimeout(d time.Duration) Option {
	return atLeast("start timeout", "be positive", 1, d, func(c *config) *time.Duration { return &c.startTimeout })
}

// WithMaxFrameSize caps the size of one frame on a worker pipe, in both
// directions (default 64 MiB). A larger argument fails its task with kind
// encode; a larger result, with kind result_too_large.
func WithMaxFrameSize(n int) Option {
	return atLeast("max frame size", "be at least 1024 bytes", 1024, n, func(c *config) *int { return &c.maxFrame })
}

// WithInitializer runs the task name with args once in each worker, before
// its first task. A worker whose initializer fails counts as a failed start.
func WithInitializer(name string, args any) Option {
	return optionFunc(func(c *config) error {
		raw, err := encodeArgs(args)
		if err != nil {
			return err
		}
		c.initializer, c.initializerArgs = name, raw
		return nil
	})
}

// CallOption configures one call: Apply, Map, IMap and their kin.
type CallOption interface {
	applyCall(*callConfig)
}

type callOptionFunc func(*callConfig)

func (f callOptionFunc) applyCall(c *callConfig) { f(c) }

type callConfig struct {
	timeout      time.Duration
	timeoutSet   bool // false: the pool's default
	retries      int
	retriesSet   bool // false: the pool's default
	retryOn      []Kind
	retryOnSet   bool // false: the pool's default
	retryOnErr   error
	atMostOnce   bool
	failFast     bool
	chunk        int
	chunkSet     bool // false: the call's default
	window       int
	windowSet    bool // false: the call's default
	onSuccess    any  // func(Result[R]), checked against R at the call
	onError      func(error)
	onMapSuccess any // func([]Result[R]), checked against R at the call
	onMapError   func(error)
	traceName    string
}

// TraceName names this call's tasks in the pool's trace (see [WithTrace])
// instead of their function: an Apply's task is name, a Map's or IMap's
// items name[0], name[1], ....
func TraceName(name string) CallOption {
	return callOptionFunc(func(c *callConfig) { c.traceName = name })
}

// Timeout sets this call's per-task time limit (see [WithTimeout]); 0 means
// none, whatever the pool's default; negative is an error.
func Timeout(d time.Duration) CallOption {
	return callOptionFunc(func(c *callConfig) { c.timeout, c.timeoutSet = d, true })
}

// Retries sets how many times this call's tasks are retried when their
// worker is lost or they time out; 0 or less means none, whatever the
// pool's default.
func Retries(n int) CallOption {
	return callOptionFunc(func(c *callConfig) { c.retries, c.retriesSet = max(n, 0), true })
}

// RetryOn sets the kinds of failure this call's tasks are retried for (see
// [WithRetryOn]); with no kinds, none is.
func RetryOn(kinds ...Kind) CallOption {
	return callOptionFunc(func(c *callConfig) {
		c.retryOn, c.retryOnErr = retryKinds(kinds)
		c.retryOnSet = true
	})
}

// AtMostOnce makes this call's tasks run at most once each, for tasks with
// side effects: they are never retried (whatever Retries says), a worker
// reports each call of a chunk before it starts the next (a write per
// call: slower for trivial calls), and a call whose worker dies under it
// fails with kind worker_lost instead of running again. By default a call
// whose result was lost with its worker runs again, and its Attempts say
// so.
func AtMostOnce() CallOption {
	return callOptionFunc(func(c *callConfig) { c.atMostOnce = true })
}

// ChunkSize sets how many tasks of a Map or IMap travel to a worker in one
// frame. Map defaults to ceil(len / (4 × workers)), IMap to 1; below 1 is an
// error (ErrChunkSize).
func ChunkSize(n int) CallOption {
	return callOptionFunc(func(c *callConfig) { c.chunk, c.chunkSet = n, true })
}

// Window bounds how many tasks of an IMap are in flight (and buffered for
// ordering) at once; the input is read no faster. Default: 4 × workers ×
// chunk size; a window smaller than the chunk size is taken as the chunk
// size; below 1 is an error (ErrWindow).
func Window(n int) CallOption {
	return callOptionFunc(func(c *callConfig) { c.window, c.windowSet = n, true })
}

// OnSuccess calls fn with each successful result of an async call, before
// the result's Get returns. Callbacks run one at a time on a pool goroutine;
// keep them short. R must be the call's result type (Raw for the untyped
// methods), else the call fails.
func OnSuccess[R any](fn func(Result[R])) CallOption {
	return callOptionFunc(func(c *callConfig) { c.onSuccess = fn })
}

// OnError calls fn with the error of each failed task of an async call, before
// the result's Get returns. Exactly one of OnSuccess and OnError fires per
// task. A callback that panics ends neither the process nor the other
// callbacks: the panic is logged on the pool's logger, and its result's
// error becomes a *[CallbackError] (see [ErrCallbackPanic]).
func OnError(fn func(error)) CallOption {
	return callOptionFunc(func(c *callConfig) { c.onError = fn })
}

// OnMapSuccess calls fn once with the results of a Map or MapAsync whose
// every task succeeded, in input order (the slice that Get returns; empty
// for no input), before Get returns: it is the callback of Python's
// map_async. It runs on the pool goroutine that runs the per-task
// callbacks, after them. R must be the call's result type (Raw for the
// untyped methods), else the call fails; so does a call that is not a Map.
//
// The names say what the callbacks are called for: OnSuccess and OnError
// for each task, OnMapSuccess and OnMapError for the whole Map; a call may
// have both pairs. Exactly one of OnMapSuccess and OnMapError fires per Map
// that was submitted. One that panics is recovered and logged as a
// per-task callback is; Get then returns the results with a
// *[CallbackError] wrapping the Map's error, if it had one.
func OnMapSuccess[R any](fn func([]Result[R])) CallOption {
	return callOptionFunc(func(c *callConfig) { c.onMapSuccess = fn })
}

// OnMapError calls fn once with the error of a Map or MapAsync some of
// whose tasks failed, before Get returns: the first in input order, which
// Get returns (Python's map_async error_callback gets the first to
// happen). See [OnMapSuccess].
func OnMapError(fn func(error)) CallOption {
	return callOptionFunc(func(c *callConfig) { c.onMapError = fn })
}

func encodeArgs(v any) (Raw, error) {
	switch v := v.(type) {
	case Raw:
		return v, nil
	case nil:
		return nil, nil
	}
	raw, err := tasks.Marshal(v)
	return Raw(raw), err
}
