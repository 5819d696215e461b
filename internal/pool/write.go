package pool

import (
	"errors"
	"fmt"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/kind"
)

// The write side. Jobs reach a worker's pipe in two steps: sendLocked,
// under Pool.mu, appends a job to the worker's outbox; flush, with Pool.mu
// released, encodes and writes the outbox. flush is the one place that
// writes a worker's pipe, and it runs on the goroutine that dispatched (a
// submitter, or a reader that just got results), so a task reaches its
// worker without waking another goroutine.

// sendLocked queues t for w's pipe. A job for an idle worker is written by
// the caller's unlockAndFlush, at once; one for a busy worker waits for that
// worker's reader, which flushes after each burst of results: the worker has
// work until then, and jobs submitted one by one leave in one write.
func (p *Pool) sendLocked(w *worker, t *Task, idle bool) {
	w.box.mu.Lock()
	w.box.jobs = append(w.box.jobs, t)
	w.box.bytes += t.size
	w.box.mu.Unlock()
	if idle {
		p.markDirtyLocked(w)
	}
}

func (p *Pool) markDirtyLocked(w *worker) {
	if !w.dirty {
		w.dirty = true
		p.dirty = append(p.dirty, w)
	}
}

// takeDirtyLocked returns the workers whose outboxes are to be flushed.
func (p *Pool) takeDirtyLocked() []*worker {
	dirty := p.dirty
	p.dirty = nil
	for _, w := range dirty {
		w.dirty = false
	}
	return dirty
}

// unlockAndFlush releases Pool.mu, then writes what was dispatched while it
// was held. Every critical section that may dispatch ends with it. An
// outbox that might not fit in its pipe is written on a goroutine of its
// own: a worker that does not read (stopped, or dying) must not block the
// caller, be it ApplyAsync, which returns at once, or the reader of another
// worker's results.
func (p *Pool) unlockAndFlush() {
	dirty := p.takeDirtyLocked()
	p.mu.Unlock()
	for _, w := range dirty {
		w.box.mu.Lock()
		big := w.box.bytes > w.pipeCap/2
		w.box.mu.Unlock()
		if big {
			go w.flush()
		} else {
			w.flush()
		}
	}
}

// flushDirty writes whatever has been dispatched and not yet written.
func (p *Pool) flushDirty() {
	p.mu.Lock()
	p.unlockAndFlush()
}

// flushOwn is flush for w's own reader. Whatever may not fit in w's pipe
// is written on a goroutine of its own: w may be busy still (a big frame
// of results is not always its last: a long chunk is reported in parts,
// and resultArriving takes the first big part for the end), and w,
// blocked writing its next part to the reader, would never read a job
// that this goroutine, blocked writing it, kept the reader from making
// room for. (A Map of 1,800,000 trivial items on 2 workers hung so: its
// chunks' frames, 1.1 MB, pass the pipe's 1 MiB.)
func (w *worker) flushOwn() {
	w.box.mu.Lock()
	big := w.box.bytes > w.pipeCap/2
	w.box.mu.Unlock()
	if big {
		go w.flush()
		return
	}
	w.flush()
}

// flush writes w's outbox, in dispatch order; the caller does not hold
// Pool.mu. Concurrent flushers coalesce: whoever holds pipe.mu writes
// everything queued, with one syscall when it fits the buffer. Nobody waits
// for pipe.mu: a flusher that finds it taken leaves its jobs to the holder,
// which looks at the outbox once more after it lets go. So the only wait is
// the holder's, in write(2), and a reader of results never waits behind a
// write that needs its worker to read.
func (w *worker) flush() {
	for w.pipe.mu.TryLock() {
		bad := w.writeOutboxPipeLocked()
		w.pipe.mu.Unlock()
		if bad != nil {
			w.refused(bad)
		}
		w.box.mu.Lock()
		more := len(w.box.jobs) > 0 || (w.box.closeAfter && !w.pipe.closed.Load())
		w.box.mu.Unlock()
		if !more {
			return
		}
	}
}

// writeOutboxPipeLocked writes the outbox until it stays empty, then closes stdin if
// no job will follow; the caller holds pipe.mu. It returns a job that could
// not be encoded, with the error, if there was one.
func (w *worker) writeOutboxPipeLocked() (bad *refusal) {
	pw := &w.pipe
	for {
		w.box.mu.Lock()
		jobs := w.box.jobs
		if len(jobs) > 0 { // swap buffers; jobs is ours until it becomes the spare
			w.box.jobs, pw.spare = pw.spare[:0], nil
			w.box.bytes = 0
		}
		closeAfter := w.box.closeAfter
		w.box.mu.Unlock()
		if len(jobs) == 0 {
			if closeAfter {
				// Nothing more will come: EOF tells the worker to finish
				// what it has and exit.
				w.closeStdinPipeLocked()
			}
			return bad
		}
		for _, t := range jobs {
			if pw.broken {
				break
			}
			if err := w.encodePipeLocked(t); err != nil {
				if errors.Is(err, ipc.ErrMalformed) || errors.Is(err, ipc.ErrFrameTooLarge) {
					// Submit checked the arguments, so this is a bug;
					// the worker never gets the job, and the job is in
					// its in-flight list: fail it by killing the worker.
					bad = &refusal{t.id, err}
					pw.broken = true
					break
				}
				w.writeFailedPipeLocked(err)
			}
		}
		if !pw.broken {
			if err := pw.out.Flush(); err != nil {
				w.writeFailedPipeLocked(err)
			}
		}
		clear(jobs)
		pw.spare = jobs[:0]
	}
}

// writeFailedPipeLocked: the worker is gone (or going). Its jobs stay in its in-flight
// list; readLoop sees EOF, and they are settled as any lost worker's.
func (w *worker) writeFailedPipeLocked(err error) {
	w.pipe.broken = true
	w.log.Debug("write to worker failed", "error", err)
}

// refusal is a job the writer could not encode.
type refusal struct {
	jobID uint64
	err   error
}

// refused kills w for a job it could not be sent, which then fails with
// kind encode; the jobs behind it run elsewhere.
func (w *worker) refused(r *refusal) {
	p := w.p
	p.mu.Lock()
	hit := p.killLocked(w, &blame{kind: kind.Encode, jobID: r.jobID, reason: fmt.Sprintf("the job could not be encoded: %v", r.err)})
	p.mu.Unlock() // not unlockAndFlush: a flusher never flushes again from within
	if hit {
		w.signal(SIGKILL)
	}
}

// encodePipeLocked appends one job's frame to w's buffer; the caller holds pipe.mu.
func (w *worker) encodePipeLocked(t *Task) error {
	f := &w.pipe.frame // reused: only the holder of pipe.mu touches it
	f.ID, f.Func, f.Timeout, f.Eager, f.Calls = t.id, t.Func, int64(t.Timeout), t.AtMostOnce, t.Calls
	f.Args = append(f.Args[:0], t.Args)
	return w.pipe.out.WriteTask(f)
}

// closeStdinPipeLocked closes the pipe to the worker's stdin; the caller holds
// pipe.mu.
func (w *worker) closeStdinPipeLocked() {
	if !w.pipe.closed.Load() {
		w.pipe.closed.Store(true)
		w.pipe.stdin.Close()
	}
}
