package pool

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/poold/poold/internal/kind"
)

// Fast tests of the scheduler: the workers are goroutines running the real
// worker loop over os.Pipe (see goLauncher), so dispatch, settlement after a
// loss, splitting and retries are tested without exec.

// Idle workers are served first: as many calls as workers, each on its own.
func TestSchedIdleWorkersFirst(t *testing.T) {
	t.Parallel()
	p, _ := newGoPool(t, Config{Workers: 3})
	pids := map[int]bool{}
	for _, c := range run(t, p, "sleep_ms", 1, 200, 200, 200) {
		pids[value[int](t, c)] = true
	}
	if len(pids) != 3 {
		t.Errorf("3 sleeps on 3 idle workers ran on %d of them", len(pids))
	}
}

// A worker dies inside a chunk: only the culprit fails, with the exit, and
// it does not run again: the pool knows where the worker was. The calls
// before it ran, but their results died with the worker: they run again,
// and their attempts say so. The calls after it never started: they run
// once.
func TestSchedChunkLossSplits(t *testing.T) {
	t.Parallel()
	p, l := newGoPool(t, Config{Workers: 2})
	const n, culprit = 12, 7
	args := ints(n)
	args[culprit] = -3
	cs := run(t, p, "work", n, args...)
	for i, c := range cs {
		if i == culprit {
			if !failed(c, kind.WorkerLost) || c.Fail.Exit == nil || c.Fail.Exit.ExitCode != 3 || c.PID == 0 || c.Attempts != 1 {
				t.Errorf("culprit: %+v, pid %d, attempts %d; want worker_lost with exit code 3, its pid, 1 attempt", c.Fail, c.PID, c.Attempts)
			}
			continue
		}
		// A call before the culprit ran twice, unless the worker reported
		// it before it died (it does so once a millisecond has passed).
		l.mu.Lock()
		runs := l.runs[i]
		l.mu.Unlock()
		if value[int](t, c) != i || c.PID == 0 || c.Attempts != runs || (i > culprit && runs != 1) {
			t.Errorf("call %d: pid %d, attempts %d, runs %d", i, c.PID, c.Attempts, runs)
		}
	}
	if s := p.Stats(); s.WorkersLost != 1 {
		t.Errorf("workers lost %d, want 1: the culprit does not run again", s.WorkersLost)
	}
}

// Calls slower than the worker's report interval are reported as they
// finish: a death loses none of them, and the calls after the culprit
// never ran.
func TestSchedChunkLossReported(t *testing.T) {
	t.Parallel()
	p, _ := newGoPool(t, Config{Workers: 1})
	args := []any{5, 5, 5, -1, 5, 5} // sleep 5 ms each; the fourth call dies
	cs := run(t, p, "sleep_or_die", len(args), args...)
	for i, c := range cs {
		switch {
		case i == 3:
			if !failed(c, kind.WorkerLost) || c.Attempts != 1 {
				t.Errorf("culprit: %+v, attempts %d", c.Fail, c.Attempts)
			}
		case c.Fail != nil || c.Attempts != 1:
			t.Errorf("call %d: %+v, attempts %d; want success at the first attempt", i, c.Fail, c.Attempts)
		}
	}
}

// At most once: a call lost with its worker fails and never runs again,
// and so do calls of the chunk that may have run.
func TestSchedAtMostOnce(t *testing.T) {
	t.Parallel()
	p, l := newGoPool(t, Config{Workers: 1})
	cs, wait := start(t, p, "flaky", 1, &Task{Retries: 3, RetryOn: []Kind{kind.WorkerLost}, AtMostOnce: true}, nil)
	wait()
	if c := cs[0]; !failed(c, kind.WorkerLost) || c.Attempts != 1 || l.flaky.Load() != 1 {
		t.Errorf("flaky, at most once, 3 retries: %+v after %d attempts, %d runs; want one run, failed", c.Fail, c.Attempts, l.flaky.Load())
	}
	args := ints(6)
	args[3] = -2
	cs, wait = start(t, p, "work", 6, &Task{AtMostOnce: true}, args...)
	wait()
	for i, c := range cs {
		switch {
		case i == 3:
			if !failed(c, kind.WorkerLost) {
				t.Errorf("culprit: %+v", c.Fail)
			}
		case c.Fail != nil || c.Attempts != 1:
			t.Errorf("call %d: %+v, attempts %d; an eager worker reported it, or it never started", i, c.Fail, c.Attempts)
		}
	}
}

// A task that calls runtime.Goexit fails with kind panic; its worker ends,
// and the calls after it in its chunk run elsewhere, once.
func TestSchedGoexit(t *testing.T) {
	t.Parallel()
	p, _ := newGoPool(t, Config{Workers: 1})
	cs := run(t, p, "goexit", 4, 0, 1, -1, 3)
	for i, c := range cs {
		switch {
		case i == 2:
			if !failed(c, kind.Panic) || c.Fail.Type != "runtime.Goexit" {
				t.Errorf("the Goexit call: %+v", c.Fail)
			}
		case c.Fail != nil || c.Attempts != 1:
			t.Errorf("call %d: %+v, attempts %d", i, c.Fail, c.Attempts)
		}
	}
	if c := run(t, p, "echo", 1, 9)[0]; value[int](t, c) != 9 {
		t.Error("the pool did not go on")
	}
}

