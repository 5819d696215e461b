package integration_test

// Black-box tests of `poold serve` through the real binary: its flags reach
// the pool, signals end it as they end the command, it fails fast when its
// workers cannot start, and control lines that are wrong get a reply and
// leave the server running.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lineWait bounds each wait for a line from a server: a hang fails the test.
const lineWait = 20 * time.Second

// serveSession is a running `poold serve` whose standard input the test
// writes line by line and keeps open until it closes it or poold exits.
type serveSession struct {
	*pooldCmd
	in   *os.File
	read []string // lines that await read and that matched nothing yet
}

// startServe starts `poold serve args...` with its stdin on a pipe (an
// *os.File, so that exec.Cmd.Wait does not wait for the test's end of it).
func startServe(t *testing.T, o runOpts, args ...string) *serveSession {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	o.stdinR = pr
	if o.timeout == 0 {
		o.timeout = 30 * time.Second
	}
	c := startPoold(t, o, append([]string{"serve"}, args...)...)
	pr.Close()
	t.Cleanup(func() { pw.Close() })
	return &serveSession{pooldCmd: c, in: pw}
}

// send writes each of lines to the server: a string as it is, anything
// else as JSON.
func (s *serveSession) send(t *testing.T, lines ...any) {
	t.Helper()
	for _, l := range lines {
		text, ok := l.(string)
		if !ok {
			b, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			text = string(b)
		}
		if _, err := s.in.WriteString(text + "\n"); err != nil {
			t.Fatalf("writing to poold serve: %v; stderr:\n%s", err, s.stderr)
		}
	}
}

// await returns the first line of the server's output, not yet returned,
// for which match is true, reading on until one comes. (Every line stays
// in the output that wait returns.)
func (s *serveSession) await(t *testing.T, what string, match func(line string) bool) string {
	t.Helper()
	if i := slices.IndexFunc(s.read, match); i >= 0 {
		line := s.read[i]
		s.read = slices.Delete(s.read, i, i+1)
		return line
	}
	timeout := time.After(lineWait)
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				t.Fatalf("poold serve ended before %s; stderr:\n%s", what, s.stderr)
			}
			if match(line) {
				return line
			}
			s.read = append(s.read, line)
		case <-timeout:
			t.Fatalf("no %s from poold serve after %v; stderr:\n%s", what, lineWait, s.stderr)
		}
	}
}

// result waits for the result line of task id.
func (s *serveSession) result(t *testing.T, id string) *record {
	t.Helper()
	line := s.await(t, "result of "+id, func(l string) bool { return strings.HasPrefix(l, `{"id":`+strconv.Quote(id)+",") })
	return parseRecords(t, line)[id]
}

// serveStatsReply is a server's reply to {"control":"stats"}.
type serveStatsReply struct {
	Received       int `json:"received"`
	InFlight       int `json:"in_flight"`
	Workers        int `json:"workers"`
	WorkersStarted int `json:"workers_started"`
}

// waitStats asks for the stats until ready says they are what the test
// waits for, and returns them.
func (s *serveSession) waitStats(t *testing.T, ready func(serveStatsReply) bool) serveStatsReply {
	t.Helper()
	deadline := time.Now().Add(lineWait)
	for {
		s.send(t, `{"control":"stats"}`)
		var reply struct{ Stats *serveStatsReply }
		line := s.await(t, "stats reply", func(l string) bool { return strings.HasPrefix(l, `{"control":"stats"`) })
		if err := json.Unmarshal([]byte(line), &reply); err != nil || reply.Stats == nil {
			t.Fatalf("stats reply %s: %v", line, err)
		}
		if ready(*reply.Stats) {
			return *reply.Stats
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats after %v: %s", lineWait, line)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// splitServeOutput separates a server's stdout into its results (checked
// by parseRecords: each id once) and its control replies, in order.
func splitServeOutput(t *testing.T, stdout string) (map[string]*record, []map[string]any) {
	t.Helper()
	var results []string
	var controls []map[string]any
	for line := range strings.SplitSeq(strings.TrimSuffix(stdout, "\n"), "\n") {
		if !strings.HasPrefix(line, `{"control":`) {
			results = append(results, line)
			continue
		}
		var c map[string]any
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("control reply %s: %v", line, err)
		}
		controls = append(controls, c)
	}
	return parseRecords(t, strings.Join(results, "\n")), controls
}

// recordTime parses a record's start or end.
func recordTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("record time %q: %v", s, err)
	}
	return tm
}

