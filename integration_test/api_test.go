package integration_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/poold/poold"
)

// These tests embed a pool in the test process, with the built worker
// program as its workers. They do not run in parallel: they count this
// process's goroutines and file descriptors.

// newPool starts a pool of n built workers, tagged so that the test can
// find them. The cleanup terminates it and checks that no worker is left.
func newPool(t *testing.T, n int, opts ...poold.Option) (*poold.Pool, string) {
	t.Helper()
	tag := newTag(t)
	opts = append([]poold.Option{
		poold.WithWorkers(n),
		poold.WithWorkerCommand(workerBin),
		poold.WithEnv(tagVar+"="+tag, debugEnv),
	}, opts...)
	p, err := poold.New(ctxT(t, 30*time.Second), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Terminate()
		checkNoProcs(t, tag, 2*time.Second)
	})
	return p, tag
}

// ownWorkers lists the live worker processes whose parent is this process.
func ownWorkers() []proc {
	var out []proc
	for _, p := range liveProcs("") {
		if p.PPID == os.Getpid() {
			out = append(out, p)
		}
	}
	return out
}

// fdCount counts this process's open file descriptors.
func fdCount(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries) - 1 // the directory being read
}

// fdBaseline readies the runtime's lazily opened descriptors (the network
// poller) and returns the count of open descriptors.
func fdBaseline(t *testing.T) int {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
	return fdCount(t)
}

// checkFDs fails if the count of open descriptors does not come back to
// base within a second, listing the extra ones.
func checkFDs(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	n := fdCount(t)
	for n != base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		n = fdCount(t)
	}
	if n != base {
		var names []string
		entries, _ := os.ReadDir("/proc/self/fd")
		for _, e := range entries {
			target, _ := os.Readlink("/proc/self/fd/" + e.Name())
			names = append(names, e.Name()+"→"+target)
		}
		t.Errorf("%d file descriptors open, %d before the pool: %v", n, base, names)
	}
}

func echoArgs(v any) map[string]any { return map[string]any{"value": v} }

func decodeInt(t *testing.T, r poold.Result[poold.Raw]) int64 {
	t.Helper()
	var v int64
	if err := r.Value.Decode(&v); err != nil {
		t.Errorf("decoding %x: %v", []byte(r.Value), err)
	}
	return v
}

