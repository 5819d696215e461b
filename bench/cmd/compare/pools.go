package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/poold/poold"
	"github.com/poold/poold/bench"
)

// newPool starts a poold pool of workers workers and warms it up as the
// Python side does: a map of 4 × workers trivial items, one per task.
func (h *harness) newPool(workers int, opts ...poold.Option) (*poold.Pool, error) {
	p, err := poold.New(h.ctx, append([]poold.Option{poold.WithWorkers(workers)}, opts...)...)
	if err != nil {
		return nil, err
	}
	warm := make([]int64, 4*workers)
	if _, err := bench.Ident.Map(h.ctx, p, warm, poold.ChunkSize(1)); err != nil {
		h.stopPool(p)
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	// As testing.B does before each benchmark: the garbage of the run
	// before is collected, not charged to this one.
	runtime.GC()
	return p, nil
}

// stopPool closes p and waits for its workers to exit, so that they cost
// nothing to what runs next.
func (h *harness) stopPool(p *poold.Pool) {
	p.Close()
	ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
	defer cancel()
	if err := p.Join(ctx); err != nil {
		p.Terminate()
	}
}

// poolFor starts a fresh pool of workers workers (newPool) and a context
// for the workload's operations on it (timeout); done ends the context,
// then stops the pool.
func (h *harness) poolFor(workers int, opts ...poold.Option) (p *poold.Pool, ctx context.Context, done func(), err error) {
	if p, err = h.newPool(workers, opts...); err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := h.timeout()
	return p, ctx, func() { cancel(); h.stopPool(p) }, nil
}

// timeout bounds one poold operation of a workload, so that a hang fails
// the workload instead of the run.
func (h *harness) timeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(h.ctx, 3*time.Minute)
}

// A mode is how the pool runs its workers: as processes (the default, rows
// without a t) or as goroutines of the harness (poold.WithThreads: the rows
// 1t…, 2t…, 3t…, 5t…).
type mode struct {
	name string
	opts []poold.Option
}

var (
	processes = mode{"processes", nil}
	threads   = mode{"threads", []poold.Option{poold.WithThreads(bench.Registry)}}
)

// buildPoold builds the poold command from the module the harness runs in
// into the run's temporary directory, once a run (workloads 8 and 9): its
// path. An error wrapping exec.ErrNotFound: there is no go command.
func (h *harness) buildPoold() (string, error) {
	if h.pooldBin != "" {
		return h.pooldBin, nil
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(h.tmp, "poold")
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Minute)
	out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, "github.com/poold/poold/cmd/poold").CombinedOutput()
	cancel()
	if err != nil {
		return "", fmt.Errorf("go build -o %s github.com/poold/poold/cmd/poold (run the harness inside the module): %v\n%s", bin, err, out)
	}
	h.logf("built %s in %.1f s", bin, time.Since(t0).Seconds())
	h.pooldBin = bin
	return bin, nil
}
