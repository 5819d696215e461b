package main

// (1) trivial tasks one at a time and (2) Map with the default chunking,
// each in both modes (worker processes; worker goroutines, rows 1t… 2t…).

import (
	"fmt"
	"strconv"
	"time"

	"github.com/poold/poold"
	"github.com/poold/poold/bench"
)

// applyAsyncRate submits n trivial tasks one at a time with ApplyAsync on a
// fresh pool of 2 in mode m, then gathers them: tasks/s.
func (h *harness) applyAsyncRate(m mode, n int) (float64, error) {
	p, ctx, done, err := h.poolFor(2, m.opts...)
	if err != nil {
		return 0, err
	}
	defer done()
	rs := make([]*poold.AsyncResult[int64], n)
	t0 := time.Now()
	for i := range rs {
		if rs[i], err = bench.Ident.ApplyAsync(p, int64(i)); err != nil {
			return 0, err
		}
	}
	var sum int64
	for _, a := range rs {
		r, err := a.Get(ctx)
		if err != nil {
			return 0, err
		}
		sum += r.Value
	}
	return identRate(sum, n, time.Since(t0))
}

func runApplyAsync(h *harness) ([]Row, error) {
	n := h.size(100_000, 2_000)
	reps := h.nreps(3)
	rates, thrRates, err := repeatModes(reps, n, h.applyAsyncRate)
	if err != nil {
		return nil, err
	}
	h.logf("poold ApplyAsync x%d then Get all: %s tasks/s", n, spread(rates, commas))
	h.logf("poold threads ApplyAsync x%d then Get all: %s tasks/s", n, spread(thrRates, commas))
	pyFig, err := h.pyRate("apply_async", "process", fmt.Sprintf("Python apply_async x%d then get all", n), n, reps)
	if err != nil {
		return nil, err
	}
	pyThr, err := h.pyRate("apply_async", "thread", fmt.Sprintf("Python ThreadPool apply_async x%d then get all", n), n, reps)
	if err != nil {
		return nil, err
	}

	ppN := h.size(200_000, 5_000)
	pp1, err := pingPong(1, 64, ppN, ppN/10, reps, false, false)
	if err != nil {
		return nil, fmt.Errorf("ping-pong limit: %w", err)
	}
	h.logf("msgpack ping-pong, 64 in flight, 1 child: %s round trips/s", commas(pp1.rate))
	pp2, err := pingPong(2, 64, ppN/2, ppN/20, reps, false, false)
	if err != nil {
		return nil, fmt.Errorf("ping-pong limit: %w", err)
	}
	h.logf("msgpack ping-pong, 64 in flight, 2 children: %s round trips/s", commas(pp2.rate))
	ppEach, err := pingPong(2, 64, ppN/2, ppN/20, reps, false, true)
	if err != nil {
		return nil, fmt.Errorf("ping-pong limit: %w", err)
	}
	h.logf("msgpack ping-pong, 64 in flight, 2 children writing each reply before the next: %s round trips/s", commas(ppEach.rate))

	pf, tf := newFig(median(rates), fmtRate), newFig(median(thrRates), fmtRate)
	return []Row{
		mkRow("1a", "one at a time, tasks/s", pf, "Python apply_async", pyFig, ratioAtLeast(25), ""),
		mkRow("1b", "one at a time, tasks/s", pf, "pipelined msgpack limit, 1 child", newFig(pp1.rate, fmtRate), ratioAtLeast(0.5),
			"the limit: a bare Go parent and 1 copy of itself echoing 50-byte msgpack frames over pipes, 64 in flight (no poold)"),
		mkRow("1c", "one at a time, tasks/s", pf, "pipelined msgpack limit, 2 children", newFig(pp2.rate, fmtRate), nil,
			"the same limit with 2 children, as many as the pool's workers"),
		mkRow("1d", "one at a time, tasks/s", pf, "the same, each reply written alone", newFig(ppEach.rate, fmtRate), nil,
			"2 children that write each reply before reading the next frame, as a poold worker must (a result held back is lost if the next task crashes the worker); the children of 1b and 1c write a burst of replies at once"),
		mkRow("1ta", "threads: one at a time, tasks/s", tf, "Python ThreadPool apply_async", pyThr, ratioAtLeast(10),
			"threads mode (WithThreads: 2 worker goroutines of the harness, arguments and results still msgpack-encoded) against multiprocessing.dummy.Pool(2), the same workload"),
		mkRow("1tb", "threads: one at a time, tasks/s", tf, "poold processes (1a)", pf, nil, "what isolation costs here: threads mode ÷ process mode, interleaved rep by rep"),
	}, nil
}

