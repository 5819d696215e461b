package poold_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/poold/poold"
)

// Where threads mode differs from worker processes: each difference that
// threads.go documents has a test here. What is the same is tested in both
// modes by the other files (inModes).

var (
	// ignoreCtx sleeps ms milliseconds whatever its context says: a task
	// that no cancellation reaches, but that ends, so that its abandoned
	// goroutine does not outlive the tests (goleak checks).
	ignoreCtx = poold.Register(reg, "ignore_ctx", func(_ context.Context, ms int) (int, error) {
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return ms, nil
	})

	// goexitAt ends its goroutine, as t.FailNow does, when x is negative.
	goexitAt = poold.Register(reg, "goexit_at", func(_ context.Context, x int) (int, error) {
		if x < 0 {
			runtime.Goexit()
		}
		return x, nil
	})

	// spin burns ms milliseconds of its thread's CPU time and returns the
	// CPU time it measured itself, in nanoseconds. It counts on its
	// goroutine staying on one thread, which threads mode promises while a
	// call is measured.
	spin = poold.Register(reg, "spin", func(_ context.Context, ms int) (int64, error) {
		var start, now unix.Timespec
		unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &start)
		for now = start; now.Nano()-start.Nano() < int64(ms)*1e6; {
			unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &now)
		}
		return now.Nano() - start.Nano(), nil
	})

	// mutate changes its argument and returns it.
	mutate = poold.Register(reg, "mutate", func(_ context.Context, xs []int) ([]int, error) {
		xs[0] = 99
		return xs, nil
	})
)

// threads starts a pool in threads mode.
func threads(t *testing.T, opts ...poold.Option) *poold.Pool {
	t.Helper()
	return newPool(t, append([]poold.Option{poold.WithThreads(reg)}, opts...)...)
}

// waitAbandoned gives the abandoned goroutines of a test time to end, so
// that the leak check at the end of the run does not see them.
func waitAbandoned(t *testing.T, d time.Duration) {
	t.Cleanup(func() { time.Sleep(d) })
}

func TestThreadsRunInThisProcess(t *testing.T) {
	t.Parallel()
	p := threads(t, poold.WithWorkers(3))
	rs, err := pid.Map(testCtx(t), p, make([]struct{}, 30), poold.ChunkSize(1))
	if err != nil {
		t.Fatal(err)
	}
	slots := map[int]bool{}
	for _, r := range rs {
		if r.Value != os.Getpid() || r.PID != os.Getpid() || r.Host != "" || r.Worker < 0 || r.Worker >= 3 {
			t.Fatalf("result %+v: want this process's pid %d, slot in [0, 3)", r, os.Getpid())
		}
		slots[r.Worker] = true
	}
	if pids := p.PIDs(); !slices.Equal(pids, []int{os.Getpid(), os.Getpid(), os.Getpid()}) {
		t.Errorf("PIDs %v, want this process's, by slot", pids)
	}
	if s := p.Stats(); s.WorkersStarted != 3 || s.TasksDone != 30 || s.WorkersLost != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestThreadsRefuseWhatCannotHold(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		opt  poold.Option
		want string
	}{
		{poold.WithMaxWorkerMemory(1 << 30), "WithMaxWorkerMemory cannot hold in threads mode"},
		{poold.WithMaxTasksPerWorker(10), "WithMaxTasksPerWorker cannot hold in threads mode"},
		{poold.WithWorkerCommand("/bin/true"), "WithWorkerCommand cannot hold in threads mode"},
		{poold.WithEnv("A=1"), "WithEnv cannot hold in threads mode"},
		{poold.WithThreads(nil), "WithThreads needs the registry"},
	} {
		p, err := poold.New(testCtx(t), poold.WithThreads(reg), c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "poold: ") || strings.HasPrefix(err.Error(), "poold: poold:") {
			t.Errorf("New: %v, want an error saying %q", err, c.want)
		}
		if p != nil {
			p.Terminate()
		}
	}
	// 0 means "none" for both limits: nothing to refuse.
	p := threads(t, poold.WithMaxWorkerMemory(0), poold.WithMaxTasksPerWorker(0))
	if _, err := square.Apply(testCtx(t), p, 3); err != nil {
		t.Fatal(err)
	}
}

