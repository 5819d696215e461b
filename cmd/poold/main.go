// Command poold runs the tasks of a JSON task file on a pool of worker
// processes and prints each result, with the PID of the worker that ran it,
// as it finishes. A JSON task file is checked in a first pass, then read
// again as it runs; a JSON Lines task file (.jsonl, or --jsonl) is streamed,
// read once as it runs. Either runs in bounded memory.
//
//	poold [flags] TASKFILE
//
// The workers are this binary, re-executed in worker mode. The
// repository's README describes the task-file and output formats.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/poold/poold"
)

// Exit statuses. A run interrupted by a signal exits with 128 + the signal's
// number (130 for SIGINT, 143 for SIGTERM), as shells do.
const (
	exitOK     = 0 // every task succeeded
	exitFailed = 1 // some task failed, or the workers could not start
	exitUsage  = 2 // a usage or task-file error; nothing was started
)

// started is when poold started: the wall time counts from here.
var started = time.Now()

func main() {
	// The pool's workers are this binary re-executed: in a worker, Init
	// serves tasks and exits, so it must run before anything else.
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		// Before Init: srun passes the parent's environment on, and with
		// it the marker of a worker that the parent started itself.
		os.Exit(workerCommand(os.Args[2:], os.Stdout, os.Stderr))
	}
	poold.Init(newRegistry())
	usage := takeUsageFD(os.Stderr)
	code := runAt(started, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	writeUsage(usage, code)
	os.Exit(code)
}

// newRegistry returns the tasks poold's workers know: the built-ins.
func newRegistry() *poold.Registry {
	reg := poold.NewRegistry()
	poold.RegisterBuiltins(reg)
	return reg
}

// run is the command without the process around it, so that tests can call
// it; it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runAt(time.Now(), args, stdin, stdout, stderr)
}

