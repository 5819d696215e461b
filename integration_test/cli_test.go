package integration_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const pow8_20 = "1152921504606846976"

// TestSeed: the classic demo, 5 tasks that sleep 2 s and return 8**20 on
// 4 workers, takes about 4 s, because the fifth task waits for a free
// worker.
func TestSeed(t *testing.T) {
	t.Parallel()
	seed := filepath.Join(rootDir, "examples", "seed.json")
	check := func(t *testing.T, r *runResult, pids map[int]int, results []string) {
		t.Helper()
		if r.Code != 0 {
			t.Errorf("exit status %d, want 0; stderr:\n%s", r.Code, r.Stderr)
		}
		if len(results) != 5 {
			t.Fatalf("%d results, want 5; stdout:\n%s", len(results), r.Stdout)
		}
		for i, v := range results {
			if v != pow8_20 {
				t.Errorf("result %d is %s, want %s", i, v, pow8_20)
			}
		}
		if len(pids) != 4 {
			t.Errorf("results came from %d distinct worker pids %v, want 4", len(pids), pids)
		}
		for pid := range pids {
			if pid == r.PID || pid == 0 {
				t.Errorf("a result names pid %d; poold's own pid is %d", pid, r.PID)
			}
		}
		// 2 s, then 2 s more for the fifth: not 2 s (a fifth worker, or no
		// sleep), not 10 s (one at a time).
		if r.Wall < 3500*time.Millisecond || r.Wall > 7*time.Second {
			t.Errorf("wall time %v, want about 4 s (3.5 s to 7 s)", r.Wall)
		}
		checkNoProcs(t, r.Tag, time.Second)
	}

	t.Run("text", func(t *testing.T) {
		t.Parallel()
		r := runPoold(t, runOpts{}, "-n", "4", seed)
		header := regexp.MustCompile(`(?m)^poold: 5 tasks on 4 workers \(\d+ CPUs?\), parent pid (\d+)$`).FindStringSubmatch(r.Stdout)
		if header == nil {
			t.Errorf("no header line with the parent pid; stdout:\n%s", r.Stdout)
		} else if header[1] != strconv.Itoa(r.PID) {
			t.Errorf("header names parent pid %s, poold's pid is %d", header[1], r.PID)
		}
		pids := map[int]int{}
		var results []string
		row := regexp.MustCompile(`^\s*(\d+)\s+(\S+)\s+pow\s+ok\s+\S+\s+"(\d+)"\s*$`)
		for _, line := range strings.Split(r.Stdout, "\n") {
			if m := row.FindStringSubmatch(line); m != nil {
				pid, _ := strconv.Atoi(m[1])
				pids[pid]++
				results = append(results, m[3])
			}
		}
		if !regexp.MustCompile(`(?m)^5 tasks: 5 ok, 0 failed; 4 worker pids used, 4 workers started; wall time `).MatchString(r.Stdout) {
			t.Errorf("no summary line saying 5 ok, 4 pids, 4 workers; stdout:\n%s", r.Stdout)
		}
		check(t, r, pids, results)
	})

	t.Run("json", func(t *testing.T) {
		t.Parallel()
		r := runPoold(t, runOpts{}, "-n", "4", "--json", seed)
		recs := parseRecords(t, r.Stdout)
		pids := map[int]int{}
		var results []string
		for _, id := range sortedKeys(recs) {
			rec := recs[id]
			if !rec.ok() {
				t.Errorf("task %s failed: %+v", id, rec.Error)
				continue
			}
			var s string
			if err := json.Unmarshal(rec.Result, &s); err != nil {
				t.Errorf("task %s: result %s is not a JSON string", id, rec.Result)
			}
			results = append(results, s)
			pids[rec.PID]++
			if rec.Attempts != 1 || rec.DurationMS < 1900 || rec.Start == "" || rec.End == "" {
				t.Errorf("task %s: attempts %d, duration %v ms, start %q, end %q; want 1 attempt of about 2000 ms",
					id, rec.Attempts, rec.DurationMS, rec.Start, rec.End)
			}
		}
		if !strings.Contains(r.Stderr, fmt.Sprintf("parent pid %d", r.PID)) {
			t.Errorf("stderr does not name the parent pid %d:\n%s", r.PID, r.Stderr)
		}
		check(t, r, pids, results)
	})
}

