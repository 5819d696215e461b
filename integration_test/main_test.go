// Package integration_test holds black-box tests of the real binaries: the
// poold command and the standalone worker (cmd/worker), built once by
// TestMain and run as users run them, plus tests of the public Go API that
// use the built worker through poold.WithWorkerCommand.
//
// Tests that start poold as a subprocess run in parallel; tests that embed a
// pool in this process (and count its goroutines and file descriptors) run
// one at a time, before the parallel ones.
package integration_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The binaries under test, built by TestMain.
var (
	pooldBin  string
	workerBin string
	spyBin    string // a worker program that logs each start, then runs workerBin
	rootDir   string // the module's root
)

// spyScript is a --worker-cmd that records every worker start in $SPY_LOG:
// a run that must start no worker can prove it.
const spyScript = `#!/bin/sh
echo "$$" >> "$SPY_LOG"
exec "$SPY_WORKER" "$@"
`

// tagVar marks the processes a test starts: every process started by a
// test carries tagVar=<a tag unique to that run> in its environment, and
// workers inherit it, so that a test finds its own processes (and nobody
// else's) in /proc even while other tests run.
const tagVar = "POOLD_ITEST_TAG"

// debugEnv is in the environment of every process the tests start:
// os/exec then panics (naming where the command was made) on an exec.Cmd
// that was started and never waited for.
const debugEnv = "GODEBUG=execwait=2"

// helperVar makes the test binary act as a small embedding program instead
// of running tests (see TestMain and helperMain).
const helperVar = "POOLD_ITEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperVar); mode != "" {
		os.Exit(helperMain(mode))
	}
	// The same debugging aid in this process, for the pools the API tests
	// embed (os/exec reads GODEBUG changes made with os.Setenv).
	os.Setenv("GODEBUG", "execwait=2")
	// A Go fatal error must end a worker with exit status 2, as the crash
	// tests expect; GOTRACEBACK=crash would turn it into SIGABRT.
	os.Unsetenv("GOTRACEBACK")

	code, err := buildAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration_test:", err)
		code = 1
	}
	os.Exit(code)
}

func buildAndRun(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "poold-itest-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	pooldBin = filepath.Join(dir, "poold")
	workerBin = filepath.Join(dir, "worker")

	root, err := moduleRoot()
	if err != nil {
		return 1, err
	}
	rootDir = root
	spyBin = filepath.Join(dir, "spy-worker")
	if err := os.WriteFile(spyBin, []byte(spyScript), 0o755); err != nil {
		return 1, err
	}
	// go test puts its own GOROOT/bin first in PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		return 1, fmt.Errorf("no go command to build the binaries: %w", err)
	}
	for bin, pkg := range map[string]string{pooldBin: "./cmd/poold", workerBin: "./cmd/worker"} {
		cmd := exec.Command(goTool, "build", "-o", bin, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return 1, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}

	code := m.Run()

	// Whatever the tests did, nothing of theirs may outlive them.
	if left := waitNoProcs("", 2*time.Second); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "integration_test: processes of the built binaries still running after the tests: %v\n", left)
		for _, p := range left {
			syscall.Kill(p.PID, syscall.SIGKILL)
		}
		code = max(code, 1)
	}
	// Run the finalizers that GODEBUG=execwait=2 installed on every
	// exec.Cmd: a Cmd started and never waited for panics now.
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "integration_test: goroutines leaked by the tests: %v\n", err)
			code = 1
		}
	}
	return code, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		// The tests run in integration_test/, one level below the root.
		return filepath.Abs("..")
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// ---------------------------------------------------------------------------
// Processes.

// proc is a live process running one of the built binaries.
type proc struct {
	PID, PPID int
	Exe       string // "poold" or "worker"
	Tag       string
}

func (p proc) String() string {
	return fmt.Sprintf("%s pid %d (ppid %d, tag %q)", p.Exe, p.PID, p.PPID, p.Tag)
}

// liveProcs lists the live processes whose executable is one of the built
// binaries and, unless tag is "", whose environment carries that tag.
// Zombies do not count: their executable can no longer be read.
func liveProcs(tag string) []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		panic(err)
	}
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil {
			continue
		}
		var name string
		switch exe {
		case pooldBin:
			name = "poold"
		case workerBin:
			name = "worker"
		default:
			continue
		}
		p := proc{PID: pid, Exe: name, PPID: ppidOf(pid), Tag: tagOf(pid)}
		if tag != "" && p.Tag != tag {
			continue
		}
		if stateOf(pid) == 'Z' {
			continue
		}
		out = append(out, p)
	}
	return out
}

func tagOf(pid int) string {
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return ""
	}
	for kv := range bytes.SplitSeq(env, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(tagVar+"=")); ok {
			return string(v)
		}
	}
	return ""
}

