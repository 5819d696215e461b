package poold_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/poold/poold"
)

func TestCloseRunsQueuedWork(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		var as []*poold.AsyncResult[int]
		for range 5 {
			a, err := sleep.ApplyAsync(p, 60)
			if err != nil {
				t.Fatal(err)
			}
			as = append(as, a)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if as[len(as)-1].Ready() {
			t.Error("Close waited for the work")
		}
		if err := p.Join(ctx); err != nil {
			t.Fatalf("Join: %v", err)
		}
		var pids []int
		for i, a := range as {
			if !a.Ready() {
				t.Fatalf("task %d not done after Join", i)
			}
			r, err := a.Get(ctx)
			if err != nil {
				t.Errorf("task %d: %v", i, err)
			}
			pids = append(pids, r.PID)
		}
		checkWorkersGone(t, m, p, pids, "after Join")
		// Idempotent.
		if err := p.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := p.Join(ctx); err != nil {
			t.Errorf("second Join: %v", err)
		}
		if err := p.Terminate(); err != nil {
			t.Errorf("Terminate after Close: %v", err)
		}
	})
}

func TestSubmitAfterStop(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		for _, stop := range []string{"Close", "Terminate"} {
			t.Run(stop, func(t *testing.T) {
				ctx := testCtx(t)
				p := m.pool(t, poold.WithWorkers(1))
				if stop == "Close" {
					p.Close()
				} else {
					p.Terminate()
				}
				if _, err := square.Apply(ctx, p, 1); !errors.Is(err, poold.ErrPoolClosed) {
					t.Errorf("Apply: %v", err)
				}
				if a, err := square.ApplyAsync(p, 1); !errors.Is(err, poold.ErrPoolClosed) || a != nil {
					t.Errorf("ApplyAsync: %v, %v", a, err)
				}
				if _, err := p.Apply(ctx, "square", 1); !errors.Is(err, poold.ErrPoolClosed) {
					t.Errorf("untyped Apply: %v", err)
				}
				if _, err := square.Map(ctx, p, ints(3)); !errors.Is(err, poold.ErrPoolClosed) {
					t.Errorf("Map: %v", err)
				}
				if _, err := square.Map(ctx, p, nil); !errors.Is(err, poold.ErrPoolClosed) {
					t.Errorf("Map of nothing: %v", err)
				}
				if m, err := p.MapAsync("square", []any{1}); !errors.Is(err, poold.ErrPoolClosed) || m != nil {
					t.Errorf("MapAsync: %v", err)
				}
				for _, n := range []int{5, 0} {
					for name, errs := range map[string][]error{
						"IMap":             errsOf(square.IMap(ctx, p, slices.Values(ints(n)))),
						"IMapUnordered":    errsOf(square.IMapUnordered(ctx, p, slices.Values(ints(n)))),
						"IMapErr":          errsOf(square.IMapErr(ctx, p, withErrs(ints(n), nil))),
						"IMapUnorderedErr": errsOf(square.IMapUnorderedErr(ctx, p, withErrs(ints(n), nil))),
					} {
						if len(errs) != 1 || !errors.Is(errs[0], poold.ErrPoolClosed) {
							t.Errorf("%s of %d values yielded %v; want ErrPoolClosed once", name, n, errs)
						}
					}
				}
			})
		}
	})
}

func TestJoinRunningPool(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		start := time.Now()
		if err := p.Join(ctx); !errors.Is(err, poold.ErrPoolRunning) {
			t.Fatalf("Join on a running pool: %v, want ErrPoolRunning", err)
		}
		if el := time.Since(start); el > 500*time.Millisecond {
			t.Errorf("Join on a running pool took %v; want at once", el)
		}
		// The pool is unharmed.
		if r, err := square.Apply(ctx, p, 4); err != nil || r.Value != 16 {
			t.Errorf("Apply after Join: %v, %v", r.Value, err)
		}
	})
}

func TestJoinContext(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		p := m.pool(t, poold.WithWorkers(1))
		a, err := sleep.ApplyAsync(p, 1000)
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
		defer cancel()
		if err := p.Join(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Join with a short context while a task runs: %v", err)
		}
		if err := p.Join(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Get(testCtx(t)); err != nil {
			t.Errorf("the task: %v", err)
		}
	})
}

