package pool

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/kind"
	child "github.com/poold/poold/internal/worker"
)

// startLocked starts a worker for slot after delay, without holding Pool.mu
// while it launches. One start per slot at a time.
func (p *Pool) startLocked(slot int, delay time.Duration) {
	if p.slots[slot].starting || p.groupOfLocked(slot).out {
		return
	}
	p.slots[slot].starting = true
	go p.start(slot, delay)
}

func (p *Pool) start(slot int, delay time.Duration) {
	if delay > 0 {
		time.Sleep(delay)
	}
	p.mu.Lock()
	if p.state == terminated || (p.state == closing && p.pendingLocked() == 0) {
		p.slots[slot].starting = false
		p.maybeExitedLocked()
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()

	p.mu.Lock()
	l := p.groupOfLocked(slot).launcher
	p.mu.Unlock()
	c, err := l.Launch(p.settings())

	p.mu.Lock()
	defer p.unlockAndFlush()
	p.slots[slot].starting = false
	if err != nil {
		p.startFailedLocked(slot, err)
		return
	}
	w := p.newWorker(slot, c)
	p.slots[slot].w = w
	p.workers = append(p.workers, w)
	go w.stderrLoop()
	go w.readLoop()
	if p.state == terminated {
		p.killLocked(w, &blame{kind: kind.Terminated, reason: "the pool was terminated while the worker started"})
		w.signal(SIGKILL)
		return
	}
	// The hello must come in time; the handshake stops the timer.
	w.startTimer = time.AfterFunc(p.cfg.StartTimeout, func() {
		p.mu.Lock()
		// A program that has not said hello in this long does not speak
		// the protocol (cat, a shell, the wrong binary): another copy of
		// it would not either.
		late := w.state == starting && p.killLocked(w, &blame{kind: kind.Start, hopeless: true,
			reason: fmt.Sprintf("no handshake within %v: the worker program does not speak poold's protocol, or never called poold.Init", p.cfg.StartTimeout)})
		p.mu.Unlock()
		if late {
			w.signal(SIGKILL)
		}
	})
}

// settings is what every worker is told at launch.
func (p *Pool) settings() child.Settings { return settingsFor(p.cfg) }

func settingsFor(cfg Config) child.Settings {
	p := struct{ cfg Config }{cfg}
	return child.Settings{
		MaxFrame:        p.cfg.MaxFrame,
		MaxOutput:       p.cfg.MaxOutput,
		LogLevel:        p.cfg.Logger.GetLevel().String(),
		Initializer:     p.cfg.Initializer,
		InitializerArgs: p.cfg.InitializerArgs,
		Procs:           workerProcs(p.cfg),
	}
}

func (p *Pool) newWorker(slot int, c *Conn) *worker {
	w := &worker{
		p:         p,
		slot:      slot,
		pid:       c.PID,
		host:      c.Host,
		launcher:  c.Program,
		proc:      c.Proc,
		stdout:    c.Stdout,
		stderr:    c.Stderr,
		in:        ipc.NewReader(c.Stdout, p.cfg.MaxFrame),
		pipeCap:   c.PipeCap,
		window:    1,
		maxWindow: p.cfg.MaxWindow,
		logged:    make(chan struct{}),
	}
	if w.pipeCap <= 0 {
		w.pipeCap = 64 << 10 // Linux's default
	}
	w.pipe.out = ipc.NewWriter(c.Stdin, p.cfg.MaxFrame)
	w.pipe.stdin = c.Stdin
	if c.Control != nil {
		w.ctl = &controlWriter{out: ipc.NewWriter(c.Control, 1<<10), closer: c.Control}
	}
	w.readProgress = c.Progress
	w.log = p.workerLog(w)
	return w
}

// workerLog is the logger of w's lines: its pid, slot and host, and its
// launcher's pid when that is another process.
func (p *Pool) workerLog(w *worker) hclog.Logger {
	l := p.log.Named("worker").With("pid", w.pid, "slot", w.slot)
	if w.host != "" {
		l = l.With("host", w.host)
	}
	if w.launcherPID != 0 && w.launcherPID != w.pid {
		l = l.With("launcher_pid", w.launcherPID)
	}
	return l
}

// startFailedLocked records a failed start and retries with back-off, or
// gives up and fails the queued tasks when no worker is left to run them.
func (p *Pool) startFailedLocked(slot int, err error) {
	g := p.groupOfLocked(slot)
	g.failures++
	p.stats.StartFailures++
	g.startErr, p.startErr = err, err
	p.log.Error("worker failed to start", "slot", slot, "host", cmpHost(g.Name), "error", err, "failures", g.failures)
	switch {
	case g.failures > p.cfg.StartRetries:
		if !g.out {
			p.takeOutLocked(g)
		}
	default:
		p.startLocked(slot, time.Duration(25<<min(g.failures, 8))*time.Millisecond)
	}
	p.strandedLocked()
	p.cond.Broadcast()
	p.maybeExitedLocked()
}

// strandedLocked fails the queue when no worker is left or on its way to
// run it, so that no task waits forever.
func (p *Pool) strandedLocked() {
	if p.pendingLocked() > 0 && len(p.workers) == 0 && p.startingLocked() == 0 && p.gaveUpLocked() {
		failed := p.failQueueLocked(kind.Start, fmt.Sprintf("%v after %d attempts: %v", ErrWorkerStart, p.cfg.StartRetries+1, p.startErr))
		go settleAll(failed) // not under Pool.mu
	}
}

// retireLocked stops a worker that has run its share of calls and starts
// its replacement at once, so that nothing waits for the old one to leave.
func (p *Pool) retireLocked(w *worker) {
	if w.state != ready || p.state == terminated {
		return
	}
	p.stopLocked(w)
	p.slots[w.slot].w = nil
	p.startLocked(w.slot, 0)
}

// drainLocked, while closing, stops every worker that has nothing left to do.
func (p *Pool) drainLocked() {
	if p.state != closing || p.pendingLocked() > 0 {
		return
	}
	for _, w := range p.workers { // retiring ones too
		if len(w.inflight) == 0 {
			p.stopLocked(w)
		}
	}
}

// maybeExitedLocked closes p.exited once the pool has stopped and no worker
// is left or on its way.
func (p *Pool) maybeExitedLocked() {
	if p.state == running || len(p.workers) > 0 || p.startingLocked() > 0 || p.emitting > 0 {
		return
	}
	select {
	case <-p.exited:
	default:
		if p.pendingLocked() > 0 { // Close with work queued and no worker able to start
			failed := p.failQueueLocked(kind.Start, fmt.Sprintf("%v: %v", ErrWorkerStart, p.startErr))
			go settleAll(failed)
		}
		close(p.exited)
		p.closeLaunchers()
	}
}

// onExit settles a reaped worker: the job it was running fails (or is
// retried), the jobs behind it go back to the front of the queue, and its
// slot gets a new worker.
func (p *Pool) onExit(w *worker, exit *Exit, pos progress) {
	p.mu.Lock()
	wasReady := w.shookHandsLocked()
	p.setStateLocked(w, exited)
	if p.slots[w.slot].w == w {
		p.slots[w.slot].w = nil
	}
	for i, x := range p.workers {
		if x == w {
			p.workers = append(p.workers[:i], p.workers[i+1:]...)
			break
		}
	}
	if w.blame != nil {
		exit.Reason = w.blame.reason
	}
	var failed []settlement
	var lostRun *Event
	if !wasReady {
		if p.state != terminated {
			if w.blame != nil && w.blame.hopeless {
				p.groupOfLocked(w.slot).failures = p.cfg.StartRetries // this failure takes its group out
			}
			p.startFailedLocked(w.slot, exit)
		}
	} else {
		lost := w.inflight
		w.inflight = nil
		if len(lost) > 0 || w.blame != nil {
			p.stats.WorkersLost++
			w.log.Warn("worker lost", "exit", exit.Error(), "tasks_in_flight", len(lost))
		} else {
			w.log.Debug("worker exited", "exit", exit.Error())
		}
		if p.cfg.Events != nil && len(lost) > 0 {
			lostRun = w.lostRunLocked(lost[0], pos)
		}
		failed = p.settleLostLocked(w, lost, exit, pos)
		if p.slots[w.slot].w == nil && p.state != terminated && (p.state == running || p.pendingLocked() > 0) {
			p.startLocked(w.slot, 0)
		}
	}
	p.dispatchLocked()
	p.drainLocked()
	ev := p.cfg.Events
	if ev == nil || !wasReady {
		p.maybeExitedLocked()
		p.unlockAndFlush()
		settleAll(failed)
		return
	}
	var blamed Kind
	if w.blame != nil {
		blamed = w.blame.kind
	}
	p.emitting++ // the pool exits once its observer has heard of this
	p.unlockAndFlush()
	if lostRun != nil {
		ev(*lostRun)
	}
	ev(Event{Kind: WorkerExited, Time: now(), Host: w.host, PID: w.pid, Worker: w.slot, Exit: exit, Blame: blamed, Reason: exit.Error()})
	p.mu.Lock()
	p.emitting--
	p.maybeExitedLocked()
	p.mu.Unlock()
	settleAll(failed)
}

// lostRunLocked is the event of the call of head, the job w ran when it
// died, or nil if it had not started one: the call its progress names, or
// if unknown the first it had not reported.
func (w *worker) lostRunLocked(head *Task, pos progress) *Event {
	if pos.ok && pos.job != head.id && head.reported == 0 {
		return nil
	}
	c, known := pos.at(head)
	if !known || c < head.reported {
		if head.reported >= head.Calls {
			return nil
		}
		c = head.reported
	}
	e := new(Event)
	runEvent(e, head, c)
	e.Host, e.PID, e.Worker, e.Attempts, e.Start, e.End = w.host, w.pid, w.slot, head.tries, w.idle, now()
	e.Fail, e.Lost = kind.WorkerLost, true
	if w.blame != nil && w.blame.jobID == head.id {
		e.Fail = w.blame.kind
	}
	return e
}
