package poold_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/poold/poold"
)

// A Map's chunk travels as one task holding all its arguments; these tests
// break chunks every way the pool can: a worker dies inside one, a worker's
// task budget or the frame cap cuts one, a call of one times out, the pool
// stops under one.

// The worker running a chunk dies at one of its calls: only that call fails,
// with the exit code, and it runs once. Every call appends its number to a
// file first: a number appears as many times as its result's attempts say
// (a call before the culprit ran, but lost its result with the worker, and
// ran again; calls after it never started before). Processes only: a task
// that exits would end this process in threads mode.
func TestMapChunkWorkerDies(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
	const n, culprit = 40, 13
	log := filepath.Join(t.TempDir(), "runs")
	args := make([]workArgs, n)
	for i := range args {
		args[i] = workArgs{I: i, Log: log}
	}
	args[culprit].Exit = 3
	rs, err := work.Map(ctx, p, args, poold.ChunkSize(10))
	if !errors.Is(err, poold.KindWorkerLost) {
		t.Fatalf("Map error %v, want KindWorkerLost", err)
	}
	if len(rs) != n {
		t.Fatalf("%d results, want %d", len(rs), n)
	}
	runs := countRuns(t, log)
	for i, r := range rs {
		if r.Index != i {
			t.Errorf("result %d has index %d", i, r.Index)
		}
		if runs[i] != r.Attempts {
			t.Errorf("call %d ran %d times; its result says %d attempts", i, runs[i], r.Attempts)
		}
		if i == culprit {
			var exit *poold.WorkerExitError
			if !errors.As(r.Err, &exit) || exit.ExitCode != 3 || r.PID == 0 || r.Attempts != 1 {
				t.Errorf("culprit: err %v, pid %d, attempts %d; want the worker's exit code 3, its pid, 1 attempt", r.Err, r.PID, r.Attempts)
			}
			continue
		}
		if r.Err != nil || r.Value != i || r.PID == 0 || (i > culprit && r.Attempts != 1) {
			t.Errorf("call %d: value %d, err %v, pid %d, attempts %d", i, r.Value, r.Err, r.PID, r.Attempts)
		}
	}
}

// With AtMostOnce, nothing runs twice: the worker reports each call as it
// ends, so the calls before the culprit keep their results, the culprit
// fails, and the calls after it never started before. Processes only: the
// culprit exits its worker.
func TestMapChunkAtMostOnce(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1), poold.WithRetries(3))
	const n, culprit = 6, 3
	log := filepath.Join(t.TempDir(), "runs")
	args := make([]workArgs, n)
	for i := range args {
		args[i] = workArgs{I: i, Log: log}
	}
	args[culprit].Exit = 3
	rs, _ := work.Map(ctx, p, args, poold.ChunkSize(n), poold.AtMostOnce())
	runs := countRuns(t, log)
	for i, r := range rs {
		if runs[i] != 1 || r.Attempts != 1 {
			t.Errorf("call %d ran %d times, attempts %d; want once", i, runs[i], r.Attempts)
		}
		if (i == culprit) != errors.Is(r.Err, poold.KindWorkerLost) || (i != culprit && r.Err != nil) {
			t.Errorf("call %d: %v", i, r.Err)
		}
	}
}

// countRuns reads a log of workArgs.Log: how many times each number ran.
func countRuns(t *testing.T, log string) map[int]int {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	runs := map[int]int{}
	for _, f := range strings.Fields(string(b)) {
		i, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("log %q: %v", b, err)
		}
		runs[i]++
	}
	return runs
}

// A worker's task budget ends inside a chunk: the chunk is cut there, and no
// worker runs more calls than its budget. Processes only: threads mode
// refuses WithMaxTasksPerWorker.
func TestMapChunkCutByMaxTasks(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	const limit, n = 3, 20
	p := newPool(t, poold.WithWorkers(1), poold.WithMaxTasksPerWorker(limit))
	rs, err := pid.Map(ctx, p, make([]struct{}, n), poold.ChunkSize(5))
	if err != nil {
		t.Fatal(err)
	}
	perPID := map[int]int{}
	for i, r := range rs {
		if r.Err != nil || r.Value != r.PID || r.Index != i {
			t.Errorf("call %d: value %d, pid %d, index %d, err %v", i, r.Value, r.PID, r.Index, r.Err)
		}
		perPID[r.PID]++
	}
	for pid, k := range perPID {
		if k > limit {
			t.Errorf("worker %d ran %d calls, over its budget of %d", pid, k, limit)
		}
	}
	if want := (n + limit - 1) / limit; len(perPID) != want {
		t.Errorf("%d calls ran on %d workers, want %d", n, len(perPID), want)
	}
}

// A chunk whose arguments would not fit in one frame goes in parts.
func TestMapChunkCutByFrameCap(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2), poold.WithMaxFrameSize(64<<10))
		const n = 200
		args := make([]string, n)
		for i := range args {
			args[i] = string(rune('a'+i%26)) + string(make([]byte, 1000))
		}
		in := make([]any, n)
		for i, a := range args {
			in[i] = a
		}
		rs, err := p.Map(ctx, "echo", in, poold.ChunkSize(n))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rs {
			var s string
			if err := r.Value.Decode(&s); err != nil || s != args[i] {
				t.Errorf("call %d: %d bytes back, %v", i, len(s), err)
			}
		}
	})
}

