package pool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/kind"
)

// errHandshake: the hello came after the pool had given up on it.
var errHandshake = errors.New("handshake after its deadline")

// readLoop runs the handshake, then reads results until the worker's stdout
// ends, then reaps the worker and settles what it held.
func (w *worker) readLoop() {
	var m ipc.Message
	err := w.in.Read(&m)
	if err == nil {
		err = w.handshake(&m)
		w.in.OnBigFrame(bigResult, w.resultArriving)
	}
	for err == nil {
		// Shared: each result is settled before the next read.
		if err = w.in.ReadShared(&m); err != nil {
			break
		}
		if m.Kind != ipc.KindResult {
			err = fmt.Errorf("%w: unexpected %s message", ipc.ErrMalformed, m.Kind)
			break
		}
		err = w.p.onResult(w, &m.Result)
		if !w.in.Buffered() {
			// Refills for all the results read in one go leave in one
			// write per worker.
			w.p.flushDirty()
			w.flushOwn()
			// The next read parks this thread in the kernel, holding its P
			// for a while; a caller woken by these results would wait in
			// that P's queue. Let it run here first.
			runtime.Gosched()
		}
	}
	w.p.flushDirty()
	w.p.streamEnded(w, err)
	w.proc.Exited()
	// Read all of stderr before reaping (as os/exec asks); a process that
	// left the group may still hold it open: then stop reading.
	select {
	case <-w.logged:
	case <-time.After(w.p.cfg.KillGrace):
		w.stderr.Close()
		<-w.logged
	}
	exit := w.proc.Reap()
	exit.Host = w.host
	switch {
	case w.launcherPID != 0 && w.launcherPID != w.pid:
		exit.PID, exit.Launcher, exit.LauncherPID = w.pid, w.launcher, w.launcherPID
	case !w.explicit && w.host != "" && w.launcher != "":
		// It never said hello: the process that ended is its launcher
		// (ssh), and no worker pid is known.
		exit.PID, exit.Launcher, exit.LauncherPID = 0, w.launcher, w.pid
	}
	pos := w.progress()
	w.stdout.Close()
	w.closeControl()
	// The worker is gone: a holder's write fails at once, and a flush that
	// takes the pipe after this reads none of the jobs it finds. They are
	// in w's in-flight list, and onExit may give them to another worker,
	// whose dispatch rewrites them (their ids) with nothing to order that
	// after such a flush.
	w.pipe.mu.Lock()
	w.pipe.broken = true
	w.closeStdinPipeLocked()
	w.pipe.mu.Unlock()
	exit.Stderr = w.tail.lines()
	w.p.onExit(w, &exit, pos)
}

// streamEnded reacts to the end of w's stdout. At EOF the worker is exiting
// (or closed its stdout and lives on: it gets the kill grace). Anything
// else is garbage, an oversized frame or a lie about a task: the stream can
// no longer be trusted, and the job the worker was running is blamed.
func (p *Pool) streamEnded(w *worker, err error) {
	p.mu.Lock()
	if errors.Is(err, io.EOF) {
		w.killAfterLocked(p.cfg.KillGrace)
		p.mu.Unlock()
		return
	}
	b := &blame{kind: kind.Protocol, reason: "protocol error: " + err.Error()}
	if head := w.headLocked(); head != nil {
		b.jobID = head.id
	}
	if !w.shookHandsLocked() {
		b.kind, b.hopeless = kind.Start, true // garbage instead of a hello comes again
	}
	p.killLocked(w, b)
	p.unlockAndFlush()
	w.signal(SIGKILL)
}

// bigResult is the size from which a result frame takes long enough to
// read and settle (a chunk's, typically) that its worker is given its next
// job as the frame starts to arrive, not once it has been settled.
const bigResult = 64 << 10

// resultArriving runs when the header of a big frame from w has been read:
// w has finished its job and is writing the result. If that was its only
// job, it reads its input next, so it may have another now. The write goes
// on another goroutine, because w reads it only after this goroutine has
// read the whole result.
func (w *worker) resultArriving() {
	p := w.p
	p.mu.Lock()
	if len(w.inflight) != 1 || w.arriving || w.state != ready || p.state == terminated {
		p.mu.Unlock()
		return
	}
	w.arriving = true
	p.dispatchLocked()
	dirty := p.takeDirtyLocked()
	p.mu.Unlock()
	if len(dirty) > 0 {
		go func() {
			for _, x := range dirty {
				x.flush()
			}
		}()
	}
}

