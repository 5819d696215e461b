package integration_test

// Sharp edges of the poold command: each test here failed against the
// command as it was before the fix it covers.

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// stderrLines are the non-empty lines of a run's stderr.
func stderrLines(r *runResult) []string {
	var lines []string
	for l := range strings.Lines(r.Stderr) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// execTask is a task that runs sh -c script.
func execTask(id, script string) map[string]any {
	return map[string]any{"id": id, "func": "exec", "args": map[string]any{"argv": []string{"sh", "-c", script}}}
}

// TestExecExitStatus: a command that exits with a status other than 0, or
// is killed by a signal, fails its task with kind exit_status, with the
// code or the signal and both outputs; poold's status is 1.
func TestExecExitStatus(t *testing.T) {
	t.Parallel()
	tasks := writeTasks(t, []any{
		execTask("fail", "echo out; echo first >&2; echo last >&2; exit 3"),
		execTask("killed", "echo dying >&2; kill -KILL $$"),
		execTask("ok", "echo fine"),
	})
	r := runPoold(t, runOpts{}, "-n", "2", "--json", tasks)
	if r.Code != 1 {
		t.Errorf("exit status %d, want 1; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	str := func(p *string) string {
		if p == nil {
			return "<none>"
		}
		return *p
	}
	if rec := recs["fail"]; rec == nil || rec.ok() {
		t.Errorf("fail: %+v", rec)
	} else if e := rec.Error; e.Kind != "exit_status" || e.ExitCode == nil || *e.ExitCode != 3 || e.Signal != "" ||
		str(e.Stdout) != "out\n" || str(e.Stderr.Text) != "first\nlast\n" || e.Message != "exit status 3: last" || rec.Attempts != 1 {
		t.Errorf("fail: kind %s, exit code %s, signal %q, stdout %q, stderr %q, message %q, attempts %d",
			e.Kind, ptrString(e.ExitCode), e.Signal, str(e.Stdout), str(e.Stderr.Text), e.Message, rec.Attempts)
	}
	if rec := recs["killed"]; rec == nil || rec.ok() {
		t.Errorf("killed: %+v", rec)
	} else if e := rec.Error; e.Kind != "exit_status" || e.ExitCode != nil || e.Signal != "SIGKILL" ||
		str(e.Stdout) != "" || str(e.Stderr.Text) != "dying\n" || e.Message != "killed by signal SIGKILL: dying" {
		t.Errorf("killed: kind %s, exit code %s, signal %q, stdout %q, stderr %q, message %q",
			e.Kind, ptrString(e.ExitCode), e.Signal, str(e.Stdout), str(e.Stderr.Text), e.Message)
	}
	if rec := recs["ok"]; rec == nil || !rec.ok() {
		t.Errorf("ok: %+v", rec)
	} else if res := decodeMap(rec.Result); res["stdout"] != "fine\n" || res["exit_code"] != 0.0 {
		t.Errorf("ok: result %s", rec.Result)
	}

	// For people: the kind, and the status with the last stderr line.
	r = runPoold(t, runOpts{}, "-n", "2", tasks)
	if r.Code != 1 {
		t.Errorf("text: exit status %d, want 1; stderr:\n%s", r.Code, r.Stderr)
	}
	for _, want := range []string{
		`(?m)^ +\d+  fail +exec  exit_status +\S+  exit status 3: last$`,
		`(?m)^ +\d+  killed +exec  exit_status +\S+  killed by signal SIGKILL: dying$`,
		`(?m)^3 tasks: 1 ok, 2 failed;`,
	} {
		if !regexp.MustCompile(want).MatchString(r.Stdout) {
			t.Errorf("stdout does not match %s:\n%s", want, r.Stdout)
		}
	}
	checkNoProcs(t, r.Tag, time.Second)
}

func decodeMap(b []byte) map[string]any {
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

// TestRetryOn: --retry-on (and a task's retry_on) chooses the kinds that
// --retries (retries) retries; exit_status is not among the default ones.
func TestRetryOn(t *testing.T) {
	t.Parallel()
	// Each attempt of a counting task adds a line to its file, then fails.
	dir := t.TempDir()
	counting := func(id string) map[string]any {
		return execTask(id, fmt.Sprintf("echo x >> %s; exit 3", filepath.Join(dir, id)))
	}
	runs := func(id string) int {
		b, _ := os.ReadFile(filepath.Join(dir, id))
		return strings.Count(string(b), "x")
	}
	check := func(t *testing.T, recs map[string]*record, id string, attempts int) {
		t.Helper()
		rec := recs[id]
		if rec == nil || rec.ok() || rec.Error.Kind != "exit_status" || rec.Attempts != attempts {
			t.Errorf("%s: %+v; want kind exit_status after %d attempts", id, rec, attempts)
		} else if n := runs(id); n != attempts {
			t.Errorf("%s: the command ran %d times, the record says %d attempts", id, n, attempts)
		}
	}

	t.Run("flag", func(t *testing.T) {
		r := runPoold(t, runOpts{}, "--json", "--retries", "2", "--retry-on", "exit_status", writeTasks(t, []any{counting("flag")}))
		if r.Code != 1 {
			t.Errorf("exit status %d, want 1; stderr:\n%s", r.Code, r.Stderr)
		}
		check(t, parseRecords(t, r.Stdout), "flag", 3)
	})
	t.Run("default", func(t *testing.T) {
		r := runPoold(t, runOpts{}, "--json", "--retries", "2", writeTasks(t, []any{counting("default")}))
		check(t, parseRecords(t, r.Stdout), "default", 1)
	})
	t.Run("task file", func(t *testing.T) {
		own := counting("own")
		own["retries"], own["retry_on"] = 2, []string{"exit_status"}
		none := counting("none") // retries nothing, whatever --retry-on says
		none["retry_on"] = []string{}
		m := map[string]any{"id": "m", "map": "exec", "retries": 1, "retry_on": []string{"timeout", "exit_status"},
			"args": []any{map[string]any{"argv": []string{"sh", "-c", "echo x >> " + filepath.Join(dir, "m0") + "; exit 4"}}}}
		r := runPoold(t, runOpts{}, "--json", "--retries", "2", "--retry-on", "exit_status", writeTasks(t, []any{own, none, m}))
		recs := parseRecords(t, r.Stdout)
		check(t, recs, "own", 3)
		check(t, recs, "none", 1)
		if rec := recs["m[0]"]; rec == nil || rec.Attempts != 2 || runs("m0") != 2 {
			t.Errorf("map item: %+v, %d runs; want 2 attempts", rec, runs("m0"))
		}
	})
	t.Run("stream", func(t *testing.T) {
		line, _ := json.Marshal(map[string]any{"id": "s", "func": "exec", "retries": 1, "retry_on": []string{"exit_status"},
			"args": map[string]any{"argv": []string{"sh", "-c", "echo x >> " + filepath.Join(dir, "s") + "; exit 5"}}})
		r := runPoold(t, runOpts{stdin: string(line) + "\n" + `{"id": "bad", "func": "echo", "retry_on": ["exit_stat"]}` + "\n"},
			"--json", "--jsonl", "-")
		recs := parseRecords(t, r.Stdout)
		check(t, recs, "s", 2)
		if rec := recs["bad"]; rec == nil || rec.ok() || rec.Error.Kind != "bad_task" ||
			!strings.Contains(rec.Error.Message, `unknown kind "exit_stat"; the kinds that can be retried: worker_lost, timeout,`) {
			t.Errorf("bad retry_on line: %+v", rec)
		}
	})
	t.Run("bad kinds", func(t *testing.T) {
		good := writeTasks(t, []any{counting("never")})
		r := runPoold(t, runOpts{}, "--retry-on", "exit_status,timout", good)
		checkUsage(t, r, []string{`--retry-on: unknown kind "timout"`, "worker_lost, timeout, memory_limit, protocol, exit_status"})
		r = runPoold(t, runOpts{}, "--retry-on", "terminated", good)
		checkUsage(t, r, []string{"kind terminated cannot be retried"})
		bad := counting("never")
		bad["retry_on"] = []string{"oops"}
		r = runPoold(t, runOpts{}, writeTasks(t, []any{bad}))
		checkUsage(t, r, []string{`entry 0 (id "never", line 2): "retry_on": unknown kind "oops"; the kinds that can be retried: worker_lost,`})
		if runs("never") != 0 {
			t.Errorf("a task ran")
		}
	})
}

// TestWorkersNoMoreThanTasks: with a JSON file the count is known, and
// poold starts no more workers than there are tasks, whatever -n says.
func TestWorkersNoMoreThanTasks(t *testing.T) {
	t.Parallel()
	var tasks []task
	for i := range 10 {
		tasks = append(tasks, echoTask(fmt.Sprint(i), i))
	}
	// The limit of open files keeps a poold that would try 100000 workers
	// from starting thousands before it fails.
	r := runPoold(t, runOpts{nofile: 256}, "-n", "100000", writeTasks(t, tasks))
	if r.Code != 0 {
		t.Errorf("exit status %d, want 0; stderr:\n%.3000s", r.Code, r.Stderr)
	}
	if !regexp.MustCompile(`(?m)^poold: 10 tasks on 10 workers `).MatchString(r.Stdout) ||
		!regexp.MustCompile(`(?m)^10 tasks: 10 ok, 0 failed; \d+ worker pids? used, 10 workers started;`).MatchString(r.Stdout) {
		t.Errorf("want 10 tasks on 10 workers, 10 started; stdout:\n%.3000s", r.Stdout)
	}
	checkNoProcs(t, r.Tag, time.Second)
}

// TestTooManyWorkers: more workers than the open-file limit allows is one
// clear line and status 1, and no worker is started.
func TestTooManyWorkers(t *testing.T) {
	t.Parallel()
	stream := writeFile(t, "tasks.jsonl", `{"func": "echo", "args": {"value": 1}}`+"\n")
	for _, c := range []struct {
		n      string
		nofile int
	}{{"100000", 256}, {"100", 256}} { // never without a limit: a poold that tried would start thousands
		t.Run(c.n+"/"+fmt.Sprint(c.nofile), func(t *testing.T) {
			t.Parallel()
			spyLog := filepath.Join(t.TempDir(), "spy.log")
			for _, spy := range []bool{false, true} {
				args := []string{"-n", c.n, stream}
				o := runOpts{nofile: c.nofile}
				if spy {
					args = append([]string{"--worker-cmd", spyBin}, args...)
					o.env = []string{"SPY_LOG=" + spyLog, "SPY_WORKER=" + workerBin}
				}
				r := runPoold(t, o, args...)
				lines := stderrLines(r)
				if r.Code != 1 || len(lines) != 1 || !strings.Contains(r.Stderr, "ulimit -n") || !strings.Contains(r.Stderr, "cannot start "+c.n+" workers") {
					t.Errorf("exit status %d and %d lines on stderr; want 1 and one line about the limit (ulimit -n):\n%.3000s", r.Code, len(lines), r.Stderr)
				}
				if r.Stdout != "" {
					t.Errorf("stdout is not empty:\n%.1000s", r.Stdout)
				}
				checkNoProcs(t, r.Tag, time.Second)
			}
			if b, err := os.ReadFile(spyLog); err == nil {
				t.Errorf("poold started %d workers", len(strings.Fields(string(b))))
			}
		})
	}
}

// TestWorkerStartFailsInOneLine: when every worker fails to start, poold
// says so in one line on stderr, not one per failed start.
func TestWorkerStartFailsInOneLine(t *testing.T) {
	t.Parallel()
	failing := writeFile(t, "failing-worker", "#!/bin/sh\necho 'cannot serve today' >&2\nexit 3\n")
	if err := os.Chmod(failing, 0o755); err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	for i := range 50 {
		fmt.Fprintf(&lines, `{"func": "echo", "args": {"value": %d}}`+"\n", i)
	}
	r := runPoold(t, runOpts{stdin: lines.String()}, "-n", "8", "--worker-cmd", failing, "--jsonl", "-")
	if got := stderrLines(r); r.Code != 1 || len(got) != 1 || !strings.HasPrefix(got[0], "poold: worker could not start: ") ||
		!strings.Contains(got[0], "exited with code 3") {
		t.Errorf("exit status %d, stderr %d lines; want 1 and one line, why the workers could not start:\n%s", r.Code, len(got), r.Stderr)
	}
	// The lines are there for whoever asks for them.
	r = runPoold(t, runOpts{stdin: lines.String()}, "-n", "8", "--worker-cmd", failing, "--log-level", "debug", "--jsonl", "-")
	if n := strings.Count(r.Stderr, "worker failed to start"); r.Code != 1 || n < 2 {
		t.Errorf("--log-level debug: exit status %d, %d lines of failed starts; want 1 and several:\n%s", r.Code, n, r.Stderr)
	}
}

// TestWorkerCmdChecked: a --worker-cmd that does not exist or cannot be run
// is a usage error before anything starts, which says which.
func TestWorkerCmdChecked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := writeFile(t, "tasks.json", `[{"func": "echo", "args": {"value": 1}}]`)
	for _, c := range []struct{ cmd, want string }{
		{filepath.Join(dir, "missing"), "--worker-cmd " + filepath.Join(dir, "missing") + ": no such file"},
		{plain, "--worker-cmd " + plain + ": not executable"},
		{dir, "--worker-cmd " + dir + ": is a directory"},
		{"poold-itest-no-such-program", "--worker-cmd poold-itest-no-such-program: no such program in $PATH"},
	} {
		r := runPoold(t, runOpts{}, "--worker-cmd", c.cmd, good)
		checkUsage(t, r, []string{c.want})
		checkNoProcs(t, r.Tag, 0)
	}
}

// TestWorkerNoHello: a worker program that never says hello fails the run
// after one handshake timeout (--start-timeout), with one clear line.
func TestWorkerNoHello(t *testing.T) {
	t.Parallel()
	tasks := writeFile(t, "tasks.json", `[{"func": "echo", "args": {"value": 1}}, {"func": "echo"}, {"func": "echo"}]`)
	r := runPoold(t, runOpts{}, "-n", "3", "--worker-cmd", "/bin/cat", "--start-timeout", "1s", tasks)
	lines := stderrLines(r)
	if r.Code != 1 || len(lines) != 1 || !strings.Contains(lines[0], "worker could not start") || !strings.Contains(lines[0], "no handshake within 1s") {
		t.Errorf("exit status %d, %d lines on stderr; want 1 and one line, the handshake that did not come:\n%s", r.Code, len(lines), r.Stderr)
	}
	if r.Wall < time.Second || r.Wall > 1900*time.Millisecond {
		t.Errorf("took %v; want one handshake timeout of 1s", r.Wall)
	}
	checkNoProcs(t, r.Tag, time.Second)

	for _, bad := range []string{"0", "-1s", "soon"} {
		r := runPoold(t, runOpts{}, "--start-timeout", bad, tasks)
		checkUsage(t, r, []string{"start-timeout"})
	}
}

// TestTimeoutZero: a task's "timeout": "0" (or "0s") means no limit for it,
// whatever --timeout says; a negative one is an error.
func TestTimeoutZero(t *testing.T) {
	t.Parallel()
	sleep := func(id, timeout string, s float64) map[string]any {
		m := map[string]any{"id": id, "func": "sleep", "args": map[string]any{"seconds": s}}
		if timeout != "" {
			m["timeout"] = timeout
		}
		return m
	}
	r := runPoold(t, runOpts{}, "-n", "3", "--json", "--timeout", "300ms",
		writeTasks(t, []any{sleep("zero", "0", 0.8), sleep("zero-s", "0s", 0.8), sleep("limited", "", 5)}))
	if r.Code != 1 {
		t.Errorf("exit status %d, want 1; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	for _, id := range []string{"zero", "zero-s"} {
		if rec := recs[id]; rec == nil || !rec.ok() {
			t.Errorf("%s: %+v; want it to sleep its 0.8 s past --timeout", id, rec)
		}
	}
	if rec := recs["limited"]; rec == nil || rec.ok() || rec.Error.Kind != "timeout" {
		t.Errorf("limited: %+v; want kind timeout from --timeout", rec)
	}
	r = runPoold(t, runOpts{}, writeTasks(t, []any{sleep("neg", "-1s", 0)}))
	checkUsage(t, r, []string{`"timeout" must not be negative`})
}

// TestBigIntegers: an integer beyond 64 bits in args is refused, with how
// to pass it instead, rather than rounded to a float; so is a float beyond
// 2^53 for an integer argument. Integers within 64 bits are exact.
func TestBigIntegers(t *testing.T) {
	t.Parallel()
	const big = "123456789012345678901234567890"
	r := runPoold(t, runOpts{}, writeFile(t, "tasks.json", `[
  {"func": "echo", "args": {"value": 1}},
  {"id": "big", "func": "echo", "args": {"value": `+big+`}}
]`))
	checkUsage(t, r, []string{`entry 1 (id "big", line 3): args.value: the integer ` + big + ` does not fit in 64 bits`,
		`pass it as a string, "` + big + `"`})

	lines := strings.Join([]string{
		`{"id": "big", "func": "echo", "args": {"value": ` + big + `}}`,
		`{"id": "string", "func": "echo", "args": {"value": "` + big + `"}}`,
		`{"id": "max", "func": "echo", "args": {"value": [18446744073709551615, -9223372036854775808, 9007199254740993]}}`,
		`{"id": "rounded", "func": "pow", "args": {"base": 12345678901234567.0, "exp": 1}}`,
		`{"id": "exact", "func": "pow", "args": {"base": 9007199254740992.0, "exp": 1}}`,
	}, "\n")
	r = runPoold(t, runOpts{stdin: lines}, "--json", "--jsonl", "-")
	if r.Code != 1 {
		t.Errorf("exit status %d, want 1; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	if rec := recs["big"]; rec == nil || rec.ok() || rec.Error.Kind != "bad_task" ||
		!strings.Contains(rec.Error.Message, "line 1: args.value: the integer "+big+" does not fit in 64 bits") {
		t.Errorf("big: %+v", rec)
	}
	for id, want := range map[string]string{
		"string": `"` + big + `"`,
		"max":    `[18446744073709551615,-9223372036854775808,9007199254740993]`,
		"exact":  `"9007199254740992"`,
	} {
		if rec := recs[id]; rec == nil || !rec.ok() || string(rec.Result) != want {
			t.Errorf("%s: %+v, result %s; want %s", id, rec, recResult(rec), want)
		}
	}
	if rec := recs["rounded"]; rec == nil || rec.ok() || rec.Error.Kind != "bad_args" || !strings.Contains(rec.Error.Message, "2^53") {
		t.Errorf("rounded: %+v, result %s; want kind bad_args about 2^53", rec, recResult(rec))
	}
}

func recResult(r *record) string {
	if r == nil {
		return "<no record>"
	}
	return string(r.Result)
}

// slowReader yields its parts one after the other, pausing before each
// but the first.
type slowReader struct {
	mu    sync.Mutex
	parts []string
	pause time.Duration
	n     int
}

func (s *slowReader) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.parts) == 0 {
		return 0, io.EOF
	}
	if s.n > 0 {
		time.Sleep(s.pause)
	}
	s.n++
	n := copy(p, s.parts[0])
	if s.parts[0] = s.parts[0][n:]; s.parts[0] == "" {
		s.parts = s.parts[1:]
	}
	return n, nil
}

// TestSlowTaskFile: a task file that takes more than about a second to
// read says so on stderr, then its count; the wall time counts from
// start-up, the reading included. A quick one says nothing.
func TestSlowTaskFile(t *testing.T) {
	t.Parallel()
	// The second part comes 2 s after the first, which may be read before
	// poold starts: poold waits for its input between 1 and 2 s.
	in := &slowReader{pause: 2 * time.Second, parts: []string{
		`[{"func": "echo", "args": {"value": 1}},`, "\n" + `{"func": "echo", "args": {"value": 2}}]`,
	}}
	r := runPoold(t, runOpts{stdinR: in}, "-n", "1", "-")
	if r.Code != 0 {
		t.Errorf("exit status %d; stderr:\n%s", r.Code, r.Stderr)
	}
	lines := stderrLines(r)
	var read time.Duration
	if len(lines) == 2 && lines[0] == "poold: reading stdin…" {
		if m := regexp.MustCompile(`^poold: stdin: 2 tasks, read in (\S+)$`).FindStringSubmatch(lines[1]); m != nil {
			read, _ = time.ParseDuration(m[1])
		}
	}
	if read < time.Second {
		t.Errorf("stderr: want a line when the reading is slow, then the count and the time (over 1 s):\n%s", r.Stderr)
	}
	m := regexp.MustCompile(`(?m)^2 tasks: 2 ok, .*; wall time (\S+)$`).FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("no summary:\n%s", r.Stdout)
	}
	if wall, err := time.ParseDuration(m[1]); err != nil || wall < max(read, time.Second) {
		t.Errorf("the summary's wall time is %s; the reading alone took %v", m[1], read)
	}

	r = runPoold(t, runOpts{}, "-n", "1", writeFile(t, "tasks.json", `[{"func": "echo", "args": {"value": 1}}]`))
	if r.Code != 0 || r.Stderr != "" {
		t.Errorf("a quick file: exit status %d, stderr %q; want 0 and nothing", r.Code, r.Stderr)
	}
}
