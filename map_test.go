package poold_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poold/poold"
)

func TestDefaultChunkSize(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ n, workers, want int }{
		{0, 4, 0}, {1, 4, 1}, {16, 4, 1}, {17, 4, 2}, {32, 4, 2}, {33, 4, 3},
		{100, 3, 9}, {1000, 1, 250}, {7, 2, 1}, {24, 2, 3},
	} {
		if got := poold.DefaultChunkSize(c.n, c.workers); got != c.want {
			t.Errorf("DefaultChunkSize(%d, %d) = %d, want %d", c.n, c.workers, got, c.want)
		}
	}
}

// checkChunks checks that results i and j of the same chunk ran on the same
// worker, one after the other.
func checkChunks[R any](t *testing.T, rs []poold.Result[R], chunk int) {
	t.Helper()
	for i := range rs {
		first := i / chunk * chunk
		if workerOf(rs[i]) != workerOf(rs[first]) {
			t.Errorf("chunk size %d: task %d ran on worker %+v, task %d on worker %+v", chunk, i, workerOf(rs[i]), first, workerOf(rs[first]))
		}
		if i > first && rs[i].Start.Before(rs[i-1].End) {
			t.Errorf("chunk size %d: task %d started before task %d ended", chunk, i, i-1)
		}
	}
}

func TestMapChunkSizes(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))
		in := ints(20)
		for _, chunk := range []int{1, 7, 50} {
			rs, err := square.Map(ctx, p, in, poold.ChunkSize(chunk))
			if err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
			if len(rs) != len(in) {
				t.Fatalf("chunk %d: %d results", chunk, len(rs))
			}
			for i, r := range rs {
				if r.Value != i*i || r.Index != i || r.Err != nil || r.Attempts != 1 {
					t.Errorf("chunk %d, result %d: value %d, index %d, err %v, attempts %d", chunk, i, r.Value, r.Index, r.Err, r.Attempts)
				}
			}
			checkChunks(t, rs, chunk)
		}
	})
}

func TestMapDefaultChunking(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))
		// 24 tasks on 2 workers: chunks of ceil(24/8) = 3. Both workers are
		// idle, so the first two chunks go to different workers.
		args := make([]slowArgs, 24)
		for i := range args {
			args[i] = slowArgs{I: i, MS: 5}
		}
		rs, err := slowEcho.Map(ctx, p, args)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rs {
			if r.Value != i {
				t.Errorf("result %d: %d", i, r.Value)
			}
		}
		checkChunks(t, rs, 3)
		if workerOf(rs[0]) == workerOf(rs[3]) {
			t.Errorf("tasks 0 and 3 both ran on worker %+v: the first two chunks of 3 should go to the two idle workers", workerOf(rs[0]))
		}
	})
}

func TestMapBadChunkSize(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		for _, n := range []int{0, -1, -5} {
			rs, err := square.Map(ctx, p, ints(3), poold.ChunkSize(n))
			if !errors.Is(err, poold.ErrChunkSize) || rs != nil {
				t.Errorf("Map with ChunkSize(%d): %v, %v; want ErrChunkSize", n, rs, err)
			}
			if m, err := p.MapAsync("square", []any{1}, poold.ChunkSize(n)); !errors.Is(err, poold.ErrChunkSize) || m != nil {
				t.Errorf("MapAsync with ChunkSize(%d): %v; want ErrChunkSize", n, err)
			}
			var errs []error
			for _, err := range square.IMap(ctx, p, slices.Values(ints(3)), poold.ChunkSize(n)) {
				errs = append(errs, err)
			}
			if len(errs) != 1 || !errors.Is(errs[0], poold.ErrChunkSize) {
				t.Errorf("IMap with ChunkSize(%d) yielded %v; want ErrChunkSize once", n, errs)
			}
		}
		if s := p.Stats(); s.TasksDone != 0 {
			t.Errorf("%d tasks ran", s.TasksDone)
		}
	})
}

