package pool

import (
	"fmt"
	"runtime"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/poold/poold/internal/ipc"
)

// Config says how a pool runs. The zero value of every field means its
// default; withDefaults resolves them all, in this one place. What a task
// gets by default (time limit, retries) is not here: the caller resolves it
// into each Task.
type Config struct {
	Workers  int      // worker processes; default runtime.NumCPU(); with Hosts, theirs are counted instead
	Hosts    []Host   // where the workers run, and how many on each; default: Workers on this machine
	Launcher Launcher // how workers are started; default: exec of Command
	Command  []string // the worker program and its arguments; default: this binary, re-executed
	Env      []string // extra environment for the workers, "KEY=value"
	Logger   hclog.Logger

	MaxFrame     int           // frame-size cap in both directions; default ipc.DefaultMaxFrame
	MaxOutput    int           // bytes of a task's printed output kept per task; default 4 MiB
	StartTimeout time.Duration // from exec to a worker's hello; default 10 s
	StartRetries int           // consecutive failed starts before the pool gives up; default 3
	KillGrace    time.Duration // between SIGTERM and SIGKILL, and a timed-out task's cancel and its kill; default 500 ms
	MaxWindow    int           // tasks in flight per worker once tasks prove short; default 16

	MaxTasksPerWorker int   // retire a worker after this many tasks; 0: never
	MaxWorkerMemory   int64 // kill a worker whose RSS passes this many bytes; 0: no limit
	MemoryInterval    time.Duration

	// Initializer, if set, runs once in each worker before its first task; a
	// worker whose initializer fails counts as a failed start.
	Initializer     string
	InitializerArgs msgpack.RawMessage

	// Events, if set, is told of every worker's start and end and of every
	// attempt of every call (see [Event]).
	Events func(Event)
}

func (c Config) withDefaults() (Config, error) {
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.Workers < 0 {
		return c, fmt.Errorf("workers must be at least 1, not %d", c.Workers)
	}
	for name, v := range map[string]int64{
		"max tasks per worker": int64(c.MaxTasksPerWorker), "max worker memory": c.MaxWorkerMemory,
		"max frame":  int64(c.MaxFrame),
		"max output": int64(c.MaxOutput), "max window": int64(c.MaxWindow), "kill grace": int64(c.KillGrace),
		"start timeout": int64(c.StartTimeout), "start retries": int64(c.StartRetries),
	} {
		if v < 0 {
			return c, fmt.Errorf("%s must not be negative, not %d", name, v)
		}
	}
	if err := checkMemoryLimit(c.MaxWorkerMemory); err != nil {
		return c, err
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = ipc.DefaultMaxFrame
	}
	if c.MaxOutput == 0 {
		c.MaxOutput = 4 << 20
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 10 * time.Second
	}
	if c.StartRetries == 0 {
		c.StartRetries = 3
	}
	if c.KillGrace == 0 {
		c.KillGrace = 500 * time.Millisecond
	}
	if c.MaxWindow == 0 {
		c.MaxWindow = 16
	}
	if c.MemoryInterval == 0 {
		c.MemoryInterval = 50 * time.Millisecond
	}
	return c, nil
}
