package integration_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The tests of poold compare. Those that weigh timings are not parallel:
// they run before the parallel tests, on a machine this binary keeps
// otherwise quiet. They do not assert timings, only that the verdict's
// words follow from the figures it reports, by the rules it states.

// compareReport is poold compare --json, every documented field; decoding
// refuses any other.
type compareReport struct {
	File   string `json:"file"`
	Tasks  int    `json:"tasks"`
	CPUs   int    `json:"cpus"`
	Reps   int    `json:"reps"`
	Counts []struct {
		N         int          `json:"n"`
		Workers   int          `json:"workers"`
		Processes *compareSide `json:"processes"`
		Threads   *compareSide `json:"threads"`
		Verdict   struct {
			Faster      string  `json:"faster"`
			Ratio       float64 `json:"ratio"`
			WithinNoise bool    `json:"within_noise"`
			Work        string  `json:"work"`
			Utilisation float64 `json:"utilisation"`
			JudgedOn    string  `json:"judged_on"`
			Isolation   *struct {
				WallMS         float64 `json:"wall_ms"`
				CPUMS          float64 `json:"cpu_ms"`
				CPUWithinNoise bool    `json:"cpu_within_noise"`
				MemoryBytes    int64   `json:"memory_bytes"`
			} `json:"isolation"`
			Keep string `json:"keep"`
			Text string `json:"text"`
		} `json:"verdict"`
	} `json:"counts"`
	Fastest         string `json:"fastest"`
	Interrupted     string `json:"interrupted"`
	ExitStatus      int    `json:"exit_status"`
	NoiseRule       string `json:"noise_rule"`
	UtilisationRule string `json:"utilisation_rule"`
}

type compareSide struct {
	Runs           int            `json:"runs"`
	WallMS         float64        `json:"wall_ms"`
	WallMinMS      float64        `json:"wall_min_ms"`
	WallMaxMS      float64        `json:"wall_max_ms"`
	CPUMS          float64        `json:"cpu_ms"`
	UserMS         float64        `json:"user_ms"`
	SysMS          float64        `json:"sys_ms"`
	ParentCPUMS    *float64       `json:"parent_cpu_ms"`
	ChildrenCPUMS  *float64       `json:"children_cpu_ms"`
	Utilisation    float64        `json:"utilisation"`
	ParentPeak     int64          `json:"parent_peak_bytes"`
	ChildPeak      int64          `json:"child_peak_bytes"`
	TotalPeak      int64          `json:"total_peak_bytes"`
	MemorySampled  bool           `json:"memory_sampled"`
	TasksPerSecond float64        `json:"tasks_per_second"`
	Results        int            `json:"results"`
	OK             int            `json:"ok"`
	Failed         int            `json:"failed"`
	Failures       map[string]int `json:"failures"`
	Lost           *struct {
		How        string   `json:"how"`
		Signal     string   `json:"signal"`
		ExitStatus *int     `json:"exit_status"`
		Results    int      `json:"results"`
		Tasks      int      `json:"tasks"`
		Stderr     []string `json:"stderr"`
	} `json:"lost"`
}

// runCompare runs poold compare --json with args and decodes its report.
func runCompare(t *testing.T, args ...string) (*runResult, *compareReport) {
	t.Helper()
	r := runPoold(t, runOpts{timeout: 2 * time.Minute}, append([]string{"compare", "--json"}, args...)...)
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	dec.DisallowUnknownFields()
	var rep compareReport
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("poold compare --json: %v; exit status %d, stdout:\n%s\nstderr:\n%s", err, r.Code, r.Stdout, r.Stderr)
	}
	if rep.ExitStatus != r.Code {
		t.Errorf("the report says exit status %d, poold exited with %d", rep.ExitStatus, r.Code)
	}
	if rep.NoiseRule == "" || rep.UtilisationRule == "" || rep.CPUs != runtime.NumCPU() || len(rep.Counts) == 0 {
		t.Errorf("report without its rules, CPUs or counts: %+v", rep)
	}
	checkNoProcs(t, r.Tag, 2*time.Second)
	return r, &rep
}