// statFields returns the fields of /proc/PID/stat after the command name.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

func ppidOf(pid int) int {
	f := statFields(pid)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

func stateOf(pid int) byte {
	f := statFields(pid)
	if len(f) < 1 || f[0] == "" {
		return 0
	}
	return f[0][0]
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	s := stateOf(pid)
	return s != 0 && s != 'Z'
}

// waitNoProcs waits up to d for every process of tag (every process of the
// built binaries, for "") to be gone, and returns those still running.
func waitNoProcs(tag string, d time.Duration) []proc {
	deadline := time.Now().Add(d)
	for {
		left := liveProcs(tag)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkNoProcs fails the test if a process of tag is still running d after
// the call, and kills it.
func checkNoProcs(t *testing.T, tag string, d time.Duration) {
	t.Helper()
	if left := waitNoProcs(tag, d); len(left) > 0 {
		t.Errorf("%d process(es) still running %v after the end: %v", len(left), d, left)
		for _, p := range left {
			syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
}

var tagSeq atomic.Int64

// newTag returns a tag unique to this test run.
func newTag(t *testing.T) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return fmt.Sprintf("%s-%d-%d", name, os.Getpid(), tagSeq.Add(1))
}

// ---------------------------------------------------------------------------
// Running poold.

// runResult is one finished run of poold.
type runResult struct {
	Stdout, Stderr string
	Code           int
	Wall           time.Duration
	PID            int
	Tag            string
}

// runOpts adjusts a run.
type runOpts struct {
	stdin   string
	stdinR  io.Reader // instead of stdin
	env     []string
	timeout time.Duration // default 60 s: a hung poold fails the test
	nofile  int           // if not 0, poold's limit of open files (ulimit -n)
}

// runPoold runs the built poold with args and waits for it.
func runPoold(t *testing.T, o runOpts, args ...string) *runResult {
	t.Helper()
	c := startPoold(t, o, args...)
	return c.wait(t)
}

// pooldCmd is a poold process started by a test.
type pooldCmd struct {
	cmd      *exec.Cmd
	tag      string
	start    time.Time
	timeout  time.Duration
	stderr   *syncBuffer
	lines    chan string // stdout, line by line; closed at EOF
	mu       sync.Mutex
	stdout   strings.Builder
	readDone chan struct{}
}

func startPoold(t *testing.T, o runOpts, args ...string) *pooldCmd {
	t.Helper()
	tag := newTag(t)
	cmd := exec.Command(pooldBin, args...)
	if o.nofile > 0 {
		// The shell sets the limit, then becomes poold (same pid).
		cmd = exec.Command("/bin/sh", append([]string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, o.nofile), pooldBin}, args...)...)
	}
	cmd.Env = append(os.Environ(), debugEnv, tagVar+"="+tag)
	cmd.Env = append(cmd.Env, o.env...)
	if o.stdin != "" {
		cmd.Stdin = strings.NewReader(o.stdin)
	}
	if o.stdinR != nil {
		cmd.Stdin = o.stdinR
	}
	c := &pooldCmd{cmd: cmd, tag: tag, stderr: &syncBuffer{}, lines: make(chan string, 1<<16), readDone: make(chan struct{}), timeout: o.timeout}
	if c.timeout == 0 {
		c.timeout = 60 * time.Second
	}
	cmd.Stderr = c.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.readDone)
		defer close(c.lines)
		br := bufio.NewReaderSize(out, 1<<20)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				c.mu.Lock()
				c.stdout.WriteString(line)
				c.mu.Unlock()
				select {
				case c.lines <- strings.TrimSuffix(line, "\n"):
				default: // nobody reads the lines of this run
				}
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			<-c.readDone
			c.cmd.Wait()
		}
		for _, p := range liveProcs(tag) {
			syscall.Kill(p.PID, syscall.SIGKILL)
		}
	})
	return c
}

