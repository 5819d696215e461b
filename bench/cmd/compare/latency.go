package main

// (3) single-task round-trip latency, beside the raw pipe ping-pong, in both
// modes (worker processes; worker goroutines, rows 3t…).

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/poold/poold/bench"
)

// applyLatency runs warm then n sequential Apply calls on a fresh pool of
// workers in mode m and returns the p50 and p99 of the n, in µs.
func (h *harness) applyLatency(m mode, workers, n, warm int) (p50, p99 float64, err error) {
	p, ctx, done, err := h.poolFor(workers, m.opts...)
	if err != nil {
		return 0, 0, err
	}
	defer done()
	for i := range warm {
		if _, err := bench.Ident.Apply(ctx, p, int64(i)); err != nil {
			return 0, 0, err
		}
	}
	lat := make([]time.Duration, n)
	for i := range n {
		t0 := time.Now()
		r, err := bench.Ident.Apply(ctx, p, int64(i))
		lat[i] = time.Since(t0)
		if err != nil {
			return 0, 0, err
		}
		if r.Value != int64(i) {
			return 0, 0, fmt.Errorf("Apply(%d) = %d", i, r.Value)
		}
	}
	slices.Sort(lat)
	return us(percentile(lat, 50)), us(percentile(lat, 99)), nil
}

func runLatency(h *harness) ([]Row, error) {
	n := h.size(10_000, 200)
	warm := h.size(500, 20)
	reps := h.nreps(3)
	// Interleaved, rep by rep: poold, poold in threads mode, then the
	// ping-pong limit.
	var p50s, p99s, tp50s, tp99s []float64
	var pp, ppBlock []pingPongResult
	for range reps {
		p50, p99, err := h.applyLatency(processes, 2, n, warm)
		if err != nil {
			return nil, err
		}
		p50s, p99s = append(p50s, p50), append(p99s, p99)
		if p50, p99, err = h.applyLatency(threads, 2, n, warm); err != nil {
			return nil, fmt.Errorf("threads mode: %w", err)
		}
		tp50s, tp99s = append(tp50s, p50), append(tp99s, p99)
		r, err := pingPong(1, 1, n, warm, 1, false, false)
		if err != nil {
			return nil, fmt.Errorf("ping-pong: %w", err)
		}
		pp = append(pp, r)
		r, err = pingPong(1, 1, n, warm, 1, true, false)
		if err != nil {
			return nil, fmt.Errorf("ping-pong (blocking): %w", err)
		}
		ppBlock = append(ppBlock, r)
	}
	field := func(rs []pingPongResult, f func(pingPongResult) float64) []float64 {
		var out []float64
		for _, r := range rs {
			out = append(out, f(r))
		}
		return out
	}
	p50of := func(r pingPongResult) float64 { return r.p50 }
	p99of := func(r pingPongResult) float64 { return r.p99 }
	h.logf("poold Apply x%d: p50 %s µs, p99 %s µs", n, spread(p50s, f1), spread(p99s, f1))
	h.logf("poold threads Apply x%d: p50 %s µs, p99 %s µs", n, spread(tp50s, f1), spread(tp99s, f1))
	h.logf("msgpack ping-pong (netpoller) x%d: p50 %s µs, p99 %s µs", n, spread(field(pp, p50of), f1), spread(field(pp, p99of), f1))
	h.logf("msgpack ping-pong (blocking fds) x%d: p50 %s µs, p99 %s µs", n, spread(field(ppBlock, p50of), f1), spread(field(ppBlock, p99of), f1))

	var py struct {
		P50 []float64 `json:"p50_us"`
		P99 []float64 `json:"p99_us"`
	}
	pyP50, pyP99 := naFig, naFig
	pyNote := ""
	if ok, err := h.pyRun(&py, "latency", "--procs", "2", "--n", strconv.Itoa(n), "--warmup", strconv.Itoa(warm), "--reps", strconv.Itoa(reps)); err != nil {
		return nil, err
	} else if ok {
		pyP50, pyP99 = newFig(median(py.P50), fmtUS), newFig(median(py.P99), fmtUS)
		h.logf("Python apply x%d: p50 %s µs, p99 %s µs", n, spread(py.P50, f1), spread(py.P99, f1))
		pyNote = fmt.Sprintf("Python's p50 is %.1f× the ping-pong's", median(py.P50)/median(field(pp, p50of)))
	}
	var pyt struct {
		P50 []float64 `json:"p50_us"`
		P99 []float64 `json:"p99_us"`
	}
	pytP50, pytP99 := naFig, naFig
	if ok, err := h.pyRun(&pyt, "latency", "--kind", "thread", "--procs", "2", "--n", strconv.Itoa(n), "--warmup", strconv.Itoa(warm), "--reps", strconv.Itoa(reps)); err != nil {
		return nil, err
	} else if ok {
		pytP50, pytP99 = newFig(median(pyt.P50), fmtUS), newFig(median(pyt.P99), fmtUS)
		h.logf("Python ThreadPool apply x%d: p50 %s µs, p99 %s µs", n, spread(pyt.P50, f1), spread(pyt.P99, f1))
	}

	p50, p99 := newFig(median(p50s), fmtUS), newFig(median(p99s), fmtUS)
	tp50, tp99 := newFig(median(tp50s), fmtUS), newFig(median(tp99s), fmtUS)
	const capUS = 5.0
	return []Row{
		mkRow("3a", "round trip p50", p50, "msgpack ping-pong p50", newFig(median(field(pp, p50of)), fmtUS), ratioAtMost(1.5),
			"ping-pong: a bare Go parent and 1 copy of itself, one 50-byte msgpack frame each way, netpoller pipes as poold's"),
		mkRow("3b", "round trip p50", p50, "Python apply p50", pyP50, nil, pyNote),
		mkRow("3c", "round trip p99", p99, "msgpack ping-pong p99", newFig(median(field(pp, p99of)), fmtUS), nil, ""),
		mkRow("3d", "round trip p99", p99, "Python apply p99", pyP99, nil, ""),
		mkRow("3e", "round trip p50", p50, "ping-pong p50, blocking fds", newFig(median(field(ppBlock, p50of)), fmtUS), nil,
			"the parent's pipe fds in blocking mode: no netpoller wake-up, the floor a different I/O design could reach"),
		mkRow("3ta", "threads: round trip p50", tp50, "cap", newFig(capUS, fmtUS),
			&target{fmt.Sprintf("< %g µs", capUS), func(p, _ float64) bool { return p < capUS }},
			"threads mode (2 worker goroutines), Apply to result; each Apply (a job of one call) reads its thread's CPU clock twice for Result.CPU"),
		mkRow("3tb", "threads: round trip p50", tp50, "poold processes p50 (3a)", p50, nil, "threads mode ÷ process mode, interleaved rep by rep"),
		mkRow("3tc", "threads: round trip p50", tp50, "Python ThreadPool apply p50", pytP50, nil, "multiprocessing.dummy.Pool(2), the same calls"),
		mkRow("3td", "threads: round trip p99", tp99, "Python ThreadPool apply p99", pytP99, nil, ""),
	}, nil
}

func f1(x float64) string { return fmt.Sprintf("%.1f", x) }
