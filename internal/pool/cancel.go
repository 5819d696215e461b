package pool

import (
	"fmt"
	"time"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/kind"
)

// Cancel stops the calls of t that have not finished: those still queued
// fail with kind canceled at once and never start; a job already sent to a
// worker is cancelled there (the worker fails the calls it has not started
// and cancels the running call's context; a job sent but not yet read may
// start before the worker sees the cancellation), and if it has not
// answered within the kill grace its worker is killed and the job fails
// with kind canceled. A call that finishes first keeps its outcome. Safe
// to repeat, and a no-op for a task that has settled.
func (p *Pool) Cancel(t *Task) {
	p.mu.Lock()
	t.cancel = true // parts cut from t later, after a loss, see it
	p.cancelLocked(func(x *Task) bool { return x.root() == t })
}

// Group ties tasks together for CancelGroup: the chunks of one Map, say.
type Group struct {
	cancelled bool // guarded by Pool.mu
}

// CancelGroup cancels, as Cancel does, every task whose Group is g, and the
// tasks of g submitted later.
func (p *Pool) CancelGroup(g *Group) {
	p.mu.Lock()
	g.cancelled = true
	p.cancelLocked(func(x *Task) bool { return x.root().Group == g })
}

// cancelLocked cancels the queued and dispatched tasks that match, and
// releases Pool.mu.
func (p *Pool) cancelLocked(match func(*Task) bool) {
	var failed []settlement
	type note struct {
		w  *worker
		id uint64
	}
	var notes []note
	p.queue, failed = cancelQueued(p.queue, p.qhead, match)
	for _, w := range p.workers {
		for i, x := range w.inflight {
			if !match(x) || x.cancelSent {
				continue
			}
			x.cancelSent = true
			notes = append(notes, note{w, x.id})
			if i == 0 || w.ctl == nil {
				p.killCancelledAfterLocked(w, x)
			}
		}
	}
	p.mu.Unlock()
	settleAll(failed)
	for _, n := range notes {
		n.w.sendCancel(n.id)
	}
}

// killCancelledAfterLocked kills w after the kill grace if it is then still
// running job x, which was cancelled: the task did not return in time.
func (p *Pool) killCancelledAfterLocked(w *worker, x *Task) {
	w.killers = append(w.killers, time.AfterFunc(p.cfg.KillGrace, func() {
		p.mu.Lock()
		hit := w.headLocked() == x && p.killLocked(w, &blame{kind: kind.Canceled, jobID: x.id,
			reason: fmt.Sprintf("killed: the task was cancelled and did not return within %v", p.cfg.KillGrace)})
		p.mu.Unlock()
		if hit {
			w.signal(SIGKILL)
		}
	}))
}

// sendCancel writes a cancel frame for job id to w's control stream.
func (w *worker) sendCancel(id uint64) {
	c := w.ctl
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if err := c.out.WriteCancel(&ipc.Cancel{ID: id}); err == nil {
		c.out.Flush() // a worker that is gone cannot be cancelled: nothing to do
	}
}

// closeControl closes w's control stream once w has exited.
func (w *worker) closeControl() {
	if c := w.ctl; c != nil {
		c.mu.Lock()
		c.closed = true
		c.closer.Close()
		c.mu.Unlock()
	}
}

// cancelledLocked reports whether t, the task it was cut from, or their
// group was cancelled.
func (t *Task) cancelledLocked() bool {
	r := t.root()
	return t.cancel || r.cancel || (r.Group != nil && r.Group.cancelled)
}

// root is the task as its caller submitted it.
func (t *Task) root() *Task {
	for t.parent != nil {
		t = t.parent
	}
	return t
}
