package pool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"syscall"
	"time"

	"github.com/poold/poold/internal/ipc"
)

// The hot path, in the order a task travels: dispatchLocked hands jobs to
// workers, flush encodes and writes them, readLoop reads and decodes results,
// onResult resolves the tasks and dispatches again.

const (
	syscallSIGTERM = syscall.SIGTERM
	syscallSIGKILL = syscall.SIGKILL

	// A job that took the worker less than shortJob lets that worker's
	// window double; one that took longer than longJob shrinks it to 1, so
	// that long tasks never queue behind each other while a worker idles.
	shortJob = time.Millisecond
	longJob  = 5 * time.Millisecond
)

// dispatchLocked moves queued jobs to workers: to idle workers first, then,
// for a job expected to be short, to the least loaded worker whose window has
// room.
func (p *Pool) dispatchLocked() {
	for p.qhead < len(p.queue) {
		j := p.queue[p.qhead]
		w := p.pickLocked(j)
		if w == nil {
			break
		}
		if budget := w.budgetLocked(); budget < j.calls {
			// A worker retires after exactly MaxTasksPerWorker tasks: it
			// gets the part of a job that fits, the rest waits its turn.
			head, tail := p.splitJobLocked(j, budget)
			p.queue[p.qhead] = tail
			j = head
		} else {
			p.queue[p.qhead] = nil
			p.qhead++
		}
		w.inflight = append(w.inflight, j)
		w.assigned += j.calls
		if len(w.inflight) == 1 {
			p.headChangedLocked(w)
		}
		for _, t := range j.tasks {
			t.Attempts++
		}
		p.sendLocked(w, j, len(w.inflight) == 1 || (w.finishing && len(w.inflight) == 2))
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

// budgetLocked is how many more tasks w may be given before it retires.
func (w *worker) budgetLocked() int {
	if max := w.p.cfg.MaxTasksPerWorker; max > 0 {
		return max - w.assigned
	}
	return math.MaxInt
}

// pickLocked chooses the worker for j: an idle worker if there is one; else a
// busy worker only if tasks of j's function have proved short enough that j
// would take under shortJob, so that a job never waits in one worker's pipe
// behind a long one while another worker could soon run it.
func (p *Pool) pickLocked(j *job) *worker {
	per, known := p.perTask[j.fn]
	short := known && time.Duration(j.calls)*per < shortJob
	var best *worker
	for _, w := range p.slots {
		if w == nil || !w.ready || w.stopping || w.blame != nil {
			continue
		}
		k := len(w.inflight)
		if w.finishing {
			k-- // its only job is done: it reads its input next
		}
		if k == 0 {
			return w
		}
		if short && k < w.window && w.roomLocked(j) && (best == nil || k < len(best.inflight)) {
			best = w
		}
	}
	return best
}

// roomLocked reports whether j fits in the pipe to busy worker w beside the
// jobs already waiting there. A busy worker does not read its input until
// it has written its result; were its pipe full, a write to it would block
// whoever flushes (often the reader of its results, which must go on
// reading), and both would wait for each other. Jobs behind the running one
// are at most what its pipe holds unread, so half the pipe leaves margin.
func (w *worker) roomLocked(j *job) bool {
	queued := j.size
	for _, x := range w.inflight[1:] {
		queued += x.size
	}
	return queued <= w.pipeCap/2
}

// flush writes the jobs dispatched to w, in dispatch order. It runs on the
// goroutine that dispatched them (a submitter, or a reader that just got a
// result), so a task reaches its worker without waking another goroutine.
// Concurrent flushers coalesce: whoever holds wmu writes everything queued,
// with one syscall when it fits the buffer. Nobody waits for wmu: a flusher
// that finds it taken leaves its jobs to the holder, which looks at the
// outbox once more after it lets go. So the only wait is the holder's, in
// write(2), and a reader of results never waits behind a write that needs
// its worker to read.
func (w *worker) flush() {
	for w.wmu.TryLock() {
		unsent := w.writeQueued()
		w.wmu.Unlock()
		if unsent {
			w.p.mu.Lock()
			w.p.dispatchLocked()
			w.p.unlockAndFlush()
		}
		w.omu.Lock()
		more := len(w.outbox) > 0 || (w.closing && !w.inClosed.Load())
		w.omu.Unlock()
		if !more {
			return
		}
	}
}

// writeQueued writes the outbox until it stays empty; the caller holds wmu.
// It reports whether a job could not be encoded and was taken back.
func (w *worker) writeQueued() (unsent bool) {
	for {
		w.omu.Lock()
		jobs := w.outbox
		if len(jobs) > 0 { // swap buffers; jobs is ours until it becomes the spare
			w.outbox, w.spare = w.spare[:0], nil
		}
		closing := w.closing
		w.omu.Unlock()
		if len(jobs) == 0 {
			if closing && !w.stdinClosed {
				// Nothing more will come: EOF tells the worker to finish
				// what it has and exit.
				w.closeStdinLocked()
			}
			return unsent
		}
		for _, j := range jobs {
			if !w.broken && !w.write(j) {
				unsent = true
			}
		}
		if !w.broken {
			if err := w.out.Flush(); err != nil {
				// The worker is gone; readLoop sees EOF and settles its jobs.
				w.broken = true
				w.log.Debug("write to worker failed", "error", err)
			}
		}
		clear(jobs)
		w.spare = jobs[:0]
	}
}

// closeStdinLocked closes the pipe to the worker's stdin; the caller holds
// wmu.
func (w *worker) closeStdinLocked() {
	if !w.stdinClosed {
		w.stdinClosed = true
		w.inClosed.Store(true)
		w.stdin.Close()
	}
}

// write encodes one job into w's buffer. Submit checked the arguments, so
// encoding should not fail; if it does, the job never reaches the worker:
// take it back and fail it alone.
func (w *worker) write(j *job) bool {
	t := &w.frame // reused: only the holder of wmu touches it
	t.ID, t.Func, t.Timeout = j.id, j.fn, int64(j.timeout)
	t.Args, t.Calls = t.Args[:0], 0
	if j.calls != len(j.tasks) {
		t.Calls = j.calls // a chunk: its arguments are one element
	}
	for _, task := range j.tasks {
		t.Args = append(t.Args, task.Args)
	}
	err := w.out.WriteTask(t)
	if err == nil {
		return true
	}
	w.p.mu.Lock()
	for i, x := range w.inflight {
		if x == j {
			w.inflight = append(w.inflight[:i], w.inflight[i+1:]...)
			if i == 0 {
				w.p.headChangedLocked(w)
			}
			break
		}
	}
	w.p.mu.Unlock()
	for _, task := range j.tasks {
		task.fail(KindEncode, err.Error(), 0, nil)
		task.finish()
	}
	return false
}

// unlockAndFlush releases p.mu, then writes what was dispatched while it
// was held. Every critical section that may dispatch ends with it.
func (p *Pool) unlockAndFlush() {
	dirty := p.dirty
	p.dirty = nil
	for _, w := range dirty {
		w.dirty = false
	}
	p.mu.Unlock()
	for _, w := range dirty {
		w.flush()
	}
}

// flushDirty writes whatever has been dispatched and not yet written.
func (p *Pool) flushDirty() {
	p.mu.Lock()
	p.unlockAndFlush()
}

// sendLocked queues j for w's pipe. A job for an idle worker is written by
// the caller's unlockAndFlush, at once; one for a busy worker waits for that
// worker's reader, which flushes after each burst of results: the worker has
// work until then, and jobs submitted one by one leave in one write.
func (p *Pool) sendLocked(w *worker, j *job, idle bool) {
	w.omu.Lock()
	w.outbox = append(w.outbox, j)
	w.omu.Unlock()
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
			w.flush()
			// The next read parks this thread in the kernel, holding its P
			// for a while; a caller woken by these results would wait in
			// that P's queue. Let it run here first.
			runtime.Gosched()
		}
	}
	w.p.flushDirty()
	if !errors.Is(err, io.EOF) {
		// Garbage, an oversized frame or a lie about a task: the stream can
		// no longer be trusted. Blame the job the worker was running.
		w.p.mu.Lock()
		if w.blame == nil {
			b := &blame{kind: KindProtocol, reason: "protocol error: " + err.Error()}
			if len(w.inflight) > 0 {
				b.jobID = w.inflight[0].id
			}
			if !w.ready {
				b.kind = KindStart
			}
			w.blame = b
		}
		w.p.mu.Unlock()
		w.signal(syscall.SIGKILL)
	} else {
		// EOF: the worker is exiting, or closed its stdout and lives on.
		w.killAfter(w.p.cfg.KillGrace)
	}
	exit := w.wait()
	w.wmu.Lock() // the worker is gone: a holder's write fails at once
	w.closeStdinLocked()
	w.wmu.Unlock()
	w.p.onExit(w, exit)
}

