// Command poold runs the tasks of a JSON task file on a pool of worker
// processes and prints each result, with the PID of the worker that ran it,
// as it finishes. A JSON Lines task file (.jsonl, or --jsonl) is streamed:
// read as it runs, in bounded memory.
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
	"os"
	"runtime/debug"
	"strings"

	"github.com/poold/poold"
)

// Exit statuses. A run interrupted by a signal exits with 128 + the signal's
// number (130 for SIGINT, 143 for SIGTERM), as shells do.
const (
	exitOK     = 0 // every task succeeded
	exitFailed = 1 // some task failed, or the workers could not start
	exitUsage  = 2 // a usage or task-file error; nothing was started
)

func main() {
	// The pool's workers are this binary re-executed: in a worker, Init
	// serves tasks and exits, so it must run before anything else.
	poold.Init(newRegistry())
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
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
	cfg, err := parseFlags(args, stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "poold: %v\nRun 'poold -h' for usage.\n", err)
		return exitUsage
	case cfg.version:
		fmt.Fprintln(stdout, version())
		return exitOK
	}
	var j *job
	if isStream(cfg) {
		j, err = openStream(cfg, stdin)
	} else {
		j, err = loadTaskFile(cfg, stdin)
	}
	if err != nil {
		printError(stderr, err)
		return exitUsage
	}
	return execute(cfg, j, stdout, stderr)
}

// knownNames lists the task names the workers will know, for checking task
// files; nil when a --worker-cmd program runs the tasks, since it may know
// tasks that this binary does not: the pool then checks names against what
// its workers announce.
func knownNames(cfg *config) []string {
	if cfg.workerCmd != "" {
		return nil
	}
	return newRegistry().Names()
}

// loadTaskFile reads and checks the JSON task file named on the command
// line.
func loadTaskFile(cfg *config, stdin io.Reader) (*job, error) {
	name := cfg.taskFile
	var data []byte
	var err error
	if name == "-" {
		name = "stdin"
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the task file: %w", err)
	}
	tf, err := ParseTaskFile(name, data, knownNames(cfg))
	if err != nil {
		return nil, err
	}
	return &job{src: sliceSource(tf.Entries), tf: tf, window: cfg.window}, nil
}

// defaultWindowPerWorker sets a stream's default window: enough tasks in
// flight to keep every worker busy, few enough to keep memory flat.
const defaultWindowPerWorker = 64

// openStream opens the JSON Lines task file named on the command line. Its
// first read happens here, so that a file that cannot be read is an error
// before anything starts; the rest is read as the tasks run.
func openStream(cfg *config, stdin io.Reader) (*job, error) {
	name := cfg.taskFile
	var r io.Reader = stdin
	var closer io.Closer
	if name == "-" {
		name = "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("reading the task file: %w", err)
		}
		r, closer = f, f
	}
	lr := newLineReader(r, maxLineLen)
	if _, err := lr.r.Peek(1); err != nil && !errors.Is(err, io.EOF) {
		if closer != nil {
			closer.Close()
		}
		return nil, fmt.Errorf("reading the task file: %w", err)
	}
	window := cfg.window
	if window == 0 {
		window = defaultWindowPerWorker * cfg.workers
	}
	return &job{src: streamSource(lr, closer, knownNames(cfg)), stream: name, window: window}, nil
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
