// Package pool is the supervisor of a multi-process worker pool: it starts
// worker processes, hands them tasks over pipes, notices when one dies,
// replaces it, and makes sure that every submitted task gets exactly one
// outcome.
//
// Every task has exactly one owner at a time: the queue, the in-flight list
// of one worker, or (once finished) the caller. A worker's in-flight list is
// therefore exactly the set of tasks to fail or re-dispatch when it dies.
package pool

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold/internal/ipc"
)

type state int

const (
	running    state = iota
	closing          // Close: queued work runs, then the workers exit
	terminated       // Terminate: everything unfinished fails now
)

// Pool is a set of worker processes and a queue of tasks.
type Pool struct {
	cfg     Config
	log     hclog.Logger
	spawner *spawner

	mu           sync.Mutex
	cond         *sync.Cond // broadcast when a worker becomes ready or a start gives up
	state        state
	queue        []*job // pending, oldest first
	qhead        int
	slots        []*worker // the current worker of each slot, or nil while one starts
	slotStarting []bool    // a start for the slot is under way (or waiting out its back-off)
	workers      []*worker // every worker not yet reaped, retiring ones included
	starting     int       // spawns under way (including back-off waits)
	live         int       // started and not yet reaped
	nextJob      uint64
	startErr     error // the last failed start, for reports
	failures     int   // consecutive failed starts
	exited       chan struct{}
	dirty        []*worker // workers with jobs to write once p.mu is released
	stats        Stats
	funcs        map[string]bool          // the task names the workers announced
	perTask      map[string]time.Duration // average time per task of each function, measured in the workers
	names        []string
}

// Stats are counters over a pool's life.
type Stats struct {
	WorkersStarted int // processes that completed the handshake
	WorkersLost    int // processes that died with work in flight, or were killed
	StartFailures  int
	TasksDone      int
}

