package integration_test

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// runSummary is the final {"summary": ...} line of poold --json on stderr.
type runSummary struct {
	Tasks   int     `json:"tasks"`
	WallMS  float64 `json:"wall_ms"`
	Workers []struct {
		Slot   int     `json:"slot"`
		PID    int     `json:"pid"`
		PIDs   int     `json:"pids"`
		Tasks  int     `json:"tasks"`
		BusyMS float64 `json:"busy_ms"`
		Busy   float64 `json:"busy"`
	} `json:"workers"`
	Longest []struct {
		ID         string  `json:"id"`
		Func       string  `json:"func"`
		PID        int     `json:"pid"`
		DurationMS float64 `json:"duration_ms"`
	} `json:"longest"`
	Restarts struct {
		Count  int     `json:"count"`
		LostMS float64 `json:"lost_ms"`
	} `json:"restarts"`
	CPU struct {
		CPUMS   float64  `json:"cpu_ms"`
		TaskMS  float64  `json:"task_ms"`
		Share   *float64 `json:"share"`
		Verdict string   `json:"verdict"`
	} `json:"cpu"`
}

// parseSummary decodes the last line of stderr, which must be the summary
// object.
func parseSummary(t *testing.T, r *runResult) *runSummary {
	t.Helper()
	lines := stderrLines(r)
	if len(lines) == 0 {
		t.Fatal("nothing on stderr")
	}
	var s struct {
		Summary *runSummary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil || s.Summary == nil {
		t.Fatalf("the last stderr line is not {\"summary\": ...} (%v):\n%s", err, r.Stderr)
	}
	return s.Summary
}

// TestSummaryBusyLongestWaiting: 5 sleeps of 1 s on 4 workers. The first
// four run at once, the fifth after one of them on the same worker: that
// worker runs 2 s of the wall time (a little over 2 s), every other 1 s,
// half as much. Each worker's busy time is the sum of its tasks'
// duration_ms, its share that ÷ wall_ms; the longest three are the three
// longest records; sleeping is waiting.
func TestSummaryBusyLongestWaiting(t *testing.T) {
	t.Parallel()
	var tasks []task
	for i := range 5 {
		tasks = append(tasks, task{ID: fmt.Sprintf("nap%d", i), Func: "sleep", Args: map[string]any{"seconds": 1}})
	}
	file := writeTasks(t, tasks)
	r := runPoold(t, runOpts{}, "-n", "4", "--json", file)
	if r.Code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	s := parseSummary(t, r)

	byPID := map[int]float64{}
	for _, rec := range recs {
		byPID[rec.PID] += rec.DurationMS
	}
	if len(s.Workers) != 4 || len(byPID) != 4 {
		t.Fatalf("%d workers in the summary, %d pids in the records; want 4:\n%s", len(s.Workers), len(byPID), r.Stderr)
	}
	twice := 0
	for _, w := range s.Workers {
		if math.Abs(w.BusyMS-byPID[w.PID]) > 0.01 {
			t.Errorf("slot %d (pid %d): busy_ms %v, its records' duration_ms add up to %v", w.Slot, w.PID, w.BusyMS, byPID[w.PID])
		}
		if math.Abs(w.Busy-w.BusyMS/s.WallMS) > 1e-9 {
			t.Errorf("slot %d: busy %v, want busy_ms ÷ wall_ms = %v", w.Slot, w.Busy, w.BusyMS/s.WallMS)
		}
		switch w.Tasks {
		case 2:
			twice++
			// 2 s of a wall time of 2 s and start-up; on a busy machine
			// start-up may take a while.
			if w.Busy < 0.7 || w.Busy > 1 {
				t.Errorf("the worker that ran 2 tasks was busy %.3f of the wall time, want about 1 (0.7 to 1)", w.Busy)
			}
		case 1:
			if w.Busy < 0.35 || w.Busy > 0.52 {
				t.Errorf("slot %d, which ran 1 task, was busy %.3f of the wall time, want about 0.5 (0.35 to 0.52)", w.Slot, w.Busy)
			}
		default:
			t.Errorf("slot %d ran %d tasks, want 1 or 2", w.Slot, w.Tasks)
		}
	}
	if twice != 1 {
		t.Errorf("%d workers ran 2 tasks, want 1", twice)
	}
	// Whatever start-up took, a worker that ran one sleep was busy half as
	// long as the one that ran two.
	var double float64
	for _, w := range s.Workers {
		if w.Tasks == 2 {
			double = w.Busy
		}
	}
	for _, w := range s.Workers {
		if r := w.Busy / double; w.Tasks == 1 && (r < 0.45 || r > 0.55) {
			t.Errorf("slot %d was busy %.3f of the time of the worker that ran 2 tasks, want 0.5 (0.45 to 0.55)", w.Slot, r)
		}
	}

	var durations []float64
	for _, rec := range recs {
		durations = append(durations, rec.DurationMS)
	}
	slices.Sort(durations)
	slices.Reverse(durations)
	if len(s.Longest) != 3 {
		t.Fatalf("%d longest tasks, want 3", len(s.Longest))
	}
	for i, l := range s.Longest {
		rec := recs[l.ID]
		if rec == nil || l.Func != "sleep" || l.PID != rec.PID || math.Abs(l.DurationMS-rec.DurationMS) > 0.001 ||
			math.Abs(l.DurationMS-durations[i]) > 0.001 {
			t.Errorf("longest[%d] %+v; want the record with the %d. longest duration_ms, %v", i, l, i+1, durations[i])
		}
	}

	if s.CPU.Share == nil || *s.CPU.Share >= 0.2 || s.CPU.Verdict != "waiting" || math.Abs(s.CPU.TaskMS-sum(durations)) > 0.01 {
		t.Errorf("cpu %+v (share %v); want waiting, under 0.2, over the task time %v ms", s.CPU, s.CPU.Share, sum(durations))
	}
	if s.Restarts.Count != 0 || s.Restarts.LostMS != 0 {
		t.Errorf("restarts %+v, want none", s.Restarts)
	}
	// The same for people, on stderr before the JSON line.
	for _, re := range []string{
		`(?m)^busy \(task time ÷ wall time\): (pid \d+ \d+ %(, |$)){4}`,
		`(?m)^longest: (nap\d sleep 1(\.\d+)?s \(pid \d+\)(, |$)){3}`,
		`(?m)^CPU: .* of CPU in 5\.\d\ds of task time \(\d %\): waiting \(sleeping, on I/O or on other programs\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.Stderr) {
			t.Errorf("no line matching %s on stderr:\n%s", re, r.Stderr)
		}
	}
	if strings.Contains(r.Stderr, "restarts:") {
		t.Errorf("a restarts line in a run that lost no worker:\n%s", r.Stderr)
	}
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}

// TestSummaryCPUBound: primes on one worker compute all the time they run.
// The text lines come after the counts on stdout, -q included.
func TestSummaryCPUBound(t *testing.T) {
	t.Parallel()
	var tasks []task
	for i := range 3 {
		tasks = append(tasks, task{ID: fmt.Sprintf("p%d", i), Func: "primes", Args: map[string]any{"n": 1000000}})
	}
	file := writeTasks(t, tasks)
	r := runPoold(t, runOpts{}, "-n", "1", "--json", file)
	if r.Code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", r.Code, r.Stderr)
	}
	s := parseSummary(t, r)
	// Other tests share the 2 CPUs: a computing task's wall time grows with
	// the load, its CPU time does not. So the share must be what the
	// records say, and its verdict the one for that share; only "waiting"
	// would be wrong for primes whatever the load.
	var cpu, dur float64
	for _, rec := range parseRecords(t, r.Stdout) {
		if rec.CPUMS == nil {
			t.Fatalf("task %s: cpu_ms unknown", rec.ID)
		}
		cpu += *rec.CPUMS
		dur += rec.DurationMS
	}
	want := map[bool]string{true: "cpu-bound", false: "mixed"}[cpu/dur >= 0.5]
	if s.CPU.Share == nil || math.Abs(*s.CPU.Share-cpu/dur) > 0.01 || s.CPU.Verdict != want || cpu/dur < 0.2 {
		t.Errorf("cpu %+v (share %v); want %.2f (%.0f ms of CPU in %.0f ms of task time) and %s, not waiting", s.CPU, s.CPU.Share, cpu/dur, cpu, dur, want)
	}
	if len(s.Workers) != 1 || s.Workers[0].Tasks != 3 || len(s.Longest) != 3 {
		t.Errorf("workers %+v, longest %+v; want 1 worker with 3 tasks, 3 longest", s.Workers, s.Longest)
	}

	r = runPoold(t, runOpts{}, "-n", "1", "-q", file)
	if r.Code != 0 {
		t.Fatalf("-q: exit status %d; stderr:\n%s", r.Code, r.Stderr)
	}
	re := regexp.MustCompile(`(?m)^3 tasks: 3 ok, 0 failed; .*\nbusy \(task time ÷ wall time\): pid \d+ \d+ %\nlongest: p\d primes .*\nCPU: .*: (CPU-bound|mixed, partly computing and partly waiting)\n\z`)
	if !re.MatchString(r.Stdout) {
		t.Errorf("-q: stdout does not end with the summary's counts, busy, longest and CPU lines:\n%s", r.Stdout)
	}
}

// TestSummaryRestarts: a worker killed under its task on a single slot is
// replaced; the time from the death to the new worker's first task is
// counted as lost.
func TestSummaryRestarts(t *testing.T) {
	t.Parallel()
	file := writeTasks(t, []task{
		{ID: "first", Func: "echo", Args: map[string]any{"value": 1}},
		{ID: "kill", Func: "crash", Args: map[string]any{"mode": "kill"}},
		{ID: "after", Func: "echo", Args: map[string]any{"value": 2}},
	})
	r := runPoold(t, runOpts{}, "-n", "1", "--json", file)
	if r.Code != 1 {
		t.Fatalf("exit status %d, want 1; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	s := parseSummary(t, r)
	if s.Restarts.Count != 1 || s.Restarts.LostMS <= 0 || s.Restarts.LostMS > s.WallMS {
		t.Errorf("restarts %+v (wall %v ms); want 1 and some time lost", s.Restarts, s.WallMS)
	}
	if len(s.Workers) != 1 || s.Workers[0].PIDs != 2 || s.Workers[0].PID != recs["after"].PID {
		t.Errorf("workers %+v; want one slot held by 2 pids, the last %d", s.Workers, recs["after"].PID)
	}
	if !regexp.MustCompile(`(?m)^restarts: 1 worker replaced, \S+ lost `).MatchString(r.Stderr) {
		t.Errorf("no restarts line on stderr:\n%s", r.Stderr)
	}
	if !regexp.MustCompile(`(?m)^busy \(task time ÷ wall time\): slot 0 \d+ %$`).MatchString(r.Stderr) {
		t.Errorf("a replaced worker's slot is not named by number:\n%s", r.Stderr)
	}
}
