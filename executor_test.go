package poold

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/kind"
	"github.com/poold/poold/internal/pool"
	"github.com/poold/poold/internal/tasks"
)

// inlineExecutor is a test double of the executor seam: it runs every task
// in this process, a goroutine per task, keeping the contract of
// pool.Task (Each for every call, or Outcome; then Done once). The verbs
// must work on it unchanged.
type inlineExecutor struct {
	reg  *tasks.Registry
	size int

	mu     sync.Mutex
	closed bool
	done   int
	wg     sync.WaitGroup
}

func (e *inlineExecutor) Accepts(fn string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return pool.ErrPoolClosed
	}
	if _, ok := e.reg.Lookup(fn); !ok {
		return fmt.Errorf("%w: no task named %q; the workers know %v", pool.ErrUnknownFunc, fn, e.reg.Names())
	}
	return nil
}

func (e *inlineExecutor) Submit(t *pool.Task) error {
	if err := e.Accepts(t.Func); err != nil {
		return err
	}
	fn, _ := e.reg.Lookup(t.Func)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		off := 0
		for i := range t.Calls {
			n, _ := ipc.ValueLen(t.Args[off:])
			o := pool.Outcome{PID: os.Getpid(), Attempts: 1, Start: time.Now().UnixNano()}
			out, err := fn(context.Background(), t.Args[off:off+n], nil)
			o.End = time.Now().UnixNano()
			if err != nil {
				o.Fail = &pool.Failure{Kind: kind.Error, Message: err.Error()}
			} else {
				o.Value = out
			}
			off += n
			if t.Each != nil {
				t.Each(t, i, &o)
			} else {
				t.Outcome = o
			}
		}
		e.mu.Lock()
		e.done += t.Calls
		e.mu.Unlock()
		if t.Done != nil {
			t.Done(t)
		}
	}()
	return nil
}

// Cancel and CancelGroup do nothing: the double runs every task at once.
func (e *inlineExecutor) Cancel(*pool.Task)       {}
func (e *inlineExecutor) CancelGroup(*pool.Group) {}

func (e *inlineExecutor) Size() int   { return e.size }
func (e *inlineExecutor) PIDs() []int { return []int{os.Getpid()} }
func (e *inlineExecutor) Stats() pool.Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return pool.Stats{TasksDone: e.done}
}
func (e *inlineExecutor) Closed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}
func (e *inlineExecutor) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	return nil
}
func (e *inlineExecutor) Terminate() error { e.Close(); e.wg.Wait(); return nil }
func (e *inlineExecutor) Join(ctx context.Context) error {
	if !e.Closed() {
		return pool.ErrPoolRunning
	}
	e.wg.Wait()
	return nil
}

func newInlinePool(t *testing.T) (*Pool, Func[int, int]) {
	reg := NewRegistry()
	double := Register(reg, "double", func(_ context.Context, x int) (int, error) {
		if x < 0 {
			return 0, errors.New("negative")
		}
		return 2 * x, nil
	})
	e := &inlineExecutor{reg: reg.r, size: 2}
	p := &Pool{p: e}
	t.Cleanup(func() { p.Terminate() })
	return p, double
}

// The verbs run unchanged on another executor: results in order, chunked
// or not, with their errors as TaskErrors of the right kind, callbacks,
// and the pool's own errors.
func TestVerbsOnAnotherExecutor(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	p, double := newInlinePool(t)

	r, err := double.Apply(ctx, p, 21)
	if err != nil || r.Value != 42 || r.PID != os.Getpid() {
		t.Fatalf("Apply: %+v, %v", r, err)
	}
	in := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -1, 11}
	for _, chunk := range []int{1, 5, 100} {
		rs, err := double.Map(ctx, p, in, ChunkSize(chunk))
		if !errors.Is(err, KindError) {
			t.Errorf("chunk %d: Map error %v, want kind error", chunk, err)
		}
		for i, r := range rs {
			if r.Index != i || (i != 10 && r.Value != 2*in[i]) || (i == 10) != (r.Err != nil) {
				t.Errorf("chunk %d, item %d: %+v", chunk, i, r)
			}
		}
		var got []int
		for r, err := range double.IMap(ctx, p, slices.Values(in), ChunkSize(chunk), Window(4)) {
			if err == nil {
				got = append(got, r.Value)
			}
		}
		if want := []int{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 22}; !slices.Equal(got, want) {
			t.Errorf("chunk %d: IMap gave %v, want %v", chunk, got, want)
		}
	}
	var mu sync.Mutex
	var ok, failed int
	m, err := double.MapAsync(p, in, ChunkSize(3),
		OnSuccess(func(Result[int]) { mu.Lock(); ok++; mu.Unlock() }),
		OnError(func(error) { mu.Lock(); failed++; mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if ok != 11 || failed != 1 {
		t.Errorf("callbacks: %d successes, %d failures; want 11 and 1", ok, failed)
	}
	if _, err := p.Apply(ctx, "nope", nil); !errors.Is(err, KindUnknownFunc) {
		t.Errorf("unknown task: %v", err)
	}
	p.Close()
	if _, err := double.Apply(ctx, p, 1); !errors.Is(err, ErrPoolClosed) {
		t.Errorf("Apply after Close: %v", err)
	}
	if err := p.Join(ctx); err != nil {
		t.Errorf("Join: %v", err)
	}
}
