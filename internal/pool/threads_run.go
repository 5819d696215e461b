package pool

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/kind"
	"github.com/poold/poold/internal/tasks"
	child "github.com/poold/poold/internal/worker"
)

// thread is one worker goroutine of a Threads pool.
type thread struct {
	slot int
	// run names the call under way so that one compare-and-swap decides who
	// reports it, the goroutine or whoever gives up on it (a time limit, a
	// cancellation, Terminate): its sequence number << 1, | 1 once claimed.
	// The goroutine stores call and attempts before it stores run.
	run      atomic.Uint64
	call     atomic.Int64 // the index in task of the call under way
	attempts atomic.Int32 // its attempt

	task   *Task              // the job it runs; nil between jobs (guarded by Threads.mu)
	ctx    context.Context    // its jobs' context, replaced once cancelled (guarded by Threads.mu)
	cancel context.CancelFunc // (guarded by Threads.mu)
	gone   bool               // exited, or given up on: no longer live (guarded by Threads.mu)
	buf    []byte             // its calls' results, reused; owned by the goroutine
	// replaces: a goroutine ran in its slot before it (set before it starts).
	replaces bool
	// began is when the call under way started, unix ns (only with
	// ThreadsConfig.Events).
	began atomic.Int64
	meter threadMeter // its job's CPU time; owned by the goroutine
}

// serve is the worker goroutine th: its initializer, then jobs until the
// pool has none left for it, or gives up on it.
func (p *Threads) serve(th *thread, inits chan<- error) {
	if p.cfg.Initializer != "" {
		err := errors.New("the initializer called runtime.Goexit")
		func() {
			returned := false
			defer func() {
				if !returned { // the goroutine ends: account for it
					p.mu.Lock()
					p.exitLocked(th)
					p.mu.Unlock()
					if inits != nil {
						inits <- err
					}
				}
			}()
			err = p.initialize(th)
			returned = true
		}()
		if inits != nil {
			inits <- err
		}
		if err != nil {
			p.mu.Lock()
			p.stats.StartFailures++
			p.cfg.Logger.Error("worker initializer failed", "slot", th.slot, "error", err)
			p.exitLocked(th)
			p.strandedLocked(err)
			p.mu.Unlock()
			return
		}
	}
	if ev := p.cfg.Events; ev != nil {
		e := Event{Kind: WorkerStarted, Time: now(), PID: p.pid, Worker: th.slot}
		if th.replaces {
			e.Replaces = th.slot + 1
		}
		ev(e)
	}
	for {
		t, ctx := p.next(th)
		if t == nil || !p.runJob(th, t, ctx) {
			return
		}
	}
}

// initialize runs the pool's initializer for th.
func (p *Threads) initialize(th *thread) error {
	fn, _ := p.cfg.Registry.Lookup(p.cfg.Initializer)
	p.mu.Lock()
	ctx := th.ctx
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	args := p.cfg.InitializerArgs
	if len(args) == 0 {
		args = nilValue
	}
	if _, _, err := invoke(ctx, fn, args, nil); err != nil {
		return fmt.Errorf("initializer %s: %w", p.cfg.Initializer, err)
	}
	return nil
}

// strandedLocked fails what is queued once no worker goroutine is left to
// run it in a pool that still accepts work.
func (p *Threads) strandedLocked(err error) {
	if p.live > 0 || p.state != running {
		return
	}
	failed := p.queue[p.qhead:]
	p.queue, p.qhead = nil, 0
	p.state = closing // nothing could run what it accepted
	p.maybeExitedLocked()
	go func() {
		for _, t := range failed {
			t.failAll(&Failure{Kind: kind.Start, Message: fmt.Sprintf("no worker left: %v", err)}, 0, 0, 0)
		}
	}()
}

