package integration_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const jobLogHeader = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\tPid\tAttempts\tKind\n"

// jobLine is a line of a job log, GNU parallel's columns, then poold's:
// Seq, Host, Starttime (%.3f), JobRuntime (%10.3f: ten characters), Send,
// Receive, Exitval, Signal, Command (JSON), Pid, Attempts, Kind.
var jobLine = regexp.MustCompile(`^(\d+)\t:\t(\d{10}\.\d{3})\t( *\d+\.\d{3})\t0\t(\d+)\t(-?\d+)\t(\d+)\t(\{[^\t\n]*\})\t(\d+)\t(\d+)\t([a-z_]+)$`)

type jobLogLine struct {
	Seq, Receive, Exitval, Signal int
	Start                         float64
	Runtime                       string
	ID, Kind                      string
	Command                       map[string]any
}

// readJobLog checks the header and every line of a job log against the
// format and returns the lines, the header left out.
func readJobLog(t *testing.T, path string) []jobLogLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rest, ok := bytes.CutPrefix(data, []byte(jobLogHeader))
	if !ok {
		t.Fatalf("job log %s does not start with the header %q:\n%s", path, jobLogHeader, data)
	}
	if len(rest) > 0 && !bytes.HasSuffix(rest, []byte("\n")) {
		t.Errorf("job log does not end with a newline")
	}
	var lines []jobLogLine
	for i, l := range strings.Split(strings.TrimSuffix(string(rest), "\n"), "\n") {
		if l == "" && len(rest) == 0 {
			break
		}
		m := jobLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("job log line %d has the wrong format: %q", i+2, l)
		}
		if len(m[3]) != 10 {
			t.Errorf("JobRuntime %q is not %%10.3f", m[3])
		}
		var jl jobLogLine
		jl.Seq, _ = strconv.Atoi(m[1])
		jl.Start, _ = strconv.ParseFloat(m[2], 64)
		jl.Runtime = m[3]
		jl.Receive, _ = strconv.Atoi(m[4])
		jl.Exitval, _ = strconv.Atoi(m[5])
		jl.Signal, _ = strconv.Atoi(m[6])
		if err := json.Unmarshal([]byte(m[7]), &jl.Command); err != nil {
			t.Fatalf("job log line %d: Command is not JSON: %v: %s", i+2, err, m[7])
		}
		jl.ID, _ = jl.Command["id"].(string)
		jl.Kind = m[10]
		lines = append(lines, jl)
	}
	return lines
}

func byID(lines []jobLogLine) map[string]jobLogLine {
	m := map[string]jobLogLine{}
	for _, l := range lines {
		m[l.ID] = l
	}
	return m
}

func shTask(id, script string) task {
	return task{ID: id, Func: "exec", Args: map[string]any{"argv": []string{"sh", "-c", script}}}
}

