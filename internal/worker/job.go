package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/kind"
	"github.com/poold/poold/internal/tasks"
)

// checkAfter is how long a job must have run for the kernel to be asked
// about its output even in the middle of a burst of jobs.
const checkAfter = 20 * time.Microsecond

// reportEvery is how long the finished calls of a job may wait in the
// worker before it writes them, as a partial result, ahead of its next
// call: a worker that dies loses at most this much finished work, and a
// job of trivial calls still pays one write for many of them (a write costs
// a few µs; a trivial call well under one).
const reportEvery = time.Millisecond

// runJob runs each argument of t in turn and writes their items: all at
// the end, or in parts before a call once reportEvery has passed since the
// last write (before every call for an eager task). Every item is written
// before the next job starts: a result left in a buffer would be lost if
// the next task crashed the worker.
func (s *server) runJob(t *ipc.Task) error {
	if cap(s.items) < len(t.Args) {
		// Sized once: grown by append, a chunk's items were copied over and
		// over into fresh memory, most of a new worker's first chunk.
		s.items = make([]ipc.Item, 0, len(t.Args))
	}
	if want := 4 * len(t.Args); cap(s.vals) < want {
		s.vals = make([]byte, 0, want)
	}
	j := &s.job
	j.res = ipc.Result{ID: t.ID, Items: s.items[:0]}
	fn, ok := s.reg.Lookup(t.Func)
	ctx := s.base
	if s.control != nil {
		ctx = s.control.start(t.ID)
		defer s.control.end()
	}
	chunk := len(t.Args) > 1
	s.progress.begin(t.ID)
	now := s.cpu.begin(time.Now(), s.waited) // each task starts when the one before it ended
	jobStart, lastWrite := now, now
	for i, arg := range t.Args {
		if len(j.res.Items) > 0 && (t.Eager || now.Sub(lastWrite) >= reportEvery) {
			if err := s.writeItems(i); err != nil {
				return err
			}
			lastWrite = now
		}
		if chunk {
			s.progress.at(i)
		}
		var it ipc.Item
		switch {
		case ctx.Err() != nil:
			it = ipc.Item{Err: &ipc.ErrorInfo{Kind: string(kind.Canceled), Message: "cancelled before it started"}} // Start 0: never started
		case ok:
			j.call = i
			it, now = s.runOne(ctx, fn, arg, time.Duration(t.Timeout), now)
			// Whether to ask the kernel, after the job's last task, for
			// output the mapped page cannot show (see capture): always
			// before the worker waits for input, and after a job long
			// enough for the syscall not to matter; not between the short
			// jobs of a burst, where it would cost a third of a task.
			check := i == len(t.Args)-1 && (!s.rd.Buffered() || now.Sub(jobStart) >= checkAfter)
			it.Output = s.capture.take(check)
			it.MaxRSS = s.peak.after(time.Duration(it.End - it.Start))
		default:
			it = failed(kind.UnknownFunc, fmt.Sprintf("no task named %q; this worker knows %v (%s)", t.Func, s.reg.Names(), registerHint))
		}
		j.res.Items = append(j.res.Items, it)
		// The CPU clock is read after a long call, once cpuSpan has passed
		// since the last reading, and before the worker waits for its
		// next job; an item written before the next reading (the job's
		// result, a partial one at the next call's start, on the same
		// condition) gets an estimate. See cpuLong.
		last := i == len(t.Args)-1
		idle := last && !s.rd.Buffered()
		switch {
		case idle || s.cpu.due(&j.res.Items[len(j.res.Items)-1]):
			s.cpu.settle(j.res.Items, now, idle)
		case last || t.Eager || now.Sub(lastWrite) >= reportEvery:
			s.cpu.estimate(j.res.Items)
		}
	}
	err := s.writeResult(&j.res)
	s.endItems()
	if cap(s.vals) > 4<<20 {
		s.vals = nil // one huge result is no reason to keep its buffer
	}
	return err
}

// jobRun is the job a worker is running: what a task that ends its
// goroutine leaves to write.
type jobRun struct {
	res  ipc.Result // the items not yet written; res.From is the first one's index
	call int        // the index of the call that runs
}

// writeItems writes the items finished so far as a partial result; the
// next one is that of argument next.
func (s *server) writeItems(next int) error {
	err := s.writeResult(&s.job.res)
	s.endItems()
	s.job.res.From = next
	return err
}

// endItems empties the job's items and their values, once written.
func (s *server) endItems() {
	clear(s.job.res.Items)
	s.job.res.Items = s.job.res.Items[:0]
	s.items = s.job.res.Items
	s.vals = s.vals[:0]
	s.cpu.first = 0
}

