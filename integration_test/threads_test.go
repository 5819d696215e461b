package integration_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The command in threads mode: the workers are goroutines of poold, so
// every result names poold's own pid, and -n can go far past the CPUs.

func TestThreadsSeed(t *testing.T) {
	t.Parallel()
	r := runPoold(t, runOpts{}, "--mode", "threads", "-n", "4", "--json", filepath.Join(rootDir, "examples", "seed.json"))
	if r.Code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	if len(recs) != 5 {
		t.Fatalf("%d results, want 5; stdout:\n%s", len(recs), r.Stdout)
	}
	for id, rec := range recs {
		if !rec.ok() || rec.PID != r.PID || string(rec.Result) != `"`+pow8_20+`"` || rec.MaxRSS != nil {
			t.Errorf("task %s: ok %v, pid %d (poold's is %d), result %s", id, rec.ok(), rec.PID, r.PID, rec.Result)
		}
	}
	if r.Wall < 3500*time.Millisecond || r.Wall > 7*time.Second {
		t.Errorf("wall time %v, want about 4 s", r.Wall)
	}
}

// 1,000 one-second sleeps on 1,000 goroutines: about a second, in one
// process.
func TestThreadsThousandSleeps(t *testing.T) {
	t.Parallel()
	tasks := make([]task, 1000)
	for i := range tasks {
		tasks[i] = task{ID: fmt.Sprintf("nap%d", i), Func: "sleep", Args: map[string]any{"seconds": 1}}
	}
	r := runPoold(t, runOpts{}, "--mode", "threads", "-n", "1000", "--json", writeTasks(t, tasks))
	if r.Code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	pids := map[int]bool{}
	for _, rec := range recs {
		if !rec.ok() {
			t.Errorf("task %s failed: %+v", rec.ID, rec.Error)
		}
		pids[rec.PID] = true
	}
	if len(recs) != 1000 || len(pids) != 1 || !pids[r.PID] {
		t.Errorf("%d results from pids %v; want 1000, all from poold (%d)", len(recs), pids, r.PID)
	}
	if r.Wall > 3*time.Second {
		t.Errorf("1,000 sleeps of 1 s on 1,000 goroutines took %v, want under 3 s", r.Wall)
	}
	checkNoProcs(t, r.Tag, time.Second)
}

// A task's prints do not land among the results on stdout: they go to
// stderr.
func TestThreadsPrints(t *testing.T) {
	t.Parallel()
	file := writeTasks(t, []task{{ID: "p", Func: "print", Args: map[string]any{"text": "hello from a goroutine", "times": 3}}})
	r := runPoold(t, runOpts{}, "--mode", "threads", "-n", "1", "--json", file)
	if r.Code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout) // fails on any line that is not a result
	if len(recs) != 1 || strings.Contains(r.Stdout, "hello from") {
		t.Errorf("stdout:\n%s", r.Stdout)
	}
	if strings.Count(r.Stderr, "hello from a goroutine") != 6 {
		t.Errorf("stderr has %d copies of the line, want 6 (3 printed to each stream):\n%s", strings.Count(r.Stderr, "hello from a goroutine"), r.Stderr)
	}
}

// What cannot hold for goroutines is refused on the command line.
func TestThreadsRefusedFlags(t *testing.T) {
	t.Parallel()
	seed := filepath.Join(rootDir, "examples", "seed.json")
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--max-worker-memory", "1G"}, "--max-worker-memory cannot hold in --mode threads"},
		{[]string{"--max-tasks-per-worker", "5"}, "--max-tasks-per-worker has no meaning in --mode threads"},
		{[]string{"--worker-cmd", "/bin/true"}, "--worker-cmd starts worker processes"},
		{[]string{"--mode", "fibers"}, `--mode must be processes or threads, not "fibers"`},
	} {
		args := append([]string{"--mode", "threads"}, c.flags...)
		r := runPoold(t, runOpts{}, append(args, seed)...)
		if r.Code != 2 || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("poold %s: exit %d, stderr %q; want 2 and %q", strings.Join(args, " "), r.Code, r.Stderr, c.want)
		}
	}
}