// bigResult is the size from which a result frame takes long enough to
// read and settle (a chunk's, typically) that its worker is given its next
// job as the frame starts to arrive, not once it has been settled.
const bigResult = 64 << 10

// resultArriving runs when the header of a big frame from w has been read:
// w has finished its job and is writing the result. If that was its only
// job, it reads its input next, so it may have another now; the write goes
// on another goroutine, because w reads it only after this goroutine has
// read the whole result.
func (w *worker) resultArriving() {
	p := w.p
	p.mu.Lock()
	if len(w.inflight) != 1 || w.finishing || w.stopping || p.state == terminated {
		p.mu.Unlock()
		return
	}
	w.finishing = true
	p.dispatchLocked()
	dirty := p.dirty
	p.dirty = nil
	for _, x := range dirty {
		x.dirty = false
	}
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
	if m.Kind != ipc.KindHello {
		return fmt.Errorf("%w: first message is %s, want hello", ipc.ErrMalformed, m.Kind)
	}
	if m.Hello.Version != ipc.ProtocolVersion {
		return fmt.Errorf("%w: worker speaks protocol %d, want %d", ipc.ErrMalformed, m.Hello.Version, ipc.ProtocolVersion)
	}
	p := w.p
	p.mu.Lock()
	if w.blame != nil { // the handshake timer fired first
		p.mu.Unlock()
		return errHandshake
	}
	w.ready = true
	stopTimer(w.startTimer)
	p.failures = 0
	if p.funcs == nil {
		p.funcs = make(map[string]bool, len(m.Hello.Tasks))
		for _, name := range m.Hello.Tasks {
			p.funcs[name] = true
		}
		p.names = m.Hello.Tasks
	}
	p.stats.WorkersStarted++
	w.log.Debug("worker ready", "tasks", len(m.Hello.Tasks))
	p.cond.Broadcast()
	p.dispatchLocked()
	p.drainLocked()
	p.unlockAndFlush()
	return nil
}