// One call of a chunk times out: it alone is retried, and fails with both
// attempts counted; the chunk's other calls succeed once.
func TestMapChunkTimeoutRetried(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		rs, err := sleep.Map(ctx, p, []int{1, 5000, 1, 1}, poold.ChunkSize(4), poold.Timeout(100*time.Millisecond), poold.Retries(1))
		if !errors.Is(err, poold.KindTimeout) {
			t.Fatalf("Map error %v, want KindTimeout", err)
		}
		for i, r := range rs {
			switch {
			case i == 1:
				if !errors.Is(r.Err, poold.KindTimeout) || r.Attempts != 2 {
					t.Errorf("the slow call: err %v, attempts %d; want a timeout after 2 attempts", r.Err, r.Attempts)
				}
			case r.Err != nil || r.Attempts != 1:
				t.Errorf("call %d: err %v, attempts %d", i, r.Err, r.Attempts)
			}
		}
	})
}

// Terminate under a Map in chunks: every call gets exactly one result, and
// the Map's Get returns.
func TestMapChunkTerminate(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))
		const n = 400
		ms := make([]int, n)
		for i := range ms {
			ms[i] = 5
		}
		mr, err := sleep.MapAsync(p, ms, poold.ChunkSize(5)) // 80 chunks of 25 ms, 1 s on 2 workers
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
		if err := p.Terminate(); err != nil {
			t.Fatal(err)
		}
		rs, _ := mr.Get(ctx)
		done, terminated := 0, 0
		for i, r := range rs {
			switch {
			case r.Err == nil:
				done++
			case errors.Is(r.Err, poold.KindTerminated):
				terminated++
			default:
				t.Errorf("call %d: %v", i, r.Err)
			}
		}
		if done == 0 || terminated == 0 || done+terminated != n {
			t.Errorf("%d done, %d terminated, of %d", done, terminated, n)
		}
	})
}

// An argument that is not msgpack fails alone; the rest of its chunk runs.
func TestMapBadRawArgFailsAlone(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		in := []any{1, poold.Raw{0xc1}, 3, 4}
		rs, err := p.Map(ctx, "echo", in, poold.ChunkSize(4))
		if !errors.Is(err, poold.KindEncode) {
			t.Fatalf("Map error %v, want KindEncode", err)
		}
		for i, r := range rs {
			var v int
			if i == 1 {
				if !errors.Is(r.Err, poold.KindEncode) {
					t.Errorf("bad argument: %v, want KindEncode", r.Err)
				}
				continue
			}
			if r.Err != nil || r.Value.Decode(&v) != nil || v != i+1 || r.Index != i {
				t.Errorf("call %d: %v, %v", i, v, r.Err)
			}
		}
	})
}

// Chunks whose results are big enough for the pool to hand their worker its
// next chunk while the result is still arriving: every result is right.
func TestMapBigChunkResults(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))
		in := ints(200_000)
		for round := range 2 {
			rs, err := square.Map(ctx, p, in, poold.ChunkSize(20_000))
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range rs {
				if r.Err != nil || r.Value != i*i || r.Index != i || r.PID == 0 {
					t.Fatalf("round %d, call %d: value %d, index %d, pid %d, err %v", round, i, r.Value, r.Index, r.PID, r.Err)
				}
			}
		}
	})
}

// Chunks with big results, workers that die inside chunks, workers that
// retire inside chunks, all at once: every call gets exactly its own
// result, and only the calls that kill their worker fail. Processes only:
// workers that exit and retire.
func TestMapChunkStress(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("a few seconds of chunks and crashes")
	}
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2), poold.WithMaxTasksPerWorker(3000))
	const n = 12_000
	args := make([]paddedArgs, n)
	culprit := func(i int) bool { return i%1499 == 7 }
	for i := range args {
		args[i] = paddedArgs{I: i, Pad: 200}
		if culprit(i) {
			args[i].Exit = 5
		}
	}
	rs, err := padded.Map(ctx, p, args, poold.ChunkSize(700))
	if !errors.Is(err, poold.KindWorkerLost) {
		t.Fatalf("Map error %v, want KindWorkerLost", err)
	}
	for i, r := range rs {
		if culprit(i) {
			var exit *poold.WorkerExitError
			if !errors.As(r.Err, &exit) || exit.ExitCode != 5 {
				t.Errorf("culprit %d: %v", i, r.Err)
			}
			continue
		}
		want := strconv.Itoa(i) + ":" + strings.Repeat("p", 200)
		if r.Err != nil || r.Value != want || r.Index != i || r.PID == 0 {
			t.Fatalf("call %d: %.20q, index %d, pid %d, err %v", i, r.Value, r.Index, r.PID, r.Err)
		}
	}
}
