package main

// (10) how cost grows: one-at-a-time throughput against the number of
// workers, beside Python's Pool with as many; MB/s against the size of
// arguments and results, beside the bare pipe's; parent memory against the
// number of queued tasks, beside Python's (queue.go).

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/poold/poold"
	"github.com/poold/poold/bench"
	"github.com/vmihailenco/msgpack/v5"
)

// sizeWindow is how many tasks of the size rows the harness keeps
// submitted and not yet gathered: 16 per worker can be in flight (the
// pool's MaxWindow), 64 keeps both workers' windows full.
const sizeWindow = 64

// letters names the rows of workload 10: a-e workers, f-j sizes, k-m
// queued tasks.
const letters = "abcdefghijklm"

func growthID(i int) string { return "10" + letters[i:i+1] }

// fmtSize is a size in bytes as 16 B, 4 KiB, 1 MiB.
func fmtSize(b int) string {
	switch {
	case b >= 1<<20 && b%(1<<20) == 0:
		return strconv.Itoa(b>>20) + " MiB"
	case b >= 1<<10 && b%(1<<10) == 0:
		return strconv.Itoa(b>>10) + " KiB"
	}
	return strconv.Itoa(b) + " B"
}

func fmtMBs(x float64) string {
	if x < 10 {
		return fmt.Sprintf("%.2f MB/s", x)
	}
	return commas(x) + " MB/s"
}

func fmtBytes(x float64) string { return commas(x) + " B" }

// naOr is f(x), or "n/a" for NaN.
func naOr(x float64, f func(float64) string) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return f(x)
}

// plural is "1 worker", "2 workers".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

func runGrowth(h *harness) ([]Row, error) {
	reps := h.nreps(3)
	rows, err := h.growthWorkers(reps)
	if err != nil {
		return nil, err
	}
	sz, err := h.growthSizes(reps)
	if err != nil {
		return nil, err
	}
	q, err := h.growthQueued()
	if err != nil {
		return nil, err
	}
	return append(append(rows, sz...), q...), nil
}

// workersPoint is one rep of a worker count: the rate, and the CPU used
// meanwhile, in cores (CPU time ÷ wall time): the harness's own (the
// pool's parent side) and the whole machine's (/proc/stat; NaN without).
type workersPoint struct {
	rate, parent, machine float64
}

// applyAsyncCPU is row 1a's workload (applyAsyncRate) on a fresh pool of
// workers, with the CPU used while it runs.
func (h *harness) applyAsyncCPU(workers, n int) (workersPoint, error) {
	var pt workersPoint
	p, ctx, done, err := h.poolFor(workers)
	if err != nil {
		return pt, err
	}
	defer done()
	rs := make([]*poold.AsyncResult[int64], n)
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	tot0, idle0, err0 := cpuTimes()
	t0 := time.Now()
	for i := range rs {
		if rs[i], err = bench.Ident.ApplyAsync(p, int64(i)); err != nil {
			return pt, err
		}
	}
	var sum int64
	for _, a := range rs {
		r, err := a.Get(ctx)
		if err != nil {
			return pt, err
		}
		sum += r.Value
	}
	dt := time.Since(t0)
	tot1, idle1, err1 := cpuTimes()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	if pt.rate, err = identRate(sum, n, dt); err != nil {
		return pt, err
	}
	cpu := func(ru *syscall.Rusage) float64 { return float64(ru.Utime.Nano() + ru.Stime.Nano()) }
	pt.parent = (cpu(&ru1) - cpu(&ru0)) / float64(dt.Nanoseconds())
	pt.machine = math.NaN()
	if err0 == nil && err1 == nil && tot1 > tot0 {
		pt.machine = float64(runtime.NumCPU()) * (1 - float64(idle1-idle0)/float64(tot1-tot0))
	}
	return pt, nil
}