// sleepTasks is a task file of n sleep tasks of d seconds, and extra.
func sleepTasks(n int, d float64, extra ...string) []string {
	var tasks []string
	for i := range n {
		tasks = append(tasks, fmt.Sprintf(`{"id": "s%d", "func": "sleep", "args": {"seconds": %g}}`, i, d))
	}
	return append(tasks, extra...)
}

func taskFile(t *testing.T, entries []string) string {
	return writeFile(t, "tasks.json", "[\n"+strings.Join(entries, ",\n")+"\n]\n")
}

// checkVerdict checks that a verdict follows from the figures beside it
// by the rules compare states: which mode was faster, whether that is
// within noise, the utilisation and the class of the work, and the words.
func checkVerdict(t *testing.T, rep *compareReport, i int) {
	t.Helper()
	c := rep.Counts[i]
	p, th, v := c.Processes, c.Threads, c.Verdict
	for name, s := range map[string]*compareSide{"processes": p, "threads": th} {
		want := s.CPUMS / (s.WallMS * float64(max(1, min(c.Workers, rep.CPUs))))
		if diff := s.Utilisation - want; diff > 1e-9 || diff < -1e-9 {
			t.Errorf("%s: utilisation %v, but cpu_ms %v ÷ (wall_ms %v × min(%d workers, %d CPUs)) = %v", name, s.Utilisation, s.CPUMS, s.WallMS, c.Workers, rep.CPUs, want)
		}
		if s.WallMinMS > s.WallMS || s.WallMS > s.WallMaxMS {
			t.Errorf("%s: median %v ms outside the range %v–%v", name, s.WallMS, s.WallMinMS, s.WallMaxMS)
		}
		if s.UserMS+s.SysMS-s.CPUMS > 1e-6 || s.CPUMS-s.UserMS-s.SysMS > 1e-6 {
			t.Errorf("%s: cpu_ms %v is not user_ms %v + sys_ms %v", name, s.CPUMS, s.UserMS, s.SysMS)
		}
	}
	faster, slowMS, fastMS := "threads", p.WallMS, th.WallMS
	if p.WallMS < th.WallMS {
		faster, slowMS, fastMS = "processes", th.WallMS, p.WallMS
	}
	ratio := slowMS / fastMS
	overlap := p.Runs >= 2 && th.Runs >= 2 && p.WallMinMS <= th.WallMaxMS && th.WallMinMS <= p.WallMaxMS
	noise := ratio-1 < 0.05 || overlap
	if v.Faster != faster || v.WithinNoise != noise || fmt.Sprintf("%.3f", v.Ratio) != fmt.Sprintf("%.3f", ratio) {
		t.Errorf("verdict: faster %q, ratio %.3f, within noise %v; the figures (processes %.1f ms %.1f–%.1f, threads %.1f ms %.1f–%.1f) say %q, %.3f, %v",
			v.Faster, v.Ratio, v.WithinNoise, p.WallMS, p.WallMinMS, p.WallMaxMS, th.WallMS, th.WallMinMS, th.WallMaxMS, faster, ratio, noise)
	}
	if v.JudgedOn != "threads" || v.Utilisation != th.Utilisation {
		t.Errorf("the work is judged on %q at %v, want threads at %v", v.JudgedOn, v.Utilisation, th.Utilisation)
	}
	work := "mixed"
	switch {
	case v.Utilisation >= 0.5:
		work = "cpu-bound"
	case v.Utilisation < 0.2:
		work = "waiting"
	}
	if v.Work != work {
		t.Errorf("work %q at utilisation %.2f, want %q", v.Work, v.Utilisation, work)
	}
	speed := fmt.Sprintf("%s was faster: %.2f×", strings.ToUpper(faster[:1])+faster[1:], ratio)
	keep := faster
	if noise {
		speed, keep = "Neither mode was faster beyond noise", "processes"
	}
	words := map[string]string{"cpu-bound": "The work was CPU-bound", "waiting": "The work was waiting", "mixed": "The work was mixed"}[work]
	for _, w := range []string{speed, words, fmt.Sprintf("%.0f%%", 100*v.Utilisation), "Keep " + keep + ":", "Isolation cost "} {
		if !strings.Contains(v.Text, w) {
			t.Errorf("the verdict does not say %q:\n%s", w, v.Text)
		}
	}
	if v.Keep != keep {
		t.Errorf("keep %q, want %q", v.Keep, keep)
	}
	if v.Isolation == nil || fmt.Sprintf("%.3f", v.Isolation.WallMS) != fmt.Sprintf("%.3f", p.WallMS-th.WallMS) {
		t.Errorf("isolation %+v, want wall_ms %.3f", v.Isolation, p.WallMS-th.WallMS)
	}
}

