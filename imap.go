package poold

import (
	"context"
	"iter"

	"github.com/poold/poold/internal/pool"
)

// imapped is one IMap result on its way to the consumer.
type imapped[R any] struct {
	index int
	res   Result[R]
}

// imapper is an IMap in flight. Every item submitted and not yet yielded
// has a place in finished, so that a result never blocks its pool
// goroutine, even if the consumer stops early and never reads again.
type imapper[R any] struct {
	c        *call[R]
	k        chunker[R] // makes and submits its chunk tasks
	window   int
	ordered  bool
	finished chan imapped[R]
	parked   []*Result[R] // ordered: results waiting for their turn, by index % window
	yielded  int
	ff       failFast
}

func (im *imapper[R]) each(t *pool.Task, i int, o *pool.Outcome) { im.settle(t.Tag+i, o) }

// settle stores the outcome of item index, runs its callback, and passes
// the result on.
func (im *imapper[R]) settle(index int, o *pool.Outcome) {
	im.ff.observe(o)
	d := &imapped[R]{index: index}
	im.c.settle(o, index, &d.res, func() { im.finished <- *d })
}

// receive waits for one result and yields what it can; false: stop.
func (im *imapper[R]) receive(ctx context.Context, yield func(Result[R], error) bool) bool {
	var d imapped[R]
	select {
	case d = <-im.finished:
	case <-ctx.Done():
		yield(Result[R]{}, ctx.Err())
		return false
	}
	if !im.ordered {
		im.yielded++
		return yield(d.res, d.res.Err)
	}
	im.parked[d.index%im.window] = &d.res
	for {
		r := im.parked[im.yielded%im.window]
		if r == nil {
			return true
		}
		im.parked[im.yielded%im.window] = nil
		im.yielded++
		if !yield(*r, r.Err) {
			return false
		}
	}
}

// noErrors is args as an input that never fails.
func noErrors[A any](args iter.Seq[A]) iter.Seq2[A, error] {
	return func(yield func(A, error) bool) {
		for a := range args {
			if !yield(a, nil) {
				return
			}
		}
	}
}

// imap is every IMap: of an input that never fails (see noErrors) or of
// one that can, which ends where its first error is.
func imap[A, R any](ctx context.Context, p *Pool, name string, args iter.Seq2[A, error], opts []CallOption, decode func(Raw, *R) error, ordered bool) iter.Seq2[Result[R], error] {
	return func(yield func(Result[R], error) bool) {
		c, err := newCall(p, verbIMap, name, opts, decode)
		if err == nil && p.p.Closed() {
			err = ErrPoolClosed // the input is not read: what it yields could not run
		}
		if err != nil {
			yield(Result[R]{}, err)
			return
		}
		size := max(c.cfg.chunk, 1)
		window := c.cfg.window
		if !c.cfg.windowSet {
			window = 4 * p.Size() * size
		}
		// A chunk is submitted once full, so the items not yet submitted
		// are fewer than a chunk: a window of at least one chunk always has
		// a result to wait for.
		window = max(window, size)
		im := &imapper[R]{c: c, window: window, ordered: ordered, finished: make(chan imapped[R], window)}
		if ordered {
			im.parked = make([]*Result[R], window)
		}
		im.k = chunker[R]{c: c, size: size, each: im.each}
		k := &im.k
		im.ff = failFast{on: c.cfg.failFast, exec: p.p, group: &k.group}
		taken := 0
		// However the loop ends (the consumer breaks, ctx ends, the pool
		// stops), nothing of this IMap is left running or queued.
		defer func() {
			if im.yielded < taken || k.n > 0 {
				p.p.CancelGroup(&k.group)
			}
		}()
		var inputErr error // the input's, yielded last
		for a, err := range args {
			if im.ff.fired.Load() {
				break // FailFast: a task failed; read no more
			}
			if err != nil {
				inputErr = errorf("the input failed after %d values: %w", taken, err)
				break
			}
			index := k.next()
			encErr, err := k.add(any(a))
			if err != nil {
				yield(Result[R]{}, err)
				return
			}
			if encErr != nil {
				im.settle(index, encodeFailure(encErr))
			}
			taken++
			for taken-im.yielded >= window {
				if !im.receive(ctx, yield) {
					return
				}
			}
		}
		if err := k.flush(); err != nil {
			yield(Result[R]{}, err)
			return
		}
		for im.yielded < taken {
			if !im.receive(ctx, yield) {
				return
			}
		}
		if inputErr != nil {
			yield(Result[R]{}, inputErr)
		}
	}
}