// runAt is run for a command that started at start.
func runAt(start time.Time, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "help" {
		return help(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "run" {
		return runCommand(start, args[1:], stdin, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "worker" {
		return workerCommand(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "serve" {
		return serveCommand(start, args[1:], stdin, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "compare" {
		return compareCommand(args[1:], stdin, stdout, stderr)
	}
	cfg, err := parseFlags(args, stdout)
	if code, done := preamble(cfg, err, "poold -h", stdout, stderr); done {
		return code
	}
	var j *job
	if isStream(cfg) {
		j, err = openStream(cfg, stdin)
	} else {
		j, err = loadTaskFile(cfg, stdin, stderr)
	}
	if err != nil {
		printError(stderr, err)
		return exitUsage
	}
	if j.tf != nil && len(cfg.hosts) == 0 {
		// The count is known: a worker more than there are tasks would
		// have nothing to do.
		cfg.workers = min(cfg.workers, j.tf.Results)
	}
	return checkAndExecute(cfg, j, start, stdout, stderr)
}

// checkWorkers refuses a number of worker processes that the process
// limits cannot hold; goroutines (--mode threads) need none of them.
func checkWorkers(cfg *config) error {
	if cfg.threads {
		return nil
	}
	return checkLimits(cfg.workers)
}

// checkWorkerCmd checks that the --worker-cmd program exists and can be
// run, so that a typo is a usage error before anything starts.
func checkWorkerCmd(argv []string) error {
	if len(argv) == 0 {
		return nil
	}
	name := argv[0]
	if !strings.Contains(name, "/") {
		if _, err := exec.LookPath(name); err != nil {
			return usagef("--worker-cmd %s: no such program in $PATH", name)
		}
		return nil
	}
	fi, err := os.Stat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return usagef("--worker-cmd %s: no such file", name)
	case err != nil:
		return usagef("--worker-cmd %s: %v", name, err)
	case fi.IsDir():
		return usagef("--worker-cmd %s: is a directory, not a program", name)
	case fi.Mode()&0o111 == 0 || unix.Access(name, unix.X_OK) != nil:
		return usagef("--worker-cmd %s: not executable (%v)", name, fi.Mode())
	}
	return nil
}

// knownNames lists the task names the workers will know, for checking task
// files; nil when a --worker-cmd program runs the tasks, since it may know
// tasks that this binary does not: the pool then checks names against what
// its workers announce.
func knownNames(cfg *config) []string {
	if len(cfg.workerCmd) > 0 {
		return nil
	}
	return newRegistry().Names()
}

// loadTaskFile checks the JSON task file named on the command line, in
// a first pass over it, and returns the job that reads it again as it runs
// (filesource.go). If the check takes more than slowLoad, it says so on
// stderr, then how many tasks it found.
func loadTaskFile(cfg *config, stdin io.Reader, stderr io.Writer) (*job, error) {
	name := cfg.taskFile
	if name == "-" {
		name = "stdin"
	}
	n := noteSlow(stderr, slowLoad, "poold: reading "+name+"…")
	defer n.stop("")
	known := knownNames(cfg)
	in, first, done, err := openTaskFile(cfg.taskFile, name, stdin)
	if errors.Is(err, errNoCopy) {
		defer done()
		return loadInMemory(cfg, name, first, known, n)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the task file: %w", err)
	}
	c := newChecker(name, known, false)
	w := newWalker(first)
	w.fast = &c.fast
	res, err := w.walk(c.entry)
	if derr := done(); err == nil {
		err = derr
	}
	tf, err := c.finish(res, err, func() (io.Reader, error) { return in.reader(), nil })
	if err == nil {
		err = in.unchanged()
	}
	if err != nil {
		in.f.Close()
		return nil, err
	}
	n.stop(fmt.Sprintf("poold: %s: %s, read in %s", name, plural(tf.Results, "task"), n.elapsed().Round(time.Millisecond)))
	return &job{src: fileSource(in, tf, known), tf: tf, stream: name, window: streamWindow(cfg)}, nil
}

// loadInMemory reads and checks a task file on standard input (or a pipe)
// that could not be copied, all in memory.
func loadInMemory(cfg *config, name string, r io.Reader, known []string, n *slowNote) (*job, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading the task file: %w", err)
	}
	tf, err := ParseTaskFile(name, data, known)
	if err != nil {
		return nil, err
	}
	n.stop(fmt.Sprintf("poold: %s: %s, read in %s", name, plural(tf.Results, "task"), n.elapsed().Round(time.Millisecond)))
	return &job{src: sliceSource(tf.Entries), tf: tf, window: cfg.window}, nil
}

// slowLoad is how long reading a task file may take before poold says
// that it is at it.
const slowLoad = time.Second

// slowNote prints a line if something takes longer than a while, and
// another when it is done, if it printed the first.
type slowNote struct {
	mu      sync.Mutex
	w       io.Writer
	start   time.Time
	timer   *time.Timer
	printed bool
	done    bool
}

func noteSlow(w io.Writer, after time.Duration, line string) *slowNote {
	n := &slowNote{w: w, start: time.Now()}
	n.timer = time.AfterFunc(after, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if !n.done {
			fmt.Fprintln(n.w, line)
			n.printed = true
		}
	})
	return n
}

func (n *slowNote) elapsed() time.Duration { return time.Since(n.start) }

// stop ends the wait; if the first line was printed, line follows it
// (unless it is ""). Only the first stop counts.
func (n *slowNote) stop(line string) {
	n.timer.Stop()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done {
		return
	}
	n.done = true
	if n.printed && line != "" {
		fmt.Fprintln(n.w, line)
	}
}

// defaultWindowPerWorker sets a stream's default window: enough tasks in
// flight to keep every worker busy, few enough to keep memory flat.
const defaultWindowPerWorker = 64

// openStream opens the JSON Lines task file named on the command line. Its
// first read happens here, so that a file that cannot be read is an error
// before anything starts; the rest is read as the tasks run.
func openStream(cfg *config, stdin io.Reader) (*job, error) {
	lr, name, closer, err := openLines(cfg.taskFile, stdin, "the task file")
	if err != nil {
		return nil, err
	}
	return &job{src: streamSource(lr, closer, knownNames(cfg), nil), stream: name, window: streamWindow(cfg)}, nil
}

// streamWindow is a stream's window: --window, or enough tasks in flight
// to keep every worker busy, few enough to keep memory flat.
func streamWindow(cfg *config) int {
	if cfg.window > 0 {
		return cfg.window
	}
	return defaultWindowPerWorker * cfg.workers
}

// preamble does what every form of the command does once its flags are
// parsed (err is their error): it checks the worker command, and handles
// -h, a usage error (usage names the help to run) and --version. done: the
// command ends there, with code.
func preamble(cfg *config, err error, usage string, stdout, stderr io.Writer) (code int, done bool) {
	if err == nil && !cfg.version {
		err = checkWorkerCmd(cfg.workerCmd)
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK, true
	case err != nil:
		fmt.Fprintf(stderr, "poold: %v\nRun '%s' for usage.\n", err, usage)
		return exitUsage, true
	case cfg.version:
		fmt.Fprintln(stdout, version())
		return exitOK, true
	}
	return 0, false
}

// printError prints err with "poold: " before each of its lines.
func printError(w io.Writer, err error) {
	for line := range strings.Lines(err.Error()) {
		fmt.Fprintf(w, "poold: %s", line)
	}
	fmt.Fprintln(w)
}

func version() string {
	v, goVersion := "(unknown)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		v, goVersion = bi.Main.Version, bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v += " " + s.Value
			}
		}
	}
	return strings.TrimSpace("poold " + v + " " + goVersion)
}
