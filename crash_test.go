package poold_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poold/poold"
)

func TestPanicKeepsWorker(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		r0, err := pid.Apply(ctx, p, struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := explode.Apply(ctx, p, "boom")
		if !errors.Is(err, poold.KindPanic) {
			t.Fatalf("panicking task: %v, want KindPanic", err)
		}
		te := taskErr(t, err)
		if te.Kind != poold.KindPanic || !strings.Contains(te.Message, "explode: boom") {
			t.Errorf("TaskError %+v", te)
		}
		if !strings.Contains(te.Stack, "panicTask") {
			t.Errorf("the stack does not name the function:\n%s", te.Stack)
		}
		if te.PID != r0.Value || r.PID != r0.Value {
			t.Errorf("panic reported on pid %d (result %d); the worker is %d", te.PID, r.PID, r0.Value)
		}
		var we *poold.WorkerExitError
		if errors.As(err, &we) {
			t.Errorf("a panic has a worker exit: %v", we)
		}
		r1, err := pid.Apply(ctx, p, struct{}{})
		if err != nil {
			t.Fatal(err)
		}
		if r1.Value != r0.Value {
			t.Errorf("worker %d before the panic, %d after: it was replaced", r0.Value, r1.Value)
		}
		if s := p.Stats(); s.WorkersStarted != 1 || s.WorkersLost != 0 {
			t.Errorf("stats %+v; want 1 worker started, none lost", s)
		}
	})
}

