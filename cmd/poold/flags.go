package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold/internal/remote"
)

// config is what the command line asks for.
type config struct {
	workers    int
	threads    bool // --mode threads: the workers are goroutines of this process
	json       bool
	logLevel   hclog.Level
	workerCmd  []string // --worker-cmd, split; nil: this binary
	timeout    time.Duration
	retries    int
	retryOn    string    // the kinds retried, comma-separated and checked; "": none
	atMostOnce bool      // every task: poold.AtMostOnce
	quiet      bool      // print only the failures, and the summary
	logJSON    bool      // --log-format json
	keepOrder  bool      // -k: results in input order
	halt       *haltRule // --halt; nil: none
	progress   bool      // --progress: draw the bar even when stderr is not a terminal
	noProgress bool      // --no-progress: never draw the bar
	maxTasks   int
	maxMemory  int64
	version    bool
	jsonl      bool   // read the task file as JSON Lines, whatever its name
	window     int    // most tasks in flight; 0: the default
	taskFile   string // "-" for standard input

	// poold run: a command from the shell instead of a task file.
	runMode      bool
	serve        bool   // poold serve: tasks and control lines from stdin, until it ends
	shell        bool   // run: the command line is one sh -c string
	dryRun       bool   // run: print the tasks, run none
	jobLog       string // --joblog FILE ("+FILE" appends); "": none
	resume       bool   // skip the tasks the job log records
	resumeFailed bool   // skip the tasks the job log records as succeeded
	trace        string // --trace FILE: a Chrome trace of the run; "": none
	timeline     string // --timeline FILE.html: the run drawn as a page; "": none

	startTimeout time.Duration // from a worker's start to its hello

	hosts        []remote.Host // --ssh and --ssh-file; nil: this machine only
	sshCommand   []string      // ssh's program and options
	remoteWorker []string      // the worker's command line on the hosts
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

const usageHead = `usage: poold [flags] TASKFILE
       poold run [flags] -- COMMAND ARG... [::: ARGS... | :::: FILE]
       poold compare [flags] TASKFILE
       poold serve [flags]
       poold worker

Runs the tasks of TASKFILE (a JSON file; - reads standard input) on a pool
of worker processes and prints each result as it finishes. A file whose
name ends in .jsonl, or any file with --jsonl, is JSON Lines, one task a
line, read as it runs.

Flags (one or two dashes both work):
`

// parseFlags reads the command line. -h and --help return flag.ErrHelp
// after printing the usage on stdout.
func parseFlags(args []string, stdout io.Writer) (*config, error) {
	return parseFlagsFor(false, args, stdout)
}

// parseFlagsFor reads the command line of poold (runMode false) or of poold
// run, whose args are the flags before "--": it takes no task file, and has
// --shell and --dry-run.
func parseFlagsFor(runMode bool, args []string, stdout io.Writer) (*config, error) {
	cfg := &config{runMode: runMode}
	fs := flag.NewFlagSet("poold", flag.ContinueOnError)
	// flag prints its own message for a bad flag; the caller adds a usage
	// hint, so that a mistake does not scroll the whole usage by.
	fs.SetOutput(io.Discard)
	fs.IntVar(&cfg.workers, "n", runtime.NumCPU(), "run `N` workers (at least 1): processes, or goroutines with --mode threads, where N may go far past the CPUs")
	mode := fs.String("mode", "processes", "run the workers as `MODE`: processes (isolated: a crash costs one task) or threads (goroutines of poold: cheap, but a task that exits or segfaults ends poold; see poold compare)")
	fs.BoolVar(&cfg.json, "json", false, "print JSON Lines on stdout, one object per task; logs and summary on stderr")
	fs.BoolVar(&cfg.quiet, "q", false, "print only the failures, and the summary")
	fs.BoolVar(&cfg.quiet, "quiet", false, "the same as -q")
	halt := fs.String("halt", "", "stop early: `WHEN,WHAT=N` or WHEN,WHAT=P%, WHEN now (terminate what runs) or soon (let it finish), WHAT fail, success or done, as GNU parallel's --halt")
	fs.BoolVar(&cfg.keepOrder, "k", false, "print results in the input's order (at most --window of them wait)")
	fs.BoolVar(&cfg.keepOrder, "keep-order", false, "the same as -k")
	fs.BoolVar(&cfg.progress, "progress", false, "draw a live progress bar at the bottom of stderr even when it is not a terminal (the default on one)")
	fs.BoolVar(&cfg.noProgress, "no-progress", false, "never draw the progress bar")
	logLevel := fs.String("log-level", "warn", "log messages of `LEVEL` and above on stderr: trace, debug, info, warn, error or off")
	logFormat := fs.String("log-format", "text", "write the logs as `FORMAT`: text, or json (hclog's JSON, one object a line, for machines)")
	var rf remoteFlags
	addRemoteFlags(fs, &rf)
	fs.DurationVar(&cfg.timeout, "timeout", 0, "limit each task to `DURATION` unless it says otherwise, e.g. 30s (0: no limit)")
	fs.IntVar(&cfg.retries, "retries", 0, "retry a task up to `N` times when it fails with a kind of --retry-on")
	retryOn := fs.String("retry-on", defaultRetryOn, "retry failures of these `KINDS`, comma-separated (see --retries)")
	fs.BoolVar(&cfg.atMostOnce, "at-most-once", false, "run each task at most once, for tasks with side effects: no retries, and a task lost with its worker fails")
	fs.IntVar(&cfg.maxTasks, "max-tasks-per-worker", 0, "replace each worker after `N` tasks (0: never)")
	maxMemory := fs.String("max-worker-memory", "", "kill a worker whose memory passes `SIZE`, e.g. 512M, 1.5GiB (0: no limit)")
	fs.BoolVar(&cfg.jsonl, "jsonl", false, "read TASKFILE as JSON Lines, one entry a line, as it runs (the default for a name ending in .jsonl)")
	fs.IntVar(&cfg.window, "window", 0, "keep at most `N` tasks in flight, reading on as results come back (default 64 × workers; no limit for poold run's ::: list)")
	fs.DurationVar(&cfg.startTimeout, "start-timeout", 10*time.Second, "give up on a worker that has not said hello after `DURATION`")
	fs.StringVar(&cfg.jobLog, "joblog", "", "write GNU parallel's job log to `FILE`, a line a task as it finishes (+FILE appends)")
	fs.BoolVar(&cfg.resume, "resume", false, "skip the tasks that the --joblog file records, by task id")
	fs.BoolVar(&cfg.resumeFailed, "resume-failed", false, "skip the tasks that the --joblog file records as succeeded, run the rest again")
	fs.StringVar(&cfg.timeline, "timeline", "", "draw the run as a Gantt chart, a row per worker and a bar per task run, in one self-contained page `FILE.html` (no network), written when the run ends")
	fs.StringVar(&cfg.trace, "trace", "", "write a Chrome trace of the run (each task run, each worker's start and end) to `FILE`, for ui.perfetto.dev or chrome://tracing")
	fs.BoolVar(&cfg.version, "version", false, "print the version and exit")
	if runMode {
		fs.BoolVar(&cfg.shell, "shell", false, "run the command line as one sh -c string, each argument quoted for sh")
		fs.BoolVar(&cfg.dryRun, "dry-run", false, "print the tasks as JSON Lines task-file entries, one a line, and run none")
	}

	positional, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		if runMode {
			printRunUsage(stdout, fs)
			return nil, err
		}
		printUsage(stdout, fs)
		return nil, err
	}
	if err != nil {
		return nil, &usageError{err.Error()}
	}
	if cfg.version {
		return cfg, nil
	}
	if cfg.logLevel, err = parseLogLevel(*logLevel); err != nil {
		return nil, err
	}
	if cfg.halt, err = parseHalt(*halt); err != nil {
		return nil, usagef("%v", err)
	}
	switch *logFormat {
	case "text":
	case "json":
		cfg.logJSON = true
	default:
		return nil, usagef("--log-format must be text or json, not %q", *logFormat)
	}
	switch *mode {
	case "processes":
	case "threads":
		cfg.threads = true
	default:
		return nil, usagef("--mode must be processes or threads, not %q", *mode)
	}
	if *maxMemory != "" {
		if cfg.maxMemory, err = parseSize(*maxMemory); err != nil {
			return nil, usagef("--max-worker-memory: %v", err)
		}
	}
	nWorkers := false
	fs.Visit(func(f *flag.Flag) { nWorkers = nWorkers || f.Name == "n" })
	if err := rf.finish(cfg, nWorkers); err != nil {
		return nil, err
	}
	if cfg.retryOn, err = parseRetryOn(*retryOn, len(cfg.workerCmd) > 0); err != nil {
		return nil, usagef("--retry-on: %v", err)
	}
	switch {
	case cfg.workers < 1:
		return nil, usagef("-n must be at least 1, not %d", cfg.workers)
	case cfg.timeout < 0:
		return nil, usagef("--timeout must not be negative, not %v", cfg.timeout)
	case cfg.retries < 0:
		return nil, usagef("--retries must not be negative, not %d", cfg.retries)
	case cfg.maxTasks < 0:
		return nil, usagef("--max-tasks-per-worker must not be negative, not %d", cfg.maxTasks)
	case cfg.window < 0:
		return nil, usagef("--window must not be negative, not %d", cfg.window)
	case cfg.threads && len(cfg.workerCmd) > 0:
		return nil, usagef("--worker-cmd starts worker processes: it cannot go with --mode threads")
	case cfg.threads && cfg.maxMemory > 0:
		return nil, usagef("--max-worker-memory cannot hold in --mode threads: the goroutines share poold's memory (use --mode processes)")
	case cfg.threads && cfg.maxTasks > 0:
		return nil, usagef("--max-tasks-per-worker has no meaning in --mode threads: a fresh goroutine frees nothing a task left behind (use --mode processes)")
	case cfg.startTimeout <= 0:
		return nil, usagef("--start-timeout must be positive, not %v", cfg.startTimeout)
	case runMode && len(positional) > 0:
		return nil, usagef("run: %s before --: the command comes after --: poold run [flags] -- COMMAND ARG...", strings.Join(positional, " "))
	case runMode:
		return cfg, nil
	case (cfg.resume || cfg.resumeFailed) && cfg.jobLog == "":
		return nil, usagef("--resume and --resume-failed need --joblog FILE")
	case len(positional) == 0:
		return nil, usagef("no task file given (use - for standard input)")
	case len(positional) > 1:
		return nil, usagef("one task file expected, got %d: %s", len(positional), strings.Join(positional, " "))
	}
	cfg.taskFile = positional[0]
	return cfg, nil
}

