package pool

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold/internal/kind"
)

// poolState is where a pool is in its life.
//
//	running ──► closing ──► terminated
//	   └────────────────────────▲
type poolState uint8

const (
	// running: accepts work. Next: closing (Close), terminated (Terminate).
	running poolState = iota
	// closing: accepts no work; what was submitted still runs, then the
	// workers exit. Next: terminated (Terminate).
	closing
	// terminated: everything unfinished has failed; the workers are being
	// killed. Final.
	terminated
)

// Pool is a set of worker processes and a queue of tasks.
type Pool struct {
	cfg      Config
	log      hclog.Logger
	hostname string        // this machine's, to tell a worker's own from another's
	exited   chan struct{} // closed once the pool has stopped and every worker is reaped

	// mu guards everything below, and each worker's fields marked so. Lock
	// order: see worker.
	mu       sync.Mutex
	cond     *sync.Cond // broadcast when a worker becomes ready or a start gives up
	state    poolState
	queue    []*Task // pending, oldest first, from qhead on
	qhead    int
	slots    []slot    // by slot number
	groups   []*group  // the slots' groups, by index; slots of a group are consecutive
	workers  []*worker // every worker not yet reaped, retiring ones included
	emitting int       // reaped workers whose Config.Events are still being told: the pool has not exited
	nextJob  uint64
	startErr error // the last failed start, for reports
	dirty    []*worker
	stats    Stats
	funcs    map[string]bool          // the task names the workers announced
	names    []string                 // the same, in the workers' order, for messages
	perTask  map[string]time.Duration // average time per call of each function, measured in the workers
}

// slot is one of the Config.Workers places a worker runs in.
type slot struct {
	w        *worker // its current worker; nil while a new one starts (or none will)
	starting bool    // a start is under way, or waiting out its back-off
	lastPID  int     // its last worker that said hello, for Event.Replaces
	group    int     // its index in Pool.groups
}

// Stats are counters over a pool's life.
type Stats struct {
	WorkersStarted int // processes that completed the handshake
	WorkersLost    int // processes that died with work in flight, or were killed
	StartFailures  int
	TasksDone      int // calls whose result came back from a worker
	// TasksAbandoned: threads mode only, calls given up on while they ran
	// (a time limit or cancellation they ignored past the kill grace);
	// their goroutines run on until they return.
	TasksAbandoned int
}

// New starts cfg.Workers workers and returns once every one of them has
// completed its handshake. If workers keep failing to start, New stops the
// ones that did and returns an error wrapping ErrWorkerStart.
func New(ctx context.Context, cfg Config) (*Pool, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	groups, err := groupsOf(cfg)
	if err != nil {
		return nil, err
	}
	p := &Pool{
		cfg:      cfg,
		log:      cfg.Logger,
		hostname: hostname(),
		groups:   groups,
		exited:   make(chan struct{}),
		perTask:  make(map[string]time.Duration),
	}
	for gi, g := range groups {
		for range g.Workers {
			p.slots = append(p.slots, slot{group: gi})
		}
	}
	p.cfg.Workers = len(p.slots)
	p.cond = sync.NewCond(&p.mu)
	if cfg.MaxWorkerMemory > 0 {
		go p.watchMemory()
	}
	p.mu.Lock()
	for i := range p.slots {
		p.startLocked(i, 0)
	}
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	for {
		if ctx.Err() != nil || p.gaveUpLocked() {
			err := p.startErr
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			p.mu.Unlock()
			p.Terminate()
			return nil, fmt.Errorf("%w: %w", ErrWorkerStart, err)
		}
		if p.readyLocked() >= p.liveSlotsLocked() {
			break // a host out of rotation has no slots to wait for
		}
		p.cond.Wait()
	}
	ready := p.readyLocked()
	p.mu.Unlock()
	p.log.Debug("pool started", "workers", ready)
	return p, nil
}

// Size is the number of worker slots.
func (p *Pool) Size() int { return p.cfg.Workers }

// PIDs returns the process ids of the workers now ready, by slot (0 where a
// slot has no ready worker).
func (p *Pool) PIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	pids := make([]int, len(p.slots))
	for i, s := range p.slots {
		if s.w != nil && s.w.shookHandsLocked() {
			pids[i] = s.w.pid
		}
	}
	return pids
}

// Closed reports whether Close or Terminate has been called.
func (p *Pool) Closed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state != running
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Close stops the pool from accepting work. Queued and running tasks still
// run; each worker exits once nothing is left for it. Close does not wait:
// Join does. Safe to repeat, and a no-op after Terminate.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.state == running {
		p.state = closing
		p.drainLocked()
		p.maybeExitedLocked()
	}
	p.unlockAndFlush()
	return nil
}

// Terminate stops the pool now: every queued and running task fails with
// kind terminated, and the workers get SIGTERM, then SIGKILL after the kill
// grace. It returns once every worker has been reaped. Safe to repeat.
func (p *Pool) Terminate() error {
	var failed []settlement
	p.mu.Lock()
	if p.state != terminated {
		p.state = terminated
		failed = p.failQueueLocked(kind.Terminated, "pool terminated before the task started")
		for _, w := range p.workers {
			for i, t := range w.inflight {
				if i == 0 { // the head job was running
					failed = append(failed, settlement{t, &Failure{Kind: kind.Terminated, Message: "pool terminated while the task ran", Host: w.host}, w.pid, w.slot, t.reported})
				} else {
					failed = append(failed, settlement{t, &Failure{Kind: kind.Terminated, Message: "pool terminated before the task started"}, 0, 0, 0})
				}
			}
			w.inflight = nil
			p.stopLocked(w)
			w.signal(SIGTERM)
			w.killAfterLocked(p.cfg.KillGrace)
		}
		p.cond.Broadcast()
		p.maybeExitedLocked()
	}
	p.unlockAndFlush()
	settleAll(failed)
	<-p.exited
	return nil
}

// Join waits until every worker has exited. It returns ErrPoolRunning at
// once unless Close or Terminate was called first, and ctx.Err() if ctx ends
// first.
func (p *Pool) Join(ctx context.Context) error { return join(ctx, p.Closed(), p.exited) }

// join is Join of a pool that is closed or not, and whose exited is closed
// once its workers are gone.
func join(ctx context.Context, closed bool, exited <-chan struct{}) error {
	if !closed {
		return ErrPoolRunning
	}
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Pool) readyLocked() int {
	n := 0
	for _, s := range p.slots {
		if s.w != nil && s.w.shookHandsLocked() {
			n++
		}
	}
	return n
}

// startingLocked is how many starts are under way (back-off waits
// included).
func (p *Pool) startingLocked() int {
	n := 0
	for _, s := range p.slots {
		if s.starting {
			n++
		}
	}
	return n
}

func (p *Pool) pendingLocked() int { return len(p.queue) - p.qhead }