// TestJobLogFormat: the header and each line, byte for byte, for the ways a
// task ends; with and without --json; "+FILE" appends, FILE overwrites.
func TestJobLogFormat(t *testing.T) {
	t.Parallel()
	tasks := []task{
		echoTask("ok", 1),
		{ID: "print", Func: "print", Args: map[string]any{"text": "hello", "times": 3}},
		shTask("exit3", "exit 3"),
		shTask("killed", "kill -9 $$"),
		{ID: "slow", Func: "sleep", Args: map[string]any{"seconds": 5}, Timeout: "100ms"},
		{ID: "m", Map: "echo", Args: []any{map[string]any{"value": 1}, map[string]any{"value": 2}}},
	}
	want := map[string]struct{ exitval, signal int }{
		"ok": {0, 0}, "print": {0, 0}, "exit3": {3, 0}, "killed": {1, 9}, "slow": {-1, 0}, "m[0]": {0, 0}, "m[1]": {0, 0},
	}
	file := writeTasks(t, tasks)
	for _, asJSON := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", asJSON), func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "job.log")
			args := []string{"-n", "2", "--joblog", log, file}
			if asJSON {
				args = append([]string{"--json"}, args...)
			}
			before := float64(time.Now().UnixMilli())/1e3 - 1
			r := runPoold(t, runOpts{}, args...)
			if r.Code != 1 {
				t.Fatalf("exit status %d, want 1; stderr:\n%s", r.Code, r.Stderr)
			}
			lines := readJobLog(t, log)
			if len(lines) != len(want) {
				t.Fatalf("%d job log lines, want %d", len(lines), len(want))
			}
			seqs := map[string]int{"ok": 1, "print": 2, "exit3": 3, "killed": 4, "slow": 5, "m[0]": 6, "m[1]": 7}
			for id, l := range byID(lines) {
				w, ok := want[id]
				if !ok {
					t.Errorf("unexpected id %q in the job log", id)
					continue
				}
				if l.Exitval != w.exitval || l.Signal != w.signal {
					t.Errorf("%s: Exitval %d, Signal %d; want %d, %d", id, l.Exitval, l.Signal, w.exitval, w.signal)
				}
				if l.Seq != seqs[id] {
					t.Errorf("%s: Seq %d, want %d", id, l.Seq, seqs[id])
				}
				if l.Start < before || l.Start > float64(time.Now().UnixMilli())/1e3+1 {
					t.Errorf("%s: Starttime %.3f is not now", id, l.Start)
				}
			}
			m := byID(lines)
			if got := m["print"].Receive; got != len("hello\n")*3 {
				t.Errorf("print: Receive %d, want %d", got, len("hello\n")*3)
			}
			if rt := m["slow"].Runtime; !strings.HasPrefix(rt, "     0.1") {
				t.Errorf("slow: JobRuntime %q, want about 0.1 s, padded to 10", rt)
			}
			if c := m["exit3"].Command; c["func"] != "exec" || !sameJSON(mustJSON(c["args"]), []byte(`{"argv":["sh","-c","exit 3"]}`)) {
				t.Errorf("exit3: Command %v", c)
			}
			if k := m["slow"].Kind; k != "timeout" {
				t.Errorf("slow: Kind %q, want timeout", k)
			}

			// FILE again overwrites; +FILE appends, with no second header.
			runPoold(t, runOpts{}, "--joblog", log, writeTasks(t, []task{echoTask("x", 1)}))
			if lines := readJobLog(t, log); len(lines) != 1 || lines[0].ID != "x" {
				t.Errorf("--joblog FILE did not overwrite: %v", lines)
			}
			runPoold(t, runOpts{}, "--joblog", "+"+log, writeTasks(t, []task{echoTask("y", 1)}))
			if lines := readJobLog(t, log); len(lines) != 2 || lines[1].ID != "y" {
				t.Errorf("--joblog +FILE did not append: %v", lines)
			}
		})
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// TestJobLogResumeUsage: --resume and --resume-failed need --joblog.
func TestJobLogResumeUsage(t *testing.T) {
	t.Parallel()
	file := writeTasks(t, []task{echoTask("a", 1)})
	for _, flag := range []string{"--resume", "--resume-failed"} {
		r := runPoold(t, runOpts{}, flag, file)
		if r.Code != 2 || !strings.Contains(r.Stderr, "need --joblog") {
			t.Errorf("%s without --joblog: exit %d, stderr:\n%s", flag, r.Code, r.Stderr)
		}
	}
}

