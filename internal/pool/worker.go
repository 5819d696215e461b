package pool

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold/internal/ipc"
)

// workerState is where a worker is in its life. Each state names the states
// it may move to; setStateLocked is the only place that moves a worker, and
// it panics on any other move (a test drives every legal one).
//
//	starting ──► ready ──► draining ──► exited
//	    │          │                      ▲
//	    └──────────┴──────────────────────┘
type workerState uint8

const (
	// starting: launched, its hello not yet read. Next: ready (the
	// handshake), exited (it died or was killed before its hello).
	starting workerState = iota
	// ready: takes jobs. Next: draining (see stopLocked), exited (it died
	// on its own).
	ready
	// draining: takes no new jobs; its stdin is closed once what it was
	// given is written, and it exits at EOF. It gets here when the pool
	// closes and nothing is left for it, when it retires after
	// MaxTasksPerWorker, at Terminate, and when the pool kills it on
	// purpose (blame says why). Next: exited.
	draining
	// exited: its stdout ended and it was reaped; the jobs it held are
	// settled. Final.
	exited
)

var stateNames = [...]string{starting: "starting", ready: "ready", draining: "draining", exited: "exited"}

func (s workerState) String() string { return stateNames[s] }

// legalNext[s] is the set of states s may move to.
var legalNext = [...][]workerState{
	starting: {ready, exited},
	ready:    {draining, exited},
	draining: {exited},
	exited:   nil,
}

func legalMove(from, to workerState) bool {
	for _, s := range legalNext[from] {
		if s == to {
			return true
		}
	}
	return false
}

// worker is the pool's side of one worker process. Two goroutines serve it:
// readLoop (frames out of its stdout; at EOF the reaping and the settling)
// and stderrLoop (its log lines into the pool's logger). Frames into its
// stdin are written by flush, on whichever goroutine dispatched them.
//
// Locks, in the only order they may be taken (each is released before any
// lock to its left is taken):
//
//	Pool.mu ──► worker.box.mu
//	worker.pipe.mu ──► worker.box.mu
//
// A function named ...Locked needs Pool.mu held; one named ...PipeLocked
// needs pipe.mu.
//
// Pool.mu and pipe.mu are never held together: a writer blocked in write(2)
// must never stop the scheduler, and the scheduler never waits for a pipe.
// Process.Signal may be called under either: a process's own lock is a
// leaf.
type worker struct {
	idle int64 // unix ns: when it last finished a call, or said hello (only with Config.Events; the reader's)
	p    *Pool
	slot int
	pid  int    // the worker's own, as its hello said; guarded by Pool.mu until then
	host string // where it runs: "" for this machine; guarded by Pool.mu until its hello
	proc Process
	log  hclog.Logger // guarded by Pool.mu until its hello (adopt replaces it)

	// Set in the handshake, by readLoop, then read-only.
	explicit    bool   // behind a launcher, or an explicit `poold worker`: no control stream, no progress, memory not read here
	launcherPID int    // the process the launcher started (ssh, srun), when it is not the worker; 0: it is
	launcher    string // that process's program: "ssh"
	measured    bool   // an explicit worker whose memory the pool reads all the same (it runs here, unlaunched)

	// Set before the goroutines start, then read-only.
	stdout  io.ReadCloser
	stderr  io.ReadCloser
	in      *ipc.Reader // read only by readLoop
	scratch Outcome     // readLoop's, for delivering results
	pipeCap int         // bytes the pipe to its stdin holds
	logged  chan struct{}
	tail    stderrTail

	pipe pipeWriter     // the write side: held by whoever flushes
	box  outbox         // jobs dispatched and not yet written
	ctl  *controlWriter // cancellations; nil: the launcher gave no control stream

	// readProgress says where the worker was, once it has exited; nil: the
	// launcher cannot tell.
	readProgress func() (job uint64, call int)

	// Guarded by Pool.mu.
	state      workerState
	inflight   []*Task     // dispatched, oldest first; the head is running
	window     int         // how many jobs may be in flight
	maxWindow  int         // what window may grow to: Config.MaxWindow, more behind a launcher
	arriving   bool        // the result of its only job is arriving: it reads its input next
	assigned   int         // calls ever dispatched to it, for MaxTasksPerWorker
	dirty      bool        // in Pool.dirty: its outbox is to be flushed when Pool.mu is released
	blame      *blame      // set once, when the pool kills it on purpose
	deadline   *time.Timer // kills it if the head job runs past its limit
	startTimer *time.Timer // kills it if its hello is late
	killers    []*time.Timer
}

