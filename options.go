package poold

import (
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold/internal/pool"
	"github.com/poold/poold/internal/tasks"
)

// Option configures a [Pool].
type Option func(*pool.Config) error

// WithWorkers sets the number of worker processes (default: the number of
// CPUs).
func WithWorkers(n int) Option {
	return func(c *pool.Config) error {
		if n < 1 {
			return errorf("workers must be at least 1, not %d", n)
		}
		c.Workers = n
		return nil
	}
}

// WithLogger sends the pool's logs, and every worker's, to l. Worker lines
// carry the worker's pid. Default: no logs.
func WithLogger(l hclog.Logger) Option {
	return func(c *pool.Config) error { c.Logger = l; return nil }
}

// WithWorkerCommand runs name with args as the worker program instead of
// re-executing this binary. The program must call [Init] (cmd/worker in this
// module is such a program).
func WithWorkerCommand(name string, args ...string) Option {
	return func(c *pool.Config) error {
		if name == "" {
			return errorf("empty worker command")
		}
		c.Command = append([]string{name}, args...)
		return nil
	}
}

// WithEnv adds "KEY=value" entries to the workers' environment.
func WithEnv(kv ...string) Option {
	return func(c *pool.Config) error { c.Env = append(c.Env, kv...); return nil }
}

// WithTimeout sets the default time limit of each task, counted from when it
// starts in a worker. When it passes, the task's context is cancelled; if the
// task has not returned after the kill grace, its worker is killed and
// replaced, and the task fails with kind timeout.
func WithTimeout(d time.Duration) Option {
	return func(c *pool.Config) error {
		if d < 0 {
			return errorf("timeout must not be negative, not %v", d)
		}
		c.Timeout = d
		return nil
	}
}

// WithRetries sets how many times a task is tried again when its worker is
// lost or it times out. Errors the task returns itself are not retried.
func WithRetries(n int) Option {
	return func(c *pool.Config) error {
		if n < 0 {
			return errorf("retries must not be negative, not %d", n)
		}
		c.Retries = n
		return nil
	}
}

// WithMaxTasksPerWorker retires each worker after n tasks (counted in tasks,
// not chunks) and starts a fresh one; 0 means never.
func WithMaxTasksPerWorker(n int) Option {
	return func(c *pool.Config) error {
		if n < 0 {
			return errorf("max tasks per worker must not be negative, not %d", n)
		}
		c.MaxTasksPerWorker = n
		return nil
	}
}

// WithMaxWorkerMemory kills a worker whose resident memory passes bytes; its
// task fails with kind memory_limit. 0 means no limit.
func WithMaxWorkerMemory(bytes int64) Option {
	return func(c *pool.Config) error {
		if bytes < 0 {
			return errorf("max worker memory must not be negative, not %d", bytes)
		}
		c.MaxWorkerMemory = bytes
		return nil
	}
}

// WithKillGrace sets how long a worker has between SIGTERM and SIGKILL, and a
// timed-out task between the cancellation of its context and the kill of its
// worker (default 500 ms).
func WithKillGrace(d time.Duration) Option {
	return func(c *pool.Config) error {
		if d <= 0 {
			return errorf("kill grace must be positive, not %v", d)
		}
		c.KillGrace = d
		return nil
	}
}

// WithStartTimeout bounds the time from starting a worker to its handshake
// (default 10 s).
func WithStartTimeout(d time.Duration) Option {
	return func(c *pool.Config) error {
		if d <= 0 {
			return errorf("start timeout must be positive, not %v", d)
		}
		c.StartTimeout = d
		return nil
	}
}

// WithMaxFrameSize caps the size of one frame on a worker pipe, in both
// directions (default 64 MiB). A larger argument fails its task with kind
// encode; a larger result, with kind result_too_large.
func WithMaxFrameSize(n int) Option {
	return func(c *pool.Config) error {
		if n < 1024 {
			return errorf("max frame size must be at least 1024 bytes, not %d", n)
		}
		c.MaxFrame = n
		return nil
	}
}

// WithInitializer runs the task name with args once in each worker, before
// its first task. A worker whose initializer fails counts as a failed start.
func WithInitializer(name string, args any) Option {
	return func(c *pool.Config) error {
		raw, err := encodeArgs(args)
		if err != nil {
			return err
		}
		c.Initializer, c.InitializerArgs = name, []byte(raw)
		return nil
	}
}

// CallOption configures one call: Apply, Map, IMap and their kin.
type CallOption func(*callConfig)

type callConfig struct {
	timeout   time.Duration
	retries   int
	chunk     int
	chunkSet  bool // false: the call's default
	window    int
	onSuccess any // func(Result[R]), checked against R at the call
	onError   func(error)
}

// Timeout sets this call's per-task time limit (see [WithTimeout]).
func Timeout(d time.Duration) CallOption { return func(c *callConfig) { c.timeout = d } }

// Retries sets how many times this call's tasks are retried when their
// worker is lost or they time out; negative means none, whatever the pool's
// default.
func Retries(n int) CallOption {
	return func(c *callConfig) {
		c.retries = n
		if n == 0 {
			c.retries = -1
		}
	}
}

// ChunkSize sets how many tasks of a Map or IMap travel to a worker in one
// frame. Map defaults to ceil(len / (4 × workers)), IMap to 1; below 1 is an
// error (ErrChunkSize).
func ChunkSize(n int) CallOption {
	return func(c *callConfig) { c.chunk, c.chunkSet = n, true }
}

// Window bounds how many tasks of an IMap are in flight (and buffered for
// ordering) at once; the input is read no faster. Default: 4 × workers ×
// chunk size.
func Window(n int) CallOption { return func(c *callConfig) { c.window = n } }

// OnSuccess calls fn with each successful result of an async call, before
// the result's Get returns. Callbacks run one at a time on a pool goroutine;
// keep them short. R must be the call's result type (Raw for the untyped
// methods), else the call fails.
func OnSuccess[R any](fn func(Result[R])) CallOption {
	return func(c *callConfig) { c.onSuccess = fn }
}

// OnError calls fn with the error of each failed task of an async call, before
// the result's Get returns. Exactly one of OnSuccess and OnError fires per
// task.
func OnError(fn func(error)) CallOption { return func(c *callConfig) { c.onError = fn } }

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