func TestExitFailsOnlyItsTask(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
	before := p.PIDs()
	const n, crash = 20, 7
	as := make([]*poold.AsyncResult[int], n)
	for i := range n {
		var err error
		if i == crash {
			as[i], err = exitWith.ApplyAsync(p, 3)
		} else {
			as[i], err = slowEcho.ApplyAsync(p, slowArgs{I: i, MS: 20})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, a := range as {
		r, err := a.Get(ctx)
		if i != crash {
			if err != nil || r.Value != i || r.Attempts != 1 {
				t.Errorf("task %d: %v, %v, attempts %d", i, r.Value, err, r.Attempts)
			}
			continue
		}
		if !errors.Is(err, poold.KindWorkerLost) {
			t.Fatalf("exiting task: %v, want KindWorkerLost", err)
		}
		te := taskErr(t, err)
		we := exitErr(t, err)
		if we.ExitCode != 3 || we.Signal != 0 {
			t.Errorf("exit code %d, signal %v; want 3, none", we.ExitCode, we.Signal)
		}
		if we.PID == 0 || te.PID != we.PID || r.PID != we.PID || !slices.Contains(before, we.PID) {
			t.Errorf("pids: task error %d, exit %d, result %d; workers were %v", te.PID, we.PID, r.PID, before)
		}
		if !strings.Contains(err.Error(), fmt.Sprint(we.PID)) || !strings.Contains(err.Error(), "code 3") {
			t.Errorf("message %q does not name the pid and the exit code", err)
		}
		if r.Worker < 0 || r.Worker >= 2 || before[r.Worker] != we.PID {
			t.Errorf("Worker slot %d; workers were %v", r.Worker, before)
		}
		if !gone(we.PID) {
			t.Errorf("the lost worker %d still exists", we.PID)
		}
		after := waitAllReady(t, p)
		if slices.Contains(after, we.PID) {
			t.Errorf("the lost worker %d is still in the pool: %v", we.PID, after)
		}
	}
	if s := p.Stats(); s.WorkersLost != 1 || s.WorkersStarted != 3 {
		t.Errorf("stats %+v; want 1 lost, 3 started", s)
	}
}

func TestKilledBySignal(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	before := p.PIDs()
	_, err := killSelf.Apply(ctx, p, struct{}{})
	if !errors.Is(err, poold.KindWorkerLost) {
		t.Fatalf("%v, want KindWorkerLost", err)
	}
	we := exitErr(t, err)
	if we.Signal != syscall.SIGKILL || we.ExitCode != -1 || we.PID != before[0] {
		t.Errorf("exit %+v; want SIGKILL, exit code -1, pid %d", we, before[0])
	}
	if r, err := square.Apply(ctx, p, 5); err != nil || r.Value != 25 || r.PID == before[0] {
		t.Errorf("after the kill: %v, %v on pid %d", r.Value, err, r.PID)
	}
}

func TestExitWithPipelinedTasks(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
	// Quick tasks deepen each worker's pipeline, so that tasks are queued
	// in the worker that dies: they never started, and must run elsewhere.
	const n, crash = 200, 100
	as := make([]*poold.AsyncResult[int], n)
	for i := range as {
		a := workArgs{I: i}
		if i == crash {
			a.Exit = 3
		}
		var err error
		if as[i], err = work.ApplyAsync(p, a); err != nil {
			t.Fatal(err)
		}
	}
	for i, a := range as {
		r, err := a.Get(ctx)
		if i == crash {
			if we := exitErr(t, err); !errors.Is(err, poold.KindWorkerLost) || we.ExitCode != 3 {
				t.Errorf("task %d: %v, want worker_lost with exit code 3", i, err)
			}
			continue
		}
		if err != nil || r.Value != i || r.Attempts != 1 {
			t.Errorf("task %d: %d, %v, attempts %d", i, r.Value, err, r.Attempts)
		}
	}
	if s := p.Stats(); s.WorkersLost != 1 || s.TasksDone != n-1 {
		t.Errorf("stats %+v; want 1 worker lost, %d tasks done", s, n-1)
	}

	// In a chunked Map, the chunk of the crash is split up: only the task
	// that exits fails.
	args := make([]workArgs, 40)
	for i := range args {
		args[i] = workArgs{I: i}
	}
	args[13].Exit = 3
	rs, err := work.Map(ctx, p, args, poold.ChunkSize(5))
	if err != rs[13].Err || !errors.Is(err, poold.KindWorkerLost) {
		t.Errorf("Map: %v; want task 13's worker_lost", err)
	}
	for i, r := range rs {
		if i != 13 && (r.Err != nil || r.Value != i) {
			t.Errorf("Map task %d: %d, %v", i, r.Value, r.Err)
		}
	}
}

func TestFatalCrashReportsStderr(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	_, err := goPanic.Apply(ctx, p, "unrecoverable trouble")
	if !errors.Is(err, poold.KindWorkerLost) {
		t.Fatalf("%v, want KindWorkerLost", err)
	}
	we := exitErr(t, err)
	if we.ExitCode != 2 {
		t.Errorf("exit code %d; want Go's 2 for an unrecovered panic", we.ExitCode)
	}
	if !slices.ContainsFunc(we.Stderr, func(l string) bool { return strings.Contains(l, "panic: unrecoverable trouble") }) {
		t.Errorf("the last stderr lines do not have the panic: %q", we.Stderr)
	}
	if !strings.Contains(err.Error(), "unrecoverable trouble") {
		t.Errorf("the error does not say what happened: %v", err)
	}
	if r, err := square.Apply(ctx, p, 3); err != nil || r.Value != 9 {
		t.Errorf("afterwards: %v, %v", r.Value, err)
	}
}

// A task that says why on stderr before it ends its worker: the issue asks
// that a lost worker's error carry "the last lines the worker wrote to
// stderr".
func TestExitReportsTheTasksLastStderrLines(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	r, err := lastWords.Apply(ctx, p, "cannot go on: disk full")
	if !errors.Is(err, poold.KindWorkerLost) {
		t.Fatalf("%v, want KindWorkerLost", err)
	}
	we := exitErr(t, err)
	said := slices.ContainsFunc(we.Stderr, func(l string) bool { return strings.Contains(l, "disk full") }) ||
		strings.Contains(string(r.Output), "disk full")
	if !said {
		t.Errorf("what the task wrote to stderr before exiting is lost: WorkerExitError.Stderr %q, Result.Output %q, error %q",
			we.Stderr, r.Output, err)
	}
}

// A worker that does not read (stopped) does not block ApplyAsync, even for
// an argument larger than its pipe. When it dies while the argument is on
// its way, the task had not started (the worker says where it was, in
// memory its parent reads after its death): it runs on the replacement,
// whatever its retries, and is not counted as an attempt; before, it failed
// with kind encode and PID 0.
func TestWorkerDiesMidWrite(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	for _, retries := range []int{0, 1} {
		p := newPool(t, poold.WithWorkers(1), poold.WithRetries(retries))
		pid := p.PIDs()[0]
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		big := strings.Repeat("x", 4<<20)
		begin := time.Now()
		a, err := echo.ApplyAsync(p, big)
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(begin); el > 500*time.Millisecond {
			t.Errorf("ApplyAsync of 4 MiB to a stopped worker took %v; it must return at once", el)
		}
		time.Sleep(50 * time.Millisecond) // the write is under way, blocked
		syscall.Kill(pid, syscall.SIGKILL)
		r, err := a.Get(ctx)
		if err != nil || r.Attempts != 1 || r.PID == pid || r.PID == 0 {
			t.Errorf("retries %d: %v after %d attempts on pid %d; want success on the replacement of %d, 1 attempt", retries, err, r.Attempts, r.PID, pid)
		}
		if s := p.Stats(); s.WorkersLost != 1 {
			t.Errorf("retries %d: %d workers lost, want 1", retries, s.WorkersLost)
		}
	}
}

// goexitTask ends the goroutine that runs it.
var goexitTask = poold.Register(reg, "goexit", func(context.Context, struct{}) (int, error) {
	runtime.Goexit()
	return 0, nil
})

// A task that calls runtime.Goexit resolves with kind panic (it used to
// wedge its worker for ever); its worker is replaced, later tasks run, and
// Close and Join return.
func TestGoexitResolves(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		before := p.PIDs()[0]
		_, err := goexitTask.Apply(ctx, p, struct{}{})
		te := taskErr(t, err)
		if te.Kind != poold.KindPanic || te.Type != "runtime.Goexit" || te.PID != before {
			t.Fatalf("Goexit: kind %s, type %q, pid %d; want panic, runtime.Goexit, %d", te.Kind, te.Type, te.PID, before)
		}
		r, err := square.Apply(ctx, p, 4)
		if err != nil || r.Value != 16 || (!m.threads && r.PID == before) {
			t.Errorf("the next task: %v, %v on pid %d; want 16 from a new worker", r.Value, err, r.PID)
		}
		if s := p.Stats(); m.threads && s.WorkersStarted != 2 {
			t.Errorf("threads mode: %d worker goroutines started, want a new one in the slot of the one that ended", s.WorkersStarted)
		}
		p.Close()
		if err := p.Join(ctx); err != nil {
			t.Errorf("Join: %v", err)
		}
	})
}

// A running task that ignores its cancellation is killed after the grace:
// it ends with kind canceled, its worker is replaced within grace + 1 s, and
// the task on the other worker is unaffected. Processes only: threads mode
// abandons such a task (threads_test.go), and stubborn ignores SIGTERM for
// its whole process.
func TestCancelStubbornTask(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	const grace = 200 * time.Millisecond
	p := newPool(t, poold.WithWorkers(2), poold.WithKillGrace(grace))
	a, err := stubborn.ApplyAsync(p, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := sleep.ApplyAsync(p, 600)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	begin := time.Now()
	a.Cancel()
	if _, err := a.Get(ctx); !errors.Is(err, poold.KindCanceled) {
		t.Fatalf("a cancelled stubborn task: %v, want KindCanceled", err)
	}
	for slices.Contains(p.PIDs(), 0) && time.Since(begin) < grace+time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if pids := p.PIDs(); slices.Contains(pids, 0) {
		t.Errorf("workers %v: the killed one was not replaced within grace + 1 s", pids)
	}
	if _, err := other.Get(ctx); err != nil {
		t.Errorf("the other task: %v", err)
	}
}
