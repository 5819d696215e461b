package poold_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold"
)

// ---- helpers ----

// testCtx is the test's context, bounded so that a hang fails the test
// rather than the whole run.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newPool starts a pool and terminates it when the test ends.
func newPool(t *testing.T, opts ...poold.Option) *poold.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := poold.New(ctx, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { terminate(t, p) })
	return p
}

// terminate terminates p, and fails the test with every goroutine's stack
// rather than hang the whole run if Terminate does not return.
func terminate(t *testing.T, p *poold.Pool) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Terminate() }()
	select {
	case err := <-done:
		return err
	case <-time.After(15 * time.Second):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("Terminate did not return within 15 s; goroutines:\n%s", buf)
		return errors.New("terminate hung")
	}
}

// taskErr returns err as a *TaskError, failing the test if it is not one.
func taskErr(t *testing.T, err error) *poold.TaskError {
	t.Helper()
	var te *poold.TaskError
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a *poold.TaskError", err, err)
	}
	return te
}

// exitErr returns the *WorkerExitError under err, failing the test if there
// is none.
func exitErr(t *testing.T, err error) *poold.WorkerExitError {
	t.Helper()
	var we *poold.WorkerExitError
	if !errors.As(err, &we) {
		t.Fatalf("error %v has no *poold.WorkerExitError", err)
	}
	return we
}

// gone reports whether no process has the given pid any more.
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// waitAllReady waits until every slot of p has a ready worker, and returns
// their pids.
func waitAllReady(t *testing.T, p *poold.Pool) []int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		pids := p.PIDs()
		if !slices.Contains(pids, 0) {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers not all ready: %v", pids)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ints(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func decodeInt(t *testing.T, r poold.Raw) int {
	t.Helper()
	var v int
	if err := r.Decode(&v); err != nil {
		t.Fatalf("decoding %x: %v", []byte(r), err)
	}
	return v
}

// ---- Apply and ApplyAsync ----

func TestApply(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))

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
}

func TestApplyContextEndsFirst(t *testing.T) {
	p := newPool(t, poold.WithWorkers(1))
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
}

func TestApplyAsyncGetTimeoutDoesNotCancel(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))

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
}

func TestApplyAsyncFailure(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
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
}

func TestCallbacks(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))

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
}

