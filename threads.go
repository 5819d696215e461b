package poold

import (
	"context"

	"github.com/poold/poold/internal/pool"
)

// WithThreads runs the pool's workers as goroutines of this process, for
// the tasks of reg, instead of as worker processes: Python's
// multiprocessing.dummy beside multiprocessing. Every verb, option and
// result field is the same, and arguments and results are encoded as they
// are for a process, so a task cannot alias its caller's memory and
// behaves alike in both modes. Init is not needed.
//
// What isolation gave cannot be the same:
//
//   - a panic fails its task with kind panic, as in a worker process, but a
//     task that calls os.Exit, segfaults or hits a fatal runtime error
//     (a concurrent map write, running out of memory) ends this process;
//   - no goroutine can be killed: when a task's time limit passes (or it is
//     cancelled, or the pool terminated) its context is cancelled, and if
//     it has not returned after the kill grace it is abandoned: it fails
//     with kind timeout (canceled, terminated), its goroutine runs on
//     until the function returns, its result dropped, a new goroutine
//     takes its slot, and Stats.TasksAbandoned counts it;
//   - what a task prints goes to this process's standard output, not to
//     Result.Output;
//   - Result.PID is this process's, Result.Worker the goroutine's slot;
//     Result.CPU is measured on the goroutine's OS thread (see the README).
//
// WithMaxWorkerMemory, WithMaxTasksPerWorker (both non-zero), WithWorkerCommand
// and WithEnv have no meaning for goroutines, and New refuses them.
// WithInitializer runs its task once in each worker goroutine.
func WithThreads(reg *Registry) Option {
	return optionFunc(func(c *config) error {
		if reg == nil {
			return errorf("WithThreads needs the registry of the tasks to run, not nil")
		}
		c.threads = reg
		return nil
	})
}

// refuseForThreads is the error of an option that cannot hold in threads
// mode, or nil.
func (c *config) refuseForThreads() error {
	for _, refused := range []struct {
		set  bool
		name string
		why  string
	}{
		{c.maxWorkerMemory > 0, "WithMaxWorkerMemory", "the workers are goroutines sharing this process's memory, which no limit can split"},
		{c.maxTasksPerWorker > 0, "WithMaxTasksPerWorker", "a fresh goroutine would free nothing a task left behind"},
		{c.command != nil, "WithWorkerCommand", "no worker program is started"},
		{c.env != nil, "WithEnv", "no worker process is started; the goroutines share this process's environment"},
		{c.hosts != nil, "WithSSH", "goroutines run in this process only"},
	} {
		if refused.set {
			return errorf("%s cannot hold in threads mode: %s (leave out WithThreads for worker processes)", refused.name, refused.why)
		}
	}
	return nil
}

// newThreads is the executor of a pool in threads mode.
func newThreads(ctx context.Context, c *config) (executor, error) {
	p, err := pool.NewThreads(ctx, pool.ThreadsConfig{
		Workers: c.workers, Registry: c.threads.r, Logger: c.logger,
		MaxFrame: c.maxFrame, KillGrace: c.killGrace, StartTimeout: c.startTimeout,
		Initializer: c.initializer, InitializerArgs: []byte(c.initializerArgs),
		Events: c.events,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}