func (w *worker) handshake(m *ipc.Message) error {
	if err := checkHello(m); err != nil {
		return err
	}
	switch {
	case m.Hello.Setup:
		if err := w.setUp(m); err != nil {
			return err
		}
	case m.Hello.PID != w.pid && w.launcher != "":
		w.adopt(&m.Hello)
	}
	p := w.p
	p.mu.Lock()
	if w.blame != nil { // the handshake timer fired first
		p.mu.Unlock()
		return errHandshake
	}
	p.setStateLocked(w, ready)
	p.groupOfLocked(w.slot).failures = 0
	if p.funcs == nil {
		p.funcs = make(map[string]bool, len(m.Hello.Tasks))
		for _, name := range m.Hello.Tasks {
			p.funcs[name] = true
		}
		p.names = m.Hello.Tasks
	}
	p.stats.WorkersStarted++
	w.log.Debug("worker ready", "tasks", len(m.Hello.Tasks))
	replaces := p.slots[w.slot].lastPID
	p.slots[w.slot].lastPID = w.pid
	p.cond.Broadcast()
	p.dispatchLocked()
	p.drainLocked()
	p.unlockAndFlush()
	if ev := p.cfg.Events; ev != nil {
		w.idle = now()
		ev(Event{Kind: WorkerStarted, Time: w.idle, Host: w.host, PID: w.pid, Worker: w.slot, Replaces: replaces})
	}
	return nil
}

// onResult settles the calls of the job at the head of w's in-flight list
// that r answers: all of them, or the next ones of a chunk whose worker
// reports as it goes. A result for any other job, or calls out of order, is
// a protocol error: a worker answers in order.
func (p *Pool) onResult(w *worker, r *ipc.Result) error {
	p.mu.Lock()
	if p.state == terminated {
		p.mu.Unlock() // Terminate has settled every task already
		return nil
	}
	t, last, err := p.takeLocked(w, r)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	p.learnLocked(w, t.Func, r.Items)
	tries := t.tries
	retried := p.retryFailedLocked(t, r.From, r.Items)
	p.dispatchLocked()
	p.drainLocked()
	if t.Calls > 1 {
		// The calls of a chunk take a while to settle: let the worker have
		// its next job first.
		p.unlockAndFlush()
	} else {
		p.mu.Unlock() // readLoop flushes once no more results are buffered
	}
	if ev := p.cfg.Events; ev != nil {
		w.runEvents(ev, t, r.From, tries, r.Items)
	}
	w.deliver(t, r.From, last, r.Items, retried)
	return nil
}

// runEvents tells ev of the attempts whose items, of calls from, from+1,
// ... of t, w ran.
func (w *worker) runEvents(ev func(Event), t *Task, from, tries int, items []ipc.Item) {
	var e Event
	for i := range items {
		it := &items[i]
		runEvent(&e, t, from+i)
		e.Host, e.PID, e.Worker, e.Attempts, e.Start, e.End = w.host, w.pid, w.slot, tries, it.Start, it.End
		e.CPU, e.MaxRSS = time.Duration(it.CPU), it.MaxRSS
		e.Fail = ""
		if !it.OK {
			e.Fail = kind.Error
			if it.Err != nil {
				e.Fail = Kind(it.Err.Kind)
			}
		}
		ev(e)
	}
	w.idle = max(w.idle, items[len(items)-1].End)
}

// takeLocked records that r answers the next calls of w's head job; once
// its last call is answered, the job leaves w's in-flight list (last).
func (p *Pool) takeLocked(w *worker, r *ipc.Result) (t *Task, last bool, err error) {
	t = w.headLocked()
	if t == nil || t.id != r.ID {
		return nil, false, fmt.Errorf("%w: result for job %d, which the worker was not running", ipc.ErrMalformed, r.ID)
	}
	if n := len(r.Items); r.From != t.reported || n == 0 || n > t.Calls-t.reported {
		return nil, false, fmt.Errorf("%w: job %d has %d calls, %d answered; a result has %d from %d", ipc.ErrMalformed, t.id, t.Calls, t.reported, n, r.From)
	}
	t.reported += len(r.Items)
	p.stats.TasksDone += len(r.Items)
	if t.reported < t.Calls {
		// A part: the worker goes on with the job. (A big part may have
		// been taken for the job's end as it arrived, and let one job be
		// sent to the worker early; that job waits in its pipe.)
		w.arriving = false
		return t, false, nil
	}
	w.inflight[0] = nil
	w.inflight = w.inflight[1:]
	w.arriving = false
	p.headChangedLocked(w)
	return t, true, nil
}