func TestCallbacksMap(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
	var successes, failures atomic.Int32
	// "x" cannot be decoded into square's int argument: that task fails
	// with kind bad_args, and only that one.
	args := []any{1, 2, "x", 4, 5, 6, 7, 8, 9, 10}
	m, err := p.MapAsync("square", args, poold.ChunkSize(3),
		poold.OnSuccess(func(poold.Result[poold.Raw]) { successes.Add(1) }),
		poold.OnError(func(error) { failures.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := m.Get(ctx)
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
}

func TestCallbackOfTheWrongType(t *testing.T) {
	p := newPool(t, poold.WithWorkers(1))
	a, err := square.ApplyAsync(p, 3, poold.OnSuccess(func(poold.Result[string]) {}))
	if err == nil || a != nil {
		t.Fatalf("OnSuccess for Result[string] on a Func[int, int]: %v, %v; want an error", a, err)
	}
	if s := p.Stats(); s.TasksDone != 0 {
		t.Errorf("the call ran %d tasks", s.TasksDone)
	}
}

// ---- typed results ----

func TestTypedStructs(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))

	in := shape{Label: "triangle", Points: []point{{1, 2}, {3, 4}, {5, 6}}}
	r, err := summarize.Apply(ctx, p, in)
	if err != nil {
		t.Fatal(err)
	}
	want := summary{Label: "triangle", Total: point{9, 12}, Count: 3, PID: r.PID}
	if r.Value != want {
		t.Errorf("summarize = %+v, want %+v", r.Value, want)
	}
	if r.PID == 0 || r.PID == os.Getpid() {
		t.Errorf("PID %d", r.PID)
	}

	// On the wire, fields are named by their json tags: an untyped caller
	// can speak them, and read them.
	raw, err := p.Apply(ctx, "summarize", map[string]any{
		"label":  "segment",
		"points": []any{map[string]any{"x": 1, "y": 1}, map[string]any{"x": 2, "y": 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := raw.Value.Decode(&m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"label", "total", "count", "pid"} {
		if _, ok := m[k]; !ok {
			t.Errorf("result %v has no field %q", m, k)
		}
	}
	var s summary
	if err := raw.Value.Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.Label != "segment" || s.Total != (point{3, 4}) || s.Count != 2 {
		t.Errorf("decoded %+v", s)
	}

	// A misspelt argument is not silently ignored.
	_, err = p.Apply(ctx, "summarize", map[string]any{"lable": "x"})
	if !errors.Is(err, poold.KindBadArgs) {
		t.Errorf("misspelt field: %v, want KindBadArgs", err)
	}
}

func TestResultNotDecodable(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	// The worker returns a string; this handle wants an int.
	r, err := resultMismatch.Apply(ctx, p, struct{}{})
	if !errors.Is(err, poold.KindEncode) {
		t.Fatalf("string result into an int: %v, want KindEncode", err)
	}
	te := taskErr(t, err)
	if te.Kind != poold.KindEncode || !strings.Contains(te.Message, "decoding the result") {
		t.Errorf("TaskError %+v", te)
	}
	if r.PID == 0 || te.PID != r.PID {
		t.Errorf("result PID %d, error PID %d; want the worker's", r.PID, te.PID)
	}
	if r, err := square.Apply(ctx, p, 3); err != nil || r.Value != 9 {
		t.Errorf("afterwards: %v, %v", r.Value, err)
	}
}

func TestResultNotEncodable(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	before := p.PIDs()
	_, err := unencodable.Apply(ctx, p, struct{}{})
	// errors.go: KindEncode, the arguments or the result could not be
	// encoded or decoded.
	if !errors.Is(err, poold.KindEncode) {
		t.Errorf("a result msgpack cannot encode: %v, want KindEncode", err)
	}
	if r, err := square.Apply(ctx, p, 3); err != nil || r.Value != 9 || r.PID != before[0] {
		t.Errorf("afterwards: %v, %v on pid %d; want 9 on pid %d", r.Value, err, r.PID, before[0])
	}
}

func TestArgsNotEncodable(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))

	_, err := echo.Apply(ctx, p, make(chan int))
	if !errors.Is(err, poold.KindEncode) {
		t.Fatalf("echo(chan): %v, want KindEncode", err)
	}
	if te := taskErr(t, err); te.Kind != poold.KindEncode {
		t.Errorf("kind %q", te.Kind)
	}

	args := []any{1, make(chan int), 3, func() {}, 5}
	rs, err := p.Map(ctx, "echo", args, poold.ChunkSize(2))
	if len(rs) != len(args) {
		t.Fatalf("%d results for %d arguments (err %v)", len(rs), len(args), err)
	}
	if err != rs[1].Err {
		t.Errorf("Map's error %v; want the first failure in input order, %v", err, rs[1].Err)
	}
	for i, r := range rs {
		if i == 1 || i == 3 {
			if te := taskErr(t, r.Err); te.Kind != poold.KindEncode || r.Index != i {
				t.Errorf("task %d: %v (index %d), want kind encode", i, r.Err, r.Index)
			}
			continue
		}
		if r.Err != nil || decodeInt(t, r.Value) != args[i] {
			t.Errorf("task %d: %v, %v", i, r.Value, r.Err)
		}
	}
}

// ---- Map ----

func TestDefaultChunkSize(t *testing.T) {
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

func TestChunkSizeErrorNamesTheSize(t *testing.T) {
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

// ---- IMap ----

func TestIMapOrdered(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
	const n = 12
	// Earlier tasks take longer, so they finish out of order.
	args := func(yield func(slowArgs) bool) {
		for i := range n {
			if !yield(slowArgs{I: i, MS: (n - i) * 8}) {
				return
			}
		}
	}
	for _, chunk := range []int{1, 3} {
		i := 0
		for r, err := range slowEcho.IMap(ctx, p, args, poold.ChunkSize(chunk)) {
			if err != nil {
				t.Fatalf("chunk %d, result %d: %v", chunk, i, err)
			}
			if r.Value != i || r.Index != i {
				t.Errorf("chunk %d: result %d has value %d, index %d", chunk, i, r.Value, r.Index)
			}
			i++
		}
		if i != n {
			t.Errorf("chunk %d: %d results, want %d", chunk, i, n)
		}
	}
}

func TestIMapUnordered(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
	const n = 20
	// Task 0 is slow; the others are quick, and finish first on the other
	// worker.
	args := func(yield func(slowArgs) bool) {
		for i := range n {
			ms := 0
			if i == 0 {
				ms = 500
			}
			if !yield(slowArgs{I: i, MS: ms}) {
				return
			}
		}
	}
	var order []int
	for r, err := range slowEcho.IMapUnordered(ctx, p, args) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Index != r.Value {
			t.Errorf("result with value %d has index %d", r.Value, r.Index)
		}
		order = append(order, r.Value)
	}
	if len(order) > 0 && order[0] == 0 {
		t.Errorf("the slow task 0 was yielded first: %v", order)
	}
	got := slices.Sorted(slices.Values(order))
	if !slices.Equal(got, ints(n)) {
		t.Errorf("yielded %v, want each of 0..%d once", order, n-1)
	}
}

// counting is an endless input that counts how many values were pulled.
func counting(pulled *int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := 0; ; i++ {
			*pulled++
			if !yield(i) {
				return
			}
		}
	}
}

func TestIMapLazy(t *testing.T) {
	ctx := testCtx(t)
	const workers = 2
	p := newPool(t, poold.WithWorkers(workers))
	for _, c := range []struct {
		name   string
		opts   []poold.CallOption
		window int
	}{
		{"Window(4)", []poold.CallOption{poold.Window(4)}, 4},
		{"default window", nil, 4 * workers},
		{"ChunkSize(3)", []poold.CallOption{poold.ChunkSize(3)}, 4 * workers * 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			const k = 10
			pulled, got := 0, 0
			for r, err := range square.IMap(ctx, p, counting(&pulled), c.opts...) {
				if err != nil {
					t.Fatal(err)
				}
				if r.Value != got*got {
					t.Errorf("result %d: %d", got, r.Value)
				}
				got++
				if pulled > got+c.window {
					t.Errorf("after %d results, %d values pulled; window %d", got, pulled, c.window)
				}
				if got == k {
					break
				}
			}
			if got != k {
				t.Fatalf("%d results, want %d", got, k)
			}
			if pulled > k+c.window {
				t.Errorf("%d values pulled for %d results; want at most %d", pulled, k, k+c.window)
			}
		})
	}
}

func TestIMapContextCancelled(t *testing.T) {
	p := newPool(t, poold.WithWorkers(2))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	const n = 100
	pulled := 0
	args := func(yield func(slowArgs) bool) {
		for i := range n {
			pulled++
			if !yield(slowArgs{I: i, MS: 20}) {
				return
			}
		}
	}
	var oks int
	var errs []error
	start := time.Now()
	for r, err := range slowEcho.IMap(ctx, p, args) {
		if len(errs) > 0 {
			t.Fatalf("IMap yielded again after %v", errs)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r.Value != oks {
			t.Errorf("result %d: %d", oks, r.Value)
		}
		oks++
		if oks == 3 {
			cancel()
		}
	}
	if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("after cancelling: errors %v, want context.Canceled once", errs)
	}
	if oks >= n || pulled >= n {
		t.Errorf("%d results, %d values pulled: IMap did not stop", oks, pulled)
	}
	if el := time.Since(start); el > n*20*time.Millisecond/2 {
		t.Errorf("IMap ran %v after being cancelled", el)
	}
}

// ---- Close, Terminate, Join ----

func TestCloseRunsQueuedWork(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
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
	pids := map[int]bool{}
	for i, a := range as {
		if !a.Ready() {
			t.Fatalf("task %d not done after Join", i)
		}
		r, err := a.Get(ctx)
		if err != nil {
			t.Errorf("task %d: %v", i, err)
		}
		pids[r.PID] = true
	}
	for pid := range pids {
		if !gone(pid) {
			t.Errorf("worker %d still exists after Join", pid)
		}
	}
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
}

func TestSubmitAfterStop(t *testing.T) {
	for _, stop := range []string{"Close", "Terminate"} {
		t.Run(stop, func(t *testing.T) {
			ctx := testCtx(t)
			p := newPool(t, poold.WithWorkers(1))
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
			for _, unordered := range []bool{false, true} {
				it := square.IMap
				if unordered {
					it = square.IMapUnordered
				}
				var errs []error
				for _, err := range it(ctx, p, slices.Values(ints(5))) {
					errs = append(errs, err)
				}
				if len(errs) != 1 || !errors.Is(errs[0], poold.ErrPoolClosed) {
					t.Errorf("IMap (unordered %v) yielded %v; want ErrPoolClosed once", unordered, errs)
				}
			}
		})
	}
}

func TestJoinRunningPool(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
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
}

func TestJoinContext(t *testing.T) {
	p := newPool(t, poold.WithWorkers(1))
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
}

func TestTerminateWhileTasksRun(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
	pids := p.PIDs()
	var as []*poold.AsyncResult[int]
	for i := range 8 {
		var a *poold.AsyncResult[int]
		var err error
		if i%2 == 0 {
			a, err = hang.ApplyAsync(p, struct{}{}) // ignores cancellation
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
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("worker %d still exists after Terminate", pid)
		}
	}
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
}

func TestTerminateAfterClose(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	a, err := hang.ApplyAsync(p, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := square.ApplyAsync(p, 2) // queued behind the hang
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
}

// ---- errors ----

func TestUnknownFunc(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, poold.KindUnknownFunc) {
			t.Errorf("%s: %v, want KindUnknownFunc", what, err)
			return
		}
		for _, name := range []string{"square", "summarize", "exit_once"} {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("%s: %q does not list the known task %q", what, err, name)
			}
		}
	}
	_, err := p.Apply(ctx, "no_such_task", 1)
	check("Apply", err)
	a, err := p.ApplyAsync("no_such_task", 1)
	check("ApplyAsync", err)
	if a != nil {
		t.Error("ApplyAsync returned a handle with its error")
	}
	_, err = p.Map(ctx, "no_such_task", []any{1, 2})
	check("Map", err)
	var errs []error
	for _, err := range p.IMap(ctx, "no_such_task", slices.Values([]any{1, 2})) {
		errs = append(errs, err)
	}
	if len(errs) != 1 {
		t.Errorf("IMap yielded %v; want one error", errs)
	} else {
		check("IMap", errs[0])
	}
	if s := p.Stats(); s.TasksDone != 0 {
		t.Errorf("%d tasks ran", s.TasksDone)
	}
}