// TestCompareCPUBound: CPU-bound tasks on as many workers as CPUs. The
// processes' CPU time includes their workers' (wait4 counts the processes
// a process waited for, and the pool waits for its workers), and the
// verdict follows from the figures.
func TestCompareCPUBound(t *testing.T) {
	var tasks []string
	for i := range 8 {
		tasks = append(tasks, fmt.Sprintf(`{"id": "p%d", "func": "primes", "args": {"n": 300000}}`, i))
	}
	r, rep := runCompare(t, "-n", "2", "--reps", "3", taskFile(t, tasks))
	if r.Code != 0 {
		t.Fatalf("exit status %d, want 0; stderr:\n%s", r.Code, r.Stderr)
	}
	c := rep.Counts[0]
	p, th := c.Processes, c.Threads
	if c.N != 2 || c.Workers != 2 || p.Runs != 3 || th.Runs != 3 || p.OK != 8 || th.OK != 8 {
		t.Errorf("n %d, %d workers, runs %d and %d, ok %d and %d; want 2, 2, 3, 3, 8, 8", c.N, c.Workers, p.Runs, th.Runs, p.OK, th.OK)
	}
	// The primes ran in the workers: their CPU time is the processes'.
	if p.ChildrenCPUMS == nil || p.ParentCPUMS == nil || *p.ChildrenCPUMS < 0.5*th.CPUMS || *p.ChildrenCPUMS < 4**p.ParentCPUMS {
		t.Errorf("processes: CPU %v ms, of which workers %v and poold %v; threads %v: the workers' time is not counted",
			p.CPUMS, p.ChildrenCPUMS, p.ParentCPUMS, th.CPUMS)
	}
	if th.ChildrenCPUMS == nil || *th.ChildrenCPUMS != 0 || th.ChildPeak != 0 {
		t.Errorf("threads: children's CPU %v ms, largest child %d bytes; want none", th.ChildrenCPUMS, th.ChildPeak)
	}
	if p.ParentPeak <= 0 || p.ChildPeak <= 0 || th.ParentPeak <= 0 || !p.MemorySampled || p.TotalPeak < p.ParentPeak+p.ChildPeak {
		t.Errorf("memory: processes poold %d, largest worker %d, all %d; threads %d", p.ParentPeak, p.ChildPeak, p.TotalPeak, th.ParentPeak)
	}
	checkVerdict(t, rep, 0)
	// Pure Go arithmetic keeps its workers busy; another load on the
	// machine can take CPUs from it, not make it wait.
	if v := c.Verdict; v.Work == "waiting" {
		t.Errorf("the work is judged waiting at %.0f%%:\n%s", 100*v.Utilisation, v.Text)
	} else if v.Work != "cpu-bound" {
		t.Logf("judged %s at %.0f%%: is the machine busy with something else?", v.Work, 100*v.Utilisation)
	}
}