// next waits for th's next job and returns it with its context; nil once
// the pool has nothing more for th, which has then exited.
func (p *Threads) next(th *thread) (*Task, context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	th.task = nil
	for p.qhead == len(p.queue) && p.state == running {
		p.work.Wait()
	}
	if th.gone { // Terminate gave up waiting for it
		return nil, nil
	}
	if p.qhead == len(p.queue) || p.state == terminated {
		p.exitLocked(th)
		return nil, nil
	}
	t := p.queue[p.qhead]
	p.queue[p.qhead] = nil
	if p.qhead++; p.qhead == len(p.queue) {
		p.queue, p.qhead = p.queue[:0], 0
	}
	t.tries++
	th.task = t
	if th.ctx.Err() != nil { // a cancellation of its last job
		th.ctx, th.cancel = context.WithCancel(p.base)
	}
	return t, th.ctx
}

// runJob runs the calls of t in turn, delivering each outcome as it comes.
// It reports false if th was given up on: its goroutine must end.
func (p *Threads) runJob(th *thread, t *Task, ctx context.Context) bool {
	fn, _ := p.cfg.Registry.Lookup(t.Func)
	off, attempts := 0, t.tries
	p.beginMeter(&th.meter)
	defer p.endMeter(&th.meter) // runs for a call that ends its goroutine too
	for i := 0; i < t.Calls; {
		n := valueLen(t.Args[off:])
		o, s, started := p.runCall(th, t, fn, i, t.Args[off:off+n], attempts, ctx)
		if !th.run.CompareAndSwap(s, s|1) {
			return p.lost(th) // someone else reported it
		}
		if !started { // stopped first: this call and those after it fail
			p.failRest(t, i)
			return true
		}
		p.done.Add(1)
		if ev := p.cfg.Events; ev != nil {
			var e Event
			runEvent(&e, t, i)
			e.PID, e.Worker, e.Attempts, e.Start, e.End, e.CPU = o.PID, o.Worker, o.Attempts, o.Start, o.End, o.CPU
			if o.Fail != nil {
				e.Fail = o.Fail.Kind
			}
			ev(e)
		}
		if o.Fail != nil && p.retry(t, o.Fail.Kind, attempts) {
			attempts++
			continue
		}
		if i == t.Calls-1 && !t.claim() {
			return true
		}
		t.deliver(i, &o)
		off += n
		i, attempts = i+1, t.tries
	}
	return true
}

// runCall runs call i of t with arg, returning its outcome and the run
// word it must claim to report it; started is false if the pool was
// terminated, or the job cancelled, before the call could start.
func (p *Threads) runCall(th *thread, t *Task, fn tasks.Func, i int, arg msgpack.RawMessage, attempts int, ctx context.Context) (o Outcome, s uint64, started bool) {
	s = (th.run.Load()>>1 + 1) << 1
	th.call.Store(int64(i))
	th.attempts.Store(int32(attempts))
	th.run.Store(s)
	// A stopper (Terminate, Cancel) that scanned th before the store above
	// saw no call to claim: it set halted, or cancelled ctx, before its
	// scan, and so, the atomics being sequentially consistent, it is seen
	// here. The call then must not start, or it would run unclaimed: a
	// Terminate would not fail it (and, if it ignored its context, would
	// abandon it without a result); a Cancel would not give up on it.
	if p.halted.Load() || ctx.Err() != nil {
		return o, s, false
	}
	cctx, cancel := ctx, context.CancelFunc(nil)
	var limit *time.Timer
	if t.Timeout > 0 {
		cctx, cancel = context.WithTimeout(ctx, t.Timeout)
		limit = time.AfterFunc(t.Timeout+p.cfg.KillGrace, func() {
			p.giveUp(th, s, &Failure{Kind: kind.Timeout, Message: fmt.Sprintf(
				"time limit of %v passed and the task ignored its cancelled context for the kill grace of %v: abandoned (its goroutine runs on)",
				t.Timeout, p.cfg.KillGrace)}, false)
		})
	}
	returned := false
	defer func() {
		if returned {
			return
		}
		// runtime.Goexit: this goroutine ends whatever happens.
		if limit != nil {
			limit.Stop()
			cancel()
		}
		f := &Failure{Kind: kind.Panic, Type: "runtime.Goexit", Stack: string(debug.Stack()),
			Message: "the task called runtime.Goexit, which ends the goroutine that runs it: a new worker goroutine takes its slot"}
		if !p.giveUp(th, s, f, true) {
			p.lost(th)
		}
	}()
	start := time.Now().UnixNano()
	if p.cfg.Events != nil {
		th.began.Store(start)
	}
	out, stack, err := invoke(cctx, fn, arg, th.buf[:0])
	end := time.Now().UnixNano()
	o = Outcome{PID: p.pid, Worker: th.slot, Attempts: attempts, Start: start, End: end, CPU: th.meter.cpu(start, end, i == t.Calls-1)}
	returned = true
	if limit != nil {
		limit.Stop()
		cancel()
	}
	if err != nil {
		o.Fail = failure(child.Classify(cctx, err, stack, t.Timeout))
		return o, s, true
	}
	if ipc.Validate(out) != nil {
		o.Fail = &Failure{Kind: kind.Encode, Message: "the task returned a value that is not well-formed msgpack"}
		return o, s, true
	}
	if len(out) > p.cfg.MaxFrame-1024 {
		o.Fail = &Failure{Kind: kind.ResultTooLarge, Message: fmt.Sprintf("result of %d bytes does not fit in a frame of at most %d bytes", len(out), p.cfg.MaxFrame)}
		return o, s, true
	}
	o.Value = out
	if cap(out) <= 1<<20 { // one huge result is no reason to keep its buffer
		th.buf = out[:0]
	}
	return o, s, true
}

