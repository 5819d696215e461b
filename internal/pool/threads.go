package pool

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/kind"
	"github.com/poold/poold/internal/tasks"
)

// ThreadsConfig says how a Threads pool runs. The zero value of a field
// means its default.
type ThreadsConfig struct {
	Workers  int             // worker goroutines; default runtime.NumCPU()
	Registry *tasks.Registry // the tasks it runs
	Logger   hclog.Logger

	MaxFrame     int           // the argument cap of a process pool, so that a task is refused alike; default ipc.DefaultMaxFrame
	KillGrace    time.Duration // from a running call's cancellation to its abandonment; default 500 ms
	StartTimeout time.Duration // the initializer's time limit; default 10 s

	// Initializer, if set, runs once in each worker goroutine before its
	// first task; if it fails in a first worker, New fails.
	Initializer     string
	InitializerArgs msgpack.RawMessage

	// Events, as Config.Events: the PID of a worker is this process's,
	// its slot tells the goroutines apart.
	Events func(Event)
}

// Threads is a pool whose workers are goroutines of this process: the
// same contract as Pool for the same Tasks (encoded arguments in, encoded
// results out), without the isolation. What cannot be the same:
//
//   - a task that exits the process, crashes the runtime or corrupts
//     memory takes every task with it;
//   - no goroutine can be killed: a call that ignores its cancelled
//     context past the kill grace (after its time limit, Cancel or
//     Terminate) is abandoned, failing with the kind of its cancellation;
//     its goroutine runs on until the function returns, its result dropped,
//     and a new goroutine takes its slot (Stats.TasksAbandoned counts them);
//   - a task's prints go to this process's standard output, not to its
//     Outcome.
type Threads struct {
	cfg    ThreadsConfig
	pid    int
	base   context.Context // every job's context descends from it
	stop   context.CancelFunc
	exited chan struct{} // closed once the pool has stopped and no worker goroutine is left but abandoned ones
	done   atomic.Int64  // calls reported: Stats.TasksDone
	locked atomic.Int32  // calls holding their OS thread to measure their CPU time
	halted atomic.Bool   // Terminate has begun: no call starts any more (see runCall)

	// mu guards the fields below, the fields of each thread marked so, and
	// the fields of a Task that the process pool's Pool.mu guards.
	mu       sync.Mutex
	work     sync.Cond // signalled when a task is queued; broadcast when the state changes
	state    poolState
	queue    []*Task // pending, oldest first, from qhead on
	qhead    int
	slots    []*thread // by slot: its worker goroutine; nil once it exited
	begun    []bool    // by slot: a worker goroutine started there before
	live     int       // worker goroutines neither exited nor abandoned
	emitting int       // goroutines given up on whose ThreadsConfig.Events are still being told
	stats    Stats     // but TasksDone, which is done
}

// NewThreads starts the worker goroutines; with an initializer, it returns
// once each has run it.
func NewThreads(ctx context.Context, cfg ThreadsConfig) (*Threads, error) {
	if cfg.Workers == 0 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.Workers < 0 {
		return nil, fmt.Errorf("workers must be at least 1, not %d", cfg.Workers)
	}
	if cfg.Registry == nil {
		return nil, fmt.Errorf("threads mode needs the registry of its tasks")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.MaxFrame == 0 {
		cfg.MaxFrame = ipc.DefaultMaxFrame
	}
	if cfg.KillGrace == 0 {
		cfg.KillGrace = 500 * time.Millisecond
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.Initializer != "" {
		if _, ok := cfg.Registry.Lookup(cfg.Initializer); !ok {
			return nil, fmt.Errorf("%w: the initializer %q is not registered", ErrWorkerStart, cfg.Initializer)
		}
	}
	p := &Threads{cfg: cfg, pid: os.Getpid(), exited: make(chan struct{}), slots: make([]*thread, cfg.Workers), begun: make([]bool, cfg.Workers)}
	p.base, p.stop = context.WithCancel(context.Background())
	p.work.L = &p.mu
	inits := make(chan error, cfg.Workers)
	p.mu.Lock()
	for i := range p.slots {
		p.startLocked(i, inits)
	}
	p.mu.Unlock()
	if cfg.Initializer == "" {
		return p, nil
	}
	for range cfg.Workers {
		var err error
		select {
		case err = <-inits:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			p.Terminate()
			return nil, fmt.Errorf("%w: %w", ErrWorkerStart, err)
		}
	}
	return p, nil
}

// startLocked starts the worker goroutine of slot; it reports its
// initializer's outcome on inits, if not nil.
func (p *Threads) startLocked(slot int, inits chan<- error) {
	th := &thread{slot: slot, replaces: p.begun[slot]}
	p.begun[slot] = true
	// No call under way: claimed. Stored here, under Threads.mu, and not by
	// the goroutine: a Terminate that comes before the goroutine first runs
	// would otherwise find the zero word, unclaimed, and claim a call that
	// does not exist (th.task is nil).
	th.run.Store(1)
	th.ctx, th.cancel = context.WithCancel(p.base)
	p.slots[slot] = th
	p.live++
	p.stats.WorkersStarted++
	go p.serve(th, inits)
}

// exitLocked records that th is gone (it exited, or the pool gave up on
// it), and, once it is the last of a stopped pool, that the pool has. Safe
// to repeat.
func (p *Threads) exitLocked(th *thread) {
	if th.gone {
		return
	}
	th.gone = true
	if p.slots[th.slot] == th {
		p.slots[th.slot] = nil
	}
	th.cancel()
	p.live--
	p.maybeExitedLocked()
}

func (p *Threads) maybeExitedLocked() {
	if p.live == 0 && p.emitting == 0 && p.state != running {
		select {
		case <-p.exited:
		default:
			close(p.exited)
		}
	}
}

// Size is the number of worker slots.
func (p *Threads) Size() int { return p.cfg.Workers }

// PIDs returns this process's id for every slot that has a worker
// goroutine, by slot (0 elsewhere).
func (p *Threads) PIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	pids := make([]int, len(p.slots))
	for i, th := range p.slots {
		if th != nil {
			pids[i] = p.pid
		}
	}
	return pids
}

// Closed reports whether Close or Terminate has been called.
func (p *Threads) Closed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state != running
}

