package poold

import (
	"testing"
	"unsafe"

	"github.com/poold/poold/internal/pool"
)

// answerAtOnce is an executor whose every task succeeds inside Submit,
// with the value 1: what ApplyAsync itself costs, and nothing else.
type answerAtOnce struct{ inlineExecutor }

func (e *answerAtOnce) Submit(t *pool.Task) error {
	t.Outcome = pool.Outcome{Value: []byte{0x01}, Attempts: 1}
	t.Done(t)
	return nil
}

// ApplyAsync without callbacks costs no more allocations than it did
// before callbacks could panic and calls could be Maps: the AsyncResult
// (which holds the task, what of the call it needs and small encoded
// arguments), and the
// func values of generic functions (decode, Done) that need their
// dictionary, one each in the typed form, one in the untyped.
func TestApplyAsyncAllocations(t *testing.T) {
	p := &Pool{p: &answerAtOnce{}}
	f := Func[int, int]{name: "one"}
	for _, c := range []struct {
		name  string
		apply func() error
		most  float64
	}{
		{"Func.ApplyAsync", func() error { _, err := f.ApplyAsync(p, 1); return err }, 4},
		{"Pool.ApplyAsync", func() error { _, err := p.ApplyAsync("one", 1); return err }, 3},
	} {
		allocs := testing.AllocsPerRun(100, func() {
			if err := c.apply(); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > c.most {
			t.Errorf("%s: %v allocations, want at most %v", c.name, allocs, c.most)
		}
	}
}

// An AsyncResult stays within the allocator's 512-byte size class: a
// queued task's memory is what bounds a pool's throughput of single tasks
// (keeping the whole call in it, 736 bytes and the 768 class, made
// BenchmarkApplyAsyncPipelined 1.4 times slower).
func TestAsyncResultSize(t *testing.T) {
	if n := unsafe.Sizeof(AsyncResult[int]{}); n > 512 {
		t.Errorf("AsyncResult[int] is %d bytes, want at most 512", n)
	}
}
