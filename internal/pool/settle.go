package pool

import "github.com/poold/poold/internal/kind"

// settlement is a task to fail once Pool.mu is released: delivering runs
// the caller's Each and Done, which must never run under the pool's lock.
type settlement struct {
	t    *Task
	f    *Failure
	pid  int // the worker that ran it, 0 if none did
	slot int
	from int // the first call to fail: those before it have their outcomes
}

func settleAll(ss []settlement) {
	for _, s := range ss {
		s.t.failAll(s.f, s.pid, s.slot, s.from)
	}
}

// settleLostLocked decides the fate of a dead worker's in-flight jobs. The
// head job was running. Its calls that the worker reported are settled. Of
// the others, where the worker's progress is known (pos), the call that ran
// when it died fails with the kind the pool blamed (or worker_lost), unless
// it may retry; the calls before it ran, but their results were lost with
// the worker, so they run again (their attempts say so), or fail if they
// must not run twice; the calls after it never started, and go back to the
// queue as they were. Where the progress is not known, each unreported
// call of a chunk runs again alone (it may have run: its attempts count
// it), so that only the culprit fails again; or, for calls that must not
// run twice, fails. Jobs behind the head never started: they go back to
// the front of the queue, in order.
func (p *Pool) settleLostLocked(w *worker, lost []*Task, exit *Exit, pos progress) (failed []settlement) {
	if len(lost) == 0 {
		return nil
	}
	head := lost[0]
	k := kind.WorkerLost
	if w.blame != nil && w.blame.jobID == head.id {
		k = w.blame.kind
	}
	lostWith := func(t *Task, k Kind, msg string) settlement {
		return settlement{t, &Failure{Kind: k, Message: msg, Exit: exit}, w.pid, w.slot, 0}
	}
	var requeue []*Task
	from := head.reported
	c, known := pos.at(head)
	if pos.ok && pos.job != head.id && from == 0 && head.unstarted >= maxUnstarted {
		// A worker that records no progress (a foreign one, started as a
		// Go worker is) says "not started" every time: believe it no more.
		pos = progress{}
	}
	switch {
	case pos.ok && pos.job != head.id && from == 0:
		// It was sent, but the worker died before it started it (between
		// jobs, or as it exited after a task that ended its goroutine).
		head.tries--
		head.unstarted++
		requeue = append(requeue, head)
	case head.Calls == 1:
		if retryableLocked(head, k) {
			requeue = append(requeue, head)
		} else {
			failed = append(failed, lostWith(head, k, exit.Error()))
		}
	case known && c < from: // it died after reporting all it ran
		rest := head.sub(from, head.Calls)
		rest.tries--
		requeue = append(requeue, rest)
	case known:
		if c > from {
			ran := head.sub(from, c)
			if head.AtMostOnce {
				failed = append(failed, lostWith(ran, kind.WorkerLost, "it ran, but its result was lost with its worker: "+exit.Error()))
			} else {
				requeue = append(requeue, ran)
			}
		}
		if culprit := head.sub(c, c+1); retryableLocked(culprit, k) {
			requeue = append(requeue, culprit)
		} else {
			failed = append(failed, lostWith(culprit, k, exit.Error()))
		}
		if c+1 < head.Calls {
			rest := head.sub(c+1, head.Calls)
			rest.tries-- // never started
			requeue = append(requeue, rest)
		}
	case head.AtMostOnce:
		failed = append(failed, settlement{head, &Failure{Kind: kind.WorkerLost, Exit: exit,
			Message: "it may have run when its worker died: " + exit.Error()}, w.pid, w.slot, from})
	default:
		for i := from; i < head.Calls; i++ {
			requeue = append(requeue, head.one(i))
		}
	}
	for _, t := range lost[1:] {
		t.tries-- // it never started
		requeue = append(requeue, t)
	}
	if p.state == terminated {
		for _, t := range requeue {
			failed = append(failed, settlement{t, &Failure{Kind: kind.Terminated, Message: "pool terminated before the task finished"}, 0, 0, 0})
		}
		return failed
	}
	return append(failed, p.requeueLocked(requeue)...)
}

// maxUnstarted is how many times a job may go back to the queue as never
// started by a worker that died with it: past that its death is its own,
// and a job that crashes every worker it reaches fails instead of looping.
const maxUnstarted = 3

// progress is where a worker was when it died, as its launcher saw it.
type progress struct {
	job  uint64 // the job it last started; 0: none
	call int    // the call of that job it last started
	ok   bool   // the launcher could tell: else nothing is known
}

// at is the call of chunk t that was running, if the worker was running t.
func (pos progress) at(t *Task) (call int, ok bool) {
	if !pos.ok || pos.job != t.id || pos.call >= t.Calls {
		return 0, false
	}
	return pos.call, true
}