// TestJobLogGNUParallel: GNU parallel's own --resume-failed, given poold's
// job log, runs again exactly the jobs that failed: it reads the log as its
// own.
func TestJobLogGNUParallel(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("parallel"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("GNU parallel is not on PATH (CI=true: apt-get install parallel)")
		}
		t.Skip("GNU parallel is not on PATH: apt-get install parallel")
	}
	const n = 12
	var tasks []task
	var failed []string
	for i := range n {
		id := fmt.Sprintf("t%d", i)
		switch i % 4 {
		case 1:
			tasks = append(tasks, shTask(id, "exit 2"))
			failed = append(failed, strconv.Itoa(i+1))
		case 2:
			tasks = append(tasks, shTask(id, "kill -9 $$"))
			failed = append(failed, strconv.Itoa(i+1))
		default:
			tasks = append(tasks, echoTask(id, i))
		}
	}
	log := filepath.Join(t.TempDir(), "job.log")
	r := runPoold(t, runOpts{}, "-n", "2", "--joblog", log, writeTasks(t, tasks))
	if r.Code != 1 {
		t.Fatalf("exit status %d, want 1; stderr:\n%s", r.Code, r.Stderr)
	}
	args := []string{"--will-cite", "--joblog", log, "--resume-failed", "-j1", "echo", ":::"}
	for i := range n {
		args = append(args, strconv.Itoa(i+1))
	}
	cmd := exec.Command("parallel", args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // parallel writes ~/.parallel
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("parallel: %v\n%s", err, out)
	}
	ran := strings.Fields(string(out))
	slices.SortFunc(ran, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
	if !slices.Equal(ran, failed) {
		t.Errorf("parallel --resume-failed on poold's job log ran %v, want the failed Seqs %v", ran, failed)
	}
}

// writeTaskFile writes tasks as JSON or JSON Lines.
func writeTaskFile(t *testing.T, tasks []task, jsonl bool) string {
	t.Helper()
	if !jsonl {
		return writeTasks(t, tasks)
	}
	var b strings.Builder
	for _, tk := range tasks {
		b.Write(mustJSON(tk))
		b.WriteByte('\n')
	}
	return writeFile(t, "tasks.jsonl", b.String())
}

// ranIDs reads the ids that the tasks appended to a file, one a line.
func ranIDs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	ids := strings.Fields(string(data))
	slices.Sort(ids)
	return ids
}

// TestJobLogResumeAfterSIGKILL: poold killed by SIGKILL halfway through
// 1,000 tasks leaves a job log of what finished; --resume then runs
// exactly the tasks with no line, and says how many it skipped; for a JSON
// file, a JSON Lines file, and a re-ordered file (matched by id); and the
// same after SIGINT, whose terminated tasks have no line.
func TestJobLogResumeAfterSIGKILL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name           string
		jsonl, reorder bool
		sig            syscall.Signal
	}{
		{"json", false, false, syscall.SIGKILL}, {"jsonl", true, false, syscall.SIGKILL},
		{"json-reordered", false, true, syscall.SIGKILL},
		// After SIGINT, the tasks poold terminates are not logged.
		{"json-sigint", false, false, syscall.SIGINT}, {"jsonl-sigint", true, false, syscall.SIGINT},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			const n = 1000
			var tasks []task
			for i := range n {
				id := fmt.Sprintf("t%04d", i)
				tasks = append(tasks, shTask(id, `echo `+id+` >> "$RAN"`))
			}
			file := writeTaskFile(t, tasks, c.jsonl)
			log := filepath.Join(dir, "job.log")
			first := filepath.Join(dir, "first")
			pc := startPoold(t, runOpts{env: []string{"RAN=" + first}}, "-n", "2", "--joblog", log, file)
			deadline := time.Now().Add(30 * time.Second)
			for {
				data, _ := os.ReadFile(log)
				if bytes.Count(data, []byte("\n")) > 200 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the job log did not reach 200 lines in 30 s")
				}
				time.Sleep(2 * time.Millisecond)
			}
			pc.cmd.Process.Signal(c.sig)
			if r := pc.wait(t); r.Code != 128+int(c.sig) {
				t.Fatalf("poold exit %d after %v, want %d; stderr:\n%s", r.Code, c.sig, 128+int(c.sig), r.Stderr)
			}
			waitNoProcs(pc.tag, 5*time.Second)
			// A line cut short by the kill would not match the format.
			logged := byID(readJobLog(t, log))
			if len(logged) >= n {
				t.Fatalf("every task has a line after the %v; nothing to resume", c.sig)
			}
			var want []string
			for _, tk := range tasks {
				if _, ok := logged[tk.ID]; !ok {
					want = append(want, tk.ID)
				}
			}
			slices.Sort(want)

			if c.reorder {
				slices.Reverse(tasks)
				file = writeTaskFile(t, tasks, c.jsonl)
			}
			second := filepath.Join(dir, "second")
			r := runPoold(t, runOpts{env: []string{"RAN=" + second}}, "-n", "2", "--joblog", log, "--resume", file)
			if r.Code != 0 {
				t.Fatalf("--resume: exit %d; stderr:\n%s", r.Code, r.Stderr)
			}
			if got := ranIDs(t, second); !slices.Equal(got, want) {
				t.Errorf("--resume ran %d tasks, want the %d with no line in the job log", len(got), len(want))
			}
			if s := fmt.Sprintf("%d skipped (in the job log)", len(logged)); !strings.Contains(r.Stdout, s) {
				t.Errorf("the summary does not say %q:\n%s", s, r.Stdout)
			}
			if all := byID(readJobLog(t, log)); len(all) != n {
				t.Errorf("after --resume the job log has %d ids, want %d", len(all), n)
			}
			// Everything is in the log now: a third run runs nothing.
			third := filepath.Join(dir, "third")
			r = runPoold(t, runOpts{env: []string{"RAN=" + third}}, "--joblog", log, "--resume", file)
			if got := ranIDs(t, third); r.Code != 0 || len(got) != 0 {
				t.Errorf("a third --resume: exit %d, ran %d tasks; want 0, none", r.Code, len(got))
			}
		})
	}
}

