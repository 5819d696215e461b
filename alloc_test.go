package poold

import (
	"testing"

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
// (which holds the task, the call and small encoded arguments), and the
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
