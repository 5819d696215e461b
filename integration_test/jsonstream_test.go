package integration_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A JSON task file is checked in a first pass and read again as it runs:
// bounded memory for an array of any length, from a file or from standard
// input, and a clear error, never other tasks than those checked, when the
// file changes under poold.

// writeEchoArray writes a JSON array of n echo tasks, one a line, whose
// values are their positions.
func writeEchoArray(t *testing.T, w io.Writer, n int) {
	t.Helper()
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.WriteString("[\n")
	for i := range n {
		sep := ",\n"
		if i == n-1 {
			sep = "\n"
		}
		fmt.Fprintf(bw, `{"id": "t%d", "func": "echo", "args": {"value": %d}}%s`, i, i, sep)
	}
	bw.WriteString("]\n")
	if err := bw.Flush(); err != nil {
		t.Error(err)
	}
}

// peakWhileRunning runs c to its end and samples its peak resident memory
// (VmHWM, KiB): wait4's figure would count its workers too.
func peakWhileRunning(t *testing.T, c *pooldCmd) (*runResult, int64) {
	t.Helper()
	var peak int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if kb := vmHWM(c.cmd.Process.Pid); kb > peak {
				peak = kb
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	r := c.wait(t)
	close(stop)
	<-sampled
	return r, peak
}

// TestJSONArrayBoundedMemory: a JSON array of 1,000,000 tasks, from a file
// and (300,000) from a pipe on standard input, runs with poold's peak
// memory within 64 MiB (it took about 1.8 GB when the file was decoded
// whole).
func TestJSONArrayBoundedMemory(t *testing.T) {
	t.Parallel()
	const n = 1000000
	path := filepath.Join(t.TempDir(), "tasks.json")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	writeEchoArray(t, f, n)
	f.Close()
	c := startPoold(t, runOpts{timeout: 300 * time.Second}, "-n", "2", "-q", path)
	r, peak := peakWhileRunning(t, c)
	if r.Code != 0 || !strings.Contains(r.Stdout, fmt.Sprintf("%d tasks: %d ok", n, n)) {
		t.Fatalf("exit %d; stdout:\n%.2000s\nstderr:\n%.2000s", r.Code, r.Stdout, r.Stderr)
	}
	if peak > 64<<10 {
		t.Errorf("a file: poold's peak RSS %d KiB, over 64 MiB", peak)
	}
	t.Logf("a JSON array of %d tasks in %v, poold's peak RSS %.1f MiB", n, r.Wall, float64(peak)/1024)

	const m = 300000
	pr, pw := io.Pipe()
	go func() {
		writeEchoArray(t, pw, m)
		pw.Close()
	}()
	c = startPoold(t, runOpts{stdinR: pr, timeout: 300 * time.Second}, "-n", "2", "-q", "-")
	r, peak = peakWhileRunning(t, c)
	if r.Code != 0 || !strings.Contains(r.Stdout, fmt.Sprintf("%d tasks: %d ok", m, m)) {
		t.Fatalf("stdin: exit %d; stdout:\n%.2000s\nstderr:\n%.2000s", r.Code, r.Stdout, r.Stderr)
	}
	if peak > 64<<10 {
		t.Errorf("stdin: poold's peak RSS %d KiB, over 64 MiB", peak)
	}
	t.Logf("a JSON array of %d tasks on stdin in %v, poold's peak RSS %.1f MiB", m, r.Wall, float64(peak)/1024)
}

// slowFirst is a task file whose first task sleeps: while it runs, the
// test changes the file.
func slowFirst(t *testing.T, n int) (string, []byte) {
	t.Helper()
	var b strings.Builder
	b.WriteString(`[{"id": "first", "func": "sleep", "args": {"seconds": 1}},` + "\n")
	writeEchoArray(t, &b, n)
	data := []byte(strings.Replace(b.String(), ",\n[\n", ",\n", 1))
	path := filepath.Join(t.TempDir(), "tasks.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// TestJSONFileChanged: a task file written over in place while it runs
// stops the run at the first block that is not what was checked, with an
// error that says so, and no task of the new bytes runs; a file replaced
// by another (as an editor saves, or mv) is still read as it was.
func TestJSONFileChanged(t *testing.T) {
	t.Parallel()
	const n = 40000 // about 2 MiB: the change, at the end, is blocks past what poold has read ahead
	path, data := slowFirst(t, n)
	c := startPoold(t, runOpts{}, "-n", "1", "--window", "1", "--json", path)
	time.Sleep(300 * time.Millisecond)
	changed := []byte(strings.Replace(string(data), fmt.Sprintf(`"value": %d}`, n-2), fmt.Sprintf(`"value": %d}`, n+7), 1))
	if len(changed) != len(data) {
		t.Fatal("the change changes the size")
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(changed, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r := c.wait(t)
	if r.Code != 1 || !strings.Contains(r.Stderr, " stopped early: the file changed after it was checked (bytes ") {
		t.Errorf("exit %d, want 1 and the change said; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	if len(recs) == 0 || len(recs) >= n+1 {
		t.Errorf("%d results: want those before the change, not all %d", len(recs), n+1)
	}
	for id, rec := range recs {
		if id != "first" && (!rec.ok() || string(rec.Result) != strings.TrimPrefix(id, "t")) {
			t.Errorf("result %s: %s; want its value as checked", id, rec.Result)
		}
	}

	path, _ = slowFirst(t, 2000)
	c = startPoold(t, runOpts{}, "-n", "1", "--window", "1", "--json", path)
	time.Sleep(300 * time.Millisecond)
	other := filepath.Join(filepath.Dir(path), "new.json")
	if err := os.WriteFile(other, []byte(`[{"id": "other", "func": "echo"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	r = c.wait(t)
	if recs := parseRecords(t, r.Stdout); r.Code != 0 || len(recs) != 2001 || recs["t1999"] == nil {
		t.Errorf("replaced: exit %d, %d results; want 0 and the 2001 tasks checked; stderr:\n%s", r.Code, len(recs), r.Stderr)
	}
}

// TestJSONArrayFromStdinErrors: standard input is copied, then checked and
// run as a file is: its problems are reported with their lines, before
// anything runs.
func TestJSONArrayFromStdinErrors(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	writeEchoArray(t, &b, 5000)
	in := strings.Replace(b.String(), `{"id": "t4000", "func": "echo"`, `{"id": "t3", "func": "ehco"`, 1)
	r := runPoold(t, runOpts{stdin: in}, "-n", "2", "--json", "-")
	want := []string{
		`poold: stdin: entry 4000 (id "t3", line 4002): unknown task "ehco"`,
		`poold: known task names: crash, echo, exec, pi, pow, primes, print, sha256, sleep`,
	}
	if r.Code != 2 || r.Stdout != "" || !strings.Contains(r.Stderr, want[0]) || !strings.Contains(r.Stderr, want[1]) {
		t.Errorf("exit %d, stdout %.200q, stderr:\n%s\nwant 2, nothing, and\n%s", r.Code, r.Stdout, r.Stderr, strings.Join(want, "\n"))
	}
	in = strings.Replace(b.String(), `{"id": "t4000", "func": "echo"`, `{"id": "t3", "func": "echo"`, 1)
	r = runPoold(t, runOpts{stdin: in}, "-n", "2", "--json", "-")
	if dup := `poold: stdin: entry 4000 (id "t3", line 4002): duplicate id "t3", also used by entry 3`; r.Code != 2 || !strings.Contains(r.Stderr, dup) {
		t.Errorf("exit %d, stderr:\n%s\nwant 2 and\n%s", r.Code, r.Stderr, dup)
	}
	var rec record
	r = runPoold(t, runOpts{stdin: b.String()}, "-n", "2", "--json", "-")
	if r.Code != 0 || strings.Count(r.Stdout, "\n") != 5000 || json.Unmarshal([]byte(r.Stdout[:strings.IndexByte(r.Stdout, '\n')]), &rec) != nil {
		t.Errorf("exit %d, %d lines; stderr:\n%s", r.Code, strings.Count(r.Stdout, "\n"), r.Stderr)
	}
}
