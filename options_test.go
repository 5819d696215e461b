package poold_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/poold/poold"
)

// Processes only: threads mode refuses WithMaxTasksPerWorker.
func TestMaxTasksPerWorker(t *testing.T) {
	t.Parallel()
	const limit, n = 3, 12
	check := func(t *testing.T, rs []poold.Result[int]) {
		t.Helper()
		perPID := map[int]int{}
		for i, r := range rs {
			if r.Err != nil || r.Value != r.PID {
				t.Errorf("task %d: %v, %v", i, r.Value, r.Err)
			}
			perPID[r.PID]++
		}
		if len(perPID) < n/limit {
			t.Errorf("%d tasks ran on %d workers, want at least %d: %v", n, len(perPID), n/limit, perPID)
		}
		for pid, k := range perPID {
			if k > limit {
				t.Errorf("worker %d ran %d tasks, over the limit of %d", pid, k, limit)
			}
		}
	}
	t.Run("ApplyAsync", func(t *testing.T) {
		ctx := testCtx(t)
		p := newPool(t, poold.WithWorkers(1), poold.WithMaxTasksPerWorker(limit))
		as := make([]*poold.AsyncResult[int], n)
		for i := range as {
			var err error
			if as[i], err = pid.ApplyAsync(p, struct{}{}); err != nil {
				t.Fatal(err)
			}
		}
		rs := make([]poold.Result[int], n)
		for i, a := range as {
			rs[i], _ = a.Get(ctx)
		}
		check(t, rs)
	})
	t.Run("Map", func(t *testing.T) {
		ctx := testCtx(t)
		p := newPool(t, poold.WithWorkers(1), poold.WithMaxTasksPerWorker(limit))
		rs, err := pid.Map(ctx, p, make([]struct{}, n), poold.ChunkSize(1))
		if err != nil {
			t.Fatal(err)
		}
		check(t, rs)
	})
}

func TestInitializer(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		runs := initRuns.Load()
		p := m.pool(t, poold.WithWorkers(2), poold.WithInitializer("init_set", initArgs{Msg: "primed"}))
		// The workers share initialized in threads mode: that it reads
		// "primed" does not show that each ran the initializer, its count
		// does (in processes, it counts in the workers).
		if n := initRuns.Load() - runs; m.threads && n != 2 {
			t.Errorf("the initializer ran %d times in 2 worker goroutines, want once in each", n)
		}
		for range 4 {
			r, err := initValue.Apply(ctx, p, struct{}{})
			if err != nil || r.Value != "primed" {
				t.Errorf("init_value = %q, %v; want the initializer's %q", r.Value, err, "primed")
			}
		}
	})
}

func TestInitializerFails(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		for _, c := range []struct {
			name, fn, want string
		}{
			{"returns an error", "init_fail", "database unreachable"},
			{"unknown", "no_such_init", "no_such_init"},
		} {
			t.Run(c.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				start := time.Now()
				p, err := poold.New(ctx, append(m.options(), poold.WithWorkers(1), poold.WithInitializer(c.fn, initArgs{Msg: "database unreachable"}))...)
				el := time.Since(start)
				if p != nil {
					p.Terminate()
					t.Fatal("New succeeded")
				}
				if !errors.Is(err, poold.ErrWorkerStart) {
					t.Errorf("New: %v, want ErrWorkerStart", err)
				}
				if err != nil && !strings.Contains(err.Error(), c.want) {
					t.Errorf("New: %q does not mention %q", err, c.want)
				}
				if el > 10*time.Second {
					t.Errorf("New took %v to give up", el)
				}
			})
		}
	})
}

// Processes only: threads mode starts no worker program.
func TestBadWorkerCommand(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []poold.Option
		want string
	}{
		{"missing", []poold.Option{poold.WithWorkerCommand("/nonexistent/poold-worker")}, "/nonexistent/poold-worker"},
		{"not a worker", []poold.Option{poold.WithWorkerCommand("/bin/sh", "-c", "echo I am no worker >&2; exit 5")}, "I am no worker"},
		{"no handshake", []poold.Option{poold.WithWorkerCommand("/bin/sleep", "30"), poold.WithStartTimeout(200 * time.Millisecond)}, "handshake"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			p, err := poold.New(ctx, append([]poold.Option{poold.WithWorkers(2)}, c.opts...)...)
			if p != nil {
				p.Terminate()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, poold.ErrWorkerStart) {
				t.Errorf("New: %v, want ErrWorkerStart", err)
			}
			if err != nil && !strings.Contains(err.Error(), c.want) {
				t.Errorf("New: %q does not mention %q", err, c.want)
			}
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("New took %v to give up", el)
			}
		})
	}
}

// Processes only: a worker program that never says hello.
func TestNewContextEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	p, err := poold.New(ctx, poold.WithWorkers(1), poold.WithWorkerCommand("/bin/sleep", "30"))
	if p != nil {
		p.Terminate()
		t.Fatal("New succeeded")
	}
	if !errors.Is(err, poold.ErrWorkerStart) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("New: %v; want ErrWorkerStart and DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("New took %v after its context ended", el)
	}
}

func TestOptionValidation(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		for _, c := range []struct {
			name string
			opt  poold.Option
		}{
			{"WithWorkers(0)", poold.WithWorkers(0)},
			{"WithWorkers(-1)", poold.WithWorkers(-1)},
			{"WithTimeout(-1s)", poold.WithTimeout(-time.Second)},
			{"WithRetries(-1)", poold.WithRetries(-1)},
			{"WithMaxTasksPerWorker(-1)", poold.WithMaxTasksPerWorker(-1)},
			{"WithMaxWorkerMemory(-1)", poold.WithMaxWorkerMemory(-1)},
			{"WithKillGrace(0)", poold.WithKillGrace(0)},
			{"WithKillGrace(-1s)", poold.WithKillGrace(-time.Second)},
			{"WithStartTimeout(0)", poold.WithStartTimeout(0)},
			{"WithMaxFrameSize(10)", poold.WithMaxFrameSize(10)},
			{"WithWorkerCommand(\"\")", poold.WithWorkerCommand("")},
			{"WithInitializer(chan)", poold.WithInitializer("init_set", make(chan int))},
		} {
			t.Run(c.name, func(t *testing.T) {
				start := time.Now()
				p, err := poold.New(context.Background(), append(m.options(), c.opt)...)
				if p != nil {
					p.Terminate()
				}
				if err == nil {
					t.Fatal("New accepted it")
				}
				if errors.Is(err, poold.ErrWorkerStart) {
					t.Errorf("a configuration error is not a start failure: %v", err)
				}
				if el := time.Since(start); el > 200*time.Millisecond {
					t.Errorf("New took %v to refuse it: did it start workers?", el)
				}
			})
		}
	})
}
