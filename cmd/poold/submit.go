package main

import (
	"context"
	"errors"
	"strings"

	"github.com/poold/poold"
)

// event says that results of an entry are ready.
type event struct {
	f       *flight
	res     poold.Result[poold.Raw] // when ok: the result of a task or map item that succeeded
	ok      bool
	mapDone bool // every item of a map entry is done
}

// flight is an entry submitted to the pool whose results are not all in.
type flight struct {
	e       *Entry
	apply   *poold.AsyncResult[poold.Raw] // a task
	m       *poold.MapResult[poold.Raw]   // a map entry
	emitted []bool                        // a map entry's items already reported
}

// submit hands an entry to the pool. Its results arrive as events: one per
// task (whose result the handle then gives), one per map item that
// succeeds, and one when a whole map is done, which covers the failed items
// (OnError does not say which item failed). Events are read on this
// goroutine only after submit returns, so the flight an event refers to is
// always stored.
func (r *runner) submit(e *Entry) error {
	pos := e.Pos
	// The options are taken in the call: one slice serves every call.
	opts := r.opts[:0]
	defer func() { r.opts = opts[:0] }()
	if e.HasTimeout {
		opts = append(opts, poold.Timeout(e.Timeout)) // 0: no limit, whatever --timeout says
	}
	if e.HasRetries {
		opts = append(opts, poold.Retries(e.Retries))
	}
	if e.HasRetryOn {
		opts = append(opts, poold.RetryOn(e.RetryOn...))
	}
	if e.AtMostOnce || r.cfg.atMostOnce {
		opts = append(opts, poold.AtMostOnce())
	}
	if r.trace != nil {
		opts = append(opts, poold.TraceName(e.ID)) // a map's items: ID[i], as their result ids
	}
	// The result of a success comes with its event: Get would decode it
	// again.
	f := &e.flight // no allocation of its own
	f.e = e
	if !e.IsMap {
		opts = append(opts,
			poold.OnSuccess(func(res poold.Result[poold.Raw]) { r.events <- event{f: f, res: res, ok: true} }),
			poold.OnError(func(error) { r.events <- event{f: f} }))
		a, err := r.pool.ApplyAsync(e.Func, e.Args, opts...)
		if err != nil {
			return err
		}
		f.apply = a
	} else {
		if e.ChunkSize > 0 {
			opts = append(opts, poold.ChunkSize(e.ChunkSize))
		}
		opts = append(opts, poold.OnSuccess(func(res poold.Result[poold.Raw]) {
			r.events <- event{f: f, res: res, ok: true}
		}))
		m, err := r.pool.MapAsync(e.Func, e.MapArgs, opts...)
		if err != nil {
			return err
		}
		f.m, f.emitted = m, make([]bool, e.Count())
		go func() {
			<-m.Done()
			r.events <- event{f: f, mapDone: true}
		}()
	}
	r.flights[pos] = f
	r.pending += e.Count()
	if r.pendingHook != nil {
		r.pendingHook(r.pending)
	}
	return nil
}

// submitKind classifies an error of ApplyAsync or MapAsync: the task then
// fails without running.
func submitKind(err error) poold.Kind {
	switch {
	case errors.Is(err, poold.KindUnknownFunc):
		return poold.KindUnknownFunc
	case errors.Is(err, poold.ErrPoolClosed):
		return poold.KindTerminated
	default:
		return poold.KindBadTask
	}
}

// submitMessage is err without the prefixes that the kind already says.
func submitMessage(err error) string {
	var te *poold.TaskError
	if errors.As(err, &te) {
		return te.Message
	}
	return strings.TrimPrefix(err.Error(), "poold: ")
}

func (r *runner) handle(ev event) {
	f := ev.f
	switch {
	case ev.mapDone:
		// Done is closed, so Get returns at once. Every item's event came
		// before this one: the map is done only after its callbacks ran.
		results, _ := f.m.Get(context.Background())
		for j, res := range results {
			r.emit(f, j, res)
		}
		delete(r.flights, f.e.Pos)
	case f.m != nil:
		r.emit(f, ev.res.Index, ev.res)
	case ev.ok:
		r.emit(f, 0, ev.res)
		delete(r.flights, f.e.Pos)
	default:
		// The callback sends the event just before the result is ready.
		res, _ := f.apply.Get(context.Background())
		r.emit(f, 0, res)
		delete(r.flights, f.e.Pos)
	}
}
