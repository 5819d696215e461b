package poold_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
		if rs[i].PID != rs[first].PID {
			t.Errorf("chunk size %d: task %d ran on pid %d, task %d on pid %d", chunk, i, rs[i].PID, first, rs[first].PID)
		}
		if i > first && rs[i].Start.Before(rs[i-1].End) {
			t.Errorf("chunk size %d: task %d started before task %d ended", chunk, i, i-1)
		}
	}
}

func TestMapChunkSizes(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
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
}

func TestMapDefaultChunking(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
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
	if rs[0].PID == rs[3].PID {
		t.Errorf("tasks 0 and 3 both ran on pid %d: the first two chunks of 3 should go to the two idle workers", rs[0].PID)
	}
}

func TestMapBadChunkSize(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
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
}

// A window below 1 is an error that names it, as a chunk size below 1 is.
func TestIMapBadWindow(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
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
}

func TestChunkSizeErrorNamesTheSize(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	for _, n := range []int{0, -5} {
		_, err := square.Map(ctx, p, ints(3), poold.ChunkSize(n))
		if want := fmt.Sprintf("not %d", n); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ChunkSize(%d): error %q does not say %q", n, err, want)
		}
	}
}

func TestMapEmpty(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	rs, err := square.Map(ctx, p, nil)
	if err != nil || len(rs) != 0 {
		t.Errorf("Map(nil) = %v, %v; want no results, no error", rs, err)
	}
	raw, err := p.Map(ctx, "square", []any{})
	if err != nil || len(raw) != 0 {
		t.Errorf("Map([]) = %v, %v; want no results, no error", raw, err)
	}
	m, err := square.MapAsync(p, []int{})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Ready() {
		t.Error("MapAsync of nothing is not Ready")
	}
	if ok, err := m.Successful(); !ok || err != nil {
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
}

func TestMapFirstErrorInInputOrder(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
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
}

func TestMapAsync(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
	args := make([]slowArgs, 6)
	for i := range args {
		args[i] = slowArgs{I: i, MS: 200}
	}
	start := time.Now()
	m, err := slowEcho.MapAsync(p, args)
	if err != nil {
		t.Fatal(err)
	}
	if m.Ready() {
		t.Error("Ready at once")
	}
	if _, err := m.Successful(); !errors.Is(err, poold.ErrNotReady) {
		t.Errorf("Successful: %v, want ErrNotReady", err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = m.Get(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get with a short context: %v", err)
	}
	if err := m.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if ok, err := m.Successful(); !ok || err != nil {
		t.Errorf("Successful = %v, %v", ok, err)
	}
	rs, err := m.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pids := map[int]bool{}
	for i, r := range rs {
		if r.Value != i || r.Index != i {
			t.Errorf("result %d: value %d, index %d", i, r.Value, r.Index)
		}
		pids[r.PID] = true
	}
	if len(pids) != 2 {
		t.Errorf("ran on %d workers, want 2", len(pids))
	}
	if el >= 6*200*time.Millisecond {
		t.Errorf("6 tasks of 200 ms on 2 workers took %v: in series", el)
	}
}
