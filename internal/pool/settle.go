package pool

import "github.com/poold/poold/internal/kind"

// settlement is a task to fail once Pool.mu is released: delivering runs
// the caller's Each and Done, which must never run under the pool's lock.
type settlement struct {
	t    *Task
	f    *Failure
	pid  int // the worker that ran it, 0 if none did
	slot int
}

func settleAll(ss []settlement) {
	for _, s := range ss {
		s.t.failAll(s.f, s.pid, s.slot)
	}
}

// settleLostLocked decides the fate of a dead worker's in-flight jobs. The
// head job was running: it fails with the kind the pool blamed (or
// worker_lost), unless it has retries left. A chunk that was running is
// split into single calls and queued again, so that only the call that
// kills a worker fails. Jobs behind the head never started: they go back to
// the front of the queue, in order.
func (p *Pool) settleLostLocked(w *worker, lost []*Task, exit *Exit) (failed []settlement) {
	if len(lost) == 0 {
		return nil
	}
	var requeue []*Task
	head := lost[0]
	k := kind.WorkerLost
	if w.blame != nil && w.blame.jobID == head.id {
		k = w.blame.kind
	}
	switch {
	case head.Calls > 1:
		// A chunk's results travel together, so its finished calls died
		// with the worker too, and nothing says which call killed it. Run
		// each again alone: only the culprit fails again, with its own kind.
		head.tries-- // we cannot tell which of them ran: none counts
		requeue = append(requeue, head.split()...)
	case retryableLocked(head, k):
		requeue = append(requeue, head)
	default:
		failed = append(failed, settlement{head, &Failure{Kind: k, Message: exit.Error(), Exit: exit}, w.pid, w.slot})
	}
	for _, t := range lost[1:] {
		t.tries-- // it never started
		requeue = append(requeue, t)
	}
	if p.state == terminated {
		for _, t := range requeue {
			failed = append(failed, settlement{t, &Failure{Kind: kind.Terminated, Message: "pool terminated before the task finished"}, 0, 0})
		}
		return failed
	}
	return append(failed, p.requeueLocked(requeue)...)
}