// goexited runs in the defer of a call whose task called runtime.Goexit:
// nothing can stop its goroutine from ending. The call fails with kind
// panic; the items of the job so far are written with it, so that the
// parent knows the calls after it never started; then a worker process
// exits (its loop is gone), and ServeConn's goroutine ends.
func (s *server) goexited(start time.Time) {
	now := time.Now()
	j := &s.job
	j.res.Items = append(j.res.Items, ipc.Item{Start: start.UnixNano(), End: now.UnixNano(), Err: &ipc.ErrorInfo{
		Kind: string(kind.Panic), Type: "runtime.Goexit",
		Message: "the task called runtime.Goexit, which ends the goroutine that runs it: its worker ends after this result",
		Stack:   string(debug.Stack()),
	}})
	s.cpu.settle(j.res.Items, now, true)
	s.writeResult(&j.res)
	if s.owner {
		os.Exit(3)
	}
}

// runOne runs one task, turning a panic into a result. start is when the
// task starts; the returned time is when it ended. The caller collects what
// it printed.
func (s *server) runOne(job context.Context, fn tasks.Func, arg msgpack.RawMessage, timeout time.Duration, start time.Time) (it ipc.Item, end time.Time) {
	ctx, cancel := job, context.CancelFunc(func() {})
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(job, timeout)
	}

	// The values of a job's tasks go back to back in one buffer.
	out, stack, err := s.call(ctx, fn, arg, s.vals, start)
	var val msgpack.RawMessage
	if err == nil {
		val, s.vals = out[len(s.vals):len(out):len(out)], out
	}
	end = time.Now()
	it.Start, it.End = start.UnixNano(), end.UnixNano()

	defer cancel()

	if err == nil {
		it.OK, it.Value = true, val
		return it, end
	}
	it.Err = Classify(ctx, err, stack, timeout)
	return it, end
}

// Classify is the failure of a task whose context was ctx (with time
// limit timeout, 0 for none) and that returned err, or panicked (stack is
// then its stack): its kind, message, type and detail.
func Classify(ctx context.Context, err error, stack string, timeout time.Duration) *ipc.ErrorInfo {
	e := &ipc.ErrorInfo{Kind: string(kind.Error), Message: err.Error(), Stack: stack, Type: errorType(err)}
	switch {
	case stack != "":
		e.Kind = string(kind.Panic)
	case errors.Is(err, tasks.ErrEncodeResult):
		e.Kind = string(kind.Encode)
	case errors.Is(err, tasks.ErrBadArgs):
		e.Kind = string(kind.BadArgs)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		e.Kind, e.Message = string(kind.Timeout), fmt.Sprintf("time limit of %v passed: %v", timeout, err)
	case ctx.Err() != nil:
		e.Kind = string(kind.Canceled)
	default:
		e.Kind, e.Detail = errorKind(err)
	}
	return e
}

// PanicError is the error a task's recovered panic of value v becomes.
func PanicError(v any) error { return &panicError{v} }

// call runs fn, appending its result to dst, and turns a panic into an
// error with its stack. A task that calls runtime.Goexit never returns
// here: see goexited.
func (s *server) call(ctx context.Context, fn tasks.Func, arg msgpack.RawMessage, dst []byte, start time.Time) (out []byte, stack string, err error) {
	returned := false
	defer func() {
		if r := recover(); r != nil {
			out, stack, err = dst, string(debug.Stack()), &panicError{r}
		} else if !returned {
			s.goexited(start)
		}
	}()
	out, err = fn(ctx, arg, dst)
	returned = true
	return out, "", err
}

func failed(k kind.Kind, msg string) ipc.Item {
	now := time.Now().UnixNano()
	return ipc.Item{Err: &ipc.ErrorInfo{Kind: string(k), Message: msg}, Start: now, End: now}
}

// writeResult writes and flushes res. A value that is not well-formed
// msgpack, or a result too large for a frame, fails its task alone; the
// worker and the stream carry on.
func (s *server) writeResult(res *ipc.Result) error {
	err := s.wr.WriteResult(res)
	if err != nil {
		budget := s.wr.MaxFrame()/(2*len(res.Items)) - 64
		for i := range res.Items {
			it := &res.Items[i]
			ran := *it // the call ran all the same: its times stay
			if it.OK && len(it.Value) > 0 && ipc.Validate(it.Value) != nil {
				*it = failed(kind.Encode, "the task returned a value that is not well-formed msgpack")
			} else if len(it.Value)+len(it.Output) > budget {
				size := len(it.Value) + len(it.Output)
				*it = failed(kind.ResultTooLarge, fmt.Sprintf("result of %d bytes does not fit in a frame of at most %d bytes", size, s.wr.MaxFrame()))
			} else {
				continue
			}
			it.Start, it.End, it.CPU, it.MaxRSS = ran.Start, ran.End, ran.CPU, ran.MaxRSS
		}
		err = s.wr.WriteResult(res)
	}
	if err != nil {
		return err
	}
	return s.wr.Flush()
}