// TestServeFlagsReachThePool: -n, --timeout, --retries and --retry-on of
// `poold serve` act on its tasks as on the command's.
func TestServeFlagsReachThePool(t *testing.T) {
	t.Parallel()
	s := startServe(t, runOpts{}, "-n", "3", "--timeout", "300ms", "--retries", "1", "--retry-on", "worker_lost")

	// -n 3: three sleeps sent together run at once, on three workers.
	// Their own time limit lifts --timeout's.
	para := sleeps(3, 1.5)
	for i := range para {
		para[i].Timeout = "30s"
		s.send(t, para[i])
	}
	pids := map[int]bool{}
	var recs []*record
	for _, p := range para {
		rec := s.result(t, p.ID)
		if !rec.ok() {
			t.Fatalf("%s: %+v", p.ID, rec.Error)
		}
		pids[rec.PID] = true
		recs = append(recs, rec)
	}
	if len(pids) != 3 {
		t.Errorf("3 sleeps sent together ran on %d worker pids, want 3 (-n 3)", len(pids))
	}
	for _, a := range recs {
		for _, b := range recs {
			if a != b && !recordTime(t, a.Start).Before(recordTime(t, b.End)) {
				t.Errorf("%s started at %s, after %s ended at %s: not in parallel", a.ID, a.Start, b.ID, b.End)
			}
		}
	}
	if st := s.waitStats(t, func(serveStatsReply) bool { return true }); st.Workers != 3 {
		t.Errorf("stats: %d workers, want 3", st.Workers)
	}

	// --timeout: a sleep past 300 ms is stopped, and not retried, since
	// --retry-on leaves timeout out (the default has it).
	s.send(t, task{ID: "slow", Func: "sleep", Args: map[string]any{"seconds": 10}})
	if rec := s.result(t, "slow"); rec.ok() || rec.Error.Kind != "timeout" || rec.Attempts != 1 || !strings.Contains(rec.Error.Message, "time limit of 300ms") {
		t.Errorf("slow: %+v, attempts %d; want kind timeout (time limit of 300ms) after 1 attempt", rec.Error, rec.Attempts)
	}

	// --retries 1 --retry-on worker_lost: a task that kills its worker
	// every time fails after 2 attempts; one that kills it only the first
	// time (a marker file says it ran) succeeds on its retry.
	marker := filepath.Join(t.TempDir(), "ran")
	once := execTask("once", fmt.Sprintf(`if [ -e %s ]; then echo again; else : > %s; kill -9 $PPID; fi`, marker, marker))
	once["timeout"] = "30s" // a loaded machine may start sh slowly
	s.send(t, task{ID: "crash", Func: "crash", Args: map[string]any{"mode": "kill"}}, once)
	if rec := s.result(t, "crash"); rec.ok() || rec.Error.Kind != "worker_lost" || rec.Attempts != 2 {
		t.Errorf("crash: %+v, attempts %d; want kind worker_lost after 2 attempts", rec.Error, rec.Attempts)
	}
	if rec := s.result(t, "once"); !rec.ok() || rec.Attempts != 2 || !strings.Contains(string(rec.Result), `"stdout":"again\n"`) {
		t.Errorf("once: %+v, result %s, attempts %d; want ok on its second attempt", rec.Error, rec.Result, rec.Attempts)
	}

	s.in.Close()
	r := s.wait(t)
	if r.Code != 0 {
		t.Errorf("exit status %d at EOF, want 0; stderr:\n%s", r.Code, r.Stderr)
	}
	checkNoProcs(t, r.Tag, time.Second)
}

// TestServeModeThreadsRunsInPoold: with --mode threads the results' pid is
// poold's own.
func TestServeModeThreadsRunsInPoold(t *testing.T) {
	t.Parallel()
	s := startServe(t, runOpts{}, "--mode", "threads", "-n", "2")
	s.send(t, echoTask("e0", 0), echoTask("e1", 1))
	for i, id := range []string{"e0", "e1"} {
		rec := s.result(t, id)
		checkEcho(t, id, i, rec)
		if rec.PID != s.cmd.Process.Pid {
			t.Errorf("%s: pid %d, want poold's %d", id, rec.PID, s.cmd.Process.Pid)
		}
	}
	s.in.Close()
	if r := s.wait(t); r.Code != 0 {
		t.Errorf("exit status %d, want 0; stderr:\n%s", r.Code, r.Stderr)
	}
}

