package poold

import (
	"context"
	"sync/atomic"

	"github.com/poold/poold/internal/kind"
	"github.com/poold/poold/internal/pool"
)

// DefaultChunkSize is Map's chunk size for n tasks on workers workers:
// ceil(n / (4 × workers)), as in CPython; 0 for no tasks.
func DefaultChunkSize(n, workers int) int {
	if n == 0 {
		return 0
	}
	return (n + 4*workers - 1) / (4 * workers)
}

func mapSync[A, R any](ctx context.Context, p *Pool, name string, args []A, opts []CallOption, decode func(Raw, *R) error) ([]Result[R], error) {
	m, err := mapAsync(p, name, args, opts, decode)
	if err != nil {
		return nil, err
	}
	rs, err := m.Get(ctx)
	if ctx.Err() != nil && err == ctx.Err() {
		m.Cancel() // nobody can collect these results now
	}
	return rs, err
}

// mapper is a Map in flight: each result lands in its place in m.results.
type mapper[R any] struct {
	c    *call[R]
	m    *MapResult[R]
	left atomic.Int64 // results still to come
	ff   failFast
}

// each settles call i of chunk t.
func (mp *mapper[R]) each(t *pool.Task, i int, o *pool.Outcome) {
	mp.settle(t.Tag+i, o)
}

// eachQuiet is each for a Map without callbacks: a result is final once
// stored, and a chunk counts down once, in doneQuiet, rather than once per
// call, which the readers of two workers would contend for.
func (mp *mapper[R]) eachQuiet(t *pool.Task, i int, o *pool.Outcome) {
	mp.ff.observe(o)
	index := t.Tag + i
	setResult(&mp.m.results[index], o, mp.c.name, index, mp.c.decode)
}

func (mp *mapper[R]) doneQuiet(t *pool.Task) { mp.countDown(t.Calls) }

// settle stores the outcome of item index, runs its callback, and counts it.
func (mp *mapper[R]) settle(index int, o *pool.Outcome) {
	mp.ff.observe(o)
	mp.c.settle(o, index, &mp.m.results[index], mp.finishOne)
}

func (mp *mapper[R]) finishOne() { mp.countDown(1) }

func (mp *mapper[R]) countDown(n int) {
	if mp.left.Add(-int64(n)) == 0 {
		mp.finish()
	}
}

// finish ends a Map whose every result is in: it is done, once its
// whole-call callback has run, after the per-task ones, if it has one.
func (mp *mapper[R]) finish() {
	c, m := mp.c, mp.m
	if c.onMap == nil && c.cfg.onMapError == nil {
		close(m.done)
		return
	}
	c.p.cb.run(func() {
		err := firstErr(m.results)
		if err == nil && c.onMap != nil {
			m.cbErr = c.p.guard(c.name, "OnMapSuccess", nil, func() { c.onMap(m.results) })
		} else if err != nil && c.cfg.onMapError != nil {
			m.cbErr = c.p.guard(c.name, "OnMapError", err, func() { c.cfg.onMapError(err) })
		}
		close(m.done)
	})
}

func mapAsync[A, R any](p *Pool, name string, args []A, opts []CallOption, decode func(Raw, *R) error) (*MapResult[R], error) {
	c, err := newCall(p, verbMap, name, opts, decode)
	if err != nil {
		return nil, err
	}
	mp := &mapper[R]{c: c, m: &MapResult[R]{done: make(chan struct{}), results: make([]Result[R], len(args))}}
	if len(args) == 0 {
		if p.p.Closed() {
			return nil, ErrPoolClosed
		}
		mp.finish()
		return mp.m, nil
	}
	mp.left.Store(int64(len(args)))
	size := c.cfg.chunk
	if !c.cfg.chunkSet {
		size = DefaultChunkSize(len(args), p.Size())
	}
	k := &chunker[R]{c: c, size: size, each: mp.each}
	mp.m.exec, mp.m.group = p.p, &k.group
	mp.ff = failFast{on: c.cfg.failFast, exec: p.p, group: &k.group}
	if !c.callbacks() {
		k.each, k.done = mp.eachQuiet, mp.doneQuiet
	}
	var bad []badArg // settled last: a callback must not run before the Map is submitted
	for _, a := range args {
		index := k.next()
		encErr, err := k.add(any(a))
		if err != nil {
			return mp.failRest(k, bad, err)
		}
		if encErr != nil {
			bad = append(bad, badArg{index, encErr})
		}
	}
	if err := k.flush(); err != nil {
		return mp.failRest(k, bad, err)
	}
	mp.settleBad(bad)
	return mp.m, nil
}

// badArg is an item whose argument did not encode.
type badArg struct {
	index int
	err   error
}

func (mp *mapper[R]) settleBad(bad []badArg) {
	for _, b := range bad {
		mp.settle(b.index, encodeFailure(b.err))
	}
}

// failRest ends a Map whose submission failed: with nothing submitted yet,
// the Map fails; otherwise the items not submitted fail (the pool stopped
// meanwhile) and the rest of the Map runs on.
func (mp *mapper[R]) failRest(k *chunker[R], bad []badArg, err error) (*MapResult[R], error) {
	if k.sent == 0 {
		return nil, err
	}
	for i := k.first; i < len(mp.m.results); i++ {
		mp.settle(i, &pool.Outcome{Fail: &pool.Failure{Kind: kind.Terminated,
			Message: "the pool stopped before this part of the Map was submitted: " + err.Error()}, CPU: -1})
	}
	mp.settleBad(bad)
	return mp.m, nil
}
