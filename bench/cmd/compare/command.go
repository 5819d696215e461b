package main

// (9) the poold command as a whole process, `poold -n 2 --json FILE >
// /dev/null`, over echo tasks in a JSON array and in JSON Lines, beside the
// same job done through the Go API (a program of its own, and in the
// harness) and beside a Python script that does it with
// multiprocessing.Pool(2); and, for a file of 1,000,000 entries, poold's
// own peak RSS and its time against the same tasks as JSON Lines.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/poold/poold"
	"github.com/poold/poold/bench"
)

// bigBudget bounds the time spent repeating the runs of 1,000,000 tasks.
const bigBudget = 2 * time.Minute

// cmdRows are the workload's rows, n/a with note when it cannot run.
func cmdRows(big int, note string) []Row {
	na := func(id, what, label string) Row { return mkRow(id, what, naFig, label, naFig, nil, note) }
	return []Row{
		na("9a", "command, JSON array, tasks/s", "API program, whole process"),
		na("9b", "command, JSON Lines, tasks/s", "API program, JSON Lines"),
		na("9c", "command, JSON array, tasks/s", "Python Pool(2) script"),
		na("9d", "command, JSON Lines, tasks/s", "Python Pool(2) script, JSON Lines"),
		na("9e", "command, peak RSS, "+commas(float64(big))+"-entry array", "cap"),
		na("9f", "command, time, "+commas(float64(big))+"-entry array", "the same as JSON Lines"),
		na("9g", "command, JSON array, tasks/s", "API in the harness, New → last result"),
	}
}

// pooldUsage is the part of poold's usage report (POOLD_USAGE_FD) the
// workload reads.
type pooldUsage struct {
	Status         int     `json:"status"`
	MaxRSS         int64   `json:"maxrss_bytes"`
	Peak           int64   `json:"peak_bytes"` // VmHWM of poold itself (Linux)
	UserMS         float64 `json:"user_ms"`
	SysMS          float64 `json:"sys_ms"`
	ChildrenUserMS float64 `json:"children_user_ms"` // its workers
	ChildrenSysMS  float64 `json:"children_sys_ms"`
}

// cmdRun is one run of the poold command.
type cmdRun struct {
	wall      time.Duration
	peakMiB   float64 // its own peak RSS (ru_maxrss, an upper bound, where the report has no VmHWM)
	cpuUS     float64 // its own CPU time (user + system) per task, µs
	workersUS float64 // its workers' CPU time per task, µs
}

// commandRun runs `poold -n 2 --json FILE > /dev/null` on a file of n
// tasks, with its usage report.
func (h *harness) commandRun(bin, file string, n int) (cmdRun, error) {
	r, err := h.runWhole([]string{bin, "-n", "2", "--json", file}, nil, true)
	if err != nil {
		return cmdRun{}, err
	}
	if err := tasksOK("poold "+filepath.Base(file), r.stderr, n); err != nil {
		return cmdRun{}, err
	}
	var u pooldUsage
	if err := json.Unmarshal(r.usage, &u); err != nil {
		return cmdRun{}, fmt.Errorf("poold %s: usage report %q: %v", filepath.Base(file), r.usage, err)
	}
	peak := u.Peak
	if peak <= 0 {
		peak = u.MaxRSS
	}
	return cmdRun{
		wall: r.wall, peakMiB: float64(peak) / (1 << 20),
		cpuUS: (u.UserMS + u.SysMS) * 1e3 / float64(n), workersUS: (u.ChildrenUserMS + u.ChildrenSysMS) * 1e3 / float64(n),
	}, nil
}

// apiProgRun runs the harness as the apicmd child on file: its wall time.
func (h *harness) apiProgRun(file string, n int) (time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	r, err := h.runWhole([]string{self}, []string{childEnv + "=apicmd", apiFileEnv + "=" + file}, false)
	if err != nil {
		return 0, err
	}
	return r.wall, tasksOK("API program "+filepath.Base(file), r.stderr, n)
}

