package poold

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/poold/poold/internal/kind"
	"github.com/poold/poold/internal/pool"
)

// Values are the results of [Func.MapValues]: the values by input index,
// and for each item who ran it, kept as a few bytes an item rather than a
// whole [Result] (176 bytes for a Result[int64], whose million copies
// cost the parent more than the tasks did: see the README's "Speed").
type Values[R any] struct {
	// Values holds each item's value, by input index; the zero value for
	// an item that failed (see Err).
	Values []R

	mu   sync.Mutex
	errs map[int]error // guarded by mu until the Map is done
	runs []Ran         // guarded by mu until the Map is done; runs[0] is "did not run"
	ran  []uint32      // by item: its entry in runs
}

// Ran says who ran an item of MapValues: its worker, where it ran, and
// how many times it was started.
type Ran struct {
	Host     string // "" for this machine
	PID      int    // the worker process; 0 if no worker ran the item
	Worker   int    // the worker's slot
	Attempts int
}

// Ran returns who ran item i.
func (v *Values[R]) Ran(i int) Ran { return v.runs[v.ran[i]] }

// Err returns the error of item i, a *TaskError; nil if it succeeded.
func (v *Values[R]) Err(i int) error { return v.errs[i] }

// Failed returns the indexes of the items that failed, in order.
func (v *Values[R]) Failed() []int {
	out := make([]int, 0, len(v.errs))
	for i := range v.errs {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

// MapValues is [Func.Map] for many small items: it returns the values
// alone, in input order, and who ran each (Values.Ran) without a Result
// per item. Its error is the first failure in input order, as Python's
// map raises it, once every item is done (or ctx's error, when ctx ends
// first: the items not finished are then cancelled); the other values
// are in Values either way. It takes the options of Map but for the
// callbacks (OnSuccess, OnError, OnMapSuccess, OnMapError), which need a
// Result per item: use Map for those.
func (f Func[A, R]) MapValues(ctx context.Context, p *Pool, args []A, opts ...CallOption) (*Values[R], error) {
	c, err := newCall(p, verbMap, f.name, opts, decodeTyped[R])
	if err != nil {
		return nil, err
	}
	if c.callbacks() || c.cfg.onMapSuccess != nil || c.cfg.onMapError != nil {
		return nil, errorf("MapValues takes no callbacks: they need a Result per item (use Map)")
	}
	v := &Values[R]{Values: make([]R, len(args)), ran: make([]uint32, len(args)), runs: []Ran{{}}}
	vm := &valuesMap[R]{v: v, c: c, done: make(chan struct{})}
	if len(args) == 0 {
		if p.p.Closed() {
			return nil, ErrPoolClosed
		}
		return v, nil
	}
	vm.left.Store(int64(len(args)))
	size := c.cfg.chunk
	if !c.cfg.chunkSet {
		size = DefaultChunkSize(len(args), p.Size())
	}
	k := &chunker[R]{c: c, size: size, each: vm.each, done: vm.chunkDone}
	vm.ff = failFast{on: c.cfg.failFast, exec: p.p, group: &k.group}
	for _, a := range args {
		index := k.next()
		encErr, err := k.add(any(a))
		if err == nil && encErr != nil {
			vm.settle(index, encodeFailure(encErr))
			vm.countDown(1)
		}
		if err != nil {
			if k.sent == 0 {
				return nil, err
			}
			vm.failFrom(k.first, len(args), err)
			break
		}
	}
	if err := k.flush(); err != nil {
		if k.sent == 0 {
			return nil, err
		}
		vm.failFrom(k.first, len(args), err)
	}
	select {
	case <-vm.done:
	case <-ctx.Done():
		p.p.CancelGroup(&k.group)
		<-vm.done // cancelled chunks settle at once; running ones at their end
		return v, ctx.Err()
	}
	return v, vm.firstErr()
}

// valuesMap is a MapValues in flight.
type valuesMap[R any] struct {
	v    *Values[R]
	c    *call[R]
	ff   failFast
	left atomic.Int64 // items still to come
	done chan struct{}
}

// each settles call i of chunk t.
func (vm *valuesMap[R]) each(t *pool.Task, i int, o *pool.Outcome) { vm.settle(t.Tag+i, o) }

func (vm *valuesMap[R]) chunkDone(t *pool.Task) { vm.countDown(t.Calls) }

// settle decodes item index's value into its place, or keeps its error,
// and notes who ran it.
func (vm *valuesMap[R]) settle(index int, o *pool.Outcome) {
	vm.ff.observe(o)
	v := vm.v
	err := outcomeErr(vm.c.name, o)
	if err == nil {
		if derr := vm.c.decode(Raw(o.Value), &v.Values[index]); derr != nil {
			err = &TaskError{Kind: KindEncode, Func: vm.c.name, PID: o.PID, Attempts: o.Attempts, Message: "decoding the result: " + derr.Error()}
		}
	}
	r := Ran{Host: o.Host, PID: o.PID, Worker: o.Worker, Attempts: o.Attempts}
	v.mu.Lock()
	if r.PID != 0 {
		v.ran[index] = v.runLocked(r)
	}
	if err != nil {
		if v.errs == nil {
			v.errs = make(map[int]error)
		}
		v.errs[index] = err
	}
	v.mu.Unlock()
}

// runLocked is r's entry in v.runs, added if new: the workers and their
// attempts are few, and the latest come up most.
func (v *Values[R]) runLocked(r Ran) uint32 {
	for i := len(v.runs) - 1; i > 0; i-- {
		if v.runs[i] == r {
			return uint32(i)
		}
	}
	v.runs = append(v.runs, r)
	return uint32(len(v.runs) - 1)
}

func (vm *valuesMap[R]) countDown(n int) {
	if vm.left.Add(-int64(n)) == 0 {
		close(vm.done)
	}
}

// failFrom fails the items from..to-1, which were not submitted: the pool
// stopped while the Map was being submitted.
func (vm *valuesMap[R]) failFrom(from, to int, err error) {
	for i := from; i < to; i++ {
		vm.settle(i, &pool.Outcome{Fail: &pool.Failure{Kind: kind.Terminated,
			Message: "the pool stopped before this part of the Map was submitted: " + err.Error()}, CPU: -1})
	}
	vm.countDown(to - from)
}

// firstErr is the error of the Map: its first failure in input order that
// is not a cancellation, else its first cancellation, else nil.
func (vm *valuesMap[R]) firstErr() error {
	first, cancelled := -1, -1
	for i, err := range vm.v.errs {
		if errors.Is(err, KindCanceled) {
			if cancelled < 0 || i < cancelled {
				cancelled = i
			}
		} else if first < 0 || i < first {
			first = i
		}
	}
	switch {
	case first >= 0:
		return vm.v.errs[first]
	case cancelled >= 0:
		return vm.v.errs[cancelled]
	}
	return nil
}
