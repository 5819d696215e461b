package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

// poold compare [flags] TASKFILE runs a task file in both modes, worker
// processes and threads (goroutines), and says which to keep. Each run is
// a child process of its own, this binary run as an ordinary
// "poold --mode M -n N --json ... TASKFILE", so that a task that ends its
// process (in threads mode, crash's segfault or exit) costs only that run.
// This file holds the command line and the task file's check;
// compare_run.go runs the children, compare_verdict.go weighs the figures,
// compare_report.go prints them.

// compareConfig is what compare's command line asks for.
type compareConfig struct {
	counts   []int    // -n: one pair of runs (R times) per count
	reps     int      // --reps: runs of each mode per count
	yes      bool     // --yes: run exec tasks too
	json     bool     // --json: one JSON object instead of the table
	jsonl    bool     // --jsonl (passed on too)
	pass     []string // flags that both modes' runs get, "--name=value"
	rejected string   // why a flag given cannot go with compare; "": none was
	taskFile string
}

// defaultReps is how many times compare runs each mode per count.
const defaultReps = 3

// Flags that compare passes to both runs as they are: every one holds the
// same in both modes. Their checks are poold's own (see checkChildFlags).
var comparePass = []struct {
	name, def, usage string
	bool             bool
}{
	{name: "timeout", usage: "limit each task to `DURATION` unless it says otherwise (0: no limit)"},
	{name: "retries", usage: "retry a task up to `N` times when it fails with a kind of --retry-on"},
	{name: "retry-on", def: defaultRetryOn, usage: "retry failures of these `KINDS`, comma-separated"},
	{name: "at-most-once", bool: true, usage: "run each task at most once: no retries, and a task lost with its worker fails"},
	{name: "halt", usage: "stop early, as poold's --halt: `WHEN,WHAT=N` or WHEN,WHAT=P%"},
	{name: "k", bool: true, usage: "results in the input's order, as poold -k (it changes what a run holds in memory)"},
	{name: "keep-order", bool: true, usage: "the same as -k"},
	{name: "window", usage: "keep at most `N` tasks in flight (default 64 × workers)"},
	{name: "jsonl", bool: true, usage: "read TASKFILE as JSON Lines (the default for a name ending in .jsonl)"},
	{name: "start-timeout", def: "10s", usage: "give up on a worker that has not said hello after `DURATION`"},
	{name: "log-level", def: "warn", usage: "the runs' log `LEVEL` (their logs are kept, and shown when a run loses its process)"},
	{name: "log-format", def: "text", usage: "the runs' log `FORMAT`: text or json"},
}

// compareRejected are poold's flags that compare refuses, and why.
var compareRejected = map[string]string{
	"max-worker-memory":    "--max-worker-memory cannot hold in threads mode (the goroutines share one process's memory), so the two modes would not run the same way",
	"max-tasks-per-worker": "--max-tasks-per-worker has no meaning in threads mode (a fresh goroutine frees nothing), so the two modes would not run the same way",
	"worker-cmd":           "--worker-cmd starts worker processes of another program: threads mode can run only this binary's built-in tasks",
	"mode":                 "--mode: compare runs both modes, processes and threads",
	"joblog":               "--joblog: compare runs the file several times; each run would log into the same job log",
	"trace":                "--trace: compare runs the file several times; each run would trace into the same file",
	"timeline":             "--timeline: compare runs the file several times; each run would draw into the same page",
	"resume":               "--resume: compare runs the file several times; a job log would skip tasks in all but the first",
	"resume-failed":        "--resume-failed: compare runs the file several times; a job log would skip tasks in all but the first",
	"q":                    "-q: compare prints its report, not the results",
	"quiet":                "--quiet: compare prints its report, not the results",
	"progress":             "--progress: compare draws no progress bar",
	"no-progress":          "--no-progress: compare draws no progress bar",
}

// rejectedBool are the rejected flags that take no value.
var rejectedBool = []string{"resume", "resume-failed", "q", "quiet", "progress", "no-progress"}

// passFlag records a flag for the children, as it was given.
type passFlag struct {
	cc         *compareConfig
	name, def  string
	isBool     bool
	rejectWhy  string // a rejected flag: why
	onBoolTrue func(bool)
}