// crashCase is one way a task can take its worker down, and how poold must
// report it.
type crashCase struct {
	name     string // of the subtest, if not mode
	mode     string
	code     int      // for mode exit
	timeout  string   // the task's time limit, for mode hang
	flags    []string // extra poold flags
	kind     string
	exitCode int    // when the worker exited by itself (signal == "")
	signal   string // when a signal ended the worker
}

func (c crashCase) args() map[string]any {
	a := map[string]any{"mode": c.mode}
	if c.mode == "exit" {
		a["code"] = c.code
	}
	return a
}

func (c crashCase) task(id string) task {
	return task{ID: id, Func: "crash", Args: c.args(), Timeout: c.timeout}
}

// The crash modes that end a worker on their own: every mode but hang and
// oom, which need a limit to end.
var crashMix = []crashCase{
	{mode: "panic", kind: "panic"},
	{mode: "exit", code: 3, kind: "worker_lost", exitCode: 3},
	{mode: "kill", kind: "worker_lost", signal: "SIGKILL"},
	{mode: "segfault", kind: "worker_lost", signal: "SIGSEGV"},
	{mode: "abort", kind: "worker_lost", signal: "SIGABRT"},
	{mode: "fatal", kind: "worker_lost", exitCode: 2},       // a Go fatal error exits 2
	{mode: "protocol", kind: "protocol", signal: "SIGKILL"}, // the pool kills a worker that breaks the protocol
}

// Every crash mode, each with the limit that ends it.
var crashModes = append(append([]crashCase(nil), crashMix...),
	crashCase{mode: "hang", timeout: "300ms", kind: "timeout", signal: "SIGKILL"},
	crashCase{name: "hang with --timeout", mode: "hang", flags: []string{"--timeout", "300ms"}, kind: "timeout", signal: "SIGKILL"},
	crashCase{mode: "oom", flags: []string{"--max-worker-memory", "200M"}, kind: "memory_limit", signal: "SIGKILL"},
)

// checkCrash checks the --json record of a crash task.
func checkCrash(t *testing.T, c crashCase, rec *record, pooldPID int) {
	t.Helper()
	if rec == nil {
		t.Errorf("crash %s: no result", c.mode)
		return
	}
	if rec.ok() || rec.Error == nil {
		t.Errorf("crash %s succeeded: %s", c.mode, rec.Result)
		return
	}
	e := rec.Error
	if e.Kind != c.kind {
		t.Errorf("crash %s: kind %q, want %q (message %q)", c.mode, e.Kind, c.kind, e.Message)
	}
	if rec.PID == 0 || rec.PID == pooldPID {
		t.Errorf("crash %s: pid %d; want the worker's (poold is %d)", c.mode, rec.PID, pooldPID)
	}
	if rec.Attempts != 1 {
		t.Errorf("crash %s: %d attempts, want 1", c.mode, rec.Attempts)
	}
	if c.kind == "panic" {
		if !strings.Contains(e.Message, "deliberate panic") || !strings.Contains(e.Stack, "crashTask") {
			t.Errorf("crash panic: message %q and stack %q should name the panic and the task", e.Message, e.Stack)
		}
		return
	}
	if e.PID != rec.PID {
		t.Errorf("crash %s: error names pid %d, the record pid %d", c.mode, e.PID, rec.PID)
	}
	if !strings.Contains(e.Message, strconv.Itoa(rec.PID)) {
		t.Errorf("crash %s: message %q does not name the pid %d", c.mode, e.Message, rec.PID)
	}
	if c.signal != "" {
		if e.Signal != c.signal || e.ExitCode != nil {
			t.Errorf("crash %s: signal %q, exit code %v; want signal %s", c.mode, e.Signal, ptrString(e.ExitCode), c.signal)
		}
	} else if e.ExitCode == nil || *e.ExitCode != c.exitCode || e.Signal != "" {
		t.Errorf("crash %s: exit code %v, signal %q; want exit code %d", c.mode, ptrString(e.ExitCode), e.Signal, c.exitCode)
	}
	switch c.kind {
	case "timeout", "memory_limit", "protocol":
		// The pool killed the worker: it says why.
		if e.Reason == "" {
			t.Errorf("crash %s: no reason for the kill; error %+v", c.mode, e)
		}
	}
	if c.kind == "memory_limit" && !regexp.MustCompile(`\d+(\.\d+)? MiB`).MatchString(e.Message+e.Reason) {
		t.Errorf("crash oom: the error does not give the peak memory: %q / %q", e.Message, e.Reason)
	}
	// The last lines the worker wrote to stderr: the crash task's own line
	// before it dies, or Go's headline for a fatal error.
	if c.kind == "worker_lost" {
		want := "poold crash task: mode " + c.mode
		if c.mode == "fatal" {
			want = "fatal error: "
		}
		if !slices.ContainsFunc(e.Stderr.Lines, func(l string) bool { return strings.Contains(l, want) }) {
			t.Errorf("crash %s: the error's stderr lines %q lack %q", c.mode, e.Stderr.Lines, want)
		}
	}
}