// TestServeWorkerCmdRunsTheTasks: with --worker-cmd the tasks run in
// processes of that program.
func TestServeWorkerCmdRunsTheTasks(t *testing.T) {
	t.Parallel()
	s := startServe(t, runOpts{}, "-n", "1", "--worker-cmd", workerBin)
	s.send(t, echoTask("e0", 0))
	rec := s.result(t, "e0")
	checkEcho(t, "e0", 0, rec)
	// The worker idles, alive, while stdin stays open.
	if !slices.ContainsFunc(liveProcs(s.tag), func(p proc) bool { return p.PID == rec.PID && p.Exe == "worker" }) {
		t.Errorf("e0 ran in pid %d, not a process of --worker-cmd %s: %v", rec.PID, workerBin, liveProcs(s.tag))
	}
	s.in.Close()
	if r := s.wait(t); r.Code != 0 {
		t.Errorf("exit status %d, want 0; stderr:\n%s", r.Code, r.Stderr)
	}
}

// TestServeSignalTerminatesWhatRuns: SIGTERM or SIGINT to a server whose
// stdin is still open ends it at once with 143 or 130: every task sent has
// exactly one result (the finished one ok, the running and queued ones
// terminated), and no worker is left.
func TestServeSignalTerminatesWhatRuns(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(unixSignalName(sig), func(t *testing.T) {
			t.Parallel()
			s := startServe(t, runOpts{}, "-n", "2")
			s.send(t, echoTask("echo-0", 0))
			s.result(t, "echo-0")
			long := sleeps(4, 30)
			for _, l := range long {
				s.send(t, l)
			}
			s.waitStats(t, func(st serveStatsReply) bool { return st.InFlight == len(long) && st.WorkersStarted == 2 })
			workers := workersOf(t, s.pooldCmd, 2, 10*time.Second)

			s.cmd.Process.Signal(sig)
			signalled := time.Now()
			r := s.wait(t)
			if took := time.Since(signalled); took > 5*time.Second {
				t.Errorf("poold serve took %v to exit after %v", took, sig)
			}
			if want := 128 + int(sig); r.Code != want {
				t.Errorf("exit status %d, want %d; stderr:\n%s", r.Code, want, r.Stderr)
			}
			if left := waitDead(workers, time.Second); len(left) > 0 {
				t.Errorf("workers %v still running 1 s after poold exited", left)
			}
			checkNoProcs(t, r.Tag, 0)

			recs, _ := splitServeOutput(t, r.Stdout)
			if len(recs) != 1+len(long) {
				t.Errorf("%d results, want %d; stdout:\n%s", len(recs), 1+len(long), r.Stdout)
			}
			checkEcho(t, "echo-0", 0, recs["echo-0"])
			for _, l := range long {
				if rec := recs[l.ID]; rec == nil || rec.ok() || rec.Error.Kind != "terminated" {
					t.Errorf("%s: %+v, want kind terminated", l.ID, rec)
				}
			}
			if want := "interrupted by " + unixSignalName(sig); !strings.Contains(r.Stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, r.Stderr)
			}
		})
	}
}

