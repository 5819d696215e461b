package main

// (7) parent peak RSS while streaming trivial tasks through IMap. Each size
// runs in a fresh child process of the harness (so that peaks don't mix),
// which reads its own VmHWM from /proc/self/status.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/poold/poold"
	"github.com/poold/poold/bench"
)

const rssNEnv = "POOLD_BENCH_RSS_N"

// rssBudget bounds the time spent repeating one size of workload 7.
const rssBudget = 70 * time.Second

// rssReport is what an RSS child prints.
type rssReport struct {
	N       int     `json:"n"`
	HWMKiB  int64   `json:"vmhwm_kib"` // peak RSS of the whole run
	BaseKiB int64   `json:"base_kib"`  // RSS once the pool was up, before streaming
	Secs    float64 `json:"secs"`      // streaming time
	Workers int     `json:"workers"`
}

// rssChild is the child's side: a pool of 2, IMap of Ident over a lazy
// sequence of n integers, results consumed as they come.
func rssChild() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "rss child:", err)
		return 1
	}
	n, err := strconv.Atoi(os.Getenv(rssNEnv))
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const workers = 2
	p, err := poold.New(ctx, poold.WithWorkers(workers))
	if err != nil {
		return fail(err)
	}
	defer p.Terminate()
	rep := rssReport{N: n, Workers: workers, BaseKiB: procStatusKiB("VmRSS")}
	seq := func(yield func(int64) bool) {
		for i := range int64(n) {
			if !yield(i) {
				return
			}
		}
	}
	var count, sum int64
	t0 := time.Now()
	for r, err := range bench.Ident.IMap(ctx, p, seq) {
		if err != nil {
			return fail(err)
		}
		if r.Value != count {
			return fail(fmt.Errorf("result %d is %d: out of order", count, r.Value))
		}
		sum += r.Value
		count++
	}
	rep.Secs = time.Since(t0).Seconds()
	rep.HWMKiB = procStatusKiB("VmHWM")
	if count != int64(n) || sum != int64(n)*int64(n-1)/2 {
		return fail(fmt.Errorf("%d results summing to %d for %d tasks", count, sum, n))
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return fail(err)
	}
	return 0
}

// procStatusKiB reads a "Key:   123 kB" line of /proc/self/status.
func procStatusKiB(key string) int64 {
	for _, l := range strings.Split(readFile("/proc/self/status"), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			f := strings.Fields(v)
			if len(f) > 0 {
				x, _ := strconv.ParseInt(f[0], 10, 64)
				return x
			}
		}
	}
	return -1
}

// rssRun runs one fresh child for n tasks.
func (h *harness) rssRun(n int) (rssReport, error) {
	var rep rssReport
	self, err := os.Executable()
	if err != nil {
		return rep, err
	}
	ctx, cancel := context.WithTimeout(h.ctx, 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), childEnv+"=rss", rssNEnv+"="+strconv.Itoa(n))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return rep, fmt.Errorf("rss child n=%d: %v: %s", n, err, lastLine(stderr.String()))
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return rep, fmt.Errorf("rss child n=%d: bad output %q: %v", n, out, err)
	}
	if rep.HWMKiB <= 0 {
		return rep, fmt.Errorf("rss child n=%d: no VmHWM in /proc/self/status", n)
	}
	return rep, nil
}

func runRSS(h *harness) ([]Row, error) {
	small, large := h.size(10_000, 1_000), h.size(1_000_000, 10_000)
	reps := h.nreps(3)
	peaks := map[int][]float64{}
	var note string
	for _, n := range []int{small, large} {
		var rates, base []float64
		t0 := time.Now()
		for i := range reps {
			// The large run can take a minute: repeat it only while the
			// workload stays within its time budget.
			if el := time.Since(t0); i > 0 && el+el/time.Duration(i) > rssBudget {
				h.logf("IMap x%d: %d runs only, to stay within %v", n, i, rssBudget)
				break
			}
			rep, err := h.rssRun(n)
			if err != nil {
				return nil, err
			}
			peaks[n] = append(peaks[n], float64(rep.HWMKiB)/1024)
			base = append(base, float64(rep.BaseKiB)/1024)
			rates = append(rates, float64(n)/rep.Secs)
			note = fmt.Sprintf("IMap with its default chunk size and window, %d workers, input from an iter.Seq generator; each run in a fresh child of the harness; peak = VmHWM of that parent process (workers not counted)", rep.Workers)
		}
		h.logf("IMap x%d: parent peak RSS %s MiB (RSS %s MiB once the pool was up), %s tasks/s",
			n, spread(peaks[n], f1), spread(base, f1), spread(rates, commas))
	}
	const capMiB = 64
	big := newFig(median(peaks[large]), fmtMiB)
	label := func(n int) string { return "IMap of " + commas(float64(n)) }
	return []Row{
		mkRow("7a", "peak RSS, "+label(large), big, "cap", newFig(capMiB, fmtMiB),
			&target{fmt.Sprintf("≤ %d MiB", capMiB), func(p, _ float64) bool { return p <= capMiB }}, note),
		mkRow("7b", "peak RSS, "+label(large), big, "peak RSS, "+label(small), newFig(median(peaks[small]), fmtMiB), ratioAtMost(1.25), ""),
	}, nil
}