// invoke runs fn, appending its result to dst, and turns a panic into an
// error with its stack.
func invoke(ctx context.Context, fn tasks.Func, arg msgpack.RawMessage, dst []byte) (out []byte, stack string, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, stack, err = dst, string(debug.Stack()), child.PanicError(r)
		}
	}()
	out, err = fn(ctx, arg, dst)
	return out, "", err
}

// failure is a worker's error report as the pool has it.
func failure(e *ipc.ErrorInfo) *Failure {
	return &Failure{Kind: Kind(e.Kind), Message: e.Message, Stack: e.Stack, Type: e.Type, Detail: e.Detail}
}

// retry reports whether a call of t that failed with kind k on its
// attempt-th attempt runs again.
func (p *Threads) retry(t *Task, k Kind, attempts int) bool {
	if t.Retries == 0 || !slices.Contains(t.RetryOn, k) {
		return false // the common case, without the lock
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return retryableCall(t, k, attempts) && p.state != terminated
}

func retryableCall(t *Task, k Kind, attempts int) bool {
	return k != kind.Canceled && !t.AtMostOnce && !t.cancelledLocked() && t.Retries > 0 && attempts <= t.Retries && slices.Contains(t.RetryOn, k)
}

// failRest fails calls i, i+1, ... of t, which a cancellation or Terminate
// stopped before they started.
func (p *Threads) failRest(t *Task, i int) {
	f := &Failure{Kind: kind.Canceled, Message: "cancelled before it started"}
	p.mu.Lock()
	if p.state == terminated {
		f = &Failure{Kind: kind.Terminated, Message: "pool terminated before the task started"}
	}
	p.mu.Unlock()
	t.failAll(f, 0, 0, i)
}

// lost ends th, whose call someone else reported: Terminate (th then exits
// here) or a give-up (which accounted for it). It reports false.
func (p *Threads) lost(th *thread) bool {
	p.mu.Lock()
	p.exitLocked(th)
	p.mu.Unlock()
	return false
}

// claimLocked claims th's call under way, if any, for whoever stops it: it
// returns its task and index.
func (th *thread) claimLocked() (t *Task, i int, ok bool) {
	s := th.run.Load()
	if s&1 != 0 {
		return nil, 0, false
	}
	i = int(th.call.Load())
	if !th.run.CompareAndSwap(s, s|1) {
		return nil, 0, false
	}
	return th.task, i, true
}

// giveUp stops waiting for th's call s, if it still runs: the call fails
// with f (or runs again, if it may), the calls of its job after it go back
// to the queue, and a new goroutine takes th's slot. exited: th's
// goroutine is ending (runtime.Goexit), rather than abandoned. It reports
// whether it gave up on the call.
func (p *Threads) giveUp(th *thread, s uint64, f *Failure, exited bool) bool {
	p.mu.Lock()
	if th.run.Load() != s {
		p.mu.Unlock()
		return false
	}
	t, i, ok := th.claimLocked()
	if !ok {
		p.mu.Unlock()
		return false
	}
	attempts := int(th.attempts.Load())
	p.stats.WorkersLost++
	if !exited {
		p.stats.TasksAbandoned++
		p.cfg.Logger.Warn("task abandoned", "func", t.Func, "slot", th.slot, "kind", f.Kind)
	}
	var failed []settlement
	var front []*Task
	retry := retryableCall(t, f.Kind, attempts) && p.state != terminated
	if retry {
		again := t
		if t.Calls > 1 {
			again = t.one(i)
		}
		again.tries = attempts
		front = append(front, again)
	}
	if i+1 < t.Calls { // never started
		rest := t.sub(i+1, t.Calls)
		rest.tries = t.tries - 1
		if p.state == terminated || t.cancelledLocked() {
			failed = append(failed, settlement{rest, &Failure{Kind: kind.Canceled, Message: "cancelled before it started"}, 0, 0, 0})
		} else {
			front = append(front, rest)
		}
	}
	if len(front) > 0 {
		p.queue = append(front, p.queue[p.qhead:]...)
		p.qhead = 0
		p.work.Signal()
	}
	if p.state != terminated {
		p.startLocked(th.slot, nil)
	}
	var lostRun Event
	if p.cfg.Events != nil {
		runEvent(&lostRun, t, i)
		p.emitting++ // the pool exits once its observer has heard of this
	}
	p.exitLocked(th)
	p.mu.Unlock()
	if ev := p.cfg.Events; ev != nil {
		end := now()
		lostRun.PID, lostRun.Worker, lostRun.Attempts, lostRun.Fail, lostRun.Lost = p.pid, th.slot, attempts, f.Kind, true
		lostRun.Start, lostRun.End = th.began.Load(), end
		ev(lostRun)
		reason := "abandoned: " + f.Message
		if exited {
			reason = "its goroutine ended: " + f.Message
		}
		ev(Event{Kind: WorkerExited, Time: end, PID: p.pid, Worker: th.slot, Blame: f.Kind, Reason: reason})
		p.mu.Lock()
		p.emitting--
		p.maybeExitedLocked()
		p.mu.Unlock()
	}
	settleAll(failed)
	if !retry {
		o := Outcome{Fail: f, PID: p.pid, Worker: th.slot, Attempts: attempts, End: time.Now().UnixNano(), CPU: -1}
		if i < t.Calls-1 || t.claim() {
			t.deliver(i, &o)
		}
	}
	return true
}

// Cancel stops the calls of t that have not finished, as Pool.Cancel does:
// queued ones fail with kind canceled at once; a running call's context is
// cancelled, and if it has not returned within the kill grace it is
// abandoned, failing with kind canceled. Safe to repeat.
func (p *Threads) Cancel(t *Task) {
	p.mu.Lock()
	t.cancel = true
	p.cancelLocked(func(x *Task) bool { return x.root() == t })
}

// CancelGroup cancels, as Cancel does, every task of g, and those of g
// submitted later.
func (p *Threads) CancelGroup(g *Group) {
	p.mu.Lock()
	g.cancelled = true
	p.cancelLocked(func(x *Task) bool { return x.root().Group == g })
}

// cancelLocked cancels the queued and running tasks that match, and
// releases Threads.mu.
func (p *Threads) cancelLocked(match func(*Task) bool) {
	var failed []settlement
	p.queue, failed = cancelQueued(p.queue, p.qhead, match)
	for _, th := range p.slots {
		if th == nil || th.task == nil || !match(th.task) {
			continue
		}
		th.cancel()
		if s := th.run.Load(); s&1 == 0 {
			time.AfterFunc(p.cfg.KillGrace, func() {
				p.giveUp(th, s, &Failure{Kind: kind.Canceled, Message: fmt.Sprintf(
					"cancelled, and the task ignored its context for the kill grace of %v: abandoned (its goroutine runs on)", p.cfg.KillGrace)}, false)
			})
		}
	}
	p.mu.Unlock()
	settleAll(failed)
}