// growthWorkers: row 1a's workload on 1, 2, 4, 8 and 16 workers, each
// count beside Python's Pool with as many (rows 10a-10e).
func (h *harness) growthWorkers(reps int) ([]Row, error) {
	counts := []int{1, 2, 4, 8, 16}
	n := h.size(20_000, 200)
	var rows []Row
	var peak float64
	peakAt := 0
	figs := make([]fig, len(counts))
	pys := make([]fig, len(counts))
	cores := make([]string, len(counts))
	for i, w := range counts {
		var rates, parent, machine []float64
		for range reps {
			pt, err := h.applyAsyncCPU(w, n)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", plural(w, "worker"), err)
			}
			rates, parent = append(rates, pt.rate), append(parent, pt.parent)
			if !math.IsNaN(pt.machine) { // a run shorter than a clock tick has none
				machine = append(machine, pt.machine)
			}
		}
		cores[i] = fmt.Sprintf("the harness (the pool's parent) used %s cores, the whole machine (its workers, and any other load) %s of %d", f2(median(parent)), naOr(median(machine), f2), runtime.NumCPU())
		h.logf("poold ApplyAsync x%d then Get all, %s: %s tasks/s; %s", n, plural(w, "worker"), spread(rates, commas), cores[i])
		py, err := h.pyRateOn("apply_async", "process", fmt.Sprintf("Python Pool(%d) apply_async x%d then get all", w, n), w, n, reps)
		if err != nil {
			return nil, err
		}
		figs[i], pys[i] = newFig(median(rates), fmtRate), py
		if figs[i].v > peak {
			peak, peakAt = figs[i].v, w
		}
	}
	for i, w := range counts {
		note := cores[i]
		if i == 0 {
			note = fmt.Sprintf("row 1a's workload (%d trivial tasks, ApplyAsync one at a time, then Get all; a fresh pool per rep, warmed up) on 1-16 worker processes, beside Python's fork Pool(N) doing the same; this machine has %d CPUs (GOMAXPROCS %d). poold peaks at %s (%s/s); at 16: %.0f %% of that peak. While it ran, %s",
				n, runtime.NumCPU(), runtime.GOMAXPROCS(0), plural(peakAt, "worker"), commas(peak), 100*figs[len(figs)-1].v/peak, cores[i])
		}
		rows = append(rows, mkRow(growthID(i), "growth: "+plural(w, "worker")+", tasks/s", figs[i], fmt.Sprintf("Python Pool(%d)", w), pys[i], nil, note))
	}
	return rows, nil
}

// sizeRate echoes n arguments of size bytes through a fresh pool of 2,
// keeping sizeWindow submitted and not gathered: MB/s of arguments (each
// also comes back as the result), and tasks/s.
func (h *harness) sizeRate(size, n int) (mbs, rate float64, err error) {
	p, ctx, done, err := h.poolFor(2)
	if err != nil {
		return 0, 0, err
	}
	defer done()
	payload := bytes.Repeat([]byte{7}, size)
	enc, err := msgpack.Marshal(map[string][]byte{"value": payload})
	if err != nil {
		return 0, 0, err
	}
	args := poold.Raw(enc)
	var ring [sizeWindow]*poold.AsyncResult[poold.Raw]
	gather := func(a *poold.AsyncResult[poold.Raw]) error {
		r, err := a.Get(ctx)
		if err != nil {
			return err
		}
		if v := r.Value; len(v) < size || !bytes.Equal(v[len(v)-size:], payload) {
			return fmt.Errorf("echo of %d bytes: %d bytes back", size, len(v))
		}
		return nil
	}
	t0 := time.Now()
	for i := range n {
		if a := ring[i%sizeWindow]; a != nil {
			if err := gather(a); err != nil {
				return 0, 0, err
			}
		}
		if ring[i%sizeWindow], err = p.ApplyAsync("echo", args); err != nil {
			return 0, 0, err
		}
	}
	for i := n; i < n+sizeWindow; i++ {
		if a := ring[i%sizeWindow]; a != nil {
			if err := gather(a); err != nil {
				return 0, 0, err
			}
		}
	}
	dt := time.Since(t0).Seconds()
	return float64(n) * float64(size) / dt / 1e6, float64(n) / dt, nil
}

// growthSizes: echo of 16 B to 1 MiB on 2 workers, MB/s beside the bare
// pipe's for frames of the same size (rows 10f-10j).
func (h *harness) growthSizes(reps int) ([]Row, error) {
	sizes := []int{16, 256, 4 << 10, 64 << 10, 1 << 20}
	var rows []Row
	var fixedUS, bigMBs float64 // per-task cost at the smallest size, MB/s at the largest
	type point struct {
		n                    int
		mbs, rate, pipe, ppr float64
	}
	pts := make([]point, len(sizes))
	for i, s := range sizes {
		n := max(h.size(64, 4), min(h.size(20_000, 100), h.size(32<<20, 256<<10)/s))
		var mbs, rates []float64
		for range reps {
			m, r, err := h.sizeRate(s, n)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", fmtSize(s), err)
			}
			mbs, rates = append(mbs, m), append(rates, r)
		}
		per := max(1, n/2)
		pp, err := pingPongSized(nil, 2, 16, per, max(1, per/10), reps, false, true, s)
		if err != nil {
			return nil, fmt.Errorf("ping-pong of %s: %w", fmtSize(s), err)
		}
		pts[i] = point{n, median(mbs), median(rates), pp.rate * float64(s) / 1e6, pp.rate}
		h.logf("poold echo of %s x%d, 2 workers, %d submitted at most: %s MB/s, %s tasks/s; msgpack ping-pong of %s, 2 children, 16 in flight each: %s MB/s",
			fmtSize(s), n, sizeWindow, spread(mbs, f1), spread(rates, commas), fmtSize(s), f1(pts[i].pipe))
	}
	fixedUS, bigMBs = 1e6/pts[0].rate, pts[len(pts)-1].mbs
	knee := fixedUS * bigMBs // bytes: where the fixed cost equals the copying time
	for i, s := range sizes {
		note := fmt.Sprintf("%d tasks, %s tasks/s; pipe: %s round trips/s", pts[i].n, commas(pts[i].rate), commas(pts[i].ppr))
		if i == 0 {
			note = fmt.Sprintf("the built-in echo of a %s binary value (arguments as poold.Raw, the result compared byte for byte), %d tasks on 2 workers with at most %d submitted and not gathered, a fresh pool per rep; MB/s = the arguments' bytes ÷ time (as many come back). "+
				"Pipe: 2 ping-pong children (the harness, no poold) echoing msgpack frames with arguments of the same size, 16 in flight to each (the pool's MaxWindow), each reply written alone (row 1d's). "+
				"A task costs a fixed %s µs at 16 B and the bytes go at %s MB/s at 1 MiB: the two are equal near %s, the knee, below which the fixed cost rules; %s tasks/s",
				fmtSize(s), pts[i].n, sizeWindow, f1(fixedUS), commas(bigMBs), fmtSize(roundSize(knee)), commas(pts[i].rate))
		}
		rows = append(rows, mkRow(growthID(5+i), "growth: "+fmtSize(s)+" echo, MB/s", newFig(pts[i].mbs, fmtMBs), "bare pipe, "+fmtSize(s)+" frames", newFig(pts[i].pipe, fmtMBs), nil, note))
	}
	return rows, nil
}

