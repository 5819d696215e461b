package main

// (5) time from pool creation until 4 workers are ready, in both modes
// (worker processes; worker goroutines, rows 5t…).

import (
	"fmt"
	"strconv"
	"time"

	"github.com/poold/poold"
	"github.com/poold/poold/bench"
)

// startTimes creates a pool of workers in mode m: the time New took (it
// returns once every worker process has completed its handshake; in threads
// mode, once the goroutines are started) and the time until a first Map of
// workers items had its results, as Python's figure is taken.
func (h *harness) startTimes(m mode, workers int) (ready, firstMap time.Duration, err error) {
	t0 := time.Now()
	p, err := poold.New(h.ctx, append([]poold.Option{poold.WithWorkers(workers)}, m.opts...)...)
	ready = time.Since(t0)
	if err != nil {
		return 0, 0, err
	}
	defer h.stopPool(p)
	ctx, cancel := h.timeout()
	defer cancel()
	if _, err := bench.Ident.Map(ctx, p, make([]int64, workers)); err != nil {
		return 0, 0, err
	}
	return ready, time.Since(t0), nil
}

func runStartup(h *harness) ([]Row, error) {
	const workers = 4
	reps := h.nreps(10)
	var ready, first, raw, tReady, tFirst []float64
	for range reps {
		r, f, err := h.startTimes(processes, workers)
		if err != nil {
			return nil, err
		}
		ready, first = append(ready, ms(r)), append(first, ms(f))
		if r, f, err = h.startTimes(threads, workers); err != nil {
			return nil, fmt.Errorf("threads mode: %w", err)
		}
		tReady, tFirst = append(tReady, ms(r)), append(tFirst, ms(f))
		d, err := execReady(workers)
		if err != nil {
			return nil, fmt.Errorf("exec %d children: %w", workers, err)
		}
		raw = append(raw, ms(d))
	}
	h.logf("poold New(%d workers): %s ms; New + first Map of %d: %s ms", workers, spread(ready, f1), workers, spread(first, f1))
	h.logf("poold threads New(%d workers): %s ms; New + first Map of %d: %s ms", workers, spread(tReady, f3), workers, spread(tFirst, f3))
	h.logf("exec %d copies of the harness until each writes a byte: %s ms", workers, spread(raw, f1))

	var py struct {
		MS []float64 `json:"ms"`
	}
	pyFig := naFig
	if ok, err := h.pyRun(&py, "startup", "--procs", strconv.Itoa(workers), "--reps", strconv.Itoa(reps)); err != nil {
		return nil, err
	} else if ok {
		pyFig = newFig(median(py.MS), fmtMS)
		h.logf("Python fork Pool(%d) + first map of %d: %s ms", workers, workers, spread(py.MS, f1))
	}
	var pyt struct {
		MS []float64 `json:"ms"`
	}
	pytFig := naFig
	if ok, err := h.pyRun(&pyt, "startup", "--kind", "thread", "--procs", strconv.Itoa(workers), "--reps", strconv.Itoa(reps)); err != nil {
		return nil, err
	} else if ok {
		pytFig = newFig(median(pyt.MS), fmtMSFine)
		h.logf("Python ThreadPool(%d) + first map of %d: %s ms", workers, workers, spread(pyt.MS, f3))
	}
	return []Row{
		mkRow("5a", "New until 4 workers ready", newFig(median(ready), fmtMS), "Python Pool(4) + map(4)", pyFig, ratioAtMost(0.5),
			"Python: fork Pool(4) created and a first map of 4 items done"),
		mkRow("5b", "New + first Map of 4", newFig(median(first), fmtMS), "Python Pool(4) + map(4)", pyFig, nil, "the same end point on both sides"),
		mkRow("5c", "New until 4 workers ready", newFig(median(ready), fmtMS), "exec 4 children until ready", newFig(median(raw), fmtMS), nil,
			"the limit: exec 4 copies of the harness binary and read one byte from each (no poold)"),
		mkRow("5ta", "threads: New + first Map of 4", newFig(median(tFirst), fmtMSFine), "Python ThreadPool(4) + map(4)", pytFig, nil,
			"threads mode against multiprocessing.dummy.Pool(4) created and a first map of 4 items done: the same end point"),
		mkRow("5tb", "threads: New + first Map of 4", newFig(median(tFirst), fmtMSFine), "poold processes (5b)", newFig(median(first), fmtMS), nil,
			"threads mode ÷ process mode, interleaved rep by rep; New alone in threads mode starts the goroutines and returns: "+fmtMSFine(median(tReady))),
	}, nil
}

func f3(x float64) string { return fmt.Sprintf("%.3f", x) }