func ptrString(p *int) string {
	if p == nil {
		return "none"
	}
	return strconv.Itoa(*p)
}

// echoValue is the value of the i-th echo task of a test: of varied types.
func echoValue(i int) any {
	switch i % 5 {
	case 0:
		return i
	case 1:
		return fmt.Sprintf("echo %d ✓", i)
	case 2:
		return []any{i, "x", nil, true}
	case 3:
		return map[string]any{"n": i, "nested": map[string]any{"f": 1.5}}
	default:
		return float64(i) + 0.25
	}
}

// checkEcho checks the --json record of echo task i.
func checkEcho(t *testing.T, id string, i int, rec *record) {
	t.Helper()
	if rec == nil {
		t.Errorf("echo %s: no result", id)
		return
	}
	if !rec.ok() {
		t.Errorf("echo %s failed: %+v", id, rec.Error)
		return
	}
	want, _ := json.Marshal(echoValue(i))
	if !sameJSON(rec.Result, want) {
		t.Errorf("echo %s returned %s, want %s", id, rec.Result, want)
	}
	if rec.PID == 0 || rec.Attempts != 1 {
		t.Errorf("echo %s: pid %d, attempts %d", id, rec.PID, rec.Attempts)
	}
}

func echoTask(id string, i int) task {
	return task{ID: id, Func: "echo", Args: map[string]any{"value": echoValue(i)}}
}

// TestCrashMix: echo tasks between crash tasks of every mode but hang and
// oom all return their values; each crash says how its worker ended; the
// status is 1; no worker is left.
func TestCrashMix(t *testing.T) {
	t.Parallel()
	var tasks []task
	echoes := 0
	for _, c := range crashMix {
		for range 3 {
			tasks = append(tasks, echoTask(fmt.Sprintf("echo-%d", echoes), echoes))
			echoes++
		}
		tasks = append(tasks, c.task("crash-"+c.mode))
	}
	for range 3 {
		tasks = append(tasks, echoTask(fmt.Sprintf("echo-%d", echoes), echoes))
		echoes++
	}
	r := runPoold(t, runOpts{}, "-n", "3", "--json", writeTasks(t, map[string]any{"tasks": tasks}))
	if r.Code != 1 {
		t.Errorf("exit status %d, want 1; stderr:\n%s", r.Code, r.Stderr)
	}
	checkNoProcs(t, r.Tag, time.Second)
	recs := parseRecords(t, r.Stdout)
	if len(recs) != len(tasks) {
		t.Errorf("%d results, want %d", len(recs), len(tasks))
	}
	for i := range echoes {
		id := fmt.Sprintf("echo-%d", i)
		checkEcho(t, id, i, recs[id])
	}
	for _, c := range crashMix {
		checkCrash(t, c, recs["crash-"+c.mode], r.PID)
	}
	// The index is the position in the file.
	for i, tk := range tasks {
		if rec := recs[tk.ID]; rec != nil && *rec.Index != i {
			t.Errorf("task %s: index %d, want %d", tk.ID, *rec.Index, i)
		}
	}
}