// Retries: a call that loses its worker runs again under its retries, and
// says so in its attempts; without retries it fails at once, and the calls
// queued behind it on that worker run elsewhere.
func TestSchedRetriesAfterLoss(t *testing.T) {
	t.Parallel()
	p, _ := newGoPool(t, Config{Workers: 1})
	cs, wait := start(t, p, "flaky", 1, &Task{Retries: 1, RetryOn: []Kind{kind.WorkerLost}}, nil)
	wait()
	if c := cs[0]; c.Fail != nil || c.Attempts != 2 {
		t.Errorf("flaky with 1 retry: %+v, attempts %d; want success on attempt 2", c.Fail, c.Attempts)
	}

	p, _ = newGoPool(t, Config{Workers: 1})
	cs = run(t, p, "work", 1, -5, 1, 2)
	if c := cs[0]; !failed(c, kind.WorkerLost) || c.Attempts != 1 {
		t.Errorf("a death without retries: %+v, attempts %d", c.Fail, c.Attempts)
	}
	for i, c := range cs[1:] {
		if value[int](t, c) != i+1 || c.Attempts != 1 {
			t.Errorf("call %d behind the loss: attempts %d", i+1, c.Attempts)
		}
	}
}

// A worker whose budget of calls ends inside a chunk gets the part that
// fits; no worker runs more calls than its budget, and every call has its
// own result.
func TestSchedBudgetCutsChunks(t *testing.T) {
	t.Parallel()
	const limit, n = 3, 20
	p, l := newGoPool(t, Config{Workers: 1, MaxTasksPerWorker: limit})
	cs := run(t, p, "pid", 5, make([]any, n)...)
	perPID := map[int]int{}
	for i, c := range cs {
		if pid := value[int](t, c); pid != c.PID {
			t.Errorf("call %d: ran on %d, reported %d", i, pid, c.PID)
		}
		perPID[c.PID]++
	}
	for pid, k := range perPID {
		if k > limit {
			t.Errorf("worker %d ran %d calls, over its budget of %d", pid, k, limit)
		}
	}
	if want := (n + limit - 1) / limit; len(perPID) != want {
		t.Errorf("%d calls ran on %d workers, want %d", n, len(perPID), want)
	}
	if got := l.launched.Load(); got < int64(len(perPID)) {
		t.Errorf("%d launches for %d workers", got, len(perPID))
	}
}

// A chunk too big for one frame travels in parts.
func TestSchedChunkFitsFrames(t *testing.T) {
	t.Parallel()
	p, _ := newGoPool(t, Config{Workers: 2, MaxFrame: 4096})
	args := make([]any, 40)
	for i := range args {
		args[i] = strings.Repeat(fmt.Sprint(i%10), 200)
	}
	for i, c := range run(t, p, "echo", 40, args...) {
		if got := value[string](t, c); got != args[i] {
			t.Errorf("call %d: %q", i, got)
		}
	}
}

// A call that ignores its cancelled context is killed after the grace,
// with kind timeout; the worker is replaced and the next call runs.
func TestSchedTimeoutKills(t *testing.T) {
	t.Parallel()
	p, _ := newGoPool(t, Config{Workers: 1, KillGrace: 50 * time.Millisecond})
	cs, wait := start(t, p, "hang", 1, &Task{Timeout: 50 * time.Millisecond}, nil)
	wait()
	if c := cs[0]; !failed(c, kind.Timeout) || c.Fail.Exit == nil || !strings.Contains(c.Fail.Exit.Reason, "time limit") {
		t.Fatalf("hang with a limit: %+v", c.Fail)
	}
	if c := run(t, p, "echo", 1, 1)[0]; value[int](t, c) != 1 {
		t.Error("the replacement did not run the next call")
	}
}

// Terminate fails what is queued and what runs, with kind terminated; the
// running call names its worker.
func TestSchedTerminate(t *testing.T) {
	t.Parallel()
	p, _ := newGoPool(t, Config{Workers: 1, KillGrace: 50 * time.Millisecond})
	cs, wait := start(t, p, "hang", 1, nil, nil, nil, nil)
	time.Sleep(20 * time.Millisecond)
	p.Terminate()
	wait()
	for i, c := range cs {
		if !failed(c, kind.Terminated) {
			t.Errorf("call %d: %+v", i, c.Fail)
		}
	}
	if cs[0].PID == 0 || cs[1].PID != 0 {
		t.Errorf("pids %d, %d: want the running call's worker, then none", cs[0].PID, cs[1].PID)
	}
	if err := p.Submit(&Task{Func: "echo", Calls: 1}); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("Submit after Terminate: %v", err)
	}
}

// A worker that cannot be launched is retried with back-off; one that
// never can makes New fail with the launcher's error.
func TestSchedLaunchFailures(t *testing.T) {
	t.Parallel()
	l := newGoLauncher()
	l.fail = func(n int) error {
		if n <= 2 {
			return fmt.Errorf("launch %d refused", n)
		}
		return nil
	}
	p, err := New(t.Context(), Config{Workers: 1, Launcher: l})
	if err != nil {
		t.Fatalf("two failures, then a start: %v", err)
	}
	if s := p.Stats(); s.StartFailures != 2 || s.WorkersStarted != 1 {
		t.Errorf("stats %+v", s)
	}
	p.Terminate()

	l = newGoLauncher()
	l.fail = func(int) error { return errors.New("never") }
	if _, err := New(t.Context(), Config{Workers: 1, Launcher: l, StartRetries: 1}); !errors.Is(err, ErrWorkerStart) || !strings.Contains(err.Error(), "never") {
		t.Errorf("a launcher that always fails: %v", err)
	}
}