// pipeWriter is the write side of a worker's stdin. Its fields are guarded
// by mu, which flush takes with TryLock (see flush) and which readLoop takes
// once, at the end, to close the pipe.
type pipeWriter struct {
	mu     sync.Mutex
	out    *ipc.Writer
	stdin  io.Closer
	frame  ipc.Task // scratch for encoding
	spare  []*Task  // the outbox's other buffer
	broken bool     // a write failed, or readLoop closed the pipe: the worker is gone, readLoop settles; no job is encoded
	closed atomic.Bool
}

// controlWriter writes cancel frames to a worker's control stream. Its mu
// is a leaf: taken with no other lock held.
type controlWriter struct {
	mu     sync.Mutex
	out    *ipc.Writer
	closer io.Closer
	closed bool
}

// outbox holds the jobs dispatched to a worker and not yet written, in
// dispatch order. Guarded by mu, taken under Pool.mu or under pipe.mu.
type outbox struct {
	mu         sync.Mutex
	jobs       []*Task
	bytes      int  // about the frames' bytes in jobs
	closeAfter bool // no job will follow: close stdin once jobs are written
}

// blame says why the pool killed a worker, and which job it meant: a kill
// aimed at one job never fails another.
type blame struct {
	kind     Kind
	jobID    uint64
	reason   string
	hopeless bool // a worker that failed so will fail again: do not start another
}

// setStateLocked moves w to state to. Every move of a worker goes through
// here; an illegal one is a bug in the pool.
func (p *Pool) setStateLocked(w *worker, to workerState) {
	if !legalMove(w.state, to) {
		panic(fmt.Sprintf("poold: worker pid %d: illegal move %s → %s", w.pid, w.state, to))
	}
	w.state = to
	switch to {
	case ready:
		stopTimer(w.startTimer)
	case draining:
		w.box.mu.Lock()
		w.box.closeAfter = true
		w.box.mu.Unlock()
		p.markDirtyLocked(w) // the writer closes its stdin after what is queued
	case exited:
		stopTimer(w.startTimer)
		stopTimer(w.deadline)
		for _, t := range w.killers {
			t.Stop()
		}
		w.box.mu.Lock()
		w.box.jobs, w.box.closeAfter = nil, true // its jobs are in inflight, settled by onExit
		w.box.mu.Unlock()
	}
}

// stopLocked gives w no more work: it finishes what it has and exits.
// Safe to repeat; a worker still starting is stopped by a signal instead.
func (p *Pool) stopLocked(w *worker) {
	if w.state == ready {
		p.setStateLocked(w, draining)
	}
}

// killLocked kills w on purpose, blaming job jobID (0: none) for reason.
// The first blame stands: one kill, one reason. The caller sends the
// signal once it has released Pool.mu.
func (p *Pool) killLocked(w *worker, b *blame) bool {
	if w.blame != nil || w.state == exited {
		return false
	}
	w.blame = b
	p.stopLocked(w)
	return true
}

// signal sends sig to the worker's process group; a no-op once reaped.
func (w *worker) signal(sig Signal) { w.proc.Signal(sig) }

// killAfterLocked sends SIGKILL to the worker after d unless it has been
// reaped by then.
func (w *worker) killAfterLocked(d time.Duration) {
	w.killers = append(w.killers, time.AfterFunc(d, func() { w.signal(SIGKILL) }))
}

// progress is where w was when it exited.
func (w *worker) progress() progress {
	if w.readProgress == nil {
		return progress{}
	}
	job, call := w.readProgress()
	return progress{job: job, call: call, ok: true}
}

// headLocked is the job w is running, or nil.
func (w *worker) headLocked() *Task {
	if len(w.inflight) == 0 {
		return nil
	}
	return w.inflight[0]
}

// shookHandsLocked reports whether w got as far as its hello.
func (w *worker) shookHandsLocked() bool { return w.state != starting }

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}
