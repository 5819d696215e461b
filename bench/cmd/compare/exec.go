package main

// (6) exec of `true`, 4 at a time: poold's built-in task "exec", a bare Go
// loop, xargs -P4 and GNU parallel.

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poold/poold"
	"github.com/poold/poold/bench"
)

const execConc = 4

// execPoold runs n exec tasks of truePath on a pool of execConc workers, one
// task per frame: jobs/s.
func (h *harness) execPoold(truePath string, n int) (float64, error) {
	p, ctx, done, err := h.poolFor(execConc)
	if err != nil {
		return 0, err
	}
	defer done()
	args := make([]any, n)
	for i := range args {
		args[i] = bench.ExecArgs{Argv: []string{truePath}}
	}
	check := func(rs []poold.Result[poold.Raw]) error {
		for _, r := range rs {
			var res bench.ExecResult
			if err := r.Value.Decode(&res); err != nil {
				return err
			}
			if res.ExitCode != 0 {
				return fmt.Errorf("exec %s: exit code %d %s", truePath, res.ExitCode, res.Signal)
			}
		}
		return nil
	}
	// warm-up: one exec in each worker
	rs, err := p.Map(ctx, "exec", args[:execConc], poold.ChunkSize(1))
	if err == nil {
		err = check(rs)
	}
	if err != nil {
		return 0, fmt.Errorf("warm-up: %w", err)
	}
	t0 := time.Now()
	rs, err = p.Map(ctx, "exec", args, poold.ChunkSize(1))
	dt := time.Since(t0)
	if err == nil {
		err = check(rs)
	}
	if err != nil {
		return 0, err
	}
	return float64(n) / dt.Seconds(), nil
}

// execLoop starts truePath n times from execConc goroutines with os/exec,
// each waiting for its process before starting the next: jobs/s.
func execLoop(ctx context.Context, truePath string, n int) (float64, error) {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	t0 := time.Now()
	for range execConc {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := exec.CommandContext(ctx, truePath).Run(); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	dt := time.Since(t0)
	return float64(n) / dt.Seconds(), firstErr
}

// shellRate times one whole command: jobs/s for n jobs.
func shellRate(ctx context.Context, n int, name string, args ...string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	dt := time.Since(t0)
	if err != nil {
		return 0, fmt.Errorf("%s: %v: %s", name, err, lastLine(string(out)))
	}
	return float64(n) / dt.Seconds(), nil
}

func runExec(h *harness) ([]Row, error) {
	n := h.size(1000, 20)
	reps := h.nreps(3)
	truePath, err := exec.LookPath("true")
	if err != nil {
		return nil, err
	}
	xargsCmd := fmt.Sprintf("seq %d | xargs -P%d -n1 true", n, execConc)
	if _, err := execLoop(h.ctx, truePath, execConc); err != nil { // warm-up
		return nil, err
	}
	var pr, loop, xargs []float64
	for range reps {
		r, err := h.execPoold(truePath, n)
		if err != nil {
			return nil, err
		}
		pr = append(pr, r)
		if r, err = execLoop(h.ctx, truePath, n); err != nil {
			return nil, err
		}
		loop = append(loop, r)
		if r, err = shellRate(h.ctx, n, "sh", "-c", xargsCmd); err != nil {
			return nil, err
		}
		xargs = append(xargs, r)
	}
	h.logf("poold exec %s x%d on %d workers: %s jobs/s", truePath, n, execConc, spread(pr, commas))
	h.logf("Go loop, os/exec %s x%d, %d at a time: %s jobs/s", truePath, n, execConc, spread(loop, commas))
	h.logf("%s: %s jobs/s", xargsCmd, spread(xargs, commas))

	// GNU parallel runs at ~37 jobs/s here: one run only.
	parFig, parNote := naFig, "GNU parallel is not installed (apt-get install parallel): skipped"
	if path, err := exec.LookPath("parallel"); err == nil {
		args := []string{"--will-cite", "-j" + strconv.Itoa(execConc), "true", ":::"}
		for i := range n {
			args = append(args, strconv.Itoa(i+1))
		}
		r, err := shellRate(h.ctx, n, path, args...)
		if err != nil {
			return nil, err
		}
		parFig, parNote = newFig(r, fmtRate), fmt.Sprintf("parallel -j%d true ::: $(seq %d), one run", execConc, n)
		h.logf("GNU parallel -j%d true x%d: %s jobs/s", execConc, n, commas(r))
	}

	pf := newFig(median(pr), fmtRate)
	return []Row{
		mkRow("6a", "exec true, jobs/s", pf, "Go loop, os/exec ×4", newFig(median(loop), fmtRate), ratioAtLeast(0.8),
			fmt.Sprintf("%d execs of %s, %d at a time; poold: built-in task exec, one task per frame; loop: %d goroutines each running exec.Command(true).Run()", n, truePath, execConc, execConc)),
		mkRow("6b", "exec true, jobs/s", pf, "xargs -P4", newFig(median(xargs), fmtRate), nil, xargsCmd+" (whole command)"),
		mkRow("6c", "exec true, jobs/s", pf, "GNU parallel -j4", parFig,
			&target{"far ahead (≥ 2×)", func(_, r float64) bool { return r >= 2 }}, parNote),
	}, nil
}