// TestServeSignalBeforeAnyTask: a server that has read nothing yet, its
// stdin open, still ends on SIGTERM as the command does: exit status 143
// (not death by the signal) and the summary.
func TestServeSignalBeforeAnyTask(t *testing.T) {
	t.Parallel()
	s := startServe(t, runOpts{}, "-n", "2")
	deadline := time.Now().Add(lineWait)
	for !strings.Contains(s.stderr.String(), "poold: streaming tasks from stdin") {
		if time.Now().After(deadline) {
			t.Fatalf("no header on stderr after %v with stdin open; stderr:\n%s", lineWait, s.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The header is written once the signals are watched (run.go).
	s.cmd.Process.Signal(syscall.SIGTERM)
	r := s.wait(t)
	if code := s.cmd.ProcessState.ExitCode(); code != 143 {
		t.Errorf("%v (exit code %d), want exit status 143; stderr:\n%s", s.cmd.ProcessState, code, r.Stderr)
	}
	for _, want := range []string{"interrupted by SIGTERM", "0 tasks: 0 ok"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.Stderr)
		}
	}
	checkNoProcs(t, r.Tag, time.Second)
}

// TestServeWorkersCannotStart: a server whose workers cannot start exits
// promptly with a message, even with its stdin still open.
func TestServeWorkersCannotStart(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, s *serveSession, code int, want ...string) {
		t.Helper()
		s.timeout = 10 * time.Second // wait fails the test past this
		r := s.wait(t)
		if r.Code != code {
			t.Errorf("exit status %d, want %d; stderr:\n%s", r.Code, code, r.Stderr)
		}
		for _, w := range want {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("stderr does not say %q:\n%s", w, r.Stderr)
			}
		}
		checkNoProcs(t, r.Tag, time.Second)
	}
	// A program that does not exist is a usage error (README: --worker-cmd),
	// found before anything is read.
	t.Run("no such program", func(t *testing.T) {
		t.Parallel()
		check(t, startServe(t, runOpts{}, "--worker-cmd", "/no/such/program"), 2, "--worker-cmd /no/such/program: no such file")
	})
	// Too many workers for the open-file limit: refused before any starts,
	// without waiting for a first line.
	t.Run("open-file limit", func(t *testing.T) {
		t.Parallel()
		check(t, startServe(t, runOpts{nofile: 30}, "-n", "50"), 1, "cannot start 50 workers", "ulimit -n")
	})
	// One that exists but dies at once fails the server (status 1) when
	// the first task needs a worker: no worker starts before.
	t.Run("worker dies at start", func(t *testing.T) {
		t.Parallel()
		failing := writeFile(t, "failing-worker", "#!/bin/sh\necho 'cannot serve today' >&2\nexit 3\n")
		os.Chmod(failing, 0o755)
		s := startServe(t, runOpts{}, "-n", "2", "--worker-cmd", failing)
		s.send(t, echoTask("e0", 0))
		check(t, s, 1, "worker could not start", "exited with code 3", "cannot serve today")
	})
}

// TestServeControlLineErrors: a wrong control line gets a reply with
// "error" and the server goes on; a task line without an "id" gets its
// position among the task lines as its id; cancel says whether the id was
// in flight.
func TestServeControlLineErrors(t *testing.T) {
	t.Parallel()
	s := startServe(t, runOpts{}, "-n", "1")
	s.send(t,
		`{"control":"reboot"}`,
		`{"control":"cancel"}`,
		`{"control":"cancel","id":"nobody"}`,
		echoTask("first", 0),
		`{"func":"echo","args":{"value":7}}`, // task line 1, after control lines that do not count
		task{ID: "nap", Func: "sleep", Args: map[string]any{"seconds": 30}},
	)
	s.result(t, "first")
	s.waitStats(t, func(st serveStatsReply) bool { return st.InFlight == 1 }) // nap runs
	s.send(t, `{"control":"cancel","id":"nap"}`)
	if rec := s.result(t, "nap"); rec.ok() || rec.Error.Kind != "canceled" {
		t.Errorf("nap: %+v, want kind canceled", rec.Error)
	}
	// Done: no longer in flight.
	s.send(t, `{"control":"cancel","id":"nap"}`, `{"control":"cancel","id":"first"}`, echoTask("last", 3))
	s.result(t, "last")
	s.in.Close()
	r := s.wait(t)
	if r.Code != 0 {
		t.Errorf("exit status %d, want 0; stderr:\n%s", r.Code, r.Stderr)
	}

	recs, controls := splitServeOutput(t, r.Stdout)
	checkEcho(t, "first", 0, recs["first"])
	checkEcho(t, "last", 3, recs["last"])
	if rec := recs["1"]; rec == nil || !rec.ok() || *rec.Index != 1 || string(rec.Result) != "7" {
		t.Errorf(`the task line without an id: %+v, want id "1" (its position), index 1, result 7; stdout:\n%s`, rec, r.Stdout)
	}
	var cancels []string
	for _, c := range controls {
		switch {
		case c["control"] == "stats":
		case c["error"] != nil:
			cancels = append(cancels, fmt.Sprintf("%v: error", c["control"]))
			if !strings.HasPrefix(c["error"].(string), "line ") {
				t.Errorf("control error %q does not name its line", c["error"])
			}
		default:
			cancels = append(cancels, fmt.Sprintf("%v %v: %v", c["control"], c["id"], c["cancelled"]))
		}
	}
	want := []string{"reboot: error", "cancel: error", "cancel nobody: false", "cancel nap: true", "cancel nap: false", "cancel first: false"}
	if !slices.Equal(cancels, want) {
		t.Errorf("control replies %q, want %q; stdout:\n%s", cancels, want, r.Stdout)
	}
}
