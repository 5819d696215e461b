package integration_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The Python worker of examples/python, and the interpreter that runs it.
var (
	pythonOnce sync.Once
	pythonExe  string // "" when there is none
	pythonErr  string // why not
)

// python returns the Python interpreter's own path: not a launcher shim
// in front of it (pyenv's costs ~300 ms a start), so that a worker starts
// as fast as a pool starts it. Without one, the test skips, or with
// CI=true fails.
func python(t *testing.T) string {
	t.Helper()
	pythonOnce.Do(func() {
		path, err := exec.LookPath("python3")
		if err != nil {
			pythonErr = "no python3 on PATH"
			return
		}
		out, err := exec.Command(path, "-c", "import sys; print(sys.executable)").Output()
		exe := strings.TrimSpace(string(out))
		if err != nil || exe == "" {
			pythonErr = fmt.Sprintf("%s cannot say its executable: %v", path, err)
			return
		}
		pythonExe = exe
	})
	if pythonExe == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: apt-get install python3)", pythonErr)
		}
		t.Skipf("%s: apt-get install python3", pythonErr)
	}
	return pythonExe
}

// pyWorker is the command line of the Python worker.
func pyWorker(t *testing.T) []string {
	return []string{python(t), filepath.Join(rootDir, "examples", "python", "worker.py")}
}

// pyProcs lists the live processes of tag that run the Python worker.
func pyProcs(tag string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) || tagOf(pid) != tag {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmdline, []byte("worker.py")) {
			out = append(out, pid)
		}
	}
	return out
}

