package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// poold compare in this process: its runs are this test binary, which
// TestMain makes poold when compare asks for a usage report. The timings
// are weighed in integration_test, with the built binary.

func TestCompareUsageErrors(t *testing.T) {
	defer goleak.VerifyNone(t)
	file := filepath.Join(t.TempDir(), "t.json")
	if err := os.WriteFile(file, []byte(`[{"func": "echo"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-worker-memory", "1G", file}, "--max-worker-memory cannot hold in threads mode"},
		{[]string{"--max-tasks-per-worker", "3", file}, "--max-tasks-per-worker has no meaning in threads mode"},
		{[]string{"--worker-cmd", "/bin/true", file}, "--worker-cmd starts worker processes"},
		{[]string{"--mode", "threads", file}, "--mode: compare runs both modes"},
		{[]string{"--joblog", "j.log", file}, "--joblog: compare runs the file several times"},
		{[]string{"-q", file}, "-q: compare prints its report"},
		{[]string{"-n", "2,0", file}, `-n must be a number of workers of at least 1, or a list such as 1,2,4,8, not "2,0"`},
		{[]string{"--reps", "0", file}, "--reps must be at least 1"},
		{[]string{"--retries", "-1", file}, "--retries must not be negative"},
		{[]string{"--halt", "later", file}, "--halt"},
		{[]string{"--nope", file}, "flag provided but not defined: -nope"},
		{[]string{}, "no task file given"},
		{[]string{file, file}, "one task file expected, got 2"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"compare"}, c.args...), nil, &stdout, &stderr)
		if code != exitUsage || stdout.Len() != 0 || !strings.Contains(stderr.String(), "poold: compare: "+c.want) ||
			!strings.Contains(stderr.String(), "Run 'poold compare -h' for usage.") {
			t.Errorf("compare %q: status %d, stdout %q, stderr %q; want 2 and %q", c.args, code, stdout.String(), stderr.String(), c.want)
		}
	}
}

func TestCompareTaskFileErrors(t *testing.T) {
	defer goleak.VerifyNone(t)
	var stdout, stderr bytes.Buffer
	code := run([]string{"compare", "-"}, strings.NewReader(`[{"func": "nope"}]`), &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), `poold: stdin: entry 0 (line 1): unknown task "nope"`) {
		t.Errorf("status %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	code = run([]string{"compare", "--reps", "2", "-"}, strings.NewReader(`[{"func": "echo"}, {"id": "rm", "func": "exec", "args": {"argv": ["rm", "x"]}}]`), &stdout, &stderr)
	want := `poold: compare: stdin has 1 exec task (the first: id "rm"): compare runs the file 4 times (2 modes × 2 runs), ` +
		"so whatever they do (write files, send mail) would happen up to 4 times. Pass --yes to run them anyway.\n"
	if code != exitUsage || stderr.String() != want || stdout.Len() != 0 {
		t.Errorf("status %d, stdout %q, stderr:\n%s\nwant:\n%s", code, stdout.String(), stderr.String(), want)
	}
}

// TestCompareInProcess: both modes run, in children of their own, from a
// file on standard input (given to each run); a segfault takes the threads
// run's process, which compare reports, and nothing is left behind.
func TestCompareInProcess(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Under -race every process sleeps 1 s at exit, for racing goroutines.
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	tasks := `[{"id": "a", "func": "echo", "args": {"value": 1}},
	           {"id": "m", "map": "pow", "args": [{"base": 2, "exp": 3}, {"base": 3, "exp": 2}]},
	           {"id": "x", "func": "exec", "args": {"argv": ["true"]}},
	           {"id": "p", "func": "crash", "args": {"mode": "panic"}}]`
	var stdout, stderr bytes.Buffer
	code := run([]string{"compare", "--json", "--yes", "--reps", "2", "-n", "1,2", "-"}, strings.NewReader(tasks), &stdout, &stderr)
	if code != exitFailed { // the panic fails one task
		t.Errorf("status %d, want 1; stderr:\n%s", code, stderr.String())
	}
	var rep compareJSON
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, stdout.String())
	}
	if rep.File != "stdin" || rep.Tasks != 5 || rep.Reps != 2 || len(rep.Counts) != 2 || rep.ExitStatus != exitFailed {
		t.Fatalf("report %+v", rep)
	}
	for _, c := range rep.Counts {
		for _, s := range []*sideJSON{c.Processes, c.Threads} {
			if s.Runs != 2 || s.OK != 4 || s.Failed != 1 || s.Failures["panic"] != 1 || s.Lost != nil || s.ParentCPUMS == nil {
				t.Errorf("-n %d: %+v", c.N, s)
			}
		}
		if c.Verdict.Keep == "" || c.Verdict.Work == "" || c.Verdict.Isolation == nil {
			t.Errorf("-n %d: verdict %+v", c.N, c.Verdict)
		}
	}

	stdout.Reset()
	stderr.Reset()
	tasks = `[{"id": "a", "func": "echo", "args": {"value": 1}},
	          {"id": "boom", "func": "crash", "args": {"mode": "segfault"}},
	          {"id": "b", "func": "sleep", "args": {"seconds": 0.2}}]`
	start := time.Now()
	code = run([]string{"compare", "--reps", "2", "-n", "1", "-"}, strings.NewReader(tasks), &stdout, &stderr)
	out := stdout.String()
	if code != exitFailed || !strings.Contains(out, "\n  threads: lost its process: signal SIGSEGV after ") ||
		!strings.Contains(out, "    | poold crash task: mode segfault\n") || !strings.Contains(out, "worker_lost 1") ||
		!strings.Contains(out, "Keep processes: isolation kept the run alive (2 of 3 tasks succeeded)") {
		t.Errorf("status %d; stdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestCompareHelpText(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"compare", "-h"}, nil, &stdout, &stderr); code != exitOK || stderr.Len() != 0 {
		t.Fatalf("status %d, stderr %q", code, stderr.String())
	}
	help := stdout.String()
	// Every field of the JSON report is in the help.
	for _, v := range []any{compareJSON{}, countJSON{}, sideJSON{}, lostJSON{}, verdictJSON{}, isolationJSON{}} {
		for _, f := range jsonFieldNames(v) {
			if !strings.Contains(help, f) {
				t.Errorf("compare -h does not document the field %q", f)
			}
		}
	}
	for _, rejected := range []string{"-max-worker-memory", "-worker-cmd", "-q\n", "-mode"} {
		if strings.Contains(help, "\n  "+rejected) {
			t.Errorf("compare -h lists %s among its flags", rejected)
		}
	}
}

// jsonFieldNames lists the JSON names of a struct's fields.
func jsonFieldNames(v any) []string {
	var names []string
	typ := reflect.TypeOf(v)
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}
