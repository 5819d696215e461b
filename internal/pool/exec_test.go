package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold/internal/kind"
)

// Tests of the pool with real worker processes: the test binary,
// re-executed.

func TestEchoAndPIDs(t *testing.T) {
	p := newTestPool(t, Config{Workers: 2})
	for i, c := range run(t, p, "echo", 1, ints(50)...) {
		if got := value[int](t, c); got != i {
			t.Errorf("task %d: got %d", i, got)
		}
		if c.PID == 0 || c.PID == os.Getpid() {
			t.Errorf("task %d ran on pid %d", i, c.PID)
		}
		if c.Attempts != 1 {
			t.Errorf("task %d: %d attempts", i, c.Attempts)
		}
	}
	p.Close()
	if err := p.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestChunks(t *testing.T) {
	p := newTestPool(t, Config{Workers: 2})
	for _, chunk := range []int{1, 7, 1000} {
		for i, c := range run(t, p, "echo", chunk, ints(100)...) {
			if got := value[int](t, c); got != i {
				t.Errorf("chunk %d task %d: got %d", chunk, i, got)
			}
		}
	}
}

func TestCrashesFailOnlyTheirTask(t *testing.T) {
	p := newTestPool(t, Config{Workers: 2})
	c := run(t, p, "exit", 1, 7)[0]
	if !failed(c, kind.WorkerLost) {
		t.Fatalf("exit: got %+v", c.Fail)
	}
	if x := c.Fail.Exit; x == nil || x.ExitCode != 7 || x.PID != c.PID {
		t.Fatalf("exit: want exit code 7, got %#v", x)
	}
	c = run(t, p, "kill", 1, nil)[0]
	if c.Fail == nil || c.Fail.Exit == nil || c.Fail.Exit.Signal != syscall.SIGKILL {
		t.Fatalf("kill: got %+v", c.Fail)
	}
	c = run(t, p, "panic", 1, nil)[0]
	if !failed(c, kind.Panic) || !strings.Contains(c.Fail.Stack, "goroutine") {
		t.Fatalf("panic: got %+v", c.Fail)
	}
	if c = run(t, p, "fail", 1, nil)[0]; !failed(c, kind.Error) {
		t.Fatalf("fail: got %+v", c.Fail)
	}
	for i, c := range run(t, p, "echo", 3, ints(20)...) {
		if got := value[int](t, c); got != i {
			t.Errorf("after crashes, task %d: got %d", i, got)
		}
	}
	// Both crashes were replaced; the second replacement may still be
	// starting.
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().WorkersStarted != 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := p.Stats(); s.WorkersStarted != 4 || s.WorkersLost != 2 {
		t.Errorf("workers started %d, lost %d; want 4 (2 + 2 replacements) and 2", s.WorkersStarted, s.WorkersLost)
	}
}

func TestOutputCaptured(t *testing.T) {
	p := newTestPool(t, Config{Workers: 1})
	cs := run(t, p, "print", 1, 1<<20, 3)
	if got := len(cs[0].Output); got != 1<<20 {
		t.Errorf("output of the first task: %d bytes, want %d", got, 1<<20)
	}
	if got := string(cs[1].Output); got != "xxx" { // stderr goes to the log, not the output
		t.Errorf("output of the second task: %q", got)
	}
}

// Output of NUL bytes only leaves the capture file's mapped page as it was;
// the worker asks the kernel before it waits for input, so the output still
// comes back with its task.
func TestOutputOfNULsOnly(t *testing.T) {
	p := newTestPool(t, Config{Workers: 1})
	for i := range 3 {
		c := run(t, p, "nul", 1, 5)[0]
		if !bytes.Equal(c.Output, make([]byte, 5)) {
			t.Errorf("round %d: output %q, want 5 NUL bytes", i, c.Output)
		}
	}
	if c := run(t, p, "echo", 1, 1)[0]; len(c.Output) != 0 {
		t.Errorf("the next task's output: %q, want none", c.Output)
	}
}

// Workers that outnumber the CPUs get GOMAXPROCS 1; others keep the
// runtime's default; the user's GOMAXPROCS wins.
func TestWorkerGOMAXPROCS(t *testing.T) {
	cpus := runtime.NumCPU()
	for _, c := range []struct {
		workers int
		env     []string
		want    int
	}{
		{1, nil, cpus},
		{cpus, nil, cpus},
		{2 * cpus, nil, 1},
		{1, []string{"GOMAXPROCS=3"}, 3},
	} {
		p := newTestPool(t, Config{Workers: c.workers, Env: c.env})
		if got := value[int](t, run(t, p, "procs", 1, struct{}{})[0]); got != c.want {
			t.Errorf("%d workers on %d CPUs, env %v: GOMAXPROCS %d, want %d", c.workers, cpus, c.env, got, c.want)
		}
		p.Terminate()
	}
}

func TestParallelNotSerial(t *testing.T) {
	p := newTestPool(t, Config{Workers: 4})
	start := time.Now()
	cs := run(t, p, "sleep_ms", 1, 500, 500, 500, 500, 500)
	el := time.Since(start)
	pids := map[int]bool{}
	for _, c := range cs {
		pids[value[int](t, c)] = true
	}
	if len(pids) != 4 {
		t.Errorf("5 sleeps ran on %d workers, want 4", len(pids))
	}
	// Two rounds: about 1 s. In series it would be 2.5 s; one round, 0.5 s.
	if el < 950*time.Millisecond || el > 2200*time.Millisecond {
		t.Errorf("5 sleeps of 500 ms on 4 workers took %v, want about 1 s", el)
	}
}

func TestTerminateResolvesEverything(t *testing.T) {
	p := newTestPool(t, Config{Workers: 2})
	args := make([]any, 1000)
	for i := range args {
		args[i] = 5000
	}
	cs, wait := start(t, p, "sleep_ms", 1, nil, args...)
	time.Sleep(100 * time.Millisecond)
	begin := time.Now()
	p.Terminate()
	wait()
	if el := time.Since(begin); el > 2*time.Second {
		t.Errorf("Terminate took %v", el)
	}
	for i, c := range cs {
		if !failed(c, kind.Terminated) {
			t.Fatalf("task %d: %+v", i, c.Fail)
		}
	}
	if err := p.Submit(&Task{Func: "echo", Args: raw(t, 1), Calls: 1}); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("submit after terminate: %v", err)
	}
}