// Stats returns the pool's counters.
func (p *Threads) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.TasksDone = int(p.done.Load())
	return s
}

// Accepts returns the error Submit would return for a task of function fn.
func (p *Threads) Accepts(fn string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acceptsLocked(fn)
}

func (p *Threads) acceptsLocked(fn string) error {
	if p.state != running {
		return ErrPoolClosed
	}
	if _, ok := p.cfg.Registry.Lookup(fn); !ok {
		return fmt.Errorf("%w: no task named %q; the registry has %v", ErrUnknownFunc, fn, p.cfg.Registry.Names())
	}
	return nil
}

// Submit queues t, as Pool.Submit does.
func (p *Threads) Submit(t *Task) error {
	if err := t.prepare(); err != nil {
		return err
	}
	p.mu.Lock()
	if err := p.acceptsLocked(t.Func); err != nil {
		p.mu.Unlock()
		return err
	}
	if f := refusedLocked(t, p.cfg.MaxFrame); f != nil {
		p.mu.Unlock()
		t.failAll(f, 0, 0, 0)
		return nil
	}
	p.queue = append(p.queue, t)
	p.work.Signal()
	p.mu.Unlock()
	return nil
}

// Close stops the pool from accepting work; the worker goroutines exit once
// the queue is empty. Safe to repeat.
func (p *Threads) Close() error {
	p.mu.Lock()
	if p.state == running {
		p.state = closing
		p.work.Broadcast()
		p.maybeExitedLocked()
	}
	p.mu.Unlock()
	return nil
}

// Terminate stops the pool now: every queued and running task fails with
// kind terminated, and every running call's context is cancelled. It
// returns once every worker goroutine has exited, or, for those whose call
// does not return within the kill grace, has been abandoned. Safe to
// repeat.
func (p *Threads) Terminate() error {
	var failed []settlement
	p.mu.Lock()
	if p.state != terminated {
		p.state = terminated
		p.halted.Store(true) // before the scan of the slots below: see runCall
		failed = failTasks(p.queue[p.qhead:], kind.Terminated, "pool terminated before the task started")
		p.queue, p.qhead = nil, 0
		for _, th := range p.slots {
			if th == nil {
				continue
			}
			if t, i, ok := th.claimLocked(); ok {
				failed = append(failed, settlement{t, &Failure{Kind: kind.Terminated, Message: "pool terminated while the task ran"}, p.pid, th.slot, i})
			}
		}
		p.stop()
		p.work.Broadcast()
		p.maybeExitedLocked()
	}
	p.mu.Unlock()
	settleAll(failed)
	select {
	case <-p.exited:
		return nil
	case <-time.After(p.cfg.KillGrace):
	}
	// The calls still running ignored their context: give up on them, as a
	// process pool's SIGKILL would.
	p.mu.Lock()
	for _, th := range p.slots {
		if th == nil {
			continue
		}
		if th.task != nil {
			p.stats.TasksAbandoned++
			p.cfg.Logger.Warn("task ignored its cancelled context; abandoned", "func", th.task.Func, "slot", th.slot, "grace", p.cfg.KillGrace)
		}
		p.exitLocked(th)
	}
	p.mu.Unlock()
	<-p.exited
	return nil
}

// Join waits until every worker goroutine has exited (or was abandoned).
// It returns ErrPoolRunning at once unless Close or Terminate was called
// first, and ctx.Err() if ctx ends first.
func (p *Threads) Join(ctx context.Context) error { return join(ctx, p.Closed(), p.exited) }
