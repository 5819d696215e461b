package poold_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poold/poold"
)

func TestApply(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))

		r, err := square.Apply(ctx, p, 12)
		if err != nil || r.Value != 144 {
			t.Fatalf("square.Apply(12) = %v, %v; want 144", r.Value, err)
		}
		if r.Func != "square" || r.Index != 0 {
			t.Errorf("Func %q, Index %d; want square, 0", r.Func, r.Index)
		}

		raw, err := p.Apply(ctx, "square", 5)
		if err != nil {
			t.Fatal(err)
		}
		if v := decodeInt(t, raw.Value); v != 25 {
			t.Errorf("untyped Apply: %d, want 25", v)
		}
	})
}

func TestApplyContextEndsFirst(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		p := m.pool(t, poold.WithWorkers(1))
		ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := sleep.Apply(ctx, p, 2000)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Apply with a context that ends first: %v, want DeadlineExceeded", err)
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("Apply returned %v after its context ended", el)
		}
	})
}

func TestApplyAsyncGetTimeoutDoesNotCancel(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))

		a, err := sleep.ApplyAsync(p, 500)
		if err != nil {
			t.Fatal(err)
		}
		if a.Ready() {
			t.Error("Ready right after submission of a 500 ms task")
		}
		if _, err := a.Successful(); !errors.Is(err, poold.ErrNotReady) {
			t.Errorf("Successful before the task is done: %v, want ErrNotReady", err)
		}
		select {
		case <-a.Done():
			t.Error("Done closed right after submission")
		default:
		}

		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err = a.Get(short)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Get with a short context: %v, want DeadlineExceeded", err)
		}
		short, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
		err = a.Wait(short)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait with a short context: %v, want DeadlineExceeded", err)
		}
		if a.Ready() {
			t.Error("Ready 100 ms into a 500 ms task")
		}

		// The timed-out Get did not cancel the task: it finishes normally (a
		// cancelled sleep would return its context's error).
		if err := a.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if !a.Ready() {
			t.Error("not Ready after Wait")
		}
		r, err := a.Get(ctx)
		if err != nil {
			t.Fatalf("later Get: %v", err)
		}
		if r.Value == 0 || r.Value != r.PID {
			t.Errorf("value %d, PID %d; want the worker's pid as the value", r.Value, r.PID)
		}
		if ok, err := a.Successful(); !ok || err != nil {
			t.Errorf("Successful = %v, %v; want true, nil", ok, err)
		}
		if d := r.Duration(); d < 400*time.Millisecond {
			t.Errorf("the task ran %v; want about 500 ms", d)
		}
	})
}

func TestApplyAsyncFailure(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		before := p.PIDs()

		a, err := fail.ApplyAsync(p, "no luck")
		if err != nil {
			t.Fatal(err)
		}
		r, err := a.Get(ctx)
		if !errors.Is(err, poold.KindError) {
			t.Fatalf("Get: %v, want KindError", err)
		}
		if r.Err != err {
			t.Errorf("Result.Err %v differs from the returned error %v", r.Err, err)
		}
		te := taskErr(t, err)
		if te.Kind != poold.KindError || te.Message != "no luck" || te.Func != "fail" || te.PID != before[0] {
			t.Errorf("TaskError %+v; want kind error, message %q, func fail, pid %d", te, "no luck", before[0])
		}
		if ok, err := a.Successful(); ok || err != nil {
			t.Errorf("Successful = %v, %v; want false, nil", ok, err)
		}
		// A task that returns an error keeps its worker.
		if after := p.PIDs(); !slices.Equal(before, after) {
			t.Errorf("workers %v before, %v after a task error", before, after)
		}
		if s := p.Stats(); s.WorkersLost != 0 || s.WorkersStarted != 1 {
			t.Errorf("stats %+v; want no worker lost, 1 started", s)
		}
	})
}