func (p passFlag) String() string   { return p.def }
func (p passFlag) IsBoolFlag() bool { return p.isBool }

func (p passFlag) Set(v string) error {
	if p.rejectWhy != "" {
		if p.cc.rejected == "" {
			p.cc.rejected = p.rejectWhy
		}
		return nil
	}
	if p.isBool {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return err
		}
		if p.onBoolTrue != nil {
			p.onBoolTrue(b)
		}
		v = strconv.FormatBool(b)
	}
	p.cc.pass = append(p.cc.pass, "--"+p.name+"="+v)
	return nil
}

// compareFlags is compare's flag set; withRejected adds the flags it
// refuses (left out of the usage).
func compareFlags(cc *compareConfig, withRejected bool) (fs *flag.FlagSet, counts *string) {
	fs = flag.NewFlagSet("poold compare", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := countsFlag(strconv.Itoa(runtime.NumCPU()))
	counts = (*string)(&n)
	fs.Var(&n, "n", "run with `N` workers, or with each count of a comma-separated list (1,2,4,8): one set of runs per count")
	fs.IntVar(&cc.reps, "reps", defaultReps, "run each mode `R` times per count, alternating (P T, T P, ...); the figures shown are the median run's")
	fs.BoolVar(&cc.yes, "yes", false, "run a file that has exec tasks: their side effects happen once per run")
	fs.BoolVar(&cc.json, "json", false, "print the report as one JSON object on stdout (fields below)")
	for _, f := range comparePass {
		p := passFlag{cc: cc, name: f.name, def: f.def, isBool: f.bool}
		if f.name == "jsonl" {
			p.onBoolTrue = func(b bool) { cc.jsonl = b }
		}
		fs.Var(p, f.name, f.usage)
	}
	if withRejected {
		for name, why := range compareRejected {
			fs.Var(passFlag{cc: cc, name: name, isBool: slices.Contains(rejectedBool, name), rejectWhy: why}, name, "")
		}
	}
	return fs, counts
}

// countsFlag is -n as given: a count or a list, read by parseCounts.
type countsFlag string

func (f *countsFlag) String() string     { return string(*f) }
func (f *countsFlag) Set(v string) error { *f = countsFlag(v); return nil }

// parseCompare reads compare's command line. -h prints the usage on
// stdout and returns flag.ErrHelp.
func parseCompare(args []string, stdout io.Writer) (*compareConfig, error) {
	cc := &compareConfig{}
	fs, counts := compareFlags(cc, true)
	positional, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printCompareUsage(stdout)
		return nil, err
	}
	if err != nil {
		return nil, &usageError{err.Error()}
	}
	if cc.rejected != "" {
		return nil, usagef("%s", cc.rejected)
	}
	if cc.counts, err = parseCounts(*counts); err != nil {
		return nil, err
	}
	switch {
	case cc.reps < 1:
		return nil, usagef("--reps must be at least 1, not %d", cc.reps)
	case len(positional) == 0:
		return nil, usagef("no task file given (use - for standard input)")
	case len(positional) > 1:
		return nil, usagef("one task file expected, got %d: %s", len(positional), strings.Join(positional, " "))
	}
	cc.taskFile = positional[0]
	if err := checkChildFlags(cc); err != nil {
		return nil, err
	}
	return cc, nil
}

// parseCounts reads -n: a count, or a comma-separated list of them.
func parseCounts(s string) ([]int, error) {
	var counts []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, usagef("-n must be a number of workers of at least 1, or a list such as 1,2,4,8, not %q", s)
		}
		if !slices.Contains(counts, n) {
			counts = append(counts, n)
		}
	}
	return counts, nil
}

// checkChildFlags checks the flags passed on as poold itself will, in
// each mode, so that a mistake is a usage error before anything runs.
func checkChildFlags(cc *compareConfig) error {
	for _, mode := range compareModes {
		if _, err := parseFlags(cc.childArgs(mode, cc.counts[0]), io.Discard); err != nil {
			return err
		}
	}
	return nil
}

// The modes compare runs, in the order of its columns.
var compareModes = []string{"processes", "threads"}