func TestJoinRunning(t *testing.T) {
	p := newTestPool(t, Config{Workers: 1})
	if err := p.Join(context.Background()); !errors.Is(err, ErrPoolRunning) {
		t.Fatalf("Join on a running pool: %v", err)
	}
	p.Close()
	p.Close()
	if err := p.Submit(&Task{Func: "echo", Args: raw(t, 1), Calls: 1}); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("submit after close: %v", err)
	}
	if err := p.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.Terminate()
}

func TestCloseRunsQueuedWork(t *testing.T) {
	p := newTestPool(t, Config{Workers: 2})
	args := make([]any, 10)
	for i := range args {
		args[i] = 20
	}
	cs, wait := start(t, p, "sleep_ms", 1, nil, args...)
	p.Close()
	if err := p.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	wait()
	for i, c := range cs {
		if c.Fail != nil {
			t.Errorf("task %d: %+v", i, c.Fail)
		}
	}
}

func TestUnknownFunc(t *testing.T) {
	p := newTestPool(t, Config{Workers: 1})
	err := p.Submit(&Task{Func: "nope", Calls: 1})
	if !errors.Is(err, ErrUnknownFunc) || !strings.Contains(err.Error(), "echo") {
		t.Fatalf("got %v", err)
	}
}

func TestBadWorkerCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := New(ctx, Config{Workers: 2, Command: []string{"/nonexistent/worker"}, StartRetries: 2})
	if !errors.Is(err, ErrWorkerStart) {
		t.Fatalf("got %v", err)
	}
	_, err = New(ctx, Config{Workers: 1, Command: []string{"/bin/sh", "-c", "echo oops >&2; exit 5"}, StartRetries: 1})
	if !errors.Is(err, ErrWorkerStart) || !strings.Contains(err.Error(), "oops") || !strings.Contains(err.Error(), "code 5") {
		t.Fatalf("got %v", err)
	}
}