// TestCompareWaiting: sleep tasks on many more workers than CPUs. The work
// waits, and threads, which start no processes, are not slower.
func TestCompareWaiting(t *testing.T) {
	r, rep := runCompare(t, "-n", "64", "--reps", "2", taskFile(t, sleepTasks(128, 0.2)))
	if r.Code != 0 {
		t.Fatalf("exit status %d, want 0; stderr:\n%s", r.Code, r.Stderr)
	}
	c := rep.Counts[0]
	if c.Workers != 64 || c.Processes.OK != 128 || c.Threads.OK != 128 {
		t.Errorf("%d workers, ok %d and %d; want 64, 128, 128", c.Workers, c.Processes.OK, c.Threads.OK)
	}
	checkVerdict(t, rep, 0)
	v := c.Verdict
	if v.Work != "waiting" {
		t.Errorf("work %q, want waiting:\n%s", v.Work, v.Text)
	}
	if v.Faster == "processes" && !v.WithinNoise {
		t.Errorf("processes faster beyond noise:\n%s", v.Text)
	}
	if !strings.Contains(v.Text, "64 worker processes") {
		t.Errorf("the isolation's memory does not count the 64 workers:\n%s", v.Text)
	}
}

// TestCompareLostProcess: a task that segfaults takes the threads run's
// process, which is reported as lost, with the results it printed first,
// and not run again; the processes runs fail that one task with kind
// worker_lost, and report in full. Compare exits 1.
func TestCompareLostProcess(t *testing.T) {
	crash := `{"id": "boom", "func": "crash", "args": {"mode": "segfault"}}`
	file := taskFile(t, append(sleepTasks(4, 0.05), crash, `{"id": "late", "func": "sleep", "args": {"seconds": 0.3}}`, `{"id": "e", "func": "echo", "args": {"value": 1}}`))
	r, rep := runCompare(t, "-n", "2", "--reps", "2", file)
	if r.Code != 1 {
		t.Errorf("exit status %d, want 1; stderr:\n%s", r.Code, r.Stderr)
	}
	c := rep.Counts[0]
	p, th := c.Processes, c.Threads
	if p.Runs != 2 || p.Lost != nil || p.OK != 6 || p.Failed != 1 || p.Failures["worker_lost"] != 1 || len(p.Failures) != 1 {
		t.Errorf("processes: %d runs, lost %+v, %d ok, %d failed %v; want 2 runs to their end, 6 ok and 1 worker_lost", p.Runs, p.Lost, p.OK, p.Failed, p.Failures)
	}
	if th.Lost == nil || th.Runs != 0 {
		t.Fatalf("threads: %d runs to their end, lost %+v; want one run, lost", th.Runs, th.Lost)
	}
	if th.Lost.Signal != "SIGSEGV" || th.Lost.How != "signal SIGSEGV" || th.Lost.Tasks != 7 || th.Lost.Results != th.Results || th.Results >= 7 || th.ParentCPUMS != nil {
		t.Errorf("threads lost %+v after %d results; want SIGSEGV, before 7, and no usage report", th.Lost, th.Results)
	}
	if !slicesContain(th.Lost.Stderr, "poold crash task: mode segfault") {
		t.Errorf("the lost run's stderr lacks the crash task's line: %q", th.Lost.Stderr)
	}
	v := c.Verdict
	if v.Faster != "" || v.Keep != "processes" || v.JudgedOn != "processes" || v.Isolation != nil ||
		!strings.Contains(v.Text, "threads lost its process (signal SIGSEGV after ") || !strings.Contains(v.Text, "Keep processes") {
		t.Errorf("verdict %+v", v)
	}

	// The table says the same.
	r = runPoold(t, runOpts{timeout: time.Minute}, "compare", "-n", "2", "--reps", "1", file)
	want := regexp.MustCompile(`(?m)^  threads: lost its process: signal SIGSEGV after \d of 7 results$`)
	if r.Code != 1 || !want.MatchString(r.Stdout) || !strings.Contains(r.Stdout, "worker_lost 1") || !strings.Contains(r.Stdout, "LOST: signal SIGSEGV") {
		t.Errorf("exit status %d; stdout:\n%s", r.Code, r.Stdout)
	}
	checkNoProcs(t, r.Tag, 2*time.Second)
}

