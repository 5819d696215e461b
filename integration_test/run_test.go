package integration_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tests of poold run: commands straight from the shell, GNU parallel style.

// execStdouts returns the stdout of each exec result of a --json run, by id,
// failing the test for a result that is not ok.
func execStdouts(t *testing.T, r *runResult) map[string]string {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("exit status %d, want 0; stderr:\n%s", r.Code, r.Stderr)
	}
	out := map[string]string{}
	for id, rec := range parseRecords(t, r.Stdout) {
		if !rec.ok() || rec.Func != "exec" {
			t.Errorf("result %s: not an ok exec: %+v", id, rec)
			continue
		}
		var res struct {
			Stdout string `json:"stdout"`
		}
		if err := json.Unmarshal(rec.Result, &res); err != nil {
			t.Fatalf("result %s: %v", id, err)
		}
		out[id] = res.Stdout
	}
	return out
}

func checkStdouts(t *testing.T, got, want map[string]string) {
	t.Helper()
	for _, id := range sortedKeys(want) {
		if got[id] != want[id] {
			t.Errorf("result %s: stdout %q, want %q", id, got[id], want[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d results, want %d: %v", len(got), len(want), got)
	}
}

func seqLines(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintln(&b, i)
	}
	return b.String()
}

func TestRunStdin1000(t *testing.T) {
	t.Parallel()
	r := runPoold(t, runOpts{stdin: seqLines(1000)}, "run", "--json", "-n", "4", "--", "sh", "-c", "echo {}")
	got := execStdouts(t, r)
	want := map[string]string{}
	for i := 1; i <= 1000; i++ {
		// Ids are the sequence numbers, and seq gives argument i as line i.
		want[strconv.Itoa(i)] = strconv.Itoa(i) + "\n"
	}
	checkStdouts(t, got, want)
}

func TestRunList(t *testing.T) {
	t.Parallel()
	r := runPoold(t, runOpts{}, "run", "-n", "4", "--json", "--", "echo", "{}", ":::", "a", "b", "c")
	checkStdouts(t, execStdouts(t, r), map[string]string{"1": "a\n", "2": "b\n", "3": "c\n"})

	// The text output and its summary, from the same runner.
	r = runPoold(t, runOpts{}, "run", "-n", "4", "--", "echo", ":::", "a", "b", "c")
	if r.Code != 0 || !strings.Contains(r.Stdout, "3 tasks: 3 ok, 0 failed") {
		t.Errorf("status %d, stdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
}

func TestRunReplacements(t *testing.T) {
	t.Parallel()
	args := []string{"a/b.c", "x/y.tar.gz", "/abs/f.txt", "noslash", "d.x/file", "/a/b/"}
	r := runPoold(t, runOpts{}, append([]string{"run", "--json", "--", "echo", "{}|{#}|{.}|{/}|{//}|{/.}", ":::"}, args...)...)
	// What GNU parallel 20221122 prints for the same.
	checkStdouts(t, execStdouts(t, r), map[string]string{
		"1": "a/b.c|1|a/b|b.c|a|b\n",
		"2": "x/y.tar.gz|2|x/y.tar|y.tar.gz|x|y.tar\n",
		"3": "/abs/f.txt|3|/abs/f|f.txt|/abs|f\n",
		"4": "noslash|4|noslash|noslash|.|noslash\n",
		"5": "d.x/file|5|d.x/file|file|d.x|file\n",
		"6": "/a/b/|6|/a/b/||/a|\n",
	})

	// No replacement string: the argument is the last word.
	r = runPoold(t, runOpts{}, "run", "--json", "--", "echo", "x", ":::", "a b")
	checkStdouts(t, execStdouts(t, r), map[string]string{"1": "x a b\n"})
}

func TestRunFile(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "args.txt", "one\ntwo words\n\nlast without newline")
	r := runPoold(t, runOpts{}, "run", "--json", "--", "echo", "<{}>", "::::", file)
	// An empty line is an argument too, as in GNU parallel.
	checkStdouts(t, execStdouts(t, r), map[string]string{"1": "<one>\n", "2": "<two words>\n", "3": "<>\n", "4": "<last without newline>\n"})

	// :::: - is standard input.
	r = runPoold(t, runOpts{stdin: "p\nq\n"}, "run", "--json", "--", "echo", "::::", "-")
	checkStdouts(t, execStdouts(t, r), map[string]string{"1": "p\n", "2": "q\n"})
}

func TestRunShell(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pwned := filepath.Join(dir, "pwned")
	evil := "it's a $(touch " + pwned + ") `touch " + pwned + "` ; touch " + pwned
	r := runPoold(t, runOpts{}, "run", "--json", "--shell", "--", "printf '%s\\n' {} | tr a A", ":::", evil, "plain")
	checkStdouts(t, execStdouts(t, r), map[string]string{
		"1": strings.ReplaceAll(evil, "a", "A") + "\n",
		"2": "plAin\n",
	})
	if _, err := os.Stat(pwned); err == nil {
		t.Errorf("an argument was run by the shell: %s exists", pwned)
	}
	// Without a replacement string, the quoted argument is appended.
	r = runPoold(t, runOpts{}, "run", "--json", "--shell", "--", "echo", ":::", "a  b")
	checkStdouts(t, execStdouts(t, r), map[string]string{"1": "a  b\n"})
}

func TestRunDryRun(t *testing.T) {
	t.Parallel()
	r := runPoold(t, runOpts{}, "run", "--dry-run", "--shell", "--", "echo", "{.}", ":::", "it's.txt", "b")
	want := `{"id":"1","func":"exec","args":{"argv":["sh","-c","echo 'it'\\''s'"]}}` + "\n" +
		`{"id":"2","func":"exec","args":{"argv":["sh","-c","echo 'b'"]}}` + "\n"
	if r.Code != 0 || r.Stdout != want {
		t.Fatalf("status %d, stdout:\n%s\nwant:\n%s\nstderr:\n%s", r.Code, r.Stdout, want, r.Stderr)
	}
	// The same lines are a JSON Lines task file that runs.
	r = runPoold(t, runOpts{stdin: r.Stdout}, "--json", "--jsonl", "-")
	checkStdouts(t, execStdouts(t, r), map[string]string{"1": "it's\n", "2": "b\n"})

	// From standard input, streamed.
	r = runPoold(t, runOpts{stdin: "x\ny\n"}, "run", "--dry-run", "--", "cp", "{}", "{}.bak")
	want = `{"id":"1","func":"exec","args":{"argv":["cp","x","x.bak"]}}` + "\n" +
		`{"id":"2","func":"exec","args":{"argv":["cp","y","y.bak"]}}` + "\n"
	if r.Code != 0 || r.Stdout != want {
		t.Errorf("status %d, stdout:\n%s\nwant:\n%s", r.Code, r.Stdout, want)
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "no command"},
		{[]string{"run", "--"}, "no command after --"},
		{[]string{"run", "echo", "x"}, "the command comes after --"},
		{[]string{"run", "--", "echo", ":::"}, "::: with no arguments"},
		{[]string{"run", "--", "echo", "::::", "/nonexistent/args"}, "/nonexistent/args"},
		{[]string{"run", "-n", "0", "--", "echo"}, "-n must be at least 1"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			checkUsage(t, runPoold(t, runOpts{}, c.args...), []string{c.want})
		})
	}
}

func TestRunHelp(t *testing.T) {
	t.Parallel()
	r := runPoold(t, runOpts{}, "-h")
	if r.Code != 0 || !strings.Contains(r.Stdout, "poold run [flags] -- COMMAND") {
		t.Errorf("poold -h does not mention poold run:\n%s", r.Stdout)
	}
	r = runPoold(t, runOpts{}, "run", "-h")
	for _, w := range []string{"usage: poold run", "{/.}", "--shell", "--dry-run", "-n N"} {
		if r.Code != 0 || !strings.Contains(r.Stdout, w) {
			t.Errorf("poold run -h does not say %q (status %d):\n%s", w, r.Code, r.Stdout)
		}
	}
}

// TestRunVsParallel runs the same 1,000 commands through GNU parallel and
// poold run, and compares their outputs and logs their wall times.
func TestRunVsParallel(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("parallel")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("GNU parallel is not on PATH (CI must install it: apt-get install parallel)")
		}
		t.Skip("GNU parallel is not on PATH: apt-get install parallel")
	}
	input := seqLines(1000)
	cmd := exec.Command(bin, "--will-cite", "-j4", "echo", "{}")
	cmd.Stdin = strings.NewReader(input)
	start := time.Now()
	out, err := cmd.Output()
	parallelWall := time.Since(start)
	if err != nil {
		t.Fatalf("parallel: %v", err)
	}
	fromParallel := strings.Fields(string(out))

	r := runPoold(t, runOpts{stdin: input}, "run", "--json", "-n", "4", "--", "echo", "{}")
	var fromPoold []string
	for _, s := range execStdouts(t, r) {
		fromPoold = append(fromPoold, strings.Fields(s)...)
	}
	slices.Sort(fromParallel)
	slices.Sort(fromPoold)
	if !slices.Equal(fromParallel, fromPoold) {
		t.Errorf("different outputs: parallel %d lines, poold %d", len(fromParallel), len(fromPoold))
	}
	if len(fromPoold) != 1000 {
		t.Errorf("%d outputs, want 1000", len(fromPoold))
	}
	t.Logf("1000 × echo {} on 4 jobs: GNU parallel %v, poold run %v", parallelWall.Round(time.Millisecond), r.Wall.Round(time.Millisecond))
}