// TestPrintMiB: a task that prints 1 MiB succeeds with its output
// captured, and the same worker goes on answering.
func TestPrintMiB(t *testing.T) {
	t.Parallel()
	line := strings.Repeat("0123456789abcdef", 64)[:1023] // 1 KiB with the newline
	tasks := []task{{ID: "print", Func: "print", Args: map[string]any{"text": line, "times": 1024}}}
	for i := range 20 {
		tasks = append(tasks, echoTask(fmt.Sprintf("echo-%d", i), i))
	}
	// One worker: the echo tasks run on the worker that printed.
	r := runPoold(t, runOpts{}, "-n", "1", "--json", writeTasks(t, tasks))
	if r.Code != 0 {
		t.Errorf("exit status %d, want 0; stderr:\n%.2000s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	p := recs["print"]
	if p == nil || !p.ok() {
		t.Fatalf("print task: %+v", p)
	}
	if string(p.Result) != "1048576" {
		t.Errorf("print returned %s, want 1048576 (bytes written)", p.Result)
	}
	want := strings.Repeat(line+"\n", 1024)
	switch {
	case p.Output == nil:
		t.Errorf("print task: no output captured")
	case len(*p.Output) != 1<<20:
		t.Errorf("print task: %d bytes of output captured, want %d", len(*p.Output), 1<<20)
	case *p.Output != want:
		t.Errorf("print task: the captured output differs from what it printed")
	}
	for i := range 20 {
		id := fmt.Sprintf("echo-%d", i)
		checkEcho(t, id, i, recs[id])
		if rec := recs[id]; rec != nil && rec.PID != p.PID {
			t.Errorf("%s ran on pid %d, the printing worker is %d", id, rec.PID, p.PID)
		}
		if rec := recs[id]; rec != nil && rec.Output != nil {
			t.Errorf("%s has output %.100q: the print leaked into later tasks", id, *rec.Output)
		}
	}
	if !strings.Contains(r.Stderr, "1 worker started") {
		t.Errorf("the worker was replaced (the protocol broke?); stderr:\n%.2000s", r.Stderr)
	}
	checkNoProcs(t, r.Tag, time.Second)
}

// TestBadInput: a bad command line or task file exits 2, says what and
// where on stderr, prints nothing on stdout, and starts no worker.
func TestBadInput(t *testing.T) {
	t.Parallel()
	known := []string{"crash", "echo", "exec", "pi", "pow", "primes", "print", "sha256", "sleep"}
	good := `[{"func": "echo", "args": {"value": 1}}]`
	cases := []struct {
		name  string
		file  string   // task file content; "" for none
		stdin string   // poold's standard input
		args  []string // before the task file
		want  []string // in stderr
		noSpy bool     // --worker-cmd would change the outcome
	}{
		{name: "malformed JSON", file: "[\n  {\"func\": \"echo\" \"args\": {}}\n]\n",
			want: []string{"line 2, column 19"}},
		{name: "malformed JSON on stdin", stdin: "[{]", args: []string{"-"},
			want: []string{"stdin: line 1, column 3"}},
		{name: "truncated JSON", file: "[\n {\"func\": \"echo\",\n",
			want: []string{"line 3, column 1", "unexpected end"}},
		{name: "unknown function", file: `[{"func": "echo", "args": {"value": 1}},` + "\n" + `{"id": "b", "func": "powr"}]`,
			want: append([]string{`"powr"`, "entry 1", "line 2"}, known...), noSpy: true},
		{name: "missing func", file: `[{"id": "a", "args": {"value": 1}}]`,
			want: append([]string{`"func"`, "entry 0"}, known...), noSpy: true},
		{name: "missing func with worker-cmd", file: `[{"id": "a", "args": {"value": 1}}]`,
			want: []string{`"func"`, "entry 0"}},
		{name: "bad timeout field", file: `[{"func": "sleep", "args": {"seconds": 1}, "timeout": "-1s"}]`,
			want: []string{"timeout"}},
		{name: "empty file", file: " \n", want: []string{"empty"}},
		{name: "-n 0", file: good, args: []string{"-n", "0"}, want: []string{"-n", "0"}},
		{name: "-n negative", file: good, args: []string{"-n", "-3"}, want: []string{"-n"}},
		{name: "negative timeout", file: good, args: []string{"--timeout", "-1s"}, want: []string{"--timeout", "negative"}},
		{name: "non-numeric timeout", file: good, args: []string{"--timeout", "soon"}, want: []string{"timeout"}},
		{name: "negative retries", file: good, args: []string{"--retries", "-1"}, want: []string{"--retries", "negative"}},
		{name: "non-numeric retries", file: good, args: []string{"--retries", "many"}, want: []string{"retries"}},
		{name: "bad memory limit", file: good, args: []string{"--max-worker-memory", "lots"}, want: []string{"max-worker-memory"}},
		{name: "nonexistent file", args: []string{filepath.Join(os.TempDir(), "poold-itest-no-such-file.json")},
			want: []string{"poold-itest-no-such-file.json"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string(nil), c.args...)
			if c.file != "" {
				args = append(args, writeFile(t, "tasks.json", c.file))
			}
			// As users run it: poold starts its own workers. A watcher looks
			// for any process of the run besides poold itself.
			cmd := startPoold(t, runOpts{stdin: c.stdin}, args...)
			var children sync.Map
			stop := make(chan struct{})
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				for {
					for _, p := range liveProcs(cmd.tag) {
						if p.PID != cmd.cmd.Process.Pid {
							children.Store(p.PID, p)
						}
					}
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
				}
			}()
			r := cmd.wait(t)
			close(stop)
			<-watched
			checkUsage(t, r, c.want)
			children.Range(func(_, p any) bool {
				t.Errorf("a process of this run was started: %v", p)
				return true
			})
			checkNoProcs(t, r.Tag, 0)

			if c.noSpy {
				return
			}
			// With a worker program that logs every start: not one.
			spyLog := filepath.Join(t.TempDir(), "spy.log")
			r = runPoold(t, runOpts{stdin: c.stdin, env: []string{"SPY_LOG=" + spyLog, "SPY_WORKER=" + workerBin}},
				append([]string{"--worker-cmd", spyBin}, args...)...)
			checkUsage(t, r, nil)
			if b, err := os.ReadFile(spyLog); err == nil {
				t.Errorf("poold started workers (pids %q)", strings.Fields(string(b)))
			}
		})
	}

	// The spy must notice a worker start, or the checks above prove nothing.
	t.Run("spy control", func(t *testing.T) {
		t.Parallel()
		spyLog := filepath.Join(t.TempDir(), "spy.log")
		// Two tasks: poold starts no more workers than there are tasks.
		r := runPoold(t, runOpts{env: []string{"SPY_LOG=" + spyLog, "SPY_WORKER=" + workerBin}},
			"--worker-cmd", spyBin, "-n", "2", writeFile(t, "tasks.json", `[{"func": "echo", "args": {"value": 1}}, {"func": "echo"}]`))
		if r.Code != 0 {
			t.Fatalf("exit status %d with a good file; stderr:\n%s", r.Code, r.Stderr)
		}
		b, _ := os.ReadFile(spyLog)
		if n := len(strings.Fields(string(b))); n != 2 {
			t.Errorf("the spy logged %d worker starts, want 2", n)
		}
	})
}

