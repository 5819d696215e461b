package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/hashicorp/go-hclog"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/poold/poold/internal/tasks"
	child "github.com/poold/poold/internal/worker" // the worker side; "worker" here is the parent's view of one
)

// The test binary is its own worker: TestMain serves when a pool started it.
func TestMain(m *testing.M) {
	if child.IsWorker() {
		os.Exit(child.Serve(testRegistry()))
	}
	goleak.VerifyTestMain(m)
}

func testRegistry() *tasks.Registry {
	r := tasks.NewRegistry()
	r.Register("echo", tasks.Typed(func(_ context.Context, v any) (any, error) { return v, nil }))
	r.Register("pid", tasks.Typed(func(context.Context, struct{}) (int, error) { return os.Getpid(), nil }))
	r.Register("sleep_ms", tasks.Typed(func(ctx context.Context, ms int) (int, error) {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			return os.Getpid(), nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}))
	r.Register("exit", tasks.Typed(func(_ context.Context, code int) (int, error) { os.Exit(code); return 0, nil }))
	r.Register("kill", tasks.Typed(func(context.Context, struct{}) (int, error) {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}))
	r.Register("panic", tasks.Typed(func(context.Context, struct{}) (int, error) { panic("boom") }))
	r.Register("fail", tasks.Typed(func(context.Context, struct{}) (int, error) { return 0, errors.New("nope") }))
	r.Register("print", tasks.Typed(func(_ context.Context, n int) (int, error) {
		s := strings.Repeat("x", n)
		fmt.Print(s)
		fmt.Fprint(os.Stderr, "E")
		return n, nil
	}))
	r.Register("procs", tasks.Typed(func(context.Context, struct{}) (int, error) { return runtime.GOMAXPROCS(0), nil }))
	r.Register("nul", tasks.Typed(func(_ context.Context, n int) (int, error) { return os.Stdout.Write(make([]byte, n)) }))
	r.Register("big", tasks.Typed(func(_ context.Context, n int) (string, error) { return strings.Repeat("b", n), nil }))
	r.Register("stderr", tasks.Typed(func(context.Context, struct{}) (int, error) {
		os.Stderr.Write([]byte("\x00\xff\xfe not utf-8 \x80\n"))
		os.Stderr.Write([]byte("{not json\n"))
		os.Stderr.Write([]byte(strings.Repeat("long ", 20000) + "\n"))
		os.Stderr.Write([]byte(`{"@level":"error","@message":"structured hello","answer":42}` + "\n"))
		os.Stderr.Write([]byte("no newline at the end"))
		return os.Getpid(), nil
	}))
	return r
}

func newTestPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Terminate() })
	return p
}

func raw(t testing.TB, v any) []byte {
	b, err := tasks.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// run submits one task per argument and waits for all of them.
func run(t *testing.T, p *Pool, fn string, chunk int, args ...any) []*Task {
	t.Helper()
	var wg sync.WaitGroup
	ts := make([]*Task, len(args))
	for i, a := range args {
		wg.Add(1)
		ts[i] = &Task{Args: raw(t, a), Done: func(*Task) { wg.Done() }}
	}
	if err := p.Submit(fn, ts, chunk); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("tasks did not finish")
	}
	return ts
}