// pyCmdRun runs cmd_pool.py on file: its wall time.
func (h *harness) pyCmdRun(script, file string, n int) (time.Duration, error) {
	r, err := h.runWhole([]string{h.py.exe, script, file}, nil, false)
	if err != nil {
		return 0, err
	}
	return r.wall, tasksOK("cmd_pool.py "+filepath.Base(file), r.stderr, n)
}

// apiInHarness times n echo tasks through the API in the harness, from
// New (2 workers) to the last result: ApplyAsync each, then Get all.
func (h *harness) apiInHarness(n int) (time.Duration, error) {
	ctx, cancel := h.timeout()
	defer cancel()
	t0 := time.Now()
	p, err := poold.New(h.ctx, poold.WithWorkers(2))
	if err != nil {
		return 0, err
	}
	defer h.stopPool(p)
	rs := make([]*poold.AsyncResult[poold.Raw], n)
	for i := range rs {
		if rs[i], err = p.ApplyAsync("echo", echoArgs{int64(i)}); err != nil {
			return 0, err
		}
	}
	var sum int64
	for _, a := range rs {
		r, err := a.Get(ctx)
		if err != nil {
			return 0, err
		}
		var v int64
		if err := r.Value.Decode(&v); err != nil {
			return 0, err
		}
		sum += v
	}
	dt := time.Since(t0)
	_, err = identRate(sum, n, dt)
	return dt, err
}