// onResult resolves the job at the head of w's in-flight list. A result for
// any other job is a protocol error: a worker answers in order.
func (p *Pool) onResult(w *worker, r *ipc.Result) error {
	p.mu.Lock()
	if p.state == terminated {
		p.mu.Unlock() // Terminate has settled every task already
		return nil
	}
	if len(w.inflight) == 0 || w.inflight[0].id != r.ID {
		p.mu.Unlock()
		return fmt.Errorf("%w: result for job %d, which the worker was not running", ipc.ErrMalformed, r.ID)
	}
	j := w.inflight[0]
	if len(r.Items) != j.calls {
		p.mu.Unlock()
		return fmt.Errorf("%w: job %d has %d tasks, result has %d", ipc.ErrMalformed, j.id, j.calls, len(r.Items))
	}
	w.inflight[0] = nil
	w.inflight = w.inflight[1:]
	w.finishing = false
	p.headChangedLocked(w)
	p.stats.TasksDone += j.calls

	// Deepen the pipeline only for short jobs (measured in the worker, so
	// queueing behind other jobs does not count), and keep an average of the
	// time per task of each function, to judge its next jobs by.
	busy := time.Duration(r.Items[len(r.Items)-1].End - r.Items[0].Start)
	if busy < shortJob {
		w.window = min(w.window*2, p.cfg.MaxWindow)
	} else if busy > longJob {
		w.window = 1
	}
	per := max(busy/time.Duration(len(r.Items)), 0)
	if avg, ok := p.perTask[j.fn]; !ok || per > 4*avg {
		p.perTask[j.fn] = per // react at once to tasks growing long
	} else {
		p.perTask[j.fn] = avg + (per-avg)/8
	}
	// Calls that timed out and may try again go back to the queue, alone.
	var retry []*job
	var retried []bool // by item: queued again rather than finished
	k := 0
	for _, t := range j.tasks {
		for i := range t.calls() {
			if it := &r.Items[k]; !it.OK && it.Err != nil && Kind(it.Err.Kind) == KindTimeout && p.retryableLocked(t) {
				if retried == nil {
					retried = make([]bool, j.calls)
				}
				retried[k] = true
				one := t
				if t.calls() > 1 {
					off := argsLen(t.Args, i)
					end := off + argsLen(t.Args[off:], 1)
					one = t.part(i, i+1, t.Args[off:end:end])
				}
				retry = append(retry, p.newJobLocked(j.fn, j.timeout, one))
			}
			k++
		}
	}
	if len(retry) > 0 {
		p.queue = append(retry, p.queue[p.qhead:]...)
		p.qhead = 0
	}
	p.dispatchLocked()
	p.drainLocked()
	if j.calls > 1 {
		// The calls of a chunk take a while to settle: let the worker have
		// its next job first.
		p.unlockAndFlush()
	} else {
		p.mu.Unlock() // readLoop flushes once no more results are buffered
	}

	k = 0
	for _, t := range j.tasks {
		n := t.calls()
		if n == 1 {
			if retried == nil || !retried[k] {
				w.outcome(&t.Outcome, t, &r.Items[k])
				t.finish()
			}
		} else {
			var skip []bool
			if retried != nil {
				skip = retried[k : k+n]
			}
			w.deliverChunk(t, r.Items[k:k+n], skip)
		}
		k += n
	}
	return nil
}

