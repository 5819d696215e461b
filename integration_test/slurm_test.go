package integration_test

import (
	"fmt"
	"path/filepath"
	"strings"
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
	dir := t.TempDir()
	spy := filepath.Join(dir, "spy")
	tasks := []task{spyTask("spy", spy, 0), {ID: "kill", Func: "crash", Args: map[string]any{"mode": "kill"}}}
	for i := range 20 {
		tasks = append(tasks, echoTask(fmt.Sprintf("e%d", i), i))
	}
	r := runPoold(t, runOpts{env: c.Env(), timeout: 120 * time.Second}, "-n", "2", "--json", "--start-timeout", "60s",
		"--worker-cmd", fmt.Sprintf("%s -N1 -n1 --input=all -u %s worker", c.Srun(), pooldBin), writeTasks(t, tasks))
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1 (one task kills its worker); stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	if len(recs) != len(tasks) {
		t.Fatalf("%d results, want %d", len(recs), len(tasks))
	}
	workerPID, _ := waitSpy(t, spy)
	if rec := recs["spy"]; rec == nil || !rec.ok() || rec.PID != workerPID {
		t.Errorf("spy: %+v; its worker's pid is %d", rec, workerPID)
	}
	for id, rec := range recs {
		switch {
		case id == "kill":
			if rec.ok() || rec.Error.Kind != "worker_lost" || !strings.Contains(rec.Error.Message, "srun") {
				t.Errorf("kill: %+v, want worker_lost, reported through srun", rec.Error)
			}
			t.Logf("kill: %s", rec.Error.Message)
		case !rec.ok():
			t.Errorf("%s failed: %+v", id, rec.Error)
		}
	}
}