func TestResultFields(t *testing.T) {
	ctx := testCtx(t)
	const workers = 2
	p := newPool(t, poold.WithWorkers(workers))
	before := time.Now()
	r, err := say.Apply(ctx, p, "hello there")
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	pids := p.PIDs()
	if r.PID == 0 || r.PID == os.Getpid() || r.Value != r.PID {
		t.Errorf("PID %d (value %d, parent %d)", r.PID, r.Value, os.Getpid())
	}
	if !slices.Contains(pids, r.PID) {
		t.Errorf("PID %d not among the workers %v", r.PID, pids)
	}
	if r.Worker < 0 || r.Worker >= workers || pids[r.Worker] != r.PID {
		t.Errorf("Worker %d; workers by slot %v, PID %d", r.Worker, pids, r.PID)
	}
	if r.Attempts != 1 {
		t.Errorf("Attempts %d", r.Attempts)
	}
	if r.Start.IsZero() || r.End.Before(r.Start) || r.Duration() < 0 {
		t.Errorf("Start %v, End %v", r.Start, r.End)
	}
	const slack = 50 * time.Millisecond
	if r.Start.Before(before.Add(-slack)) || r.End.After(after.Add(slack)) {
		t.Errorf("ran from %v to %v, outside the call (%v to %v)", r.Start, r.End, before, after)
	}
	if out := string(r.Output); !strings.Contains(out, "hello there\n") {
		t.Errorf("Output %q; want what the task printed to stdout", out)
	}
	if r.Func != "say" {
		t.Errorf("Func %q", r.Func)
	}

	// A task that prints nothing has no output, even on the same worker.
	for range workers {
		q, err := square.Apply(ctx, p, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(q.Output) != 0 {
			t.Errorf("square printed %q", q.Output)
		}
	}

	// Map results too.
	rs, err := square.Map(ctx, p, ints(10), poold.ChunkSize(2))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if r.Index != i || !slices.Contains(pids, r.PID) || r.Worker < 0 || r.Worker >= workers ||
			pids[r.Worker] != r.PID || r.Attempts != 1 || r.End.Before(r.Start) || r.Start.IsZero() {
			t.Errorf("Map result %d: %+v (workers %v)", i, r, pids)
		}
	}
}