// mapRate maps Ident over n items with the default chunking on a fresh
// pool of 2 in mode m: tasks/s.
func (h *harness) mapRate(m mode, n int) (float64, error) {
	p, ctx, done, err := h.poolFor(2, m.opts...)
	if err != nil {
		return 0, err
	}
	defer done()
	args := make([]int64, n)
	for i := range args {
		args[i] = int64(i)
	}
	t0 := time.Now()
	rs, err := bench.Ident.Map(ctx, p, args)
	dt := time.Since(t0)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, r := range rs {
		sum += r.Value
	}
	return identRate(sum, n, dt)
}

func runMap(h *harness) ([]Row, error) {
	n := h.size(1_000_000, 20_000)
	reps := h.nreps(3)
	rates, thrRates, err := repeatModes(reps, n, h.mapRate)
	if err != nil {
		return nil, err
	}
	h.logf("poold Map x%d, chunk size %d: %s tasks/s", n, poold.DefaultChunkSize(n, 2), spread(rates, commas))
	h.logf("poold threads Map x%d, chunk size %d: %s tasks/s", n, poold.DefaultChunkSize(n, 2), spread(thrRates, commas))
	pyFig, err := h.pyRate("map", "process", fmt.Sprintf("Python map x%d, default chunksize", n), n, reps)
	if err != nil {
		return nil, err
	}
	pyThr, err := h.pyRate("map", "thread", fmt.Sprintf("Python ThreadPool map x%d, default chunksize", n), n, reps)
	if err != nil {
		return nil, err
	}
	chunk := poold.DefaultChunkSize(n, 2)
	pf, tf := newFig(median(rates), fmtRate), newFig(median(thrRates), fmtRate)
	return []Row{
		mkRow("2a", "Map, default chunks, tasks/s", pf, "Python map", pyFig, ratioAtLeast(3),
			fmt.Sprintf("%d items, chunk size %d on both sides (ceil(n / (4 × workers)))", n, chunk)),
		mkRow("2ta", "threads: Map, tasks/s", tf, "Python ThreadPool map", pyThr, nil,
			"threads mode against multiprocessing.dummy.Pool(2), same items and chunk size"),
		mkRow("2tb", "threads: Map, tasks/s", tf, "poold processes (2a)", pf, nil, "threads mode ÷ process mode, interleaved rep by rep"),
	}, nil
}

// identRate is the rate of n Ident tasks done in dt, once the sum of their
// results shows that each of the arguments 0 to n-1 came back.
func identRate(sum int64, n int, dt time.Duration) (float64, error) {
	if want := int64(n) * int64(n-1) / 2; sum != want {
		return 0, fmt.Errorf("sum of results %d, want %d", sum, want)
	}
	return float64(n) / dt.Seconds(), nil
}

// repeatModes measures rate(m, n) reps times in each mode, interleaved rep
// by rep (processes, then threads), so that drift hits both alike.
func repeatModes(reps, n int, rate func(m mode, n int) (float64, error)) (procRates, thrRates []float64, err error) {
	for range reps {
		r, err := rate(processes, n)
		if err != nil {
			return nil, nil, err
		}
		procRates = append(procRates, r)
		if r, err = rate(threads, n); err != nil {
			return nil, nil, fmt.Errorf("threads mode: %w", err)
		}
		thrRates = append(thrRates, r)
	}
	return procRates, thrRates, nil
}

// pyRate runs the Python workload on a pool of 2 of kind ("process" or
// "thread"), n tasks reps times, and logs its rates as what: their median,
// or naFig when Python is not available.
func (h *harness) pyRate(workload, kind, what string, n, reps int) (fig, error) {
	return h.pyRateOn(workload, kind, what, 2, n, reps)
}

// pyRateOn is pyRate on a pool of procs.
func (h *harness) pyRateOn(workload, kind, what string, procs, n, reps int) (fig, error) {
	var py struct {
		Rates []float64 `json:"rates"`
	}
	ok, err := h.pyRun(&py, workload, "--kind", kind, "--procs", strconv.Itoa(procs), "--n", strconv.Itoa(n), "--reps", strconv.Itoa(reps))
	if err != nil || !ok {
		return naFig, err
	}
	h.logf("%s: %s tasks/s", what, spread(py.Rates, commas))
	return newFig(median(py.Rates), fmtRate), nil
}