// wait waits for poold to exit (killing it after its timeout).
func (c *pooldCmd) wait(t *testing.T) *runResult {
	t.Helper()
	timer := time.AfterFunc(c.timeout, func() {
		// Poold, and anything of the run that might hold its stdout open.
		c.cmd.Process.Kill()
		for _, p := range liveProcs(c.tag) {
			syscall.Kill(p.PID, syscall.SIGKILL)
		}
	})
	<-c.readDone
	err := c.cmd.Wait()
	wall := time.Since(c.start)
	if !timer.Stop() {
		t.Fatalf("poold %v did not finish within %v; stderr:\n%s", c.cmd.Args[1:], c.timeout, c.stderr)
	}
	code := c.cmd.ProcessState.ExitCode()
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal())
	} else if err != nil && code < 0 {
		t.Fatalf("poold: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &runResult{Stdout: c.stdout.String(), Stderr: c.stderr.String(), Code: code, Wall: wall, PID: c.cmd.Process.Pid, Tag: c.tag}
	if strings.Contains(r.Stderr, "leaked exec.Cmd") {
		t.Errorf("poold leaked an exec.Cmd (GODEBUG=execwait=2):\n%s", r.Stderr)
	}
	return r
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeFile writes a task file into the test's temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeTasks writes tasks as a JSON task file.
func writeTasks(t *testing.T, tasks any) string {
	t.Helper()
	b, err := json.MarshalIndent(tasks, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "tasks.json", string(b))
}

// task is an entry of a task file.
type task struct {
	ID      string `json:"id,omitempty"`
	Func    string `json:"func,omitempty"`
	Map     string `json:"map,omitempty"`
	Args    any    `json:"args,omitempty"`
	Timeout string `json:"timeout,omitempty"`
	Chunk   int    `json:"chunksize,omitempty"`
}

// ---------------------------------------------------------------------------
// --json output.

// record is one line of poold --json.
type record struct {
	ID         string          `json:"id"`
	Index      *int            `json:"index"`
	Func       string          `json:"func"`
	OK         *bool           `json:"ok"`
	Result     json.RawMessage `json:"result"`
	Error      *recordError    `json:"error"`
	Host       string          `json:"host"`
	PID        int             `json:"pid"`
	Attempts   int             `json:"attempts"`
	Start      string          `json:"start"`
	End        string          `json:"end"`
	DurationMS float64         `json:"duration_ms"`
	CPUMS      *float64        `json:"cpu_ms"`        // null when unknown
	MaxRSS     *int64          `json:"max_rss_bytes"` // null when unknown
	Output     *string         `json:"output"`
}

type recordError struct {
	Kind     string          `json:"kind"`
	Message  string          `json:"message"`
	PID      int             `json:"pid"`
	ExitCode *int            `json:"exit_code"`
	Signal   string          `json:"signal"`
	CoreDump bool            `json:"core_dump"`
	Reason   string          `json:"reason"`
	Stdout   *string         `json:"stdout"` // kind exit_status: the command's
	Stderr   stderrField     `json:"stderr"`
	Stack    string          `json:"stack"`
	Type     string          `json:"type"`
	Detail   json.RawMessage `json:"detail"`
}

// stderrField is an error's "stderr": the last lines of a worker that
// ended under the task (an array), or, for kind exit_status, what the
// command wrote (a string).
type stderrField struct {
	Lines []string // the worker's
	Text  *string  // the command's
}

func (f *stderrField) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &f.Text)
	}
	return json.Unmarshal(b, &f.Lines)
}

func (r *record) ok() bool { return r.OK != nil && *r.OK }

// parseRecords parses poold --json output: every line must be one JSON
// object with the mandatory fields, and each id must appear once.
func parseRecords(t *testing.T, stdout string) map[string]*record {
	t.Helper()
	recs := map[string]*record{}
	for i, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		if line == "" && stdout == "" {
			break
		}
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("stdout line %d is not a --json record: %v\n%s", i+1, err, line)
		}
		if r.ID == "" || r.Index == nil || r.OK == nil || r.Func == "" {
			t.Fatalf("stdout line %d lacks id, index, ok or func: %s", i+1, line)
		}
		if r.ok() && (r.Result == nil || r.Error != nil) {
			t.Errorf("record %s: ok without a result, or with an error: %s", r.ID, line)
		}
		if !r.ok() && (r.Error == nil || r.Result != nil) {
			t.Errorf("record %s: failed without an error, or with a result: %s", r.ID, line)
		}
		if _, dup := recs[r.ID]; dup {
			t.Errorf("record %s printed twice", r.ID)
		}
		recs[r.ID] = &r
	}
	return recs
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ctxT is a context that ends after d or with the test.
func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// runWithUsage runs poold with args and POOLD_USAGE_FD, failing the test
// unless it exits 0, and returns its usage report (decoded and as it was
// written) and its stderr.
func runWithUsage(t *testing.T, args ...string) (usage map[string]float64, raw, stderr string) {
	t.Helper()
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	cmd := exec.Command(pooldBin, args...)
	cmd.Env = append(os.Environ(), debugEnv, tagVar+"="+newTag(t), "POOLD_USAGE_FD=3")
	cmd.ExtraFiles = []*os.File{wr}
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	err = cmd.Start()
	wr.Close()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(rd)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("poold: %v; stderr:\n%s", err, errBuf.String())
	}
	if err := json.Unmarshal(b.Bytes(), &usage); err != nil {
		t.Fatalf("usage report %q: %v", b.String(), err)
	}
	return usage, b.String(), errBuf.String()
}