// Load balancing survives pipelining: after a flood of short tasks of
// another function, a long task must not have short ones queued behind it in
// its worker's pipe while the other worker could run them.
func TestLongTaskDoesNotHoldShortOnes(t *testing.T) {
	p := newTestPool(t, Config{Workers: 2})
	run(t, p, "echo", 1, ints(2000)...) // echo's tasks prove short: windows open
	cs := run(t, p, "sleep_ms", 1, 1500, 100, 100, 100, 100, 100, 100)
	long := value[int](t, cs[0])
	for i, c := range cs[1:] {
		if pid := value[int](t, c); pid == long {
			t.Errorf("short task %d ran behind the long one on pid %d", i+1, pid)
		}
	}
}

// A result too large for a frame fails its task, not its worker; arguments
// too large for a frame fail their task before any worker sees them.
func TestTooLargeForAFrame(t *testing.T) {
	p := newTestPool(t, Config{Workers: 1, MaxFrame: 64 << 10})
	before := value[int](t, run(t, p, "pid", 1, nil)[0])
	cs := run(t, p, "big", 1, 1<<20, 10)
	if !failed(cs[0], kind.ResultTooLarge) {
		t.Fatalf("1 MiB result with a 64 KiB frame cap: %+v", cs[0].Fail)
	}
	if got := value[string](t, cs[1]); got != "bbbbbbbbbb" {
		t.Errorf("the next task: %q", got)
	}
	if c := run(t, p, "echo", 1, strings.Repeat("a", 100<<10))[0]; !failed(c, kind.Encode) {
		t.Errorf("100 KiB arguments with a 64 KiB frame cap: %+v", c.Fail)
	}
	if after := value[int](t, run(t, p, "pid", 1, nil)[0]); after != before {
		t.Errorf("the worker was replaced (pid %d, then %d)", before, after)
	}
}

// Whatever a worker writes to stderr reaches the logger and can crash
// nothing: hclog JSON lines become structured entries, the rest text.
func TestStderrGarbage(t *testing.T) {
	var logs syncLog
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace, JSONFormat: true})
	p := newTestPool(t, Config{Workers: 1, Logger: logger})
	pid := value[int](t, run(t, p, "stderr", 1, nil)[0])
	if value[int](t, run(t, p, "pid", 1, nil)[0]) != pid {
		t.Error("the worker did not survive its own stderr")
	}
	// The unterminated last line is logged when the stream ends.
	p.Close()
	if err := p.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, want := range []string{`"@message":"structured hello"`, `"answer":42`, "not utf-8", "{not json", "no newline at the end", fmt.Sprintf(`"pid":%d`, pid)} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s", want)
		}
	}
	if !strings.Contains(out, `"@level":"error"`) {
		t.Error("the structured line lost its level")
	}
}

// A worker program that never says hello (cat echoes the pool's own
// frames back, or waits) fails after one handshake timeout: another copy
// would not speak the protocol either.
func TestNoHelloGivesUpAtOnce(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	_, err := New(t.Context(), Config{Workers: 2, Command: []string{"/bin/cat"}, StartTimeout: 300 * time.Millisecond, StartRetries: 3})
	el := time.Since(begin)
	if !errors.Is(err, ErrWorkerStart) || !strings.Contains(err.Error(), "does not speak poold's protocol") {
		t.Fatalf("cat as the worker: %v", err)
	}
	if el > 2*time.Second {
		t.Errorf("New gave up after %v; one handshake timeout is 300 ms", el)
	}
}

// Cancellation reaches a real worker process through its control stream:
// the running task's context is cancelled, and the worker lives on.
func TestCancelRealWorker(t *testing.T) {
	t.Parallel()
	p := newTestPool(t, Config{Workers: 1, KillGrace: 5 * time.Second})
	before := p.PIDs()[0]
	task, wait := submitOne(t, p, "sleep_ms", 5000)
	time.Sleep(100 * time.Millisecond)
	begin := time.Now()
	p.Cancel(task)
	o := wait()
	if o.Fail == nil || o.Fail.Kind != kind.Canceled || o.PID != before || time.Since(begin) > time.Second {
		t.Fatalf("cancelled: %+v on pid %d after %v", o.Fail, o.PID, time.Since(begin))
	}
	if c := run(t, p, "pid", 1, nil)[0]; value[int](t, c) != before {
		t.Error("the worker was replaced")
	}
}