// parseInterspersed parses flags before and after positional arguments
// (poold tasks.json -n 4), as GNU tools do; Go's flag stops at the first
// positional one. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, usageHead)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprintf(w, `
TASKFILE is a JSON array of tasks and map entries (or {"tasks": [...]}):
  [{"id": "a", "func": "echo", "args": {"value": 1}, "timeout": "5s", "retries": 1},
   {"id": "sq", "map": "pow", "args": [{"base": 2, "exp": 2}, {"base": 3, "exp": 2}], "chunksize": 1}]
A task or map entry may also have "retry_on": ["exit_status", ...], as --retry-on,
and "at_most_once": true, as --at-most-once.
Tasks: %s;
'poold help tasks' describes their arguments and results.

With --jsonl (or a name ending in .jsonl), TASKFILE holds one such entry per
line, blank lines skipped; it is read as the tasks run, in bounded memory. A
line that is wrong fails as its entry's result, kind bad_task (status 1).

With --json, each line is an object with id, index, func, ok, result or
error, pid, attempts, start and end (absent when unknown), duration_ms,
cpu_ms (the task's CPU time in its worker, its waited-for programs
included; null when unknown), max_rss_bytes (the worker's peak memory when
the task ended; null when unknown, always with --mode threads) and output
(when it printed).