func value[T any](t *testing.T, task *Task) T {
	t.Helper()
	if task.Err != nil {
		t.Fatalf("task failed: %v", task.Err)
	}
	var v T
	if err := tasks.Unmarshal(task.Value, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestEchoAndPIDs(t *testing.T) {
	p := newTestPool(t, Config{Workers: 2})
	args := make([]any, 50)
	for i := range args {
		args[i] = i
	}
	ts := run(t, p, "echo", 1, args...)
	for i, task := range ts {
		if got := value[int](t, task); got != i {
			t.Errorf("task %d: got %d", i, got)
		}
		if task.PID == 0 || task.PID == os.Getpid() {
			t.Errorf("task %d ran on pid %d", i, task.PID)
		}
		if task.Attempts != 1 {
			t.Errorf("task %d: %d attempts", i, task.Attempts)
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
		args := make([]any, 100)
		for i := range args {
			args[i] = i
		}
		ts := run(t, p, "echo", chunk, args...)
		for i, task := range ts {
			if got := value[int](t, task); got != i {
				t.Errorf("chunk %d task %d: got %d", chunk, i, got)
			}
		}
	}
}

func TestCrashesFailOnlyTheirTask(t *testing.T) {
	p := newTestPool(t, Config{Workers: 2})
	ts := run(t, p, "exit", 1, 7)
	var te *TaskError
	if !errors.As(ts[0].Err, &te) || te.Kind != KindWorkerLost {
		t.Fatalf("exit: got %v", ts[0].Err)
	}
	var we *WorkerExitError
	if !errors.As(ts[0].Err, &we) || we.ExitCode != 7 || we.PID != ts[0].PID {
		t.Fatalf("exit: want exit code 7, got %#v", we)
	}
	ts = run(t, p, "kill", 1, nil)
	if !errors.As(ts[0].Err, &we) || we.Signal != syscall.SIGKILL {
		t.Fatalf("kill: got %v", ts[0].Err)
	}
	ts = run(t, p, "panic", 1, nil)
	if !errors.Is(ts[0].Err, ErrPanic) || !strings.Contains(ts[0].Err.(*TaskError).Stack, "goroutine") {
		t.Fatalf("panic: got %v", ts[0].Err)
	}
	ts = run(t, p, "fail", 1, nil)
	if !errors.Is(ts[0].Err, ErrTaskFailed) {
		t.Fatalf("fail: got %v", ts[0].Err)
	}
	args := make([]any, 20)
	for i := range args {
		args[i] = i
	}
	for i, task := range run(t, p, "echo", 3, args...) {
		if got := value[int](t, task); got != i {
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
	ts := run(t, p, "print", 1, 1<<20, 3)
	if got := len(ts[0].Output); got != 1<<20 {
		t.Errorf("output of the first task: %d bytes, want %d", got, 1<<20)
	}
	if got := string(ts[1].Output); got != "xxx" { // stderr goes to the log, not the output
		t.Errorf("output of the second task: %q", got)
	}
}

// Output of NUL bytes only leaves the capture file's mapped page as it was;
// the worker asks the kernel before it waits for input, so the output still
// comes back with its task.
func TestOutputOfNULsOnly(t *testing.T) {
	p := newTestPool(t, Config{Workers: 1})
	for i := range 3 {
		ts := run(t, p, "nul", 1, 5)
		if got := ts[0].Output; !bytes.Equal(got, make([]byte, 5)) {
			t.Errorf("round %d: output %q, want 5 NUL bytes", i, got)
		}
	}
	if ts := run(t, p, "echo", 1, 1); len(ts[0].Output) != 0 {
		t.Errorf("the next task's output: %q, want none", ts[0].Output)
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
	ts := run(t, p, "sleep_ms", 1, 500, 500, 500, 500, 500)
	el := time.Since(start)
	pids := map[int]bool{}
	for _, task := range ts {
		pids[value[int](t, task)] = true
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
	var wg sync.WaitGroup
	ts := make([]*Task, 1000)
	for i := range ts {
		wg.Add(1)
		ts[i] = &Task{Args: raw(t, 5000), Done: func(*Task) { wg.Done() }}
	}
	if err := p.Submit("sleep_ms", ts, 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	p.Terminate()
	wg.Wait()
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Terminate took %v", el)
	}
	for i, task := range ts {
		if !errors.Is(task.Err, ErrTerminated) {
			t.Fatalf("task %d: %v", i, task.Err)
		}
	}
	if err := p.Submit("echo", []*Task{{Args: raw(t, 1)}}, 1); !errors.Is(err, ErrPoolClosed) {
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
	if err := p.Submit("echo", []*Task{{Args: raw(t, 1)}}, 1); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("submit after close: %v", err)
	}
	if err := p.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.Terminate()
}

func TestCloseRunsQueuedWork(t *testing.T) {
	p := newTestPool(t, Config{Workers: 2})
	var wg sync.WaitGroup
	ts := make([]*Task, 10)
	for i := range ts {
		wg.Add(1)
		ts[i] = &Task{Args: raw(t, 20), Done: func(*Task) { wg.Done() }}
	}
	p.Submit("sleep_ms", ts, 1)
	p.Close()
	if err := p.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, task := range ts {
		if task.Err != nil {
			t.Errorf("task %d: %v", i, task.Err)
		}
	}
}

func TestUnknownFunc(t *testing.T) {
	p := newTestPool(t, Config{Workers: 1})
	err := p.Submit("nope", []*Task{{}}, 1)
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
	warm := make([]any, 2000)
	for i := range warm {
		warm[i] = i
	}
	run(t, p, "echo", 1, warm...) // echo's tasks prove short: windows open
	ts := run(t, p, "sleep_ms", 1, 1500, 100, 100, 100, 100, 100, 100)
	long := value[int](t, ts[0])
	for i, task := range ts[1:] {
		if pid := value[int](t, task); pid == long {
			t.Errorf("short task %d ran behind the long one on pid %d", i+1, pid)
		}
	}
}

// A result too large for a frame fails its task, not its worker; arguments
// too large for a frame fail their task before any worker sees them.
func TestTooLargeForAFrame(t *testing.T) {
	p := newTestPool(t, Config{Workers: 1, MaxFrame: 64 << 10})
	before := value[int](t, run(t, p, "pid", 1, nil)[0])
	ts := run(t, p, "big", 1, 1<<20, 10)
	if !errors.Is(ts[0].Err, ErrResultTooLarge) {
		t.Fatalf("1 MiB result with a 64 KiB frame cap: %v", ts[0].Err)
	}
	if got := value[string](t, ts[1]); got != "bbbbbbbbbb" {
		t.Errorf("the next task: %q", got)
	}
	huge := &Task{Args: raw(t, strings.Repeat("a", 100<<10)), Done: func(*Task) {}}
	if err := p.Submit("echo", []*Task{huge}, 1); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(huge.Err, ErrEncode) {
		t.Errorf("100 KiB arguments with a 64 KiB frame cap: %v", huge.Err)
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

// syncLog is a buffer for a logger written from several goroutines.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