// deliverChunk hands each call's outcome of chunk t to its Each, but for the
// calls to skip (queued again).
func (w *worker) deliverChunk(t *Task, items []ipc.Item, skip []bool) {
	t.finished.Store(true) // its calls' outcomes go to its chunk one by one
	var o Outcome          // one for all the calls: Each may not keep it
	for i := range items {
		if skip == nil || !skip[i] {
			o = Outcome{}
			w.outcome(&o, t, &items[i])
			t.deliver(i, &o)
		}
	}
}

// outcome fills o from item it of task t, which w ran. The item's slices
// point into the reader's buffer: they are copied for a single call, whose
// outcome the caller keeps, and not for the call of a chunk, which Each
// must copy if it keeps them.
func (w *worker) outcome(o *Outcome, t *Task, it *ipc.Item) {
	o.PID, o.Worker, o.Attempts = w.pid, w.slot, t.Attempts
	o.Start, o.End = it.Start, it.End
	o.Output = it.Output
	if t.calls() == 1 && t.parent == nil {
		o.Output = bytes.Clone(it.Output)
	}
	if it.OK {
		o.Value = it.Value
		if t.calls() == 1 && t.parent == nil {
			o.Value = bytes.Clone(it.Value)
		}
		return
	}
	e := &TaskError{Kind: KindError, Func: t.Func, PID: w.pid, Attempts: t.Attempts}
	if it.Err != nil {
		e.Kind, e.Message, e.Stack = Kind(it.Err.Kind), it.Err.Message, it.Err.Stack
	}
	o.Err = e
}

// retireLocked stops a worker that has run its share of tasks and starts
// its replacement at once, so that nothing waits for the old one to leave.
func (p *Pool) retireLocked(w *worker) {
	if w.stopping || p.state == terminated {
		return
	}
	p.stopLocked(w)
	p.slots[w.slot] = nil
	p.startLocked(w.slot, 0)
}

