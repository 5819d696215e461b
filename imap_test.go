package poold_test

import (
	"context"
	"errors"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/poold/poold"
)

func TestIMapOrdered(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))
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
	})
}

func TestIMapUnordered(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))
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
	})
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
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		const workers = 2
		p := m.pool(t, poold.WithWorkers(workers))
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
	})
}

func TestIMapContextCancelled(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		p := m.pool(t, poold.WithWorkers(2))
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
	})
}

func TestIMapTaskErrorsDoNotStopIt(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))
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
	})
}

func TestIMapBreakThenClose(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))
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
		// The tasks still in flight are cancelled; the pool then closes
		// cleanly.
		p.Close()
		if err := p.Join(ctx); err != nil {
			t.Fatalf("Join after an IMap was abandoned: %v", err)
		}
		if s := p.Stats(); s.TasksDone > pulled || pulled > 3+6 {
			t.Errorf("%d values pulled, %d tasks done; want at most as many done, at most 9 pulled", pulled, s.TasksDone)
		}
	})
}

// Breaking out of an IMap cancels what it has in flight: the next Apply
// does not wait behind it, and the workers, whose tasks watched their
// context, are the same.
func TestIMapBreakCancels(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))
		before := p.PIDs()
		for _, err := range sleep.IMap(ctx, p, slices.Values([]int{1, 5000, 5000, 5000, 5000, 5000}), poold.Window(6)) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		begin := time.Now()
		if _, err := square.Apply(ctx, p, 3); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(begin); el > time.Second {
			t.Errorf("the next Apply took %v: the abandoned IMap's tasks still ran", el)
		}
		if after := p.PIDs(); !slices.Equal(before, after) {
			t.Errorf("workers %v, then %v: a cancelled task that watches its context keeps its worker", before, after)
		}
	})
}

// A cancelled MapAsync, and an AsyncResult: what is queued never runs,
// what runs is cancelled, and each result says canceled.
func TestCancelAsync(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		log := filepath.Join(t.TempDir(), "runs")
		running, err := sleep.ApplyAsync(p, 5000)
		if err != nil {
			t.Fatal(err)
		}
		queued, err := work.ApplyAsync(p, workArgs{I: 1, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		queued.Cancel()
		if _, err := queued.Get(ctx); !errors.Is(err, poold.KindCanceled) {
			t.Errorf("a cancelled queued task: %v, want KindCanceled", err)
		}
		begin := time.Now()
		running.Cancel()
		if _, err := running.Get(ctx); !errors.Is(err, poold.KindCanceled) || time.Since(begin) > time.Second {
			t.Errorf("a cancelled running task: %v after %v", err, time.Since(begin))
		}
		mr, err := work.MapAsync(p, []workArgs{{I: 2, Log: log, MS: 300}, {I: 3, Log: log}, {I: 4, Log: log}}, poold.ChunkSize(1))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		mr.Cancel()
		rs, _ := mr.Get(ctx)
		// Item 0 ran: it ignores its context and ends within the kill grace, so
		// it keeps its result. The others never started.
		for i, r := range rs[1:] {
			if !errors.Is(r.Err, poold.KindCanceled) {
				t.Errorf("Map item %d: %v, want KindCanceled", i+1, r.Err)
			}
		}
		if b, _ := os.ReadFile(log); string(b) != "2\n" {
			t.Errorf("side effects %q: only the Map's first task started", b)
		}
	})
}

// An input that fails midway (lines read from a file, say): IMapErr reads
// no further, yields what was submitted (in order, for the ordered form),
// then the input's error once, last, wrapped.
func TestIMapErr(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))
		errRead := errors.New("read error")
		// Earlier tasks take longer, so that they finish out of order.
		slow := make([]slowArgs, 6)
		for i := range slow {
			slow[i] = slowArgs{I: i, MS: (len(slow) - i) * 20}
		}
		for _, c := range []struct {
			name    string
			ordered bool
			it      iter.Seq2[poold.Result[int], error]
		}{
			{"IMapErr", true, slowEcho.IMapErr(ctx, p, withErrs(slow, errRead), poold.Window(4))},
			{"IMapErr, chunks of 4", true, slowEcho.IMapErr(ctx, p, withErrs(slow, errRead), poold.ChunkSize(4))},
			{"IMapUnorderedErr", false, slowEcho.IMapUnorderedErr(ctx, p, withErrs(slow, errRead), poold.Window(4))},
		} {
			var vals []int
			var errs []error
			for r, err := range c.it {
				if len(errs) > 0 {
					t.Fatalf("%s: yielded again after %v", c.name, errs)
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				vals = append(vals, r.Value)
			}
			if !c.ordered {
				slices.Sort(vals)
			}
			if !slices.Equal(vals, ints(len(slow))) {
				t.Errorf("%s: values %v before the error; want 0..%d, in order", c.name, vals, len(slow)-1)
			}
			if len(errs) != 1 || !errors.Is(errs[0], errRead) {
				t.Errorf("%s: errors %v; want the input's once, last", c.name, errs)
			}
		}

		// The untyped forms; an input that fails at once; no error at all.
		for _, c := range []struct {
			name string
			it   iter.Seq2[poold.Result[poold.Raw], error]
			vals []int
			err  error
		}{
			{"Pool.IMapErr", p.IMapErr(ctx, "square", withErrs([]any{1, 2, 3}, errRead)), []int{1, 4, 9}, errRead},
			{"Pool.IMapUnorderedErr", p.IMapUnorderedErr(ctx, "square", withErrs([]any{4}, errRead)), []int{16}, errRead},
			{"failing at once", p.IMapErr(ctx, "square", withErrs([]any{}, errRead)), nil, errRead},
			{"not failing", p.IMapErr(ctx, "square", withErrs([]any{5, 6}, nil)), []int{25, 36}, nil},
		} {
			var vals []int
			var errs []error
			for r, err := range c.it {
				if err != nil {
					errs = append(errs, err)
				} else {
					vals = append(vals, decodeInt(t, r.Value))
				}
			}
			slices.Sort(vals)
			if !slices.Equal(vals, c.vals) || (c.err == nil) != (len(errs) == 0) || (c.err != nil && (len(errs) != 1 || !errors.Is(errs[0], c.err))) {
				t.Errorf("%s: %v, %v; want %v, then %v", c.name, vals, errs, c.vals, c.err)
			}
		}
	})
}