// Result.Output is documented (result.go) as "what the task wrote to stdout
// and stderr", and the issue asks for "the text the task wrote to
// stdout/stderr" in each result.
// Output is what the task printed to stdout. What it writes to stderr goes
// to the pool's logger (stderr is the worker's pipe to the parent, so that a
// dying worker's last words are never lost with it).
func TestOutputIsStdoutStderrIsLogged(t *testing.T) {
	ctx := testCtx(t)
	var logs syncBuffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})
	p := newPool(t, poold.WithWorkers(1), poold.WithLogger(logger))
	r, err := say.Apply(ctx, p, "both streams")
	if err != nil {
		t.Fatal(err)
	}
	if out := string(r.Output); out != "both streams\n" {
		t.Errorf("Output %q; want what the task printed to stdout", out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "stderr: both streams") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := logs.String(); !strings.Contains(got, "stderr: both streams") || !strings.Contains(got, fmt.Sprintf("pid=%d", r.PID)) {
		t.Errorf("the task's stderr did not reach the logger with its pid:\n%s", got)
	}
}

func TestPanicKeepsWorker(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	r0, err := pid.Apply(ctx, p, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := explode.Apply(ctx, p, "boom")
	if !errors.Is(err, poold.KindPanic) {
		t.Fatalf("panicking task: %v, want KindPanic", err)
	}
	te := taskErr(t, err)
	if te.Kind != poold.KindPanic || !strings.Contains(te.Message, "explode: boom") {
		t.Errorf("TaskError %+v", te)
	}
	if !strings.Contains(te.Stack, "panicTask") {
		t.Errorf("the stack does not name the function:\n%s", te.Stack)
	}
	if te.PID != r0.Value || r.PID != r0.Value {
		t.Errorf("panic reported on pid %d (result %d); the worker is %d", te.PID, r.PID, r0.Value)
	}
	var we *poold.WorkerExitError
	if errors.As(err, &we) {
		t.Errorf("a panic has a worker exit: %v", we)
	}
	r1, err := pid.Apply(ctx, p, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Value != r0.Value {
		t.Errorf("worker %d before the panic, %d after: it was replaced", r0.Value, r1.Value)
	}
	if s := p.Stats(); s.WorkersStarted != 1 || s.WorkersLost != 0 {
		t.Errorf("stats %+v; want 1 worker started, none lost", s)
	}
}

func TestExitFailsOnlyItsTask(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
	before := p.PIDs()
	const n, crash = 20, 7
	as := make([]*poold.AsyncResult[int], n)
	for i := range n {
		var err error
		if i == crash {
			as[i], err = exitWith.ApplyAsync(p, 3)
		} else {
			as[i], err = slowEcho.ApplyAsync(p, slowArgs{I: i, MS: 20})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, a := range as {
		r, err := a.Get(ctx)
		if i != crash {
			if err != nil || r.Value != i || r.Attempts != 1 {
				t.Errorf("task %d: %v, %v, attempts %d", i, r.Value, err, r.Attempts)
			}
			continue
		}
		if !errors.Is(err, poold.KindWorkerLost) {
			t.Fatalf("exiting task: %v, want KindWorkerLost", err)
		}
		te := taskErr(t, err)
		we := exitErr(t, err)
		if we.ExitCode != 3 || we.Signal != 0 {
			t.Errorf("exit code %d, signal %v; want 3, none", we.ExitCode, we.Signal)
		}
		if we.PID == 0 || te.PID != we.PID || r.PID != we.PID || !slices.Contains(before, we.PID) {
			t.Errorf("pids: task error %d, exit %d, result %d; workers were %v", te.PID, we.PID, r.PID, before)
		}
		if !strings.Contains(err.Error(), fmt.Sprint(we.PID)) || !strings.Contains(err.Error(), "code 3") {
			t.Errorf("message %q does not name the pid and the exit code", err)
		}
		if r.Worker < 0 || r.Worker >= 2 || before[r.Worker] != we.PID {
			t.Errorf("Worker slot %d; workers were %v", r.Worker, before)
		}
		if !gone(we.PID) {
			t.Errorf("the lost worker %d still exists", we.PID)
		}
		after := waitAllReady(t, p)
		if slices.Contains(after, we.PID) {
			t.Errorf("the lost worker %d is still in the pool: %v", we.PID, after)
		}
	}
	if s := p.Stats(); s.WorkersLost != 1 || s.WorkersStarted != 3 {
		t.Errorf("stats %+v; want 1 lost, 3 started", s)
	}
}

func TestKilledBySignal(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	before := p.PIDs()
	_, err := killSelf.Apply(ctx, p, struct{}{})
	if !errors.Is(err, poold.KindWorkerLost) {
		t.Fatalf("%v, want KindWorkerLost", err)
	}
	we := exitErr(t, err)
	if we.Signal != syscall.SIGKILL || we.ExitCode != -1 || we.PID != before[0] {
		t.Errorf("exit %+v; want SIGKILL, exit code -1, pid %d", we, before[0])
	}
	if r, err := square.Apply(ctx, p, 5); err != nil || r.Value != 25 || r.PID == before[0] {
		t.Errorf("after the kill: %v, %v on pid %d", r.Value, err, r.PID)
	}
}

func TestRetries(t *testing.T) {
	for _, c := range []struct {
		name     string
		poolOpts []poold.Option
		callOpts []poold.CallOption
		retried  bool
	}{
		{"Retries(2)", nil, []poold.CallOption{poold.Retries(2)}, true},
		{"WithRetries(2)", []poold.Option{poold.WithRetries(2)}, nil, true},
		{"none", nil, nil, false},
		{"Retries(0) overrides WithRetries(2)", []poold.Option{poold.WithRetries(2)}, []poold.CallOption{poold.Retries(0)}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			p := newPool(t, append([]poold.Option{poold.WithWorkers(1)}, c.poolOpts...)...)
			first := p.PIDs()[0]
			args := exitOnceArgs{Marker: filepath.Join(t.TempDir(), "marker"), Code: 3}
			r, err := exitOnce.Apply(ctx, p, args, c.callOpts...)
			if _, statErr := os.Stat(args.Marker); statErr != nil {
				t.Fatalf("the first attempt did not run: %v", statErr)
			}
			if !c.retried {
				if !errors.Is(err, poold.KindWorkerLost) || r.Attempts != 1 {
					t.Errorf("without retries: %v, attempts %d; want KindWorkerLost after 1", err, r.Attempts)
				}
				return
			}
			if err != nil {
				t.Fatalf("with retries: %v", err)
			}
			if r.Attempts != 2 {
				t.Errorf("Attempts %d, want 2", r.Attempts)
			}
			if r.PID == first || r.Value != r.PID {
				t.Errorf("the retry ran on pid %d (value %d); the first attempt's worker was %d", r.PID, r.Value, first)
			}
		})
	}
}

func TestTimeoutKillsATaskThatIgnoresIt(t *testing.T) {
	const limit, grace = 300 * time.Millisecond, 200 * time.Millisecond
	for _, c := range []struct {
		name     string
		poolOpts []poold.Option
		callOpts []poold.CallOption
	}{
		{"Timeout", nil, []poold.CallOption{poold.Timeout(limit)}},
		{"WithTimeout", []poold.Option{poold.WithTimeout(limit)}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			p := newPool(t, append([]poold.Option{poold.WithWorkers(1), poold.WithKillGrace(grace)}, c.poolOpts...)...)
			first := p.PIDs()[0]
			start := time.Now()
			_, err := hang.Apply(ctx, p, struct{}{}, c.callOpts...)
			el := time.Since(start)
			if !errors.Is(err, poold.KindTimeout) {
				t.Fatalf("%v, want KindTimeout", err)
			}
			if el < limit || el > limit+grace+1500*time.Millisecond {
				t.Errorf("timed out after %v; limit %v, kill grace %v", el, limit, grace)
			}
			te := taskErr(t, err)
			we := exitErr(t, err)
			if te.PID != first || we.PID != first || we.Signal != syscall.SIGKILL {
				t.Errorf("task error pid %d, exit %+v; want pid %d killed by SIGKILL", te.PID, we, first)
			}
			// The pool serves more tasks, on a new worker.
			r, err := square.Apply(ctx, p, 11)
			if err != nil || r.Value != 121 || r.PID == first {
				t.Errorf("after the timeout: %v, %v on pid %d", r.Value, err, r.PID)
			}
			if c.callOpts == nil { // the pool's default applies to the next task too
				_, err := waitCtx.Apply(ctx, p, struct{}{})
				if !errors.Is(err, poold.KindTimeout) {
					t.Errorf("the pool's default timeout did not apply to a later task: %v", err)
				}
			}
		})
	}
}

func TestTimeoutCooperative(t *testing.T) {
	ctx := testCtx(t)
	const limit, grace = 200 * time.Millisecond, 3 * time.Second
	p := newPool(t, poold.WithWorkers(1), poold.WithKillGrace(grace))
	first := p.PIDs()[0]
	start := time.Now()
	_, err := waitCtx.Apply(ctx, p, struct{}{}, poold.Timeout(limit))
	el := time.Since(start)
	if !errors.Is(err, poold.KindTimeout) {
		t.Fatalf("%v, want KindTimeout", err)
	}
	if el < limit || el >= grace {
		t.Errorf("timed out after %v; limit %v, kill grace %v", el, limit, grace)
	}
	te := taskErr(t, err)
	if te.PID != first {
		t.Errorf("reported by pid %d, the worker is %d", te.PID, first)
	}
	var we *poold.WorkerExitError
	if errors.As(err, &we) {
		t.Errorf("a cooperative timeout killed the worker: %v", we)
	}
	if pids := p.PIDs(); !slices.Contains(pids, first) {
		t.Errorf("worker %d gone after a cooperative timeout: %v", first, pids)
	}
	if r, err := pid.Apply(ctx, p, struct{}{}); err != nil || r.Value != first {
		t.Errorf("next task: %v on %d; want it on %d", err, r.Value, first)
	}
	if s := p.Stats(); s.WorkersLost != 0 || s.WorkersStarted != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestMaxTasksPerWorker(t *testing.T) {
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
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2), poold.WithInitializer("init_set", initArgs{Msg: "primed"}))
	for range 4 {
		r, err := initValue.Apply(ctx, p, struct{}{})
		if err != nil || r.Value != "primed" {
			t.Errorf("init_value = %q, %v; want the initializer's %q", r.Value, err, "primed")
		}
	}
}

func TestInitializerFails(t *testing.T) {
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
			p, err := poold.New(ctx, poold.WithWorkers(1), poold.WithInitializer(c.fn, initArgs{Msg: "database unreachable"}))
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
}

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
			p, err := poold.New(context.Background(), c.opt)
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
}

