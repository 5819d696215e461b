package integration_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/poold/poold/internal/slurmtest"
)

// TestSrunSlurm: workers started through a real one-node Slurm cluster,
// with --worker-cmd 'srun -N1 -n1 --input=all -u poold worker' (-u: without
// it slurmstepd holds a task's output back until a newline, which binary
// frames lack). Every result comes from a worker srun started, and a task
// that kills its worker fails alone, with worker_lost.
func TestSrunSlurm(t *testing.T) {
	t.Parallel()
	c := slurmtest.Start(t)
	launcherRun(t, t.TempDir(), runOpts{env: c.Env(), timeout: 120 * time.Second},
		fmt.Sprintf("%s -N1 -n1 --input=all -u %s worker", c.Srun(), pooldBin), "srun")
}
