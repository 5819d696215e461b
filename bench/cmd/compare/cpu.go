package main

// (4) CPU-bound speed-up from 1 to 2 workers.

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/poold/poold"
	"github.com/poold/poold/bench"
)

const primeTasks = 8

// primesTime counts the primes below n with the built-in task "primes",
// split in primeTasks tasks of one chunk each, on a fresh, warmed-up pool of
// workers: the time of the Map, the count, how long each task ran in its
// worker, and how the tasks were split between the workers ("5+3").
func (h *harness) primesTime(workers int, n int64) (time.Duration, int, []time.Duration, string, error) {
	p, ctx, done, err := h.poolFor(workers)
	if err != nil {
		return 0, 0, nil, "", err
	}
	defer done()
	parts := bench.PrimeRanges(n, primeTasks)
	args := make([]any, len(parts))
	for i, a := range parts {
		args[i] = a
	}
	t0 := time.Now()
	rs, err := p.Map(ctx, "primes", args, poold.ChunkSize(1))
	dt := time.Since(t0)
	if err != nil {
		return 0, 0, nil, "", err
	}
	count := 0
	durs := make([]time.Duration, len(rs))
	perWorker := make([]int, workers)
	for i, r := range rs {
		var c int
		if err := r.Value.Decode(&c); err != nil {
			return 0, 0, nil, "", err
		}
		count += c
		durs[i] = r.Duration()
		if r.Worker >= 0 && r.Worker < workers {
			perWorker[r.Worker]++
		}
	}
	var split []string
	for _, k := range perWorker {
		split = append(split, strconv.Itoa(k))
	}
	return dt, count, durs, strings.Join(split, "+"), nil
}

// idealSpeedup is the best speed-up 2 workers can get on tasks of these
// durations handed out in order, each to the first worker free (what any
// pool does with one task per chunk): total work ÷ the makespan, with no
// overhead at all. Tasks of unequal length cap it below 2.
func idealSpeedup(durs []time.Duration) float64 {
	var free [2]time.Duration
	var total time.Duration
	for _, d := range durs {
		i := 0
		if free[1] < free[0] {
			i = 1
		}
		free[i] += d
		total += d
	}
	return float64(total) / float64(max(free[0], free[1]))
}

func runCPU(h *harness) ([]Row, error) {
	n := int64(h.size(1_000_000, 20_000))
	reps := h.nreps(5)
	var t1, t2, speedups, ideal, inflation, bare []float64
	var splits []string
	count := -1
	for range reps { // interleaved, so that drift hits both alike
		b1, bc1, err := barePrimes(bench.PrimeRanges(n, primeTasks), 1)
		if err != nil {
			return nil, err
		}
		b2, bc2, err := barePrimes(bench.PrimeRanges(n, primeTasks), 2)
		if err != nil {
			return nil, err
		}
		if bc1 != bc2 {
			return nil, fmt.Errorf("bare prime counts differ: %d, %d", bc1, bc2)
		}
		bare = append(bare, float64(b1)/float64(b2))
		d1, c1, durs, _, err := h.primesTime(1, n)
		if err != nil {
			return nil, err
		}
		ideal = append(ideal, idealSpeedup(durs))
		d2, c2, durs2, split, err := h.primesTime(2, n)
		if err != nil {
			return nil, err
		}
		if c1 != c2 || (count >= 0 && c1 != count) {
			return nil, fmt.Errorf("prime counts differ: %d, %d, %d", c1, c2, count)
		}
		count = c1
		t1, t2 = append(t1, ms(d1)), append(t2, ms(d2))
		speedups = append(speedups, float64(d1)/float64(d2))
		inflation = append(inflation, float64(sum(durs2))/float64(sum(durs)))
		splits = append(splits, split)
	}
	h.logf("poold primes<%d (%d primes) in %d tasks: Pool(1) %s ms, Pool(2) %s ms, speed-up %s",
		n, count, primeTasks, spread(t1, f1), spread(t2, f1), spread(speedups, fmtX))
	h.logf("ideal speed-up of these %d tasks on 2 workers (their Pool(1) durations, list scheduling, no overhead): %s",
		primeTasks, spread(ideal, fmtX))
	h.logf("task time in Pool(2) ÷ task time in Pool(1), summed over the 8 tasks: %s (above 1: the two workers slowed each other down, i.e. fewer than 2 free cores)",
		spread(inflation, fmtX))
	h.logf("the same 8 ranges in plain processes, no pool (1 process, then 2 at once, 4 ranges each): speed-up %s", spread(bare, fmtX))
	h.logf("tasks per worker in each Pool(2) run: %s (4+4 unless a worker was handed more tasks than it could start)", strings.Join(splits, ", "))

	var py struct {
		T1     []float64 `json:"t1_s"`
		T2     []float64 `json:"t2_s"`
		Primes int       `json:"primes"`
	}
	pySpeed, pyT1 := naFig, naFig
	if ok, err := h.pyRun(&py, "cpu", "--n", strconv.FormatInt(n, 10), "--tasks", strconv.Itoa(primeTasks), "--reps", strconv.Itoa(reps)); err != nil {
		return nil, err
	} else if ok {
		if py.Primes != count {
			return nil, fmt.Errorf("primes below %d: %d counted by Python, %d by poold", n, py.Primes, count)
		}
		var ps []float64
		for i := range py.T1 {
			ps = append(ps, py.T1[i]/py.T2[i])
			py.T1[i] *= 1e3
			py.T2[i] *= 1e3
		}
		pySpeed, pyT1 = newFig(median(ps), fmtX), newFig(median(py.T1), fmtMS)
		h.logf("Python primes<%d in %d tasks: Pool(1) %s ms, Pool(2) %s ms, speed-up %s",
			n, primeTasks, spread(py.T1, f1), spread(py.T2, f1), spread(ps, fmtX))
	}
	speed := newFig(median(speedups), fmtX)
	return []Row{
		mkRow("4a", "speed-up Pool(1) → Pool(2)", speed, "Python", pySpeed,
			&target{"speed-up ≥ 1.9×", func(p, _ float64) bool { return p >= 1.9 }},
			fmt.Sprintf("median over %d interleaved pairs of Pool(1) time ÷ Pool(2) time; map of %d tasks, one per chunk; the tasks ran %.2f× as long in Pool(2) as in Pool(1) (1.00: no contention for the cores); tasks per worker in each Pool(2) run: %s", reps, primeTasks, median(inflation), strings.Join(splits, ", "))),
		mkRow("4b", "speed-up Pool(1) → Pool(2)", speed, "ideal for these 8 tasks", newFig(median(ideal), fmtX), nil,
			"ideal: total work ÷ makespan of the 8 tasks (their durations in the Pool(1) runs) handed in order to the first free of 2 workers, with no overhead: the ranges are cut for about equal cost (bench.PrimeRanges), yet not exactly equal, which caps any pool a little below 2×"),
		mkRow("4c", "Pool(1) time", newFig(median(t1), fmtMS), "Python Pool(1)", pyT1, nil,
			"the same trial division in Go (built-in task primes) and in pure Python: Go's runs are ~20× shorter, so more exposed to noise"),
		mkRow("4d", "speed-up Pool(1) → Pool(2)", speed, "2 plain processes, no pool", newFig(median(bare), fmtX), nil,
			"the machine's own limit for this code: the built-in task's trial division run by 1 plain copy of the harness, then by 2 at once with 4 ranges each, timed from a go signal (no start-up, no pool, no pipes)"),
	}, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func sum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}