func checkUsage(t *testing.T, r *runResult, want []string) {
	t.Helper()
	if r.Code != 2 {
		t.Errorf("exit status %d, want 2; stderr:\n%s", r.Code, r.Stderr)
	}
	if r.Stdout != "" {
		t.Errorf("stdout is not empty:\n%s", r.Stdout)
	}
	if strings.TrimSpace(r.Stderr) == "" {
		t.Errorf("no message on stderr")
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("stderr does not say %q:\n%s", w, r.Stderr)
		}
	}
	if r.Wall > 2*time.Second {
		t.Errorf("took %v to refuse its input", r.Wall)
	}
}

// TestCrashModes runs each crash mode in a test of its own: the kind, the
// pid and the exit code or signal are right, and the same poold run also
// runs 100 echo tasks correctly.
func TestCrashModes(t *testing.T) {
	t.Parallel()
	for _, c := range crashModes {
		name := c.name
		if name == "" {
			name = c.mode
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var tasks []task
			for i := range 100 {
				if i == 50 {
					tasks = append(tasks, c.task("crash"))
				}
				tasks = append(tasks, echoTask(fmt.Sprintf("echo-%d", i), i))
			}
			args := append([]string{"-n", "2", "--json"}, c.flags...)
			r := runPoold(t, runOpts{}, append(args, writeTasks(t, tasks))...)
			if r.Code != 1 {
				t.Errorf("exit status %d, want 1; stderr:\n%s", r.Code, r.Stderr)
			}
			checkNoProcs(t, r.Tag, time.Second)
			recs := parseRecords(t, r.Stdout)
			if len(recs) != 101 {
				t.Errorf("%d results, want 101", len(recs))
			}
			checkCrash(t, c, recs["crash"], r.PID)
			for i := range 100 {
				id := fmt.Sprintf("echo-%d", i)
				checkEcho(t, id, i, recs[id])
			}
		})
	}
}

