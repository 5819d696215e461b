package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
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

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/poold/poold"
)

func TestMain(m *testing.M) {
	// The pool's workers are this test binary re-executed. Under a script
	// their argv[0] is "poold" and testscript.Main runs main, which serves;
	// for the in-process tests it is the test binary's own name, which
	// testscript.Main would take for a test run: serve before it looks.
	// The runs of poold compare are this binary too, told apart by the
	// usage report that compare asks every run for.
	if poold.IsWorker() || os.Getenv(usageFDVar) != "" {
		main()
	}
	testscript.Main(m, map[string]func(){
		"poold":  main,
		"sigrun": sigrunMain,
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			// Workers inherit the environment: this marks the ones a script
			// started, for noworkers.
			env.Setenv("POOLD_SCRIPT_ID", env.WorkDir)
			// Under -race every process sleeps 1 s at exit, so that racing
			// goroutines can still report; a script starts dozens of them.
			env.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":     cmdExitcode,
			"checkresults": cmdCheckResults,
			"noworkers":    cmdNoWorkers,
			"echolines":    cmdEchoLines,
		},
	})
}

// exitcode N command [args...] runs the command, like exec, and checks
// that it exits with status N.
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("%s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// checkresults [flags] checks that the stdout of the last command is
// poold --json output and nothing else, with every field the format
// promises, and that no task ran in the parent (whose pid the header on
// stderr names).
func cmdCheckResults(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! checkresults")
	}
	fs := flag.NewFlagSet("checkresults", flag.ContinueOnError)
	n := fs.Int("n", -1, "number of results")
	nOK := fs.Int("ok", -1, "number of successes")
	nFailed := fs.Int("failed", -1, "number of failures")
	pids := fs.Int("pids", -1, "number of distinct worker pids")
	minSpan := fs.Duration("minspan", 0, "least time from the first start to the last end")
	maxSpan := fs.Duration("maxspan", 0, "most time from the first start to the last end")
	minOutput := fs.String("minoutput", "", "ID=BYTES: the least output of task ID")
	ts.Check(fs.Parse(args))

	parent := parentPID(ts)
	recs := parseRecords(ts, ts.ReadFile("stdout"))
	ok, failed := 0, 0
	seenPIDs, seenIDs := map[int]bool{}, map[string]bool{}
	var first, last time.Time
	for i, r := range recs {
		checkRecord(ts, i, r, len(recs), parent)
		if seenIDs[r.ID] {
			ts.Fatalf("line %d: id %q seen twice", i+1, r.ID)
		}
		seenIDs[r.ID] = true
		if r.PID != 0 {
			seenPIDs[r.PID] = true
		}
		if r.OK {
			ok++
		} else {
			failed++
		}
		if r.Start != nil && (first.IsZero() || r.Start.Before(first)) {
			first = *r.Start
		}
		if r.End != nil && r.End.After(last) {
			last = *r.End
		}
	}
	indexes := make([]int, len(recs))
	for i, r := range recs {
		indexes[i] = r.Index
	}
	slices.Sort(indexes)
	for i, x := range indexes {
		if x != i {
			ts.Fatalf("indexes %v are not 0..%d", indexes, len(recs)-1)
		}
	}
	expect := func(what string, got, want int) {
		if want >= 0 && got != want {
			ts.Fatalf("%d %s, want %d", got, what, want)
		}
	}
	expect("results", len(recs), *n)
	expect("successes", ok, *nOK)
	expect("failures", failed, *nFailed)
	expect("distinct worker pids", len(seenPIDs), *pids)
	span := last.Sub(first)
	if *minSpan > 0 && span < *minSpan {
		ts.Fatalf("tasks ran within %v, want at least %v", span, *minSpan)
	}
	if *maxSpan > 0 && span > *maxSpan {
		ts.Fatalf("tasks ran within %v, want at most %v", span, *maxSpan)
	}
	if *minOutput != "" {
		id, size, _ := strings.Cut(*minOutput, "=")
		want, err := strconv.Atoi(size)
		ts.Check(err)
		i := slices.IndexFunc(recs, func(r record) bool { return r.ID == id })
		if i < 0 {
			ts.Fatalf("no result with id %q", id)
		}
		if got := len(recs[i].Output); got < want {
			ts.Fatalf("task %q: %d bytes of output, want at least %d", id, got, want)
		}
	}
}

// record is a line of --json output, with pointers where a field may be
// absent.
type record struct {
	ID         string          `json:"id"`
	Index      int             `json:"index"`
	Func       string          `json:"func"`
	OK         bool            `json:"ok"`
	Result     json.RawMessage `json:"result"`
	Error      *jsonError      `json:"error"`
	Host       string          `json:"host"`
	PID        int             `json:"pid"`
	Attempts   int             `json:"attempts"`
	Start      *time.Time      `json:"start"`
	End        *time.Time      `json:"end"`
	DurationMS *float64        `json:"duration_ms"`
	CPUMS      *float64        `json:"cpu_ms"`
	MaxRSS     *int64          `json:"max_rss_bytes"`
	Output     string          `json:"output"`
}

