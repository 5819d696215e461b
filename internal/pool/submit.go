package pool

import (
	"fmt"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/kind"
)

// Submit queues t. Its Each and Done are called as its calls finish,
// possibly before Submit returns. Submit fails only when the pool no longer
// accepts work, or when no worker knows t.Func.
func (p *Pool) Submit(t *Task) error {
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
	for _, part := range p.fit(t) {
		p.pushLocked(part)
	}
	p.dispatchLocked()
	p.strandedLocked()
	p.unlockAndFlush()
	return nil
}

// Accepts returns the error Submit would return for a task of function fn:
// nil, ErrPoolClosed, or an error wrapping ErrUnknownFunc.
func (p *Pool) Accepts(fn string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acceptsLocked(fn)
}

func (p *Pool) acceptsLocked(fn string) error {
	if p.state != running {
		return ErrPoolClosed
	}
	if p.funcs != nil && !p.funcs[fn] {
		return fmt.Errorf("%w: no task named %q; the workers know %v (a Go worker knows the tasks registered before poold.Init runs)", ErrUnknownFunc, fn, p.names)
	}
	return nil
}

// prepare readies t, as its caller submits it, for the pool.
func (t *Task) prepare() error {
	if t.Calls < 1 {
		return fmt.Errorf("task %s: %d calls, want at least 1", t.Func, t.Calls)
	}
	if t.Calls == 1 && len(t.Args) == 0 {
		t.Args = nilValue // no arguments: the msgpack nil
	}
	t.left.Store(int64(t.Calls))
	return nil
}

// refusedLocked is the failure of a task that must not be queued: its
// arguments cannot reach a worker, or its group was cancelled. nil: none.
// (Guarded by the pool's mutex, for the group.)
func refusedLocked(t *Task, maxFrame int) *Failure {
	if msg := checkArgs(t, maxFrame); msg != "" {
		return &Failure{Kind: kind.Encode, Message: msg}
	}
	if t.Group != nil && t.Group.cancelled {
		return &Failure{Kind: kind.Canceled, Message: "cancelled before it started"}
	}
	return nil
}

// checkArgs refuses arguments that could never reach a worker (frames of
// at most maxFrame bytes), so that the writer never meets a job it cannot
// encode.
func checkArgs(t *Task, maxFrame int) string {
	if n, err := ipc.CountValues(t.Args); err != nil || n != t.Calls {
		if t.Calls == 1 {
			return fmt.Sprintf("the arguments are not one well-formed msgpack value (%v)", err)
		}
		return fmt.Sprintf("a chunk of %d calls whose arguments hold %d well-formed values (%v)", t.Calls, n, err)
	}
	if t.Calls == 1 && len(t.Args) > maxFrame-1024 {
		return fmt.Sprintf("arguments of %d bytes exceed the frame cap of %d", len(t.Args), maxFrame)
	}
	return ""
}

// fit returns t, or parts of t each small enough for a frame.
func (p *Pool) fit(t *Task) []*Task {
	if len(t.Args) <= p.cfg.MaxFrame/2 || t.Calls == 1 {
		return []*Task{t}
	}
	head, tail := t.splitAt(t.Calls / 2)
	return append(p.fit(head), p.fit(tail)...)
}

// pushLocked appends t to the queue.
func (p *Pool) pushLocked(t *Task) {
	t.size = t.dispatchSize()
	p.queue = append(p.queue, t)
}

// requeueLocked puts ts back at the front of the queue, in order, but for
// the cancelled ones, which it returns failed, to settle.
func (p *Pool) requeueLocked(ts []*Task) (cancelled []settlement) {
	kept := ts[:0]
	for _, t := range ts {
		if t.cancelledLocked() {
			cancelled = append(cancelled, settlement{t, &Failure{Kind: kind.Canceled, Message: "cancelled before it finished"}, 0, 0, 0})
			continue
		}
		t.size = t.dispatchSize()
		kept = append(kept, t)
	}
	if len(kept) > 0 {
		p.queue = append(kept, p.queue[p.qhead:]...)
		p.qhead = 0
	}
	return cancelled
}

// failQueueLocked fails every queued task; the caller settles what it
// returns once Pool.mu is released.
func (p *Pool) failQueueLocked(k Kind, msg string) []settlement {
	failed := failTasks(p.queue[p.qhead:], k, msg)
	p.queue, p.qhead = nil, 0
	return failed
}

// failTasks is the settlement of each of ts failed with kind k.
func failTasks(ts []*Task, k Kind, msg string) []settlement {
	var failed []settlement
	for _, t := range ts {
		failed = append(failed, settlement{t, &Failure{Kind: k, Message: msg}, 0, 0, 0})
	}
	return failed
}

// cancelQueued takes the tasks that match out of queue[from:], keeping the
// order of the rest, and returns the queue left and the cancelled tasks'
// settlements.
func cancelQueued(queue []*Task, from int, match func(*Task) bool) ([]*Task, []settlement) {
	var failed []settlement
	kept := queue[:from]
	for _, x := range queue[from:] {
		if match(x) {
			failed = append(failed, settlement{x, &Failure{Kind: kind.Canceled, Message: "cancelled before it started"}, 0, 0, 0})
			continue
		}
		kept = append(kept, x)
	}
	clear(queue[len(kept):])
	return kept, failed
}