// TestKillWorkerFromOutside: a worker killed by someone else (SIGKILL by
// pid) fails only the task it was running, and the pool replaces it.
func TestKillWorkerFromOutside(t *testing.T) {
	t.Run("busy", func(t *testing.T) {
		p, _ := newPool(t, 2)
		ctx := ctxT(t, time.Minute)
		long, err := p.ApplyAsync("sleep", map[string]any{"seconds": 30})
		if err != nil {
			t.Fatal(err)
		}
		// The other worker answers these: the one running the sleep is the
		// pool's pid that none of them names.
		res, err := p.Map(ctx, "echo", []any{echoArgs(1), echoArgs(2), echoArgs(3), echoArgs(4)}, poold.ChunkSize(1))
		if err != nil {
			t.Fatal(err)
		}
		var busy []int
		for _, pid := range p.PIDs() {
			if !slices.ContainsFunc(res, func(r poold.Result[poold.Raw]) bool { return r.PID == pid }) {
				busy = append(busy, pid)
			}
		}
		if len(busy) != 1 || busy[0] == 0 {
			t.Fatalf("cannot tell the busy worker: pids %v, echo pids %v %v %v %v", p.PIDs(), res[0].PID, res[1].PID, res[2].PID, res[3].PID)
		}
		victim := busy[0]
		started := p.Stats().WorkersStarted

		// Work in flight on the other worker while the kill lands.
		var others []*poold.AsyncResult[poold.Raw]
		for i := range 200 {
			a, err := p.ApplyAsync("echo", echoArgs(i))
			if err != nil {
				t.Fatal(err)
			}
			others = append(others, a)
		}
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		r, err := long.Get(ctx)
		if took := time.Since(killed); took > 2*time.Second {
			t.Errorf("the lost task took %v to fail", took)
		}
		var te *poold.TaskError
		var we *poold.WorkerExitError
		switch {
		case !errors.Is(err, poold.KindWorkerLost) || !errors.As(err, &te):
			t.Errorf("the killed task: %v, want a worker_lost TaskError", err)
		case !errors.As(err, &we):
			t.Errorf("the killed task's error %v does not unwrap to a WorkerExitError", err)
		default:
			if we.Signal != syscall.SIGKILL || we.PID != victim || te.PID != victim || r.PID != victim {
				t.Errorf("the killed task: signal %v, pids %d/%d/%d; want SIGKILL and pid %d", we.Signal, we.PID, te.PID, r.PID, victim)
			}
		}
		for i, a := range others {
			r, err := a.Get(ctx)
			if err != nil {
				t.Errorf("echo %d: %v", i, err)
			} else if v := decodeInt(t, r); v != int64(i) {
				t.Errorf("echo %d returned %d", i, v)
			}
		}
		// The slot gets a new worker, and work goes on.
		if _, err := p.Map(ctx, "echo", []any{echoArgs(5), echoArgs(6), echoArgs(7)}, poold.ChunkSize(1)); err != nil {
			t.Fatalf("after the kill: %v", err)
		}
		waitFor(t, 5*time.Second, "a replacement worker", func() bool { return p.Stats().WorkersStarted == started+1 })
		if slices.Contains(p.PIDs(), victim) {
			t.Errorf("the pool still lists the killed worker %d: %v", victim, p.PIDs())
		}
	})

	// What a task started dies with its worker (each worker leads its own
	// process group, which is killed when the worker ends), also when
	// someone else kills the worker.
	t.Run("busy with a child process", func(t *testing.T) {
		p, _ := newPool(t, 1)
		long, err := p.ApplyAsync("exec", map[string]any{"argv": []string{"sleep", "30"}})
		if err != nil {
			t.Fatal(err)
		}
		victim := p.PIDs()[0]
		var children []int
		waitFor(t, 10*time.Second, "sleep process", func() bool {
			children = childrenOf([]int{victim})
			return len(children) > 0
		})
		t.Cleanup(func() {
			for _, c := range children {
				syscall.Kill(c, syscall.SIGKILL)
			}
		})
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if _, err := long.Get(ctxT(t, 10*time.Second)); !errors.Is(err, poold.KindWorkerLost) {
			t.Errorf("the killed task: %v, want worker_lost", err)
		}
		if left := waitDead(children, time.Second); len(left) > 0 {
			t.Errorf("process %v that the task started still running 1 s after its worker %d was killed", left, victim)
		}
	})

	t.Run("idle", func(t *testing.T) {
		p, tag := newPool(t, 2)
		ctx := ctxT(t, time.Minute)
		if _, err := p.Map(ctx, "echo", []any{echoArgs(1), echoArgs(2)}); err != nil {
			t.Fatal(err)
		}
		started := p.Stats().WorkersStarted
		pids := p.PIDs()
		victim := pids[0]
		if victim == 0 || tagOf(victim) != tag {
			t.Fatalf("worker pids %v", pids)
		}
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "a replacement worker", func() bool {
			now := p.PIDs()
			return now[0] != 0 && now[0] != victim && now[1] == pids[1]
		})
		if got := p.Stats().WorkersStarted; got != started+1 {
			t.Errorf("%d workers started after the kill, want %d", got, started+1)
		}
		args := make([]any, 300)
		for i := range args {
			args[i] = echoArgs(i)
		}
		res, err := p.Map(ctx, "echo", args, poold.ChunkSize(7))
		if err != nil {
			t.Fatalf("after the kill: %v", err)
		}
		for i, r := range res {
			if v := decodeInt(t, r); v != int64(i) || r.PID == victim || r.PID == 0 {
				t.Errorf("echo %d: value %d from pid %d", i, v, r.PID)
			}
		}
	})
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTerminateQueued: Terminate with 10,000 queued long tasks returns in
// under 2 s and resolves every handle with KindTerminated.
func TestTerminateQueued(t *testing.T) {
	base := fdBaseline(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p, tag := newPool(t, 4)
	const n = 10000
	handles := make([]*poold.AsyncResult[poold.Raw], n)
	var callbacks, wrong atomic.Int64
	for i := range n {
		var opts []poold.CallOption
		if i%2 == 0 {
			opts = append(opts,
				poold.OnSuccess(func(poold.Result[poold.Raw]) { wrong.Add(1) }),
				poold.OnError(func(err error) {
					callbacks.Add(1)
					if !errors.Is(err, poold.KindTerminated) {
						wrong.Add(1)
					}
				}))
		}
		a, err := p.ApplyAsync("sleep", map[string]any{"seconds": 10}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		handles[i] = a
	}
	time.Sleep(300 * time.Millisecond) // the first four are running

	start := time.Now()
	p.Terminate()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Terminate took %v with %d tasks queued", took, n)
	}
	ctx := ctxT(t, 2*time.Second)
	running := 0
	for i, a := range handles {
		r, err := a.Get(ctx)
		if !errors.Is(err, poold.KindTerminated) {
			t.Fatalf("task %d: %v, want KindTerminated", i, err)
		}
		if r.PID != 0 {
			running++
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("every handle resolved %v after Terminate began", took)
	}
	if running > 4 {
		t.Errorf("%d terminated tasks name a worker; at most 4 ran", running)
	}
	waitFor(t, 2*time.Second, "callbacks for every task", func() bool { return callbacks.Load() == n/2 })
	if wrong.Load() != 0 {
		t.Errorf("%d callbacks got something other than KindTerminated", wrong.Load())
	}
	if err := p.Join(ctxT(t, time.Second)); err != nil {
		t.Errorf("Join after Terminate: %v", err)
	}
	if _, err := p.ApplyAsync("echo", echoArgs(1)); !errors.Is(err, poold.ErrPoolClosed) {
		t.Errorf("submit after Terminate: %v, want ErrPoolClosed", err)
	}
	if left := liveProcs(tag); len(left) > 0 {
		t.Errorf("workers left after Terminate returned: %v", left)
	}
	checkFDs(t, base)
}

// TestChunkCrashBlame: when a worker dies under a chunk, only the task that
// killed it fails, with the kind of its failure; the others of the chunk
// get their own outcome: a chunk that was running is split into single
// tasks so that only the task that kills a worker fails, and a kill is
// always tied to the task it was meant for.
func TestChunkCrashBlame(t *testing.T) {
	crash := func(mode string) any { return map[string]any{"mode": mode} }
	cases := []struct {
		name  string
		args  []any
		want  []error
		opts  []poold.CallOption
		popts []poold.Option
	}{
		{name: "exit", args: []any{crash("panic"), crash("panic"), map[string]any{"mode": "exit", "code": 5}},
			want: []error{poold.KindPanic, poold.KindPanic, poold.KindWorkerLost}},
		{name: "kill", args: []any{crash("panic"), crash("kill")},
			want: []error{poold.KindPanic, poold.KindWorkerLost}},
		{name: "hang", args: []any{crash("panic"), crash("panic"), crash("hang")},
			want: []error{poold.KindPanic, poold.KindPanic, poold.KindTimeout},
			opts: []poold.CallOption{poold.Timeout(300 * time.Millisecond)}},
		{name: "protocol", args: []any{crash("panic"), crash("protocol")},
			want: []error{poold.KindPanic, poold.KindProtocol}},
		{name: "oom", args: []any{crash("panic"), crash("oom")},
			want:  []error{poold.KindPanic, poold.KindMemoryLimit},
			popts: []poold.Option{poold.WithMaxWorkerMemory(200 << 20)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, _ := newPool(t, 1, c.popts...)
			opts := append([]poold.CallOption{poold.ChunkSize(len(c.args))}, c.opts...)
			res, _ := p.Map(ctxT(t, time.Minute), "crash", c.args, opts...)
			for i, r := range res {
				if !errors.Is(r.Err, c.want[i]) {
					t.Errorf("task %d of the chunk (%v): %v, want %v", i, c.args[i], r.Err, c.want[i])
				}
			}
			// Whatever happened, the pool goes on.
			if r, err := p.Apply(ctxT(t, 10*time.Second), "echo", echoArgs(42)); err != nil || decodeInt(t, r) != 42 {
				t.Errorf("echo after the crash: %v", err)
			}
		})
	}
}

// checkCrashErr checks the result of a crash task of mode through the API,
// which may have run up to maxAttempts times.
func checkCrashErr(mode string, code int, r poold.Result[poold.Raw], maxAttempts int) error {
	err := r.Err
	if err == nil {
		return fmt.Errorf("crash %s succeeded", mode)
	}
	var te *poold.TaskError
	if !errors.As(err, &te) {
		return fmt.Errorf("crash %s: %v is not a TaskError", mode, err)
	}
	if r.PID == 0 || te.PID != r.PID {
		return fmt.Errorf("crash %s: pid %d, error pid %d", mode, r.PID, te.PID)
	}
	if r.Attempts < 1 || r.Attempts > maxAttempts {
		return fmt.Errorf("crash %s: %d attempts, want 1 to %d", mode, r.Attempts, maxAttempts)
	}
	if mode == "panic" {
		if !errors.Is(err, poold.KindPanic) {
			return fmt.Errorf("crash panic: %v, want kind panic", err)
		}
		return nil
	}
	var we *poold.WorkerExitError
	if !errors.As(err, &we) {
		return fmt.Errorf("crash %s: %v does not unwrap to a WorkerExitError", mode, err)
	}
	if we.PID != r.PID {
		return fmt.Errorf("crash %s: exit error names pid %d, the result %d", mode, we.PID, r.PID)
	}
	kind, sig, exit := poold.KindWorkerLost, syscall.Signal(0), 0
	switch mode {
	case "exit":
		exit = code
	case "fatal":
		exit = 2
	case "kill":
		sig = syscall.SIGKILL
	case "segfault":
		sig = syscall.SIGSEGV
	case "abort":
		sig = syscall.SIGABRT
	case "hang":
		kind, sig = poold.KindTimeout, syscall.SIGKILL
	default:
		return fmt.Errorf("crash %s: no expectation", mode)
	}
	if !errors.Is(err, kind) {
		return fmt.Errorf("crash %s: %v, want %v", mode, err, kind)
	}
	if we.Signal != sig || (sig == 0 && we.ExitCode != exit) {
		return fmt.Errorf("crash %s: signal %d, exit code %d; want signal %d, exit code %d", mode, int(we.Signal), we.ExitCode, int(sig), exit)
	}
	return nil
}