func slicesContain(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// TestCompareRefuses: exec tasks without --yes, and the flags that cannot
// hold in threads mode, are usage errors: nothing runs.
func TestCompareRefuses(t *testing.T) {
	t.Parallel()
	execFile := taskFile(t, []string{`{"id": "mk", "func": "exec", "args": {"argv": ["touch", "x"]}}`})
	r := runPoold(t, runOpts{}, "compare", execFile)
	checkUsage(t, r, []string{"1 exec task", `"mk"`, "6 times", "--yes"})
	r = runPoold(t, runOpts{stdin: `{"map": "exec", "args": [{"argv": ["true"]}, {"argv": ["true"]}]}` + "\n"}, "compare", "--jsonl", "-n", "1,2", "-")
	checkUsage(t, r, []string{"2 exec tasks", "12 times", "--yes"})

	file := taskFile(t, sleepTasks(1, 0))
	for flag, why := range map[string]string{
		"--max-worker-memory=1G":    "cannot hold in threads mode",
		"--max-tasks-per-worker=2":  "no meaning in threads mode",
		"--worker-cmd=" + workerBin: "--worker-cmd",
		"--mode=threads":            "compare runs both modes",
		"-q":                        "-q",
		"--reps=0":                  "--reps must be at least 1",
		"-n=2,x":                    "-n must be",
		"--timeout=-1s":             "--timeout must not be negative",
	} {
		r := runPoold(t, runOpts{}, "compare", flag, file)
		checkUsage(t, r, []string{why, "poold compare -h"})
	}
}

// TestCompareHelp: compare is in poold's usage and help, and has its own.
func TestCompareHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"help"}} {
		r := runPoold(t, runOpts{}, args...)
		if r.Code != 0 || !strings.Contains(r.Stdout, "poold compare [flags] TASKFILE") || !strings.Contains(r.Stdout, "'poold compare -h'") {
			t.Errorf("poold %s does not mention poold compare:\n%s", args, r.Stdout)
		}
	}
	for _, args := range [][]string{{"compare", "-h"}, {"help", "compare"}} {
		r := runPoold(t, runOpts{}, args...)
		for _, w := range []string{"usage: poold compare", "exec tasks unless", "--yes", "Noise: ", "Utilisation: ", "min(workers, CPUs)", "--json prints one object", "within_noise", "-reps R"} {
			if r.Code != 0 || !strings.Contains(r.Stdout, w) {
				t.Errorf("poold %s: exit status %d, no %q:\n%s", args, r.Code, w, r.Stdout)
			}
		}
	}
}

// TestUsageReport: with POOLD_USAGE_FD, poold writes its getrusage and
// its own peak memory there at exit, after reaping its workers, whose CPU
// time its children's figures then hold.
func TestUsageReport(t *testing.T) {
	t.Parallel()
	var tasks []string
	for i := range 4 {
		tasks = append(tasks, fmt.Sprintf(`{"id": "p%d", "func": "primes", "args": {"n": 200000}}`, i))
	}
	u, raw, stderr := runWithUsage(t, "-n", "2", "-q", taskFile(t, tasks))
	for _, k := range []string{"status", "user_ms", "sys_ms", "maxrss_bytes", "peak_bytes", "children_user_ms", "children_sys_ms", "children_maxrss_bytes"} {
		if _, ok := u[k]; !ok {
			t.Errorf("the usage report has no %q: %s", k, raw)
		}
	}
	if u["status"] != 0 || u["children_user_ms"] < 2*u["user_ms"] || u["peak_bytes"] <= 0 {
		t.Errorf("usage report %s: want status 0, most CPU time in the workers, a peak", raw)
	}
	if strings.Contains(stderr, "POOLD_USAGE_FD") {
		t.Errorf("stderr:\n%s", stderr)
	}
}