poold run -- COMMAND ARG... runs COMMAND once per argument, as GNU parallel
does: the arguments follow :::, or are the lines of the FILE after ::::, or
else of standard input. {} in the command is the argument (appended when no
replacement string appears); see 'poold run -h'.

poold serve reads tasks as JSON Lines on standard input and writes each
result as a --json line as it finishes, until its input ends: poold as a
co-process (see 'poold serve -h'). poold worker is the worker end that
--worker-cmd launchers and --ssh start on other machines.

poold compare TASKFILE runs the file in both modes, processes and threads,
each run in a process of its own, and prints wall time, CPU time, memory
and failures side by side, then which mode to keep; see 'poold compare -h'.

%s`, taskNames(), wrap("KINDS to retry: "+kindList(retryableKinds)+"; with --worker-cmd, also kinds of the worker program's own.", 0, helpWidth))
	fmt.Fprint(w, `
Exit status: 0 when every task succeeded, 1 when any failed (or the workers
could not start), 2 for a usage or task-file error (nothing is run), 130 or
143 when interrupted by SIGINT or SIGTERM.

The README of github.com/poold/poold describes the task files, the output
and the exit status in full.
`)
}

func parseLogLevel(s string) (hclog.Level, error) {
	levels := map[string]hclog.Level{
		"trace": hclog.Trace, "debug": hclog.Debug, "info": hclog.Info,
		"warn": hclog.Warn, "error": hclog.Error, "off": hclog.Off,
	}
	if l, ok := levels[strings.ToLower(s)]; ok {
		return l, nil
	}
	return hclog.NoLevel, usagef("--log-level: unknown level %q; want trace, debug, info, warn, error or off", s)
}

// parseSize reads a byte count with an optional unit: K, M, G and T (and
// KiB, MiB, GiB, TiB) are powers of 1024; KB, MB, GB and TB powers of 1000;
// B or nothing means bytes. Fractions are allowed (1.5GiB) and the unit is
// case-insensitive.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	units := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}
	mult, ok := units[unit]
	f, err := strconv.ParseFloat(num, 64)
	if num == "" || err != nil || !ok {
		return 0, fmt.Errorf("%q is not a size such as 512M, 1.5GiB or 1000000", s)
	}
	bytes := f * mult
	if bytes >= math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(bytes), nil
}