// A window below 1 is an error that names it, as a chunk size below 1 is.
func TestIMapBadWindow(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		for _, n := range []int{0, -1, -5} {
			for name, errs := range map[string][]error{
				"IMap":          errsOf(square.IMap(ctx, p, slices.Values(ints(3)), poold.Window(n))),
				"IMapUnordered": errsOf(p.IMapUnordered(ctx, "square", slices.Values([]any{1, 2}), poold.Window(n))),
			} {
				if len(errs) != 1 || !errors.Is(errs[0], poold.ErrWindow) || !strings.Contains(errs[0].Error(), fmt.Sprintf("not %d", n)) {
					t.Errorf("%s with Window(%d) yielded %v; want ErrWindow, naming %d, once", name, n, errs, n)
				}
			}
		}
		if s := p.Stats(); s.TasksDone != 0 {
			t.Errorf("%d tasks ran", s.TasksDone)
		}
	})
}

func TestChunkSizeErrorNamesTheSize(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		for _, n := range []int{0, -5} {
			_, err := square.Map(ctx, p, ints(3), poold.ChunkSize(n))
			if want := fmt.Sprintf("not %d", n); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("ChunkSize(%d): error %q does not say %q", n, err, want)
			}
		}
	})
}

func TestMapEmpty(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		rs, err := square.Map(ctx, p, nil)
		if err != nil || len(rs) != 0 {
			t.Errorf("Map(nil) = %v, %v; want no results, no error", rs, err)
		}
		raw, err := p.Map(ctx, "square", []any{})
		if err != nil || len(raw) != 0 {
			t.Errorf("Map([]) = %v, %v; want no results, no error", raw, err)
		}
		mr, err := square.MapAsync(p, []int{})
		if err != nil {
			t.Fatal(err)
		}
		if !mr.Ready() {
			t.Error("MapAsync of nothing is not Ready")
		}
		if ok, err := mr.Successful(); !ok || err != nil {
			t.Errorf("Successful = %v, %v", ok, err)
		}
		n := 0
		for range square.IMap(ctx, p, slices.Values([]int{})) {
			n++
		}
		if n != 0 {
			t.Errorf("IMap of nothing yielded %d times", n)
		}
		if s := p.Stats(); s.TasksDone != 0 {
			t.Errorf("%d tasks ran", s.TasksDone)
		}
	})
}

func TestMapFirstErrorInInputOrder(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))
		rs, err := p.Map(ctx, "square", []any{1, 2, "a", 4, "b", 6}, poold.ChunkSize(1))
		if len(rs) != 6 {
			t.Fatalf("%d results", len(rs))
		}
		if err == nil || err != rs[2].Err {
			t.Errorf("Map error %v; want task 2's, %v", err, rs[2].Err)
		}
		if !errors.Is(rs[4].Err, poold.KindBadArgs) {
			t.Errorf("task 4: %v", rs[4].Err)
		}
		for _, i := range []int{0, 1, 3, 5} {
			if rs[i].Err != nil {
				t.Errorf("task %d: %v", i, rs[i].Err)
			}
		}
	})
}

func TestMapAsync(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))
		args := make([]slowArgs, 6)
		for i := range args {
			args[i] = slowArgs{I: i, MS: 200}
		}
		start := time.Now()
		mr, err := slowEcho.MapAsync(p, args)
		if err != nil {
			t.Fatal(err)
		}
		if mr.Ready() {
			t.Error("Ready at once")
		}
		if _, err := mr.Successful(); !errors.Is(err, poold.ErrNotReady) {
			t.Errorf("Successful: %v, want ErrNotReady", err)
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err = mr.Get(short)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Get with a short context: %v", err)
		}
		if err := mr.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		el := time.Since(start)
		if ok, err := mr.Successful(); !ok || err != nil {
			t.Errorf("Successful = %v, %v", ok, err)
		}
		rs, err := mr.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		workers := map[workerID]bool{}
		for i, r := range rs {
			if r.Value != i || r.Index != i {
				t.Errorf("result %d: value %d, index %d", i, r.Value, r.Index)
			}
			workers[workerOf(r)] = true
		}
		if len(workers) != 2 {
			t.Errorf("ran on %d workers, want 2", len(workers))
		}
		if el >= 6*200*time.Millisecond {
			t.Errorf("6 tasks of 200 ms on 2 workers took %v: in series", el)
		}
	})
}