func runCommand(h *harness) ([]Row, error) {
	n, big := h.size(100_000, 200), h.size(1_000_000, 2_000)
	bin, err := h.buildPoold()
	if errors.Is(err, exec.ErrNotFound) {
		return cmdRows(big, "skipped: no go command to build the poold command with"), nil
	}
	if err != nil {
		return nil, err
	}
	reps := h.nreps(3)
	file := func(n int, ext string) (string, error) {
		p := filepath.Join(h.tmp, fmt.Sprintf("echo-%d.%s", n, ext))
		return p, writeEchoFile(p, n, ext == "jsonl")
	}
	var files [4]string // n array, n lines, big array, big lines
	for i, f := range []struct {
		n   int
		ext string
	}{{n, "json"}, {n, "jsonl"}, {big, "json"}, {big, "jsonl"}} {
		if files[i], err = file(f.n, f.ext); err != nil {
			return nil, err
		}
	}
	arr, lines := files[0], files[1]
	script := ""
	if h.py != nil {
		script = filepath.Join(h.tmp, "cmd_pool.py")
		if err := os.WriteFile(script, bench.CmdPoolPy, 0o644); err != nil {
			return nil, err
		}
	}
	h.logf("task files: %d echo tasks, %s (JSON array), %s (JSON Lines); %d, %s and %s",
		n, fileMB(arr), fileMB(lines), big, fileMB(files[2]), fileMB(files[3]))

	// A first run of each, not counted (but under -smoke): the page cache,
	// the binaries' first start.
	for _, f := range []string{arr, lines} {
		if h.smoke {
			break
		}
		if _, err := h.commandRun(bin, f, n); err != nil {
			return nil, err
		}
		if _, err := h.apiProgRun(f, n); err != nil {
			return nil, err
		}
	}
	var cmdArr, cmdLines, apiArr, apiLines, inHarness, pyArr, pyLines, peakArr, peakLines []float64
	var cpuArr, cpuLines, wcpuArr, wcpuLines []float64 // µs a task: poold's own, its workers'
	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	for range reps {
		for _, f := range []struct {
			file                   string
			rates, peak, cpu, wcpu *[]float64
		}{{arr, &cmdArr, &peakArr, &cpuArr, &wcpuArr}, {lines, &cmdLines, &peakLines, &cpuLines, &wcpuLines}} {
			r, err := h.commandRun(bin, f.file, n)
			if err != nil {
				return nil, err
			}
			*f.rates, *f.peak = append(*f.rates, rate(r.wall)), append(*f.peak, r.peakMiB)
			*f.cpu, *f.wcpu = append(*f.cpu, r.cpuUS), append(*f.wcpu, r.workersUS)
		}
		for _, f := range []struct {
			file  string
			rates *[]float64
		}{{arr, &apiArr}, {lines, &apiLines}} {
			d, err := h.apiProgRun(f.file, n)
			if err != nil {
				return nil, err
			}
			*f.rates = append(*f.rates, rate(d))
		}
		d, err := h.apiInHarness(n)
		if err != nil {
			return nil, err
		}
		inHarness = append(inHarness, rate(d))
		if h.py == nil {
			continue
		}
		for _, f := range []struct {
			file  string
			rates *[]float64
		}{{arr, &pyArr}, {lines, &pyLines}} {
			d, err := h.pyCmdRun(script, f.file, n)
			if err != nil {
				return nil, err
			}
			*f.rates = append(*f.rates, rate(d))
		}
	}
	h.logf("poold -n 2 --json, %d tasks, whole process: JSON array %s tasks/s (peak RSS %s MiB), JSON Lines %s tasks/s (peak RSS %s MiB)",
		n, spread(cmdArr, commas), spread(peakArr, f1), spread(cmdLines, commas), spread(peakLines, f1))
	h.logf("API program (the harness as apicmd), whole process: JSON array %s tasks/s, JSON Lines %s tasks/s", spread(apiArr, commas), spread(apiLines, commas))
	h.logf("API in the harness, New to the last result: %s tasks/s", spread(inHarness, commas))
	if h.py != nil {
		h.logf("python cmd_pool.py, Pool(2), whole process: JSON array %s tasks/s, JSON Lines %s tasks/s", spread(pyArr, commas), spread(pyLines, commas))
	}

	// The file of 1,000,000 entries, in both forms, interleaved; repeated
	// only while within bigBudget.
	var bigArrS, bigLinesS, bigArrPeak, bigLinesPeak []float64
	t0 := time.Now()
	for i := range reps {
		if el := time.Since(t0); i > 0 && el+el/time.Duration(i) > bigBudget {
			h.logf("%d tasks: %s of each form only, to stay within %v", big, plural(i, "run"), bigBudget)
			break
		}
		r, err := h.commandRun(bin, files[2], big)
		if err != nil {
			return nil, err
		}
		bigArrS, bigArrPeak = append(bigArrS, r.wall.Seconds()), append(bigArrPeak, r.peakMiB)
		if r, err = h.commandRun(bin, files[3], big); err != nil {
			return nil, err
		}
		bigLinesS, bigLinesPeak = append(bigLinesS, r.wall.Seconds()), append(bigLinesPeak, r.peakMiB)
	}
	h.logf("poold -n 2 --json, %d tasks: JSON array %s s, peak RSS %s MiB; JSON Lines %s s, peak RSS %s MiB",
		big, spread(bigArrS, f2), spread(bigArrPeak, f1), spread(bigLinesS, f2), spread(bigLinesPeak, f1))

	pyFig := func(xs []float64) fig {
		if h.py == nil {
			return naFig
		}
		return newFig(median(xs), fmtRate)
	}
	pyNote := "python: `python3 cmd_pool.py FILE > /dev/null` (bench/py/cmd_pool.py: the file read whole (json.load) or a line at a time, fork Pool(2), apply_async(echo, (args,)) for each entry, then get() in the file's order and a json.dumps line per result with the pid that ran it), timed as a whole process, interpreter start-up included"
	if h.py == nil {
		pyNote = "no Python: " + h.pyWhy
	}
	ca, cl := newFig(median(cmdArr), fmtRate), newFig(median(cmdLines), fmtRate)
	const capMiB = 64
	return []Row{
		mkRow("9a", "command, JSON array, tasks/s", ca, "API program, whole process", newFig(median(apiArr), fmtRate), ratioAtLeast(0.7),
			fmt.Sprintf("poold: `poold -n 2 --json FILE > /dev/null`, %d echo tasks {\"id\":\"tN\",\"func\":\"echo\",\"args\":{\"value\":N}} in a JSON array (%s), timed from exec to exit (its own peak RSS %s MiB; its own CPU %s µs a task, its workers' %s µs, from its usage report); "+
				"API program: the harness re-executed as a Go program doing the same job (encoding/json of the whole file into typed entries, poold.New with 2 workers, ApplyAsync of each, Get in the file's order, a JSON line per result with its pid to /dev/null), timed the same way; %s each, interleaved",
				n, fileMB(arr), f1(median(peakArr)), f1(median(cpuArr)), f1(median(wcpuArr)), plural(reps, "run"))),
		mkRow("9b", "command, JSON Lines, tasks/s", cl, "API program, JSON Lines", newFig(median(apiLines), fmtRate), ratioAtLeast(0.7),
			fmt.Sprintf("the same %d tasks as JSON Lines (%s; poold's own peak RSS %s MiB, its own CPU %s µs a task, its workers' %s µs); the API program reads a line at a time with bufio.Scanner and submits each task as it reads it",
				n, fileMB(lines), f1(median(peakLines)), f1(median(cpuLines)), f1(median(wcpuLines)))),
		mkRow("9c", "command, JSON array, tasks/s", ca, "Python Pool(2) script", pyFig(pyArr), ratioAtLeast(20), pyNote),
		mkRow("9d", "command, JSON Lines, tasks/s", cl, "Python Pool(2) script, JSON Lines", pyFig(pyLines), ratioAtLeast(20), ""),
		mkRow("9e", "command, peak RSS, "+commas(float64(big))+"-entry array", newFig(median(bigArrPeak), fmtMiB), "cap", newFig(capMiB, fmtMiB),
			&target{fmt.Sprintf("≤ %d MiB", capMiB), func(p, _ float64) bool { return p <= capMiB }},
			fmt.Sprintf("`poold -n 2 --json FILE > /dev/null` on a JSON array of %d echo tasks (%s): peak_bytes of the usage report poold writes on POOLD_USAGE_FD, its own VmHWM since its exec (not ru_maxrss, which a fork+exec'd child starts at its parent's size); the same tasks as JSON Lines: %s MiB; %s",
				big, fileMB(files[2]), f1(median(bigLinesPeak)), plural(len(bigArrS), "run"))),
		mkRow("9f", "command, time, "+commas(float64(big))+"-entry array", newFig(median(bigArrS), fmtSec), "the same as JSON Lines", newFig(median(bigLinesS), fmtSec), ratioAtMost(1.3),
			fmt.Sprintf("whole process, the JSON array ÷ the same tasks as JSON Lines (%s), interleaved, %s of each (repeated while within %v)", fileMB(files[3]), plural(len(bigArrS), "run"), bigBudget)),
		mkRow("9g", "command, JSON array, tasks/s", ca, "API in the harness, New → last result", newFig(median(inHarness), fmtRate), nil,
			fmt.Sprintf("the same %d echo tasks through the API in the harness's process: poold.New with 2 workers, ApplyAsync of each, Get all, timed from New to the last result; no exec, no file, no output: what the pool costs without the rest of the command", n)),
	}, nil
}

// fileMB is the size of the file name, in MB, for the notes.
func fileMB(name string) string {
	fi, err := os.Stat(name)
	if err != nil {
		return "? MB"
	}
	return fmt.Sprintf("%.1f MB", float64(fi.Size())/1e6)
}

func f2(x float64) string     { return fmt.Sprintf("%.2f", x) }
func fmtSec(x float64) string { return fmt.Sprintf("%.2f s", x) }
