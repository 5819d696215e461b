package main

import "github.com/poold/poold"

// emit reports result j of a submitted entry, once.
func (r *runner) emit(f *flight, j int, res poold.Result[poold.Raw]) {
	if f.emitted != nil {
		if f.emitted[j] {
			return
		}
		f.emitted[j] = true
	}
	r.report(f.e, j, res, true)
}

// fail reports every result of an entry that never reached a worker.
func (r *runner) fail(e *Entry, kind poold.Kind, msg string) {
	for j := range e.Count() {
		r.report(e, j, poold.Result[poold.Raw]{
			Func: e.Func,
			Err:  &poold.TaskError{Kind: kind, Func: e.Func, Message: msg},
			CPU:  -1, // no worker ran it
		}, false)
	}
}

// report counts and prints result j of entry e; inFlight: it was
// submitted, and counts in r.pending until it is printed.
func (r *runner) report(e *Entry, j int, res poold.Result[poold.Raw], inFlight bool) {
	if res.Func == "" {
		res.Func = e.Func
	}
	if res.Err == nil {
		r.ok++
	} else {
		r.failed++
	}
	if res.PID != 0 {
		r.pids[workerID{res.Host, res.PID}] = true
	}
	if h := r.cfg.halt; h != nil && !r.halted && inFlight && h.fires(r.ok, r.failed, r.total) {
		r.halt()
	}
	if r.jobLog != nil && errorKind(res.Err) != poold.KindTerminated {
		// A task ended by a signal to poold did not finish: like GNU
		// parallel, which does not log the jobs it kills to halt, poold
		// leaves it out, so that --resume runs it.
		r.jobLog.write(e, j, e.First+j, res)
	}
	o := outcome{ID: e.ResultID(j), Index: e.First + j, Res: res}
	if r.stats == nil {
		r.stats = newRunStats()
	}
	r.stats.add(o.ID, res)
	if r.order == nil {
		r.print(o, inFlight)
		return
	}
	r.order.park(o, inFlight)
	r.order.release(r.print)
}

// halt stops the run as --halt says: nothing more starts (what is left of
// a file is reported as canceled, a stream is read no further), and with
// "now" what runs is cancelled too.
func (r *runner) halt() {
	r.halted = true
	if !r.cfg.halt.now {
		return
	}
	for _, f := range r.flights {
		switch {
		case f.apply != nil:
			f.apply.Cancel()
		case f.m != nil:
			f.m.Cancel()
		}
	}
}

// print prints o now.
func (r *runner) print(o outcome, inFlight bool) {
	if inFlight {
		r.pending--
		if r.pendingHook != nil {
			r.pendingHook(r.pending)
		}
	}
	r.rep.Result(o)
}