// ---- more of the same semantics, under harder conditions ----

func TestExitWithPipelinedTasks(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
	// Quick tasks deepen each worker's pipeline, so that tasks are queued
	// in the worker that dies: they never started, and must run elsewhere.
	const n, crash = 200, 100
	as := make([]*poold.AsyncResult[int], n)
	for i := range as {
		a := workArgs{I: i}
		if i == crash {
			a.Exit = 3
		}
		var err error
		if as[i], err = work.ApplyAsync(p, a); err != nil {
			t.Fatal(err)
		}
	}
	for i, a := range as {
		r, err := a.Get(ctx)
		if i == crash {
			if we := exitErr(t, err); !errors.Is(err, poold.KindWorkerLost) || we.ExitCode != 3 {
				t.Errorf("task %d: %v, want worker_lost with exit code 3", i, err)
			}
			continue
		}
		if err != nil || r.Value != i || r.Attempts != 1 {
			t.Errorf("task %d: %d, %v, attempts %d", i, r.Value, err, r.Attempts)
		}
	}
	if s := p.Stats(); s.WorkersLost != 1 || s.TasksDone != n-1 {
		t.Errorf("stats %+v; want 1 worker lost, %d tasks done", s, n-1)
	}

	// In a chunked Map, the chunk of the crash is split up: only the task
	// that exits fails.
	args := make([]workArgs, 40)
	for i := range args {
		args[i] = workArgs{I: i}
	}
	args[13].Exit = 3
	rs, err := work.Map(ctx, p, args, poold.ChunkSize(5))
	if err != rs[13].Err || !errors.Is(err, poold.KindWorkerLost) {
		t.Errorf("Map: %v; want task 13's worker_lost", err)
	}
	for i, r := range rs {
		if i != 13 && (r.Err != nil || r.Value != i) {
			t.Errorf("Map task %d: %d, %v", i, r.Value, r.Err)
		}
	}
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
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	var successes, failures atomic.Int32
	var as []*poold.AsyncResult[int]
	for range 4 {
		a, err := hang.ApplyAsync(p, struct{}{},
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
}

func TestLargeOutput(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	const n = 1 << 20
	r, err := printBytes.Apply(ctx, p, n)
	if err != nil || r.Value != n {
		t.Fatalf("print_bytes: %v, %v", r.Value, err)
	}
	want := bytes.Repeat([]byte("0123456789abcdef"), n/16)
	if !bytes.Equal(r.Output, want) {
		t.Errorf("Output: %d bytes, want %d bytes of the pattern", len(r.Output), n)
	}
	if q, err := square.Apply(ctx, p, 9); err != nil || q.Value != 81 || q.PID != r.PID || len(q.Output) != 0 {
		t.Errorf("next task: %v, %v, pid %d (want %d), output %d bytes", q.Value, err, q.PID, r.PID, len(q.Output))
	}
}

func TestTimeoutRetried(t *testing.T) {
	ctx := testCtx(t)
	const limit = 200 * time.Millisecond
	p := newPool(t, poold.WithWorkers(1), poold.WithKillGrace(100*time.Millisecond))
	start := time.Now()
	r, err := hang.Apply(ctx, p, struct{}{}, poold.Timeout(limit), poold.Retries(1))
	el := time.Since(start)
	if !errors.Is(err, poold.KindTimeout) {
		t.Fatalf("%v, want KindTimeout", err)
	}
	if te := taskErr(t, err); r.Attempts != 2 || te.Attempts != 2 {
		t.Errorf("attempts: result %d, error %d; want 2", r.Attempts, te.Attempts)
	}
	if el < 2*limit {
		t.Errorf("two attempts of %v took %v", limit, el)
	}
}

func TestConcurrentCallers(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
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
}

func TestIMapTaskErrorsDoNotStopIt(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
	args := []any{1, "x", 3, 4}
	var errs []error
	var vals []int
	for r, err := range p.IMap(ctx, "square", slices.Values(args)) {
		errs = append(errs, err)
		if err == nil {
			vals = append(vals, decodeInt(t, r.Value))
		} else if r.Err != err || r.Index != 1 {
			t.Errorf("failed pair: Result.Err %v, index %d; err %v", r.Err, r.Index, err)
		}
	}
	if len(errs) != 4 || errs[0] != nil || !errors.Is(errs[1], poold.KindBadArgs) || errs[2] != nil || errs[3] != nil {
		t.Errorf("errors %v; want the second task's bad_args only", errs)
	}
	if !slices.Equal(vals, []int{1, 9, 16}) {
		t.Errorf("values %v", vals)
	}
}

func TestIMapBreakThenClose(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
	pulled := 0
	n := 0
	for _, err := range slowEcho.IMap(ctx, p, func(yield func(slowArgs) bool) {
		for i := 0; ; i++ {
			pulled++
			if !yield(slowArgs{I: i, MS: 30}) {
				return
			}
		}
	}, poold.Window(6)) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	// The tasks still in flight finish; the pool then closes cleanly.
	p.Close()
	if err := p.Join(ctx); err != nil {
		t.Fatalf("Join after an IMap was abandoned: %v", err)
	}
	if s := p.Stats(); s.TasksDone != pulled || pulled > 3+6 {
		t.Errorf("%d values pulled, %d tasks done; want them equal, at most 9", pulled, s.TasksDone)
	}
}

func TestFatalCrashReportsStderr(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	_, err := goPanic.Apply(ctx, p, "unrecoverable trouble")
	if !errors.Is(err, poold.KindWorkerLost) {
		t.Fatalf("%v, want KindWorkerLost", err)
	}
	we := exitErr(t, err)
	if we.ExitCode != 2 {
		t.Errorf("exit code %d; want Go's 2 for an unrecovered panic", we.ExitCode)
	}
	if !slices.ContainsFunc(we.Stderr, func(l string) bool { return strings.Contains(l, "panic: unrecoverable trouble") }) {
		t.Errorf("the last stderr lines do not have the panic: %q", we.Stderr)
	}
	if !strings.Contains(err.Error(), "unrecoverable trouble") {
		t.Errorf("the error does not say what happened: %v", err)
	}
	if r, err := square.Apply(ctx, p, 3); err != nil || r.Value != 9 {
		t.Errorf("afterwards: %v, %v", r.Value, err)
	}
}

// A task that says why on stderr before it ends its worker: the issue asks
// that a lost worker's error carry "the last lines the worker wrote to
// stderr".
func TestExitReportsTheTasksLastStderrLines(t *testing.T) {
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	r, err := lastWords.Apply(ctx, p, "cannot go on: disk full")
	if !errors.Is(err, poold.KindWorkerLost) {
		t.Fatalf("%v, want KindWorkerLost", err)
	}
	we := exitErr(t, err)
	said := slices.ContainsFunc(we.Stderr, func(l string) bool { return strings.Contains(l, "disk full") }) ||
		strings.Contains(string(r.Output), "disk full")
	if !said {
		t.Errorf("what the task wrote to stderr before exiting is lost: WorkerExitError.Stderr %q, Result.Output %q, error %q",
			we.Stderr, r.Output, err)
	}
}

// syncBuffer is a bytes.Buffer safe for the pool's logging goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogger(t *testing.T) {
	ctx := testCtx(t)
	var buf syncBuffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Debug, JSONFormat: true})
	p := newPool(t, poold.WithWorkers(1), poold.WithLogger(logger))
	first := p.PIDs()[0]
	if _, err := exitWith.Apply(ctx, p, 3); !errors.Is(err, poold.KindWorkerLost) {
		t.Fatalf("%v", err)
	}
	// The loss is logged, naming the worker's pid.
	deadline := time.Now().Add(5 * time.Second)
	want := fmt.Sprintf(`"pid":%d`, first)
	for {
		found := false
		for line := range strings.Lines(buf.String()) {
			if strings.Contains(line, "worker lost") && strings.Contains(line, want) {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no \"worker lost\" line with %s in the log:\n%s", want, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A worker's own log lines reach the parent's logger with its pid.
	var wbuf syncBuffer
	wlogger := hclog.New(&hclog.LoggerOptions{Output: &wbuf, Level: hclog.Debug, JSONFormat: true})
	q, err := poold.New(ctx, poold.WithWorkers(1), poold.WithLogger(wlogger),
		poold.WithInitializer("init_fail", initArgs{Msg: "no database"}))
	if q != nil {
		terminate(t, q)
		t.Fatal("New succeeded")
	}
	if !errors.Is(err, poold.ErrWorkerStart) {
		t.Fatalf("New: %v", err)
	}
	found := false
	for line := range strings.Lines(wbuf.String()) {
		if strings.Contains(line, "initializer failed") && strings.Contains(line, "no database") && strings.Contains(line, `"pid":`) {
			found = true
		}
	}
	if !found {
		t.Errorf("the worker's \"initializer failed\" log line did not reach the parent's logger with a pid:\n%s", wbuf.String())
	}
}
