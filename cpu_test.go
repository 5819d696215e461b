package poold_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/poold/poold"
)

// burn spins for ms milliseconds of wall time and returns a checksum.
var burn = poold.Register(reg, "burn", func(_ context.Context, ms int) (int, error) {
	n := 0
	for end := time.Now().Add(time.Duration(ms) * time.Millisecond); time.Now().Before(end); n++ {
		for i := range 1000 {
			n ^= i * n
		}
	}
	return n & 1, nil
})

// TestResultCPU: every verb's results carry the CPU time the worker
// measured: some for a call that spins, next to none for one that sleeps,
// never more than the call's wall time allows; and negative for a call
// that no worker ran.
func TestResultCPU(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(2))
	spun := func(what string, r poold.Result[int], err error) {
		t.Helper()
		if err != nil || r.Err != nil {
			t.Fatalf("%s: %v %v", what, err, r.Err)
		}
		if d := r.Duration(); r.CPU <= 0 || float64(r.CPU) > 1.5*float64(d)+float64(time.Millisecond) {
			t.Errorf("%s: CPU %v for a spin of %v; want more than 0, at most 1.5× the duration", what, r.CPU, d)
		}
	}
	slept := func(what string, r poold.Result[int], err error) {
		t.Helper()
		if err != nil || r.Err != nil {
			t.Fatalf("%s: %v %v", what, err, r.Err)
		}
		if d := r.Duration(); r.CPU < 0 || d < 30*time.Millisecond || r.CPU > d*3/10 {
			t.Errorf("%s: CPU %v for a sleep of %v; want 0 to 30 %%", what, r.CPU, d)
		}
	}

	r, err := burn.Apply(ctx, p, 30)
	spun("Apply", r, err)
	r, err = sleep.Apply(ctx, p, 30)
	slept("Apply", r, err)

	rs, err := burn.Map(ctx, p, []int{30, 30, 30}, poold.ChunkSize(2))
	for _, r := range rs {
		spun("Map", r, err)
	}
	for r, err := range sleep.IMap(ctx, p, slices.Values([]int{30, 30})) {
		slept("IMap", r, err)
	}

	// An argument that does not encode fails without a worker.
	raws, err := p.Map(ctx, "echo", []any{1, poold.Raw{0xc1}})
	if !errors.Is(err, poold.KindEncode) || len(raws) != 2 {
		t.Fatalf("Map with a bad argument: %v, %d results", err, len(raws))
	}
	if raws[0].CPU < 0 || raws[1].CPU >= 0 {
		t.Errorf("CPU %v for a call that ran, %v for one that never did; want ≥ 0 and < 0", raws[0].CPU, raws[1].CPU)
	}
}