func TestTerminateWhileTasksRun(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))
		pids := p.PIDs()
		key := stallKey(t)
		var as []*poold.AsyncResult[int]
		for i := range 8 {
			var a *poold.AsyncResult[int]
			var err error
			if i%2 == 0 {
				a, err = stall.ApplyAsync(p, key) // ignores cancellation
			} else {
				a, err = sleep.ApplyAsync(p, 20000)
			}
			if err != nil {
				t.Fatal(err)
			}
			as = append(as, a)
		}
		time.Sleep(200 * time.Millisecond) // the first two are running
		start := time.Now()
		if err := terminate(t, p); err != nil {
			t.Errorf("Terminate: %v", err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("Terminate took %v, want under 2 s", el)
		}
		for i, a := range as {
			if !a.Ready() {
				t.Errorf("task %d not resolved when Terminate returned", i)
				continue
			}
			r, err := a.Get(ctx)
			if !errors.Is(err, poold.KindTerminated) {
				t.Errorf("task %d: %v, want KindTerminated", i, err)
			}
			if r.Err != err {
				t.Errorf("task %d: Result.Err %v, returned %v", i, r.Err, err)
			}
		}
		checkWorkersGone(t, m, p, pids, "after Terminate")
		// Idempotent, and Join succeeds after it.
		if err := p.Terminate(); err != nil {
			t.Errorf("second Terminate: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close after Terminate: %v", err)
		}
		if err := p.Join(ctx); err != nil {
			t.Errorf("Join after Terminate: %v", err)
		}
		if err := p.Join(ctx); err != nil {
			t.Errorf("second Join: %v", err)
		}
	})
}

func TestTerminateAfterClose(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		a, err := stall.ApplyAsync(p, stallKey(t))
		if err != nil {
			t.Fatal(err)
		}
		b, err := square.ApplyAsync(p, 2) // queued behind the stall
		if err != nil {
			t.Fatal(err)
		}
		p.Close()
		start := time.Now()
		terminate(t, p)
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("Terminate of a closing pool took %v", el)
		}
		for i, x := range []*poold.AsyncResult[int]{a, b} {
			if _, err := x.Get(ctx); !errors.Is(err, poold.KindTerminated) {
				t.Errorf("task %d: %v, want KindTerminated", i, err)
			}
		}
		if err := p.Join(ctx); err != nil {
			t.Error(err)
		}
	})
}

// sigIgnored reports whether process pid ignores sig, from /proc.
func sigIgnored(pid int, sig syscall.Signal) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			var mask uint64
			fmt.Sscanf(strings.TrimSpace(v), "%x", &mask)
			return mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}

// Processes only: a task that ignores SIGTERM, which is its process's.
func TestTerminateKillsAfterGrace(t *testing.T) {
	ctx := testCtx(t)
	const grace = 300 * time.Millisecond
	p := newPool(t, poold.WithWorkers(1), poold.WithKillGrace(grace))
	worker := p.PIDs()[0]
	a, err := stubborn.ApplyAsync(p, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	for !sigIgnored(worker, syscall.SIGTERM) {
		if ctx.Err() != nil {
			t.Fatal("the task never started ignoring SIGTERM")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	terminate(t, p)
	el := time.Since(start)
	if el < grace-50*time.Millisecond || el > grace+1500*time.Millisecond {
		t.Errorf("Terminate of a worker that ignores SIGTERM took %v; kill grace %v", el, grace)
	}
	if !gone(worker) {
		t.Errorf("worker %d survived Terminate", worker)
	}
	if _, err := a.Get(ctx); !errors.Is(err, poold.KindTerminated) {
		t.Errorf("task: %v, want KindTerminated", err)
	}
}

func TestTerminateCallbacks(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		var successes, failures atomic.Int32
		key := stallKey(t)
		var as []*poold.AsyncResult[int]
		for range 4 {
			a, err := stall.ApplyAsync(p, key,
				poold.OnSuccess(func(poold.Result[int]) { successes.Add(1) }),
				poold.OnError(func(err error) {
					if errors.Is(err, poold.KindTerminated) {
						failures.Add(1)
					}
				}))
			if err != nil {
				t.Fatal(err)
			}
			as = append(as, a)
		}
		terminate(t, p)
		for i, a := range as {
			if _, err := a.Get(ctx); !errors.Is(err, poold.KindTerminated) {
				t.Errorf("task %d: %v", i, err)
			}
		}
		time.Sleep(50 * time.Millisecond)
		if s, f := successes.Load(), failures.Load(); s != 0 || f != 4 {
			t.Errorf("%d success and %d terminated callbacks for 4 terminated tasks", s, f)
		}
	})
}