// TestPythonWorkerCrashes: poold runs tasks on the Python worker of
// examples/python through --worker-cmd: results come back; a Python
// exception fails its task with kind error, the exception's type and its
// traceback; os._exit and a segfault each cost their own task alone
// (worker_lost, with the exit code or the signal), the pool replacing the
// worker; every other task succeeds, once.
func TestPythonWorkerCrashes(t *testing.T) {
	t.Parallel()
	argv := pyWorker(t)
	var tasks []task
	echoes := 0
	addEchoes := func(n int) {
		for range n {
			tasks = append(tasks, echoTask(fmt.Sprintf("echo-%d", echoes), echoes))
			echoes++
		}
	}
	addEchoes(4)
	tasks = append(tasks, task{ID: "square", Func: "square", Args: map[string]any{"x": 12}})
	tasks = append(tasks, task{ID: "fail", Func: "fail", Args: map[string]any{"message": "deliberate failure"}})
	addEchoes(3)
	tasks = append(tasks, task{ID: "exit", Func: "exit", Args: map[string]any{"code": 3}})
	addEchoes(3)
	tasks = append(tasks, task{ID: "segfault", Func: "segfault", Args: map[string]any{}})
	addEchoes(3)
	tasks = append(tasks, task{ID: "print", Func: "print", Args: map[string]any{"text": "printed by Python", "times": 2}})
	tasks = append(tasks, task{ID: "squares", Map: "square", Args: []any{map[string]any{"x": 1}, map[string]any{"x": 2}, map[string]any{"x": 3}}})
	addEchoes(3)

	cmd := fmt.Sprintf("'%s' '%s'", argv[0], argv[1])
	r := runPoold(t, runOpts{}, "-n", "2", "--json", "--worker-cmd", cmd, writeTasks(t, map[string]any{"tasks": tasks}))
	if r.Code != 1 {
		t.Errorf("exit status %d, want 1 (three tasks fail); stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	if want := len(tasks) - 1 + 3; len(recs) != want {
		t.Errorf("%d results, want %d; stdout:\n%s", len(recs), want, r.Stdout)
	}
	for i := range echoes {
		id := fmt.Sprintf("echo-%d", i)
		checkEcho(t, id, i, recs[id])
	}
	for id, want := range map[string]string{"square": "144", "squares[0]": "1", "squares[1]": "4", "squares[2]": "9", "print": "36"} {
		if rec := recs[id]; rec == nil || !rec.ok() || string(rec.Result) != want || rec.Attempts != 1 {
			t.Errorf("%s: %+v; want %s, once", id, rec, want)
		}
	}
	if rec := recs["print"]; rec != nil && (rec.Output == nil || *rec.Output != "printed by Python\nprinted by Python\n") {
		t.Errorf("print: output %v, want the two lines it printed", rec.Output)
	}

	pids := map[int]bool{}
	for _, rec := range recs {
		pids[rec.PID] = true
		if rec.PID == 0 || rec.PID == r.PID {
			t.Errorf("%s: pid %d; want a worker's (poold is %d)", rec.ID, rec.PID, r.PID)
		}
	}

	if rec := recs["fail"]; rec == nil || rec.ok() || rec.Error == nil {
		t.Errorf("fail: %+v; want it to fail", rec)
	} else if e := rec.Error; e.Kind != "error" || e.Type != "ValueError" || e.Message != "deliberate failure" ||
		!strings.Contains(e.Stack, "Traceback (most recent call last)") || !strings.Contains(e.Stack, "in fail") ||
		!strings.Contains(e.Stack, "ValueError: deliberate failure") || rec.Attempts != 1 {
		t.Errorf("fail: kind %q, type %q, message %q, %d attempts, stack:\n%s\nwant kind error, type ValueError, the message and the traceback",
			e.Kind, e.Type, e.Message, rec.Attempts, e.Stack)
	}
	checkLost := func(id string, exitCode int, signal string, line string) {
		t.Helper()
		rec := recs[id]
		if rec == nil || rec.ok() || rec.Error == nil {
			t.Errorf("%s: %+v; want worker_lost", id, rec)
			return
		}
		e := rec.Error
		if e.Kind != "worker_lost" || rec.Attempts != 1 || e.PID != rec.PID || !strings.Contains(e.Message, strconv.Itoa(rec.PID)) {
			t.Errorf("%s: kind %q, %d attempts, pid %d (record %d), message %q; want worker_lost, once, naming its worker", id, e.Kind, rec.Attempts, e.PID, rec.PID, e.Message)
		}
		if signal != "" {
			if e.Signal != signal || e.ExitCode != nil {
				t.Errorf("%s: signal %q, exit code %v; want signal %s", id, e.Signal, ptrString(e.ExitCode), signal)
			}
		} else if e.ExitCode == nil || *e.ExitCode != exitCode || e.Signal != "" {
			t.Errorf("%s: exit code %v, signal %q; want exit code %d", id, ptrString(e.ExitCode), e.Signal, exitCode)
		}
		if !slices.ContainsFunc(e.Stderr.Lines, func(l string) bool { return strings.Contains(l, line) }) {
			t.Errorf("%s: the worker's last stderr lines %q lack %q", id, e.Stderr.Lines, line)
		}
	}
	checkLost("exit", 3, "", "poold python task: exit 3")
	checkLost("segfault", 0, "SIGSEGV", "poold python task: segfault")
	// Two workers, and one more for each crash at least.
	if len(pids) < 3 {
		t.Errorf("results from %d worker pids, want 3 at least (each crash replaces its worker)", len(pids))
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(pyProcs(r.Tag)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if left := pyProcs(r.Tag); len(left) > 0 {
		t.Errorf("Python workers still running after poold: %v", left)
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// TestPythonWorkerTimeout: a call past its time limit fails with kind
// timeout in the Python worker, which lives on (its SIGALRM timer); the
// next task runs on the same worker.
func TestPythonWorkerTimeout(t *testing.T) {
	t.Parallel()
	argv := pyWorker(t)
	tasks := []task{
		{ID: "slow", Func: "sleep", Args: map[string]any{"seconds": 30}, Timeout: "200ms"},
		{ID: "after", Func: "echo", Args: map[string]any{"value": "still here"}},
	}
	cmd := fmt.Sprintf("'%s' '%s'", argv[0], argv[1])
	r := runPoold(t, runOpts{timeout: 20 * time.Second}, "-n", "1", "--json", "--worker-cmd", cmd, writeTasks(t, tasks))
	if r.Code != 1 {
		t.Errorf("exit status %d, want 1; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	slow, after := recs["slow"], recs["after"]
	if slow == nil || slow.ok() || slow.Error == nil || slow.Error.Kind != "timeout" || slow.DurationMS > 5000 {
		t.Fatalf("slow: %+v; want kind timeout after about 200 ms", slow)
	}
	if after == nil || !after.ok() || string(after.Result) != `"still here"` {
		t.Fatalf("after: %+v", after)
	}
	if after.PID != slow.PID {
		t.Errorf("the task after the timeout ran on pid %d, the timed-out one on %d: the worker should live on", after.PID, slow.PID)
	}
	if slow.Error.Signal != "" || slow.Error.Reason != "" {
		t.Errorf("slow: the worker was killed (%s, %s): the worker's own timer should have failed the call", slow.Error.Signal, slow.Error.Reason)
	}
}