// OnMapSuccess and OnMapError are Python's map_async callback and
// error_callback: one of them fires once per Map, before Get returns,
// after the per-task callbacks.
func TestMapWholeCallCallbacks(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))

		var mu sync.Mutex
		var events []string
		var whole []poold.Result[int]
		var wholeErr error
		record := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
		opts := []poold.CallOption{
			poold.ChunkSize(2),
			poold.OnSuccess(func(r poold.Result[int]) { record("success") }),
			poold.OnError(func(error) { record("error") }),
			// Slow, so that Get would overtake it if it did not wait.
			poold.OnMapSuccess(func(rs []poold.Result[int]) {
				time.Sleep(100 * time.Millisecond)
				whole = rs
				record("map success")
			}),
			poold.OnMapError(func(err error) {
				time.Sleep(100 * time.Millisecond)
				wholeErr = err
				record("map error")
			}),
		}
		check := func(what string, want []string) {
			t.Helper()
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(events, want) {
				t.Errorf("%s: callbacks %v, want %v", what, events, want)
			}
			events = nil
		}

		mr, err := square.MapAsync(p, []int{1, 2, 3, 4, 5}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := mr.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		check("MapAsync", []string{"success", "success", "success", "success", "success", "map success"})
		if len(whole) != 5 || &whole[0] != &rs[0] {
			t.Errorf("OnMapSuccess got %d results, not the slice Get returns", len(whole))
		}

		// The first error in input order, as Get returns it.
		_, err = p.Map(ctx, "square", []any{1, "x", 3, "y"},
			poold.OnMapSuccess(func([]poold.Result[poold.Raw]) { record("map success") }),
			poold.OnMapError(func(err error) { wholeErr = err; record("map error") }))
		if !errors.Is(err, poold.KindBadArgs) || wholeErr != err {
			t.Errorf("Map: error %v, OnMapError got %v; want the same bad_args", err, wholeErr)
		}
		check("Map with failures", []string{"map error"})

		// An empty Map succeeds, once.
		if _, err := square.Map(ctx, p, nil, opts...); err != nil {
			t.Fatal(err)
		}
		check("empty Map", []string{"map success"})

		// A whole-call callback that panics: Get returns the results and a
		// *CallbackError, which wraps the Map's error if it had one.
		rs, err = square.Map(ctx, p, []int{2, 3}, poold.OnMapSuccess(func([]poold.Result[int]) { panic("whole") }))
		var ce *poold.CallbackError
		if !errors.As(err, &ce) || ce.Callback != "OnMapSuccess" || ce.Value != "whole" || ce.Err != nil || len(rs) != 2 || rs[1].Value != 9 {
			t.Errorf("OnMapSuccess panicked: %v, %v; want the results and a *CallbackError", rs, err)
		}
		_, err = p.Map(ctx, "square", []any{"x"}, poold.OnMapError(func(error) { panic("whole") }))
		if !errors.Is(err, poold.ErrCallbackPanic) || !errors.Is(err, poold.KindBadArgs) {
			t.Errorf("OnMapError panicked: %v; want ErrCallbackPanic wrapping bad_args", err)
		}

		// They are checked against the results' type, and refused on calls
		// that are not a Map.
		if _, err := square.MapAsync(p, []int{1}, poold.OnMapSuccess(func([]poold.Result[string]) {})); err == nil || !strings.Contains(err.Error(), "OnMapSuccess") {
			t.Errorf("OnMapSuccess of the wrong type: %v, want an error naming it", err)
		}
		for _, opt := range []poold.CallOption{
			poold.OnMapSuccess(func([]poold.Result[int]) {}),
			poold.OnMapError(func(error) {}),
		} {
			if _, err := square.Apply(ctx, p, 1, opt); err == nil || !strings.Contains(err.Error(), "not of Apply") {
				t.Errorf("Apply with a whole-Map callback: %v, want an error", err)
			}
			if a, err := square.ApplyAsync(p, 1, opt); err == nil || a != nil {
				t.Errorf("ApplyAsync with a whole-Map callback: %v, want an error", err)
			}
			for name, it := range map[string]func() []error{
				"IMap":          func() []error { return errsOf(square.IMap(ctx, p, slices.Values([]int{1}), opt)) },
				"IMapUnordered": func() []error { return errsOf(square.IMapUnordered(ctx, p, slices.Values([]int{1}), opt)) },
				"IMapErr":       func() []error { return errsOf(square.IMapErr(ctx, p, withErrs([]int{1}, nil), opt)) },
			} {
				if errs := it(); len(errs) != 1 || errs[0] == nil || !strings.Contains(errs[0].Error(), "not of IMap") {
					t.Errorf("%s with a whole-Map callback yielded %v, want one error", name, errs)
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
		check("refused calls", nil)
	})
}

// FailFast: the first failure stops a Map. The tasks after it that had not
// started never run and say canceled; the Map's error is the failure.
// Processes only: the failure is a worker's exit, which would end this
// process in threads mode (TestIMapFailFast fails with a task error).
func TestMapFailFast(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	log := filepath.Join(t.TempDir(), "runs")
	args := make([]workArgs, 8)
	for i := range args {
		args[i] = workArgs{I: i, Log: log, MS: 20}
	}
	args[2].Exit = 3 // kills its worker: worker_lost
	rs, err := work.Map(ctx, p, args, poold.ChunkSize(1), poold.FailFast())
	if !errors.Is(err, poold.KindWorkerLost) {
		t.Fatalf("Map error %v, want the failure, KindWorkerLost", err)
	}
	runs := countRuns(t, log)
	for i, r := range rs {
		switch {
		case i < 2 && r.Err != nil:
			t.Errorf("item %d, before the failure: %v", i, r.Err)
		case i > 3 && (!errors.Is(r.Err, poold.KindCanceled) || runs[i] != 0):
			t.Errorf("item %d, after the failure: %v, ran %d times; want canceled, never run", i, r.Err, runs[i])
		}
	}
	if _, err := work.Apply(ctx, p, workArgs{I: 9}, poold.FailFast()); err == nil || !strings.Contains(err.Error(), "FailFast") {
		t.Errorf("FailFast on Apply: %v, want a refusal", err)
	}
}

// failIf fails when its argument is not empty.
var failIf = poold.Register(reg, "fail_if", func(_ context.Context, msg string) (int, error) {
	if msg != "" {
		return 0, errors.New(msg)
	}
	return 0, nil
})

// FailFast on an IMap: after the first failure it reads no more input.
func TestIMapFailFast(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		pulled := 0
		input := func(yield func(string) bool) {
			for i := 0; i < 1000; i++ {
				pulled++
				msg := ""
				if i == 5 {
					msg = "boom"
				}
				if !yield(msg) {
					return
				}
			}
		}
		var failed error
		for r, err := range failIf.IMap(ctx, p, input, poold.FailFast(), poold.Window(4)) {
			if err != nil && !errors.Is(err, poold.KindCanceled) && r.Index == 5 {
				failed = err
			}
		}
		if failed == nil || pulled > 5+4+1 {
			t.Errorf("failure %v; %d values pulled, want at most 10", failed, pulled)
		}
	})
}