// TestJobLogResumeFailed: --resume-failed runs again exactly the tasks
// whose last line failed; the last line of a task wins.
func TestJobLogResumeFailed(t *testing.T) {
	t.Parallel()
	for _, jsonl := range []bool{false, true} {
		t.Run(fmt.Sprintf("jsonl=%v", jsonl), func(t *testing.T) {
			dir := t.TempDir()
			var tasks []task
			var failing []string
			for i := range 30 {
				id := fmt.Sprintf("t%02d", i)
				script := `echo ` + id + ` >> "$RAN"`
				if i%3 == 0 {
					script += `; exit ${CODE:-0}`
					failing = append(failing, id)
				}
				tasks = append(tasks, shTask(id, script))
			}
			file := writeTaskFile(t, tasks, jsonl)
			log := filepath.Join(dir, "job.log")
			runIn := func(name string, args []string, env ...string) (*runResult, []string) {
				out := filepath.Join(dir, name)
				r := runPoold(t, runOpts{env: append(env, "RAN="+out)}, append([]string{"-n", "2", "--joblog", log}, args...)...)
				return r, ranIDs(t, out)
			}
			if r, got := runIn("first", []string{file}, "CODE=4"); r.Code != 1 || len(got) != len(tasks) {
				t.Fatalf("first run: exit %d, %d tasks; want 1, %d; stderr:\n%s", r.Code, len(got), len(tasks), r.Stderr)
			}
			// Still failing: the failed ones run again, and fail again.
			if r, got := runIn("second", []string{"--resume-failed", file}, "CODE=5"); r.Code != 1 || !slices.Equal(got, failing) {
				t.Errorf("--resume-failed: exit %d, ran %v; want 1, %v", r.Code, got, failing)
			}
			// Now they succeed: the last line wins over the failures before.
			if r, got := runIn("third", []string{"--resume-failed", file}); r.Code != 0 || !slices.Equal(got, failing) {
				t.Errorf("--resume-failed again: exit %d, ran %v; want 0, %v", r.Code, got, failing)
			}
			if r, got := runIn("fourth", []string{"--resume-failed", file}); r.Code != 0 || len(got) != 0 ||
				!strings.Contains(r.Stdout, "30 skipped (in the job log)") {
				t.Errorf("--resume-failed with all done: exit %d, ran %v; want 0, none; stdout:\n%s", r.Code, got, r.Stdout)
			}
			lines := readJobLog(t, log)
			if want := len(tasks) + 2*len(failing); len(lines) != want {
				t.Errorf("%d job log lines, want %d (appended)", len(lines), want)
			}
		})
	}
}