// learnLocked deepens w's pipeline only for short jobs (measured in the
// worker, so queueing behind other jobs does not count), and keeps an
// average of the time per call of each function, to judge its next jobs by.
func (p *Pool) learnLocked(w *worker, fn string, items []ipc.Item) {
	busy := time.Duration(items[len(items)-1].End - items[0].Start)
	if busy < shortJob {
		w.window = min(w.window*2, w.maxWindow)
	} else if busy > longJob {
		w.window = 1
	}
	per := max(busy/time.Duration(len(items)), 0)
	if avg, ok := p.perTask[fn]; !ok || per > 4*avg {
		p.perTask[fn] = per // react at once to tasks growing long
	} else {
		p.perTask[fn] = avg + (per-avg)/8
	}
}

// retryFailedLocked queues again, alone, the calls of t that failed with a
// kind t retries and may try again; items are those of calls from, from+1,
// .... It reports them by their index in items (nil: none).
func (p *Pool) retryFailedLocked(t *Task, from int, items []ipc.Item) (retried []bool) {
	var again []*Task
	for i := range items {
		it := &items[i]
		if it.OK || it.Err == nil || !retryableLocked(t, Kind(it.Err.Kind)) {
			continue
		}
		if retried == nil {
			retried = make([]bool, len(items))
		}
		retried[i] = true
		if t.Calls == 1 {
			again = append(again, t)
		} else {
			again = append(again, t.one(from+i))
		}
	}
	p.requeueLocked(again) // none is cancelled: retryableLocked says so
	return retried
}

// deliver hands the outcome of calls from, from+1, ... of t, which w ran,
// to its task, but for the calls queued again. The last part of a job
// claims it: a task settled otherwise (by Terminate) hears nothing more.
// The parts before it need no claim: Pool.mu ordered them (see takeLocked)
// before anything else could settle those calls.
func (w *worker) deliver(t *Task, from int, last bool, items []ipc.Item, retried []bool) {
	if retried != nil && t.Calls == 1 {
		return // it runs again, as it is
	}
	if last && !t.claim() {
		return
	}
	// One outcome for all the calls, the reader's own: Each may not keep
	// it, and one on the stack would escape through Each, an allocation per
	// result.
	o := &w.scratch
	for i := range items {
		if retried == nil || !retried[i] {
			w.outcome(o, t, &items[i])
			t.deliver(from+i, o)
		}
	}
	*o = Outcome{}
}

// outcome fills o from item it of task t, which w ran. The item's slices
// point into the reader's buffer; Task.deliver copies what it keeps.
func (w *worker) outcome(o *Outcome, t *Task, it *ipc.Item) {
	*o = Outcome{
		Host: w.host, PID: w.pid, Worker: w.slot, Attempts: t.tries,
		Start: it.Start, End: it.End, Output: it.Output, CPU: time.Duration(it.CPU), MaxRSS: it.MaxRSS, // negative, 0: unknown
	}
	if it.OK {
		o.Value = it.Value
		return
	}
	o.Fail = &Failure{Kind: kind.Error}
	if e := it.Err; e != nil {
		o.Fail.Kind, o.Fail.Message, o.Fail.Stack, o.Fail.Type = Kind(e.Kind), e.Message, e.Stack, e.Type
		o.Fail.Detail = bytes.Clone(e.Detail) // the failure outlives the reader's buffer
	}
}

// retryableLocked reports whether a call of t that failed with kind k may
// run again.
func retryableLocked(t *Task, k Kind) bool {
	return k != kind.Canceled && !t.AtMostOnce && !t.cancelledLocked() && t.Retries > 0 && t.tries <= t.Retries && slices.Contains(t.RetryOn, k)
}