// roundSize rounds b to a power of two (at least 1), for the notes.
func roundSize(b float64) int {
	if math.IsNaN(b) || b < 1 {
		return 1
	}
	return 1 << int(math.Round(math.Log2(b)))
}

// growthQueued: parent memory per queued task, N ApplyAsync of a task that
// does not end, beside Python's apply_async of the same (rows 10k-10m).
func (h *harness) growthQueued() ([]Row, error) {
	counts := []int{h.size(10_000, 500), h.size(100_000, 1_000), h.size(1_000_000, 2_000)}
	reps := h.nreps(1)
	var rows []Row
	for i, n := range counts {
		var rss, heap, sys, submit []float64
		for range reps {
			rep, err := h.queueRun(n)
			if err != nil {
				return nil, err
			}
			rss = append(rss, perTask(rep.RSS0, rep.RSS1, n))
			heap = append(heap, perTask(rep.HeapInuse0, rep.HeapInuse1, n))
			sys = append(sys, perTask(rep.Sys0, rep.Sys1, n))
			submit = append(submit, float64(n)/rep.SubmitSecs)
			if rep.RSS0 <= 0 { // no /proc: the runtime's own count stands in
				rss[len(rss)-1] = sys[len(sys)-1]
			}
		}
		h.logf("poold %d ApplyAsync queued: RSS %s B, HeapInuse %s B, Sys %s B a task; submitted at %s tasks/s",
			n, spread(rss, commas), spread(heap, commas), spread(sys, commas), spread(submit, commas))
		pyFig := naFig
		pyNote := ""
		var py struct {
			Per   []*float64 `json:"bytes_per_task"`
			Rates []float64  `json:"submit_rates"`
		}
		ok, err := h.pyRun(&py, "queued", "--procs", "2", "--n", strconv.Itoa(n), "--reps", strconv.Itoa(reps))
		if err != nil {
			return nil, err
		}
		if ok && !slices.Contains(py.Per, nil) {
			var per []float64
			for _, x := range py.Per {
				per = append(per, *x)
			}
			pyFig = newFig(median(per), fmtBytes)
			h.logf("Python %d apply_async queued: RSS %s B a task; submitted at %s tasks/s", n, spread(per, commas), spread(py.Rates, commas))
			pyNote = fmt.Sprintf("; Python submits at %s/s", commas(median(py.Rates)))
		}
		note := fmt.Sprintf("HeapInuse %s B, Sys %s B a task; submitted at %s/s%s", commas(median(heap)), commas(median(sys)), commas(median(submit)), pyNote)
		if i == 0 {
			note = fmt.Sprintf("a fresh child of the harness: poold.New with 2 workers, then N ApplyAsync of the built-in sleep for 3,600 s, each AsyncResult kept (the workers hold a few, the parent queues the rest); "+
				"figure: the growth of its VmRSS from before the submissions to after, each read after debug.FreeOSMemory (a collection that returns what it can to the OS), ÷ N; then Terminate. "+
				"Python: the same with fork Pool(2), apply_async(time.sleep, (3600,)) N times, the ApplyResults kept, RSS from /proc/self/statm around it after gc.collect(); %s each. Here: %s",
				plural(reps, "run"), note)
		}
		rows = append(rows, mkRow(growthID(10+i), "growth: "+commas(float64(n))+" queued, B/task", newFig(median(rss), fmtBytes), "Python apply_async", pyFig, nil, note))
	}
	return rows, nil
}