// onExit settles a reaped worker: the job it was running fails (or is
// retried), the jobs behind it go back to the front of the queue, and its
// slot gets a new worker.
func (p *Pool) onExit(w *worker, exit *WorkerExitError) {
	var failed []*Task
	p.mu.Lock()
	p.live--
	w.stopping = true
	w.omu.Lock()
	w.outbox, w.closing = nil, true // its jobs are in inflight, settled below
	w.omu.Unlock()
	stopTimer(w.startTimer)
	stopTimer(w.deadline)
	if p.slots[w.slot] == w {
		p.slots[w.slot] = nil
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
	switch {
	case !w.ready:
		if p.state != terminated {
			p.startFailedLocked(w.slot, exit)
		}
	default:
		lost := w.inflight
		w.inflight = nil
		if len(lost) > 0 || w.blame != nil {
			p.stats.WorkersLost++
			w.log.Warn("worker lost", "exit", exit.Error(), "tasks_in_flight", len(lost))
		} else {
			w.log.Debug("worker exited", "exit", exit.Error())
		}
		failed = p.settleLostLocked(w, lost, exit)
		if p.slots[w.slot] == nil && p.state != terminated && (p.state == running || p.pendingLocked() > 0) {
			p.startLocked(w.slot, 0)
		}
	}
	p.dispatchLocked()
	p.drainLocked()
	p.maybeExitedLocked()
	p.unlockAndFlush()
	finishAll(failed)
}

// settleLostLocked decides the fate of a dead worker's in-flight jobs. The
// head job was running: its task fails with the kind the pool blamed (or
// worker_lost), unless it has retries left. A chunk that was running is
// split into single tasks and queued again, so that only the task that
// kills a worker fails. Jobs behind the head never started: they go back to
// the front of the queue, in order.
func (p *Pool) settleLostLocked(w *worker, lost []*job, exit *WorkerExitError) (failed []*Task) {
	if len(lost) == 0 {
		return nil
	}
	var requeue []*job
	head := lost[0]
	kind := KindWorkerLost
	if w.blame != nil && w.blame.jobID == head.id {
		kind = w.blame.kind
	}
	if head.calls > 1 {
		// A chunk's results travel together, so its finished calls died
		// with the worker too, and nothing says which call killed it. Run
		// each again alone: only the culprit fails again, with its own kind.
		for _, t := range head.tasks {
			t.Attempts-- // we cannot tell which of them ran: none counts
			if t.calls() == 1 {
				requeue = append(requeue, p.newJobLocked(head.fn, head.timeout, t))
				continue
			}
			for _, one := range t.split(1) {
				requeue = append(requeue, p.newJobLocked(head.fn, head.timeout, one))
			}
		}
	} else {
		for _, t := range head.tasks {
			if (kind == KindWorkerLost || kind == KindTimeout) && p.retryableLocked(t) {
				requeue = append(requeue, p.newJobLocked(head.fn, head.timeout, t))
				continue
			}
			t.Worker = w.slot
			t.fail(kind, exit.Error(), w.pid, exit)
			failed = append(failed, t)
		}
	}
	for _, j := range lost[1:] {
		for _, t := range j.tasks {
			t.Attempts--
		}
		p.nextJob++ // an id names a job on one worker: a fresh one for the next
		j.id = p.nextJob
		requeue = append(requeue, j)
	}
	if p.state == terminated {
		for _, j := range requeue {
			for _, t := range j.tasks {
				t.fail(KindTerminated, "pool terminated before the task finished", 0, nil)
				failed = append(failed, t)
			}
		}
		return failed
	}
	p.queue = append(requeue, p.queue[p.qhead:]...)
	p.qhead = 0
	return failed
}

func (p *Pool) retryableLocked(t *Task) bool {
	retries := t.Retries
	if retries == 0 {
		retries = p.cfg.Retries
	}
	return retries > 0 && t.Attempts <= retries
}

func (p *Pool) newJobLocked(fn string, timeout time.Duration, ts ...*Task) *job {
	p.nextJob++
	j := newJob(fn, len(ts))
	j.id, j.timeout = p.nextJob, timeout
	for _, t := range ts {
		j.add(t)
	}
	return j
}

// splitJobLocked cuts j after its first k calls (0 < k < j.calls), cutting
// a chunk in two where the cut falls inside it.
func (p *Pool) splitJobLocked(j *job, k int) (head, tail *job) {
	var first, rest []*Task
	n := 0
	for _, t := range j.tasks {
		switch c := t.calls(); {
		case n >= k:
			rest = append(rest, t)
		case n+c <= k:
			first = append(first, t)
		default:
			a, b := t.splitAt(k - n)
			first, rest = append(first, a), append(rest, b)
		}
		n += t.calls()
	}
	return p.newJobLocked(j.fn, j.timeout, first...), p.newJobLocked(j.fn, j.timeout, rest...)
}

// headChangedLocked arms the deadline of w's new head job, which starts about
// now (a worker starts a job as soon as it has written the result before it). The timer names the job: if it fires after that job has
// finished, it does nothing, so a kill never hits the task that runs next.
func (p *Pool) headChangedLocked(w *worker) {
	if w.deadline != nil {
		w.deadline.Stop()
		w.deadline = nil
	}
	if len(w.inflight) == 0 || w.inflight[0].timeout <= 0 {
		return
	}
	j := w.inflight[0]
	// The worker cancels each task's context at its limit; the kill is for
	// a task that ignores it. A chunk's tasks each have the limit.
	limit := time.Duration(j.calls) * j.timeout
	w.deadline = time.AfterFunc(limit+p.cfg.KillGrace, func() {
		p.mu.Lock()
		hit := len(w.inflight) > 0 && w.inflight[0] == j && w.blame == nil
		if hit {
			w.blame = &blame{kind: KindTimeout, jobID: j.id,
				reason: fmt.Sprintf("killed: the task ran past its time limit of %v and ignored cancellation for %v", j.timeout, p.cfg.KillGrace)}
		}
		p.mu.Unlock()
		if hit {
			w.signal(syscall.SIGKILL)
		}
	})
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}