func parseRecords(ts *testscript.TestScript, stdout string) []record {
	var recs []record
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(nil, 64<<20)
	for line := 1; sc.Scan(); line++ {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var r record
		if err := dec.Decode(&r); err != nil {
			ts.Fatalf("stdout line %d is not a result: %v\n%.300s", line, err, sc.Text())
		}
		var fields map[string]json.RawMessage
		ts.Check(json.Unmarshal(sc.Bytes(), &fields))
		for _, k := range []string{"id", "index", "func", "ok", "host", "pid", "attempts", "duration_ms", "cpu_ms", "max_rss_bytes"} {
			if _, ok := fields[k]; !ok {
				ts.Fatalf("stdout line %d has no %q: %.300s", line, k, sc.Text())
			}
		}
		if _, ok := fields["output"]; ok && r.Output == "" {
			ts.Fatalf("stdout line %d has an empty output; it should be absent", line)
		}
		recs = append(recs, r)
	}
	ts.Check(sc.Err())
	return recs
}

func checkRecord(ts *testscript.TestScript, i int, r record, n, parent int) {
	where := fmt.Sprintf("result %d (id %q)", i+1, r.ID)
	switch {
	case r.ID == "" || r.Func == "":
		ts.Fatalf("%s: no id or func", where)
	case r.Index < 0 || r.Index >= n:
		ts.Fatalf("%s: index %d out of range", where, r.Index)
	case r.OK && (r.Result == nil || r.Error != nil):
		ts.Fatalf("%s: ok, but result %s and error %+v", where, r.Result, r.Error)
	case !r.OK && (r.Result != nil || r.Error == nil || r.Error.Kind == "" || r.Error.Message == ""):
		ts.Fatalf("%s: failed, but result %s and error %+v", where, r.Result, r.Error)
	case r.OK && (r.PID <= 0 || r.Attempts < 1 || r.Start == nil || r.End == nil):
		ts.Fatalf("%s: ok, but pid %d, %d attempts, start %v, end %v", where, r.PID, r.Attempts, r.Start, r.End)
	case r.OK && (r.CPUMS == nil || *r.CPUMS < 0):
		ts.Fatalf("%s: ok, but cpu_ms %v: a worker measures every call", where, r.CPUMS)
	case r.PID == 0 && r.CPUMS != nil:
		ts.Fatalf("%s: no worker ran it, but cpu_ms %v", where, *r.CPUMS)
	case r.PID == parent:
		ts.Fatalf("%s: ran in the parent, pid %d", where, parent)
	case r.Start != nil && r.End != nil && r.End.Before(*r.Start):
		ts.Fatalf("%s: ends before it starts", where)
	}
}

var parentRE = regexp.MustCompile(`parent pid (\d+)`)

// parentPID reads the parent's pid from the header on stderr.
func parentPID(ts *testscript.TestScript) int {
	m := parentRE.FindStringSubmatch(ts.ReadFile("stderr"))
	if m == nil {
		ts.Fatalf("no header with the parent pid on stderr")
	}
	pid, err := strconv.Atoi(m[1])
	ts.Check(err)
	return pid
}

// echolines N FILE writes a JSON Lines task file of N echo tasks, task i
// echoing i.
func cmdEchoLines(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: echolines N FILE")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"func\": \"echo\", \"args\": {\"value\": %d}}\n", i)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(b.String()), 0o666))
}

// noworkers checks that no process that a command of this script started
// is still alive: the workers carry the script's POOLD_SCRIPT_ID in their
// environment. It waits a little, since reaping is not instant.
func cmdNoWorkers(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 0 {
		ts.Fatalf("usage: noworkers")
	}
	mark := []byte("POOLD_SCRIPT_ID=" + ts.Getenv("POOLD_SCRIPT_ID") + "\x00")
	var left []string
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left = marked(mark)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	ts.Fatalf("processes left behind: %s", strings.Join(left, "; "))
}

// marked lists the live processes whose environment holds mark.
func marked(mark []byte) []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var found []string
	for _, d := range dirs {
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil || !bytes.Contains(env, mark) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		found = append(found, filepath.Base(d)+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return found
}

// sigrunMain is the "sigrun SIGNAL REGEXP command [args...]" command of
// the scripts: it runs the command, copying its stdout, sends it SIGNAL
// (INT or TERM) once a line of that stdout matches REGEXP, and exits with
// the command's status.
func sigrunMain() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: sigrun INT|TERM REGEXP command [args...]")
		os.Exit(100)
	}
	sig := map[string]syscall.Signal{"INT": syscall.SIGINT, "TERM": syscall.SIGTERM}[os.Args[1]]
	re, err := regexp.Compile(os.Args[2])
	if sig == 0 || err != nil {
		fmt.Fprintln(os.Stderr, "sigrun: bad signal or regexp:", os.Args[1], err)
		os.Exit(100)
	}
	cmd := exec.Command(os.Args[3], os.Args[4:]...)
	cmd.Stdin, cmd.Stderr = os.Stdin, os.Stderr
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigrun:", err)
		os.Exit(100)
	}
	sent := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		fmt.Println(sc.Text())
		if !sent && re.Match(sc.Bytes()) {
			sent = true
			cmd.Process.Signal(sig)
		}
	}
	io.Copy(os.Stdout, out)
	err = cmd.Wait()
	if !sent {
		fmt.Fprintln(os.Stderr, "sigrun: no line matched", re)
		os.Exit(101)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			os.Exit(128 + int(ws.Signal()))
		}
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigrun:", err)
		os.Exit(100)
	}
	os.Exit(0)
}
