package integration_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the README's copy of poold help tasks")

// The README's copy of poold help tasks lies between these lines, in a
// fenced block.
const (
	readmeTasksStart = "<!-- poold help tasks -->\n```text\n"
	readmeTasksEnd   = "```\n<!-- end of poold help tasks -->\n"
)

// TestREADMETasks: the README's reference of the built-in tasks is what
// poold help tasks prints (-update rewrites it).
func TestREADMETasks(t *testing.T) {
	r := runPoold(t, runOpts{}, "help", "tasks")
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("poold help tasks: exit status %d, stderr %q", r.Code, r.Stderr)
	}
	path := filepath.Join(rootDir, "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, readmeTasksStart)
	j := strings.Index(readme, readmeTasksEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no block between %q and %q", readmeTasksStart, readmeTasksEnd)
	}
	got := readme[i+len(readmeTasksStart) : j]
	if got == r.Stdout {
		return
	}
	if *update {
		readme = readme[:i+len(readmeTasksStart)] + r.Stdout + readme[j:]
		if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the README's copy of poold help tasks")
		return
	}
	t.Errorf("the README's copy of poold help tasks is out of date (go test ./integration_test -run TestREADMETasks -update rewrites it); poold help tasks prints:\n%s", r.Stdout)
}

// TestHelp: poold help tasks describes every built-in task; -h points to
// it and to the README; and the task names are listed the same way in the
// usage, the help, and the errors of a JSON file and of a stream.
func TestHelp(t *testing.T) {
	t.Parallel()
	const names = "crash, echo, exec, pi, pow, primes, print, sha256, sleep"
	r := runPoold(t, runOpts{}, "help", "tasks")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "Built-in tasks: "+names+".") {
		t.Errorf("poold help tasks: exit status %d, stdout:\n%s", r.Code, r.Stdout)
	}
	for _, name := range strings.Split(names, ", ") {
		if !regexp.MustCompile(`(?m)^` + name + `: .+\n(  \S.*\n|           .*\n)*  returns  `).MatchString(r.Stdout) {
			t.Errorf("poold help tasks does not describe %s, its arguments and its result", name)
		}
	}
	for _, arg := range []string{"  argv     array of strings, required:", "  seconds  number, default 0:", "  times    integer, default 1:", "exit_status"} {
		if !strings.Contains(r.Stdout, arg) {
			t.Errorf("poold help tasks lacks %q", arg)
		}
	}

	for _, args := range [][]string{{"-h"}, {"help"}} {
		r = runPoold(t, runOpts{}, args...)
		if r.Code != 0 || !strings.Contains(r.Stdout, "Tasks: "+names+";") || !strings.Contains(r.Stdout, "'poold help tasks'") ||
			!strings.Contains(r.Stdout, "README") {
			t.Errorf("poold %s: exit status %d, want 0 and a usage that lists the tasks and points to poold help tasks and the README:\n%s", args, r.Code, r.Stdout)
		}
	}
	r = runPoold(t, runOpts{}, "help", "flags")
	checkUsage(t, r, []string{"help flags: unknown topic", "poold help tasks"})

	r = runPoold(t, runOpts{}, writeFile(t, "tasks.json", `[{"func": "nope"}]`))
	checkUsage(t, r, []string{"poold: known task names: " + names + "\n"})
	r = runPoold(t, runOpts{stdin: `{"func": "nope"}`}, "--json", "--jsonl", "-")
	if !strings.Contains(r.Stdout, `known task names: `+names+`"`) {
		t.Errorf("a stream's unknown task does not list the names as the others do:\n%s", r.Stdout)
	}
}