// New starts cfg.Workers worker processes and returns once every one of
// them has completed its handshake. If workers keep failing to start, New
// stops the ones that did and returns an error wrapping ErrWorkerStart.
func New(ctx context.Context, cfg Config) (*Pool, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Pool{
		cfg:     cfg,
		log:     cfg.Logger,
		spawner: newSpawner(),
		slots:   make([]*worker, cfg.Workers),

		slotStarting: make([]bool, cfg.Workers),
		exited:       make(chan struct{}),
		perTask:      make(map[string]time.Duration),
	}
	p.cond = sync.NewCond(&p.mu)
	if cfg.MaxWorkerMemory > 0 {
		go p.watchMemory()
	}
	p.mu.Lock()
	for slot := range cfg.Workers {
		p.startLocked(slot, 0)
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
		if p.readyLocked() == cfg.Workers {
			break
		}
		p.cond.Wait()
	}
	p.mu.Unlock()
	p.log.Debug("pool started", "workers", cfg.Workers)
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
	for i, w := range p.slots {
		if w != nil && w.ready {
			pids[i] = w.pid
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

func (p *Pool) readyLocked() int {
	n := 0
	for _, w := range p.slots {
		if w != nil && w.ready {
			n++
		}
	}
	return n
}

// gaveUpLocked: workers keep failing to start; the pool has stopped trying.
func (p *Pool) gaveUpLocked() bool {
	return p.failures > p.cfg.StartRetries
}

// strandedLocked fails the queue when no worker is left or on its way to
// run it, so that no task waits forever.
func (p *Pool) strandedLocked() {
	if p.pendingLocked() > 0 && p.live == 0 && p.starting == 0 && p.gaveUpLocked() {
		p.failQueueLocked(KindStart, fmt.Sprintf("%v after %d attempts: %v", ErrWorkerStart, p.failures, p.startErr))
	}
}

// Submit queues tasks of function fn, chunk of them to a frame (chunk < 1
// means 1). Each task's Done is called exactly once, possibly before Submit
// returns. Submit fails only when the pool no longer accepts work.
func (p *Pool) Submit(fn string, tasks []*Task, chunk int) error {
	chunk = max(chunk, 1)
	p.mu.Lock()
	if p.state != running {
		p.mu.Unlock()
		return ErrPoolClosed
	}
	if p.funcs != nil && !p.funcs[fn] {
		p.mu.Unlock()
		return fmt.Errorf("%w: no task named %q; the workers know %v", ErrUnknownFunc, fn, p.names)
	}
	var bad []*Task
	for len(tasks) > 0 {
		n := min(chunk, len(tasks))
		j := newJob(fn, n)
		size := 0
		for _, t := range tasks[:n] {
			t.Func = fn
			if t.calls() > 1 {
				t.left.Store(int64(t.calls()))
			}
			if msg := p.checkArgs(t); msg != "" {
				t.fail(KindEncode, msg, 0, nil)
				bad = append(bad, t)
				continue
			}
			if t.calls() > 1 {
				// A chunk travels alone, in parts when it would outgrow a
				// frame.
				for _, part := range p.fit(t) {
					if msg := p.checkArgs(part); msg != "" {
						part.fail(KindEncode, msg, 0, nil)
						bad = append(bad, part)
						continue
					}
					pj := newJob(fn, 1)
					pj.add(part)
					p.pushLocked(pj)
				}
				continue
			}
			// A chunk may not outgrow a frame: start another one instead.
			if size += len(t.Args); size > p.cfg.MaxFrame/2 && len(j.tasks) > 0 {
				p.pushLocked(j)
				j = newJob(fn, n)
				size = len(t.Args)
			}
			j.add(t)
		}
		if len(j.tasks) > 0 {
			p.pushLocked(j)
		}
		tasks = tasks[n:]
	}
	p.dispatchLocked()
	p.strandedLocked()
	p.unlockAndFlush()
	for _, t := range bad {
		t.finish()
	}
	return nil
}

// newJob returns an empty job with room for n tasks.
func newJob(fn string, n int) *job {
	j := &job{fn: fn}
	if n <= 1 {
		j.tasks = j.one[:0]
	} else {
		j.tasks = make([]*Task, 0, n)
	}
	return j
}

func (p *Pool) pushLocked(j *job) {
	p.nextJob++
	j.id = p.nextJob
	j.timeout = j.tasks[0].Timeout
	if j.timeout == 0 {
		j.timeout = p.cfg.Timeout
	}
	p.queue = append(p.queue, j)
}

// checkArgs refuses arguments that could never reach a worker, so that the
// writer never meets a job it cannot encode.
func (p *Pool) checkArgs(t *Task) string {
	if t.calls() > 1 {
		if n, err := ipc.CountValues(t.Args); err != nil || n != t.calls() {
			return fmt.Sprintf("a chunk of %d calls whose arguments hold %d well-formed values (%v)", t.calls(), n, err)
		}
		return ""
	}
	if len(t.Args) > p.cfg.MaxFrame-1024 {
		return fmt.Sprintf("arguments of %d bytes exceed the frame cap of %d", len(t.Args), p.cfg.MaxFrame)
	}
	return ""
}

// fit returns t, or parts of chunk t each small enough for a frame.
func (p *Pool) fit(t *Task) []*Task {
	if len(t.Args) <= p.cfg.MaxFrame/2 || t.calls() == 1 {
		return []*Task{t}
	}
	head, tail := t.splitAt(t.calls() / 2)
	return append(p.fit(head), p.fit(tail)...)
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
	var failed []*Task
	p.mu.Lock()
	if p.state != terminated {
		p.state = terminated
		for _, j := range p.queue[p.qhead:] {
			for _, t := range j.tasks {
				t.fail(KindTerminated, "pool terminated before the task started", 0, nil)
				failed = append(failed, t)
			}
		}
		p.queue, p.qhead = nil, 0
		for _, w := range p.workers {
			for i, j := range w.inflight {
				for _, t := range j.tasks {
					if i == 0 { // the head job was running
						t.Worker = w.slot
						t.fail(KindTerminated, "pool terminated while the task ran", w.pid, nil)
					} else {
						t.fail(KindTerminated, "pool terminated before the task started", 0, nil)
					}
					failed = append(failed, t)
				}
			}
			w.inflight = nil
			p.stopLocked(w)
			w.signal(syscallSIGTERM)
			w.killAfter(p.cfg.KillGrace)
		}
		p.cond.Broadcast()
		p.maybeExitedLocked()
	}
	p.unlockAndFlush()
	for _, t := range failed {
		t.finish()
	}
	<-p.exited
	return nil
}

// Join waits until every worker has exited. It returns ErrPoolRunning at
// once unless Close or Terminate was called first, and ctx.Err() if ctx ends
// first.
func (p *Pool) Join(ctx context.Context) error {
	p.mu.Lock()
	st := p.state
	p.mu.Unlock()
	if st == running {
		return ErrPoolRunning
	}
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed once the pool has stopped and every worker has been
// reaped.
func (p *Pool) Done() <-chan struct{} { return p.exited }

// startLocked starts a worker for slot after delay, without holding p.mu
// while it execs.
func (p *Pool) startLocked(slot int, delay time.Duration) {
	if p.slotStarting[slot] {
		return // one start per slot at a time
	}
	p.slotStarting[slot] = true
	p.starting++
	go func() {
		if delay > 0 {
			time.Sleep(delay)
		}
		p.mu.Lock()
		if p.state == terminated || (p.state == closing && p.pendingLocked() == 0) {
			p.starting--
			p.slotStarting[slot] = false
			p.maybeExitedLocked()
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()

		w, err := p.spawn(slot)

		p.mu.Lock()
		defer p.unlockAndFlush()
		p.starting--
		p.slotStarting[slot] = false
		if err != nil {
			p.startFailedLocked(slot, fmt.Errorf("exec %s: %w", p.commandName(), err))
			return
		}
		p.live++
		p.slots[slot] = w
		p.workers = append(p.workers, w)
		defer w.serve()
		if p.state == terminated {
			p.stopLocked(w)
			w.signal(syscallSIGKILL)
		} else {
			// The handshake must come in time; readLoop marks the worker
			// ready, and the timer then does nothing.
			w.startTimer = time.AfterFunc(p.cfg.StartTimeout, func() {
				p.mu.Lock()
				ready := w.ready
				if !ready && w.blame == nil {
					w.blame = &blame{kind: KindStart, reason: fmt.Sprintf("no handshake within %v", p.cfg.StartTimeout)}
				}
				p.mu.Unlock()
				if !ready {
					w.signal(syscallSIGKILL)
				}
			})
		}
	}()
}

// startFailedLocked records a failed start and retries with back-off, or
// gives up and fails the queued tasks when no worker is left to run them.
func (p *Pool) startFailedLocked(slot int, err error) {
	p.failures++
	p.stats.StartFailures++
	p.startErr = err
	p.log.Error("worker failed to start", "slot", slot, "error", err, "failures", p.failures)
	if !p.gaveUpLocked() {
		p.startLocked(slot, time.Duration(25<<min(p.failures, 8))*time.Millisecond)
	}
	p.strandedLocked()
	p.cond.Broadcast()
	p.maybeExitedLocked()
}

func (p *Pool) failQueueLocked(kind Kind, msg string) {
	var failed []*Task
	for _, j := range p.queue[p.qhead:] {
		for _, t := range j.tasks {
			t.fail(kind, msg, 0, nil)
			failed = append(failed, t)
		}
	}
	p.queue, p.qhead = nil, 0
	if len(failed) > 0 {
		go finishAll(failed) // not under p.mu
	}
}

func finishAll(ts []*Task) {
	for _, t := range ts {
		t.finish()
	}
}

func (p *Pool) commandName() string {
	if len(p.cfg.Command) > 0 {
		return p.cfg.Command[0]
	}
	return "self"
}

func (p *Pool) pendingLocked() int { return len(p.queue) - p.qhead }

// drainLocked, while closing, stops every worker that has nothing left to do.
func (p *Pool) drainLocked() {
	if p.state != closing || p.pendingLocked() > 0 {
		return
	}
	for _, w := range p.workers { // retiring ones too
		if w.ready && len(w.inflight) == 0 {
			p.stopLocked(w)
		}
	}
}

// maybeExitedLocked closes p.exited once the pool has stopped and no worker
// is left or on its way.
func (p *Pool) maybeExitedLocked() {
	if p.state == running || p.live > 0 || p.starting > 0 {
		return
	}
	select {
	case <-p.exited:
	default:
		if p.pendingLocked() > 0 { // Close with work queued and no worker able to start
			p.failQueueLocked(KindStart, fmt.Sprintf("%v: %v", ErrWorkerStart, p.startErr))
		}
		close(p.exited)
		p.spawner.stop()
	}
}

// stopLocked ends the worker's input: once what was dispatched to it is
// written, its stdin is closed, and the worker exits at EOF. The caller's
// unlockAndFlush does the writing.
func (p *Pool) stopLocked(w *worker) {
	if !w.stopping {
		w.stopping = true
		w.omu.Lock()
		w.closing = true
		w.omu.Unlock()
		p.markDirtyLocked(w)
	}
}