// TestJSONCPU: --json records carry each task's CPU time in its worker:
// more than 0 for the CPU-bound tasks of examples/map.json, next to nothing
// for a task that sleeps, and, for exec, the CPU of the program it ran.
func TestJSONCPU(t *testing.T) {
	t.Parallel()
	cpu := func(t *testing.T, id string, rec *record) float64 {
		t.Helper()
		if rec == nil || !rec.ok() || rec.CPUMS == nil {
			t.Fatalf("task %s: %+v, want a success with cpu_ms", id, rec)
		}
		if *rec.CPUMS < 0 || *rec.CPUMS > 1.5*rec.DurationMS+1 {
			t.Errorf("task %s: cpu_ms %v for a duration_ms of %v", id, *rec.CPUMS, rec.DurationMS)
		}
		// A worker process holds a few MiB at least, and less than a GiB here.
		if rec.MaxRSS == nil || *rec.MaxRSS < 1<<20 || *rec.MaxRSS > 1<<30 {
			t.Errorf("task %s: max_rss_bytes %v, want the worker's peak memory", id, rec.MaxRSS)
		}
		return *rec.CPUMS
	}

	r := runPoold(t, runOpts{}, "-n", "2", "--json", filepath.Join(rootDir, "examples", "map.json"))
	if r.Code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	for _, id := range []string{"primes[5]", "pi"} {
		if ms := cpu(t, id, recs[id]); ms <= 0 {
			t.Errorf("task %s: cpu_ms %v, want more than 0", id, ms)
		}
	}
	// All the primes below 1,000,000 take a while: on a machine busy with
	// other work, the CPU they got, not their wall time.
	if ms := cpu(t, "primes[5]", recs["primes[5]"]); ms < 1 {
		t.Errorf("primes below 1,000,000: cpu_ms %v, want 1 ms at least", ms)
	}

	tasks := writeTasks(t, []any{
		task{ID: "sleep", Func: "sleep", Args: map[string]any{"seconds": 0.3}},
		execTask("loop", "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done"),
		execTask("nap", "sleep 0.3"),
	})
	r = runPoold(t, runOpts{}, "-n", "3", "--json", tasks)
	if r.Code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", r.Code, r.Stderr)
	}
	recs = parseRecords(t, r.Stdout)
	for _, id := range []string{"sleep", "nap"} {
		if ms := cpu(t, id, recs[id]); recs[id].DurationMS < 290 || ms > 0.1*recs[id].DurationMS {
			t.Errorf("task %s: cpu_ms %v for a duration_ms of %v; want less than a tenth", id, ms, recs[id].DurationMS)
		}
	}
	// The shell's loop takes tens of ms of CPU here; the worker itself,
	// which only waits for it, under a millisecond.
	if ms := cpu(t, "loop", recs["loop"]); ms < 5 {
		t.Errorf("exec of a shell loop: cpu_ms %v (duration_ms %v), want the shell's CPU, 5 ms at least", ms, recs["loop"].DurationMS)
	}
}