// A task that ignores its context past its time limit and the kill grace is
// abandoned: it fails with kind timeout, its slot gets a new goroutine, and
// its late result is dropped.
func TestThreadsAbandonAfterTimeout(t *testing.T) {
	t.Parallel()
	waitAbandoned(t, time.Second)
	p := threads(t, poold.WithWorkers(1), poold.WithKillGrace(50*time.Millisecond))
	ctx := testCtx(t)
	start := time.Now()
	a, err := ignoreCtx.ApplyAsync(p, 800, poold.Timeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	b, err := square.ApplyAsync(p, 5) // the one slot's next task
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Get(ctx)
	if te := taskErr(t, err); te.Kind != poold.KindTimeout || !strings.Contains(te.Message, "abandoned") || te.PID != os.Getpid() {
		t.Errorf("ignoring its timeout: %v (kind %s), want kind timeout saying abandoned", err, te.Kind)
	}
	r, err := b.Get(ctx)
	if err != nil || r.Value != 25 {
		t.Errorf("the task after it: %+v, %v", r, err)
	}
	if el := time.Since(start); el > 600*time.Millisecond {
		t.Errorf("the next task waited %v for the abandoned one (800 ms)", el)
	}
	s := p.Stats()
	if s.TasksAbandoned != 1 || s.WorkersLost != 1 || s.WorkersStarted != 2 {
		t.Errorf("stats %+v: want 1 abandoned, 1 lost, 2 started", s)
	}
	time.Sleep(900 * time.Millisecond) // the abandoned call returns
	if _, err := a.Get(ctx); !errors.Is(err, poold.KindTimeout) {
		t.Errorf("after the abandoned call returned: %v, still want the timeout", err)
	}
	if s := p.Stats(); s.TasksDone != 1 {
		t.Errorf("its late result counted: %+v", s)
	}
}

// A task that honours its context times out as in a worker process, and is
// retried as there; an abandoned one is retried too.
func TestThreadsTimeoutRetries(t *testing.T) {
	t.Parallel()
	waitAbandoned(t, 500*time.Millisecond)
	p := threads(t, poold.WithWorkers(2), poold.WithKillGrace(20*time.Millisecond), poold.WithRetries(2))
	ctx := testCtx(t)
	_, err := waitCtx.Apply(ctx, p, struct{}{}, poold.Timeout(20*time.Millisecond))
	if te := taskErr(t, err); te.Kind != poold.KindTimeout || te.Attempts != 3 {
		t.Errorf("honouring its context: %v, attempts %d; want timeout after 3", err, te.Attempts)
	}
	_, err = ignoreCtx.Apply(ctx, p, 300, poold.Timeout(20*time.Millisecond))
	if te := taskErr(t, err); te.Kind != poold.KindTimeout || te.Attempts != 3 {
		t.Errorf("ignoring it: %v, attempts %d; want timeout after 3", err, te.Attempts)
	}
	if s := p.Stats(); s.TasksAbandoned != 3 {
		t.Errorf("stats %+v: want the 3 attempts of the second abandoned", s)
	}
}

func TestThreadsAbandonAfterCancel(t *testing.T) {
	t.Parallel()
	waitAbandoned(t, time.Second)
	p := threads(t, poold.WithWorkers(1), poold.WithKillGrace(50*time.Millisecond))
	ctx := testCtx(t)
	a, err := ignoreCtx.ApplyAsync(p, 700)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // let it start
	start := time.Now()
	a.Cancel()
	_, err = a.Get(ctx)
	if te := taskErr(t, err); te.Kind != poold.KindCanceled || !strings.Contains(te.Message, "abandoned") {
		t.Errorf("cancelled, ignoring it: %v", err)
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Errorf("the cancellation took %v, want about the kill grace", el)
	}
	if r, err := square.Apply(ctx, p, 4); err != nil || r.Value != 16 {
		t.Errorf("after: %+v, %v", r, err)
	}
}

// Terminate gives a running call the kill grace to return, then abandons
// it: it returns in about that time, and the task fails with kind
// terminated.
func TestThreadsTerminateAbandons(t *testing.T) {
	t.Parallel()
	waitAbandoned(t, time.Second)
	p := threads(t, poold.WithWorkers(2), poold.WithKillGrace(100*time.Millisecond))
	a, err := ignoreCtx.ApplyAsync(p, 800)
	if err != nil {
		t.Fatal(err)
	}
	b, err := waitCtx.ApplyAsync(p, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	start := time.Now()
	if err := p.Terminate(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 80*time.Millisecond || el > 600*time.Millisecond {
		t.Errorf("Terminate took %v, want about the kill grace (100 ms)", el)
	}
	for _, r := range []*poold.AsyncResult[int]{a, b} {
		if _, err := r.Get(testCtx(t)); !errors.Is(err, poold.KindTerminated) {
			t.Errorf("a running task: %v, want kind terminated", err)
		}
	}
	if s := p.Stats(); s.TasksAbandoned != 1 {
		t.Errorf("stats %+v: want the one that ignored its context abandoned", s)
	}
	if err := p.Join(testCtx(t)); err != nil {
		t.Errorf("Join: %v", err)
	}
}

// A task that ends its goroutine fails with kind panic; the rest of its
// chunk runs on a new goroutine.
func TestThreadsGoexit(t *testing.T) {
	t.Parallel()
	p := threads(t, poold.WithWorkers(1))
	rs, err := goexitAt.Map(testCtx(t), p, []int{1, 2, -1, 4, 5}, poold.ChunkSize(5))
	te := taskErr(t, err)
	if te.Kind != poold.KindPanic || te.Type != "runtime.Goexit" {
		t.Errorf("Goexit: %v (kind %s, type %s)", err, te.Kind, te.Type)
	}
	for i, want := range []int{1, 2, 0, 4, 5} {
		if rs[i].Value != want || (i == 2) != (rs[i].Err != nil) {
			t.Errorf("item %d: %+v", i, rs[i])
		}
	}
	if s := p.Stats(); s.WorkersLost != 1 || s.WorkersStarted != 2 || s.TasksAbandoned != 0 {
		t.Errorf("stats %+v", s)
	}
}

// Arguments and results are encoded in threads mode too: a task cannot
// change its caller's values.
func TestThreadsDoNotAlias(t *testing.T) {
	t.Parallel()
	p := threads(t, poold.WithWorkers(1))
	in := []int{1, 2}
	r, err := mutate.Apply(testCtx(t), p, in)
	if err != nil || !slices.Equal(r.Value, []int{99, 2}) || in[0] != 1 {
		t.Errorf("result %v (%v), caller's argument %v: want [99 2] and [1 2]", r.Value, err, in)
	}
}

// What a task prints is not its Output in threads mode: it goes to this
// process's standard output.
func TestThreadsOutputNotCaptured(t *testing.T) {
	t.Parallel()
	p := threads(t, poold.WithWorkers(1))
	r, err := say.Apply(testCtx(t), p, "threads mode prints straight to the test's stdout")
	if err != nil || len(r.Output) != 0 {
		t.Errorf("Output %q, %v: want none", r.Output, err)
	}
}

// CPU time is measured on the goroutine's thread: about the wall time for
// a task that computes, little for one that sleeps.
func TestThreadsCPU(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd" {
		t.Skip("no thread CPU clock on", runtime.GOOS)
	}
	p := threads(t, poold.WithWorkers(2))
	ctx := testCtx(t)
	s, err := spin.Apply(ctx, p, 30)
	if err != nil {
		t.Fatal(err)
	}
	// What the task saw of its own thread, whatever else runs on the CPUs.
	if own := time.Duration(s.Value); s.CPU < own || s.CPU > own+5*time.Millisecond || s.CPU > s.Duration()+time.Millisecond {
		t.Errorf("a task that burned %v of its thread's CPU in %v: CPU %v", own, s.Duration(), s.CPU)
	}
	// Map's results carry it too.
	rs, err := spin.Map(ctx, p, []int{10, 10, 10}, poold.ChunkSize(2))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range rs {
		if own := time.Duration(s.Value); s.CPU < own || s.CPU > own+5*time.Millisecond {
			t.Errorf("Map item %d burned %v of its thread's CPU: CPU %v", i, own, s.CPU)
		}
	}
	r, err := sleep.Apply(ctx, p, 60)
	if err != nil {
		t.Fatal(err)
	}
	if r.CPU < 0 || r.CPU > 10*time.Millisecond {
		t.Errorf("sleeping for %v: CPU %v, want little", r.Duration(), r.CPU)
	}
}

// Goroutines are cheap: many more workers than CPUs wait in parallel.
func TestThreadsManyWorkers(t *testing.T) {
	t.Parallel()
	const n = 500
	p := threads(t, poold.WithWorkers(n))
	start := time.Now()
	rs, err := sleep.Map(testCtx(t), p, slices.Repeat([]int{300}, n), poold.ChunkSize(1))
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("%d sleeps of 300 ms on %d goroutines took %v: not in parallel", n, n, el)
	}
	seen := map[int]bool{}
	for _, r := range rs {
		seen[r.Worker] = true
	}
	if len(seen) < n/2 {
		t.Errorf("%d slots used of %d", len(seen), n)
	}
}

// The initializer runs in each worker goroutine before its first task;
// one that fails fails New.
func TestThreadsInitializer(t *testing.T) {
	t.Parallel()
	p := threads(t, poold.WithWorkers(1), poold.WithInitializer("init_set", initArgs{Msg: "ready"}))
	if r, err := initValue.Apply(testCtx(t), p, struct{}{}); err != nil || r.Value != "ready" {
		t.Errorf("after the initializer: %+v, %v", r, err)
	}
	_, err := poold.New(testCtx(t), poold.WithThreads(reg), poold.WithWorkers(2), poold.WithInitializer("init_fail", initArgs{Msg: "no db"}))
	if !errors.Is(err, poold.ErrWorkerStart) || !strings.Contains(err.Error(), "no db") {
		t.Errorf("failing initializer: %v", err)
	}
}

// threadsExitEnv makes the test binary a program whose threads pool runs a
// task that calls os.Exit.
const threadsExitEnv = "POOLD_TEST_THREADS_EXIT"

// A task that exits takes the whole process with it in threads mode.
func TestThreadsExitEndsTheProcess(t *testing.T) {
	if os.Getenv(threadsExitEnv) != "" {
		p, err := poold.New(context.Background(), poold.WithThreads(reg), poold.WithWorkers(2))
		if err != nil {
			os.Exit(1)
		}
		exitWith.Apply(context.Background(), p, 7)
		os.Exit(0) // not reached: the task exits the process
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestThreadsExitEndsTheProcess$")
	cmd.Env = append(os.Environ(), threadsExitEnv+"=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("a threads pool whose task exits with 7: %v, output %q; want the process to exit 7", err, out)
	}
}

// Results of a pool in threads mode arrive with their callbacks like any
// other, from many goroutines at once.
func TestThreadsCallbacksUnderLoad(t *testing.T) {
	t.Parallel()
	p := threads(t, poold.WithWorkers(8))
	var mu sync.Mutex
	sum := 0
	m, err := square.MapAsync(p, ints(2000), poold.ChunkSize(7), poold.OnSuccess(func(r poold.Result[int]) {
		mu.Lock()
		sum += r.Value
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	want := 0
	for i := range 2000 {
		want += i * i
	}
	if sum != want {
		t.Errorf("sum of squares %d, want %d", sum, want)
	}
}