// TestJobLogSameShapeAsParallel: for the same shape of job (3 commands,
// one failing), GNU parallel's own job log and poold's have the same
// header byte for byte up to Command (poold's columns follow it), and each line the same shape field by field: Seq,
// ":", a start with 3 decimals, a runtime right-aligned in 10 columns with
// 3 decimals, Send, Receive, Exitval and Signal as integers (poold's own
// columns follow Command).
func TestJobLogSameShapeAsParallel(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("parallel"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("GNU parallel is not on PATH (CI=true: apt-get install parallel)")
		}
		t.Skip("GNU parallel is not on PATH: apt-get install parallel")
	}
	dir := t.TempDir()
	theirs := filepath.Join(dir, "parallel.log")
	cmd := exec.Command("parallel", "--will-cite", "--joblog", theirs, "-j1", "sh", "-c", ":::", "true", "exit 3", "echo hi")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	cmd.Run() // exits 1: one job failed
	ours := filepath.Join(dir, "poold.log")
	tasks := []task{shTask("a", "true"), shTask("b", "exit 3"), shTask("c", "echo hi")}
	if r := runPoold(t, runOpts{}, "-n", "1", "--joblog", ours, writeTasks(t, tasks)); r.Code != 1 {
		t.Fatalf("poold: exit %d; stderr:\n%s", r.Code, r.Stderr)
	}
	read := func(path string) []string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	pl, ol := read(theirs), read(ours)
	if len(pl) != 4 || len(ol) != 4 {
		t.Fatalf("lines: parallel %d, poold %d; want 4 each\nparallel:\n%s\npoold:\n%s", len(pl), len(ol), strings.Join(pl, "\n"), strings.Join(ol, "\n"))
	}
	if !strings.HasPrefix(ol[0], pl[0]+"\t") { // poold's own columns follow Command
		t.Errorf("headers differ:\nparallel %q\npoold    %q", pl[0], ol[0])
	}
	shape := []*regexp.Regexp{
		regexp.MustCompile(`^[0-9]+$`), regexp.MustCompile(`^:$`), regexp.MustCompile(`^[0-9]+\.[0-9]{3}$`),
		regexp.MustCompile(`^ *[0-9]+\.[0-9]{3}$`), regexp.MustCompile(`^[0-9]+$`), regexp.MustCompile(`^[0-9]+$`),
		regexp.MustCompile(`^-?[0-9]+$`), regexp.MustCompile(`^[0-9]+$`),
	}
	exitvals := map[string][2]string{}
	for i := 1; i < 4; i++ {
		pf, of := strings.Split(pl[i], "\t"), strings.Split(ol[i], "\t")
		if len(pf) < 9 || len(of) < 9 {
			t.Fatalf("line %d: %d and %d fields", i, len(pf), len(of))
		}
		for k, re := range shape {
			if !re.MatchString(pf[k]) || !re.MatchString(of[k]) {
				t.Errorf("line %d, field %d: parallel %q, poold %q; want both %v", i, k, pf[k], of[k], re)
			}
		}
		if len(pf[3]) != 10 || len(of[3]) != 10 {
			t.Errorf("line %d: JobRuntime %q and %q, want 10 columns each", i, pf[3], of[3])
		}
		exitvals[pf[0]] = [2]string{pf[6], ""}
		e := exitvals[of[0]]
		e[1] = of[6]
		exitvals[of[0]] = e
	}
	for seq, e := range exitvals {
		if e[0] != e[1] {
			t.Errorf("Seq %s: Exitval %s (parallel) and %s (poold)", seq, e[0], e[1])
		}
	}
}
