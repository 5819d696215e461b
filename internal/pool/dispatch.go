package pool

import (
	"math"
	"time"
)

const (
	// A job that took the worker less than shortJob lets that worker's
	// window double; one that took longer than longJob shrinks it to 1, so
	// that long tasks never queue behind each other while a worker idles.
	shortJob = time.Millisecond
	longJob  = 5 * time.Millisecond
)

// dispatchLocked moves queued jobs to workers: to idle workers first, then,
// for a job expected to be short, to the least loaded worker whose window has
// room. It only queues frames (see sendLocked): the caller's unlockAndFlush
// writes them.
func (p *Pool) dispatchLocked() {
	for p.qhead < len(p.queue) {
		t := p.queue[p.qhead]
		w := p.pickLocked(t)
		if w == nil {
			break
		}
		if budget := w.budgetLocked(); budget < t.Calls {
			// A worker retires after exactly MaxTasksPerWorker calls: it
			// gets the part of a job that fits, the rest waits its turn.
			head, tail := t.splitAt(budget)
			head.size, tail.size = head.dispatchSize(), tail.dispatchSize()
			p.queue[p.qhead] = tail
			t = head
		} else {
			p.queue[p.qhead] = nil
			p.qhead++
		}
		// An id names one dispatch to one worker, and grows with each: a
		// worker can tell an old job's id from a new one's.
		p.nextJob++
		t.id, t.reported = p.nextJob, 0
		w.inflight = append(w.inflight, t)
		w.assigned += t.Calls
		t.tries++
		idle := len(w.inflight) == 1 || (w.arriving && len(w.inflight) == 2)
		if len(w.inflight) == 1 {
			p.headChangedLocked(w)
		}
		p.sendLocked(w, t, idle)
		if w.budgetLocked() == 0 {
			p.retireLocked(w) // its replacement starts now, while it finishes
		}
	}
	if p.qhead == len(p.queue) {
		p.queue, p.qhead = p.queue[:0], 0
	} else if p.qhead > 1024 && p.qhead > len(p.queue)/2 {
		p.queue = append(p.queue[:0], p.queue[p.qhead:]...)
		p.qhead = 0
	}
}

// budgetLocked is how many more calls w may be given before it retires.
func (w *worker) budgetLocked() int {
	if limit := w.p.cfg.MaxTasksPerWorker; limit > 0 {
		return limit - w.assigned
	}
	return math.MaxInt
}

// pickLocked chooses the worker for t: an idle worker if there is one; else
// a busy worker only if calls of t's function have proved short enough that
// t would take under shortJob, so that a job never waits in one worker's
// pipe behind a long one while another worker could soon run it.
func (p *Pool) pickLocked(t *Task) *worker {
	per, known := p.perTask[t.Func]
	short := known && time.Duration(t.Calls)*per < shortJob
	var best *worker
	for _, s := range p.slots {
		w := s.w
		if w == nil || w.state != ready {
			continue
		}
		k := len(w.inflight)
		if w.arriving {
			k-- // its only job is done: it reads its input next
		}
		if k == 0 {
			return w
		}
		if short && k < w.window && w.roomLocked(t) && (best == nil || k < len(best.inflight)) {
			best = w
		}
	}
	return best
}

// roomLocked reports whether t fits in the pipe to busy worker w beside the
// jobs already waiting there. A busy worker does not read its input until
// it has written its result; were its pipe full, a write to it would block
// whoever flushes (often the reader of its results, which must go on
// reading), and both would wait for each other. Jobs behind the running one
// are at most what its pipe holds unread, so half the pipe leaves margin.
func (w *worker) roomLocked(t *Task) bool {
	queued := t.size
	for _, x := range w.inflight[1:] {
		queued += x.size
	}
	return queued <= w.pipeCap/2
}