// childArgs is the command line of one run (without the program's name).
func (cc *compareConfig) childArgs(mode string, n int) []string {
	args := []string{"--mode", mode, "-n", strconv.Itoa(n), "--json", "--no-progress"}
	args = append(args, cc.pass...)
	return append(args, "--", cc.taskFile)
}

// comparePlan is what compare knows of the task file before it runs it.
type comparePlan struct {
	name   string // for messages: the file's name, or "stdin"
	stdin  []byte // the file, when it is standard input: each run reads it again
	stream bool   // JSON Lines
	tasks  int    // the results one run gives (map items expanded, bad lines counting one)
	exec   int    // exec tasks among them
	execID string // the first one's id
}

// planCompare reads and checks the task file as poold would (a JSON file
// whole: its errors are usage errors, as poold's), and counts its tasks
// and its exec tasks. Standard input is read whole, to be given to every
// run.
func planCompare(cc *compareConfig, stdin io.Reader, stderr io.Writer) (*comparePlan, error) {
	p := &comparePlan{name: cc.taskFile, stream: cc.jsonl || strings.HasSuffix(cc.taskFile, ".jsonl")}
	var data []byte
	var err error
	if cc.taskFile == "-" {
		p.name = "stdin"
		data, err = io.ReadAll(stdin)
		p.stdin = data
	} else {
		data, err = os.ReadFile(cc.taskFile)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the task file: %w", err)
	}
	known := newRegistry().Names()
	count := func(e *Entry) {
		p.tasks += e.Count()
		if e.Func == "exec" && e.Bad == "" && e.Count() > 0 {
			if p.exec == 0 {
				p.execID = e.ResultID(0)
			}
			p.exec += e.Count()
		}
	}
	if !p.stream {
		n := noteSlow(stderr, slowLoad, "poold: compare: reading "+p.name+"…")
		defer n.stop("")
		tf, err := ParseTaskFile(p.name, data, known)
		if err != nil {
			return nil, err
		}
		for _, e := range tf.Entries {
			count(e)
		}
		return p, nil
	}
	lr := newLineReader(strings.NewReader(string(data)), maxLineLen)
	for lineNo, pos := 1, 0; ; lineNo++ {
		line, tooLong, err := lr.next()
		if err != nil {
			break // io.EOF: the data is in memory
		}
		switch {
		case tooLong:
			p.tasks++
		case !isBlank(line):
			count(parseLine(pos, lineNo, line, known))
		default:
			continue
		}
		pos++
	}
	return p, nil
}

// sideEffectsMessage is why compare will not run exec tasks unasked.
func sideEffectsMessage(p *comparePlan, cc *compareConfig) string {
	runs := 2 * cc.reps * len(cc.counts)
	return fmt.Sprintf("%s has %s (the first: id %q): compare runs the file %d times (%s), "+
		"so whatever they do (write files, send mail) would happen up to %d times. Pass --yes to run them anyway.",
		p.name, plural(p.exec, "exec task"), p.execID, runs, runsExplained(cc), runs)
}

// runsExplained says how many runs compare makes: "2 modes × 3 runs × 2
// counts".
func runsExplained(cc *compareConfig) string {
	s := "2 modes × " + plural(cc.reps, "run")
	if len(cc.counts) > 1 {
		s += " × " + plural(len(cc.counts), "count") + " of -n"
	}
	return s
}

// compareCommand is poold compare.
func compareCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cc, err := parseCompare(args, stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "poold: compare: %v\nRun 'poold compare -h' for usage.\n", err)
		return exitUsage
	}
	plan, err := planCompare(cc, stdin, stderr)
	if err != nil {
		printError(stderr, err)
		return exitUsage
	}
	if plan.exec > 0 && !cc.yes {
		fmt.Fprintf(stderr, "poold: compare: %s\n", sideEffectsMessage(plan, cc))
		return exitUsage
	}
	// What reading the file took is not needed again: let the runs have
	// the memory.
	debug.FreeOSMemory()
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "poold: compare: cannot find this program to run it again: %v\n", err)
		return exitFailed
	}
	c := newComparison(cc, plan, exe, stderr)
	c.run()
	c.weigh()
	if cc.json {
		c.printJSON(stdout)
	} else {
		c.printText(stdout)
	}
	return c.exitStatus()
}