func TestCallbacks(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))

		var successes, failures atomic.Int32
		var value atomic.Int64
		var lastErr atomic.Value
		// The callbacks are slow, so that Get would overtake them if it did not
		// wait for them.
		opts := []poold.CallOption{
			poold.OnSuccess(func(r poold.Result[int]) {
				time.Sleep(100 * time.Millisecond)
				value.Store(int64(r.Value))
				successes.Add(1)
			}),
			poold.OnError(func(err error) {
				time.Sleep(100 * time.Millisecond)
				lastErr.Store(err)
				failures.Add(1)
			}),
		}

		a, err := square.ApplyAsync(p, 6, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Get(ctx); err != nil {
			t.Fatal(err)
		}
		if s, f, v := successes.Load(), failures.Load(), value.Load(); s != 1 || f != 0 || v != 36 {
			t.Errorf("after Get of a success: %d success and %d error callbacks, value %d; want 1, 0, 36", s, f, v)
		}

		b, err := fail.ApplyAsync(p, "nope", opts...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Get(ctx)
		if !errors.Is(err, poold.KindError) {
			t.Fatalf("Get: %v", err)
		}
		if s, f := successes.Load(), failures.Load(); s != 1 || f != 1 {
			t.Errorf("after Get of a failure: %d success and %d error callbacks in all; want 1, 1", s, f)
		}
		if e, _ := lastErr.Load().(error); e != err {
			t.Errorf("OnError got %v, Get returned %v", e, err)
		}

		// Wait, too, returns only after the callback.
		c, err := square.ApplyAsync(p, 7, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if s, v := successes.Load(), value.Load(); s != 2 || v != 49 {
			t.Errorf("after Wait: %d success callbacks, value %d; want 2, 49", s, v)
		}
		time.Sleep(150 * time.Millisecond)
		if s, f := successes.Load(), failures.Load(); s != 2 || f != 1 {
			t.Errorf("callbacks fired again: %d successes, %d errors; want 2, 1", s, f)
		}
	})
}

func TestCallbacksMap(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))
		var successes, failures atomic.Int32
		// "x" cannot be decoded into square's int argument: that task fails
		// with kind bad_args, and only that one.
		args := []any{1, 2, "x", 4, 5, 6, 7, 8, 9, 10}
		mr, err := p.MapAsync("square", args, poold.ChunkSize(3),
			poold.OnSuccess(func(poold.Result[poold.Raw]) { successes.Add(1) }),
			poold.OnError(func(error) { failures.Add(1) }))
		if err != nil {
			t.Fatal(err)
		}
		rs, err := mr.Get(ctx)
		if !errors.Is(err, poold.KindBadArgs) {
			t.Fatalf("MapAsync Get: %v, want KindBadArgs", err)
		}
		if s, f := successes.Load(), failures.Load(); s != 9 || f != 1 {
			t.Errorf("%d success and %d error callbacks; want 9 and 1", s, f)
		}
		for i, r := range rs {
			if i == 2 {
				if !errors.Is(r.Err, poold.KindBadArgs) {
					t.Errorf("task 2: %v, want bad_args", r.Err)
				}
				continue
			}
			if r.Err != nil || decodeInt(t, r.Value) != args[i].(int)*args[i].(int) {
				t.Errorf("task %d: %v, %v", i, r.Value, r.Err)
			}
		}
	})
}

func TestCallbackOfTheWrongType(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		p := m.pool(t, poold.WithWorkers(1))
		a, err := square.ApplyAsync(p, 3, poold.OnSuccess(func(poold.Result[string]) {}))
		if err == nil || a != nil {
			t.Fatalf("OnSuccess for Result[string] on a Func[int, int]: %v, %v; want an error", a, err)
		}
		if s := p.Stats(); s.TasksDone != 0 {
			t.Errorf("the call ran %d tasks", s.TasksDone)
		}
	})
}

func TestConcurrentCallers(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				in := ints(30 + g)
				rs, err := square.Map(ctx, p, in, poold.ChunkSize(1+g%4))
				if err != nil {
					t.Errorf("caller %d: %v", g, err)
					return
				}
				for i, r := range rs {
					if r.Value != i*i {
						t.Errorf("caller %d, result %d: %d", g, i, r.Value)
					}
				}
				r, err := square.Apply(ctx, p, g)
				if err != nil || r.Value != g*g {
					t.Errorf("caller %d: Apply: %v, %v", g, r.Value, err)
				}
				i := 0
				for r, err := range square.IMap(ctx, p, slices.Values(in), poold.Window(3)) {
					if err != nil || r.Value != i*i {
						t.Errorf("caller %d, IMap result %d: %v, %v", g, i, r.Value, err)
					}
					i++
				}
			})
		}
		wg.Wait()
		a, err := sleep.ApplyAsync(p, 50)
		if err != nil {
			t.Fatal(err)
		}
		// Many goroutines may wait for one result; each gets it.
		for range 4 {
			wg.Go(func() {
				if r, err := a.Get(ctx); err != nil || r.Value == 0 {
					t.Errorf("Get: %v, %v", r.Value, err)
				}
			})
		}
		wg.Wait()
	})
}
