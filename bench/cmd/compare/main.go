// Command compare runs the same workloads on poold and on Python's
// multiprocessing.Pool (fork) in one run, beside the physical limit of a Go
// parent talking to copies of its own binary over pipes, and prints each
// figure with its ratio and its target. From the repository root:
//
//	go run ./bench/cmd/compare                 # the full run, several minutes
//	go run ./bench/cmd/compare -smoke          # tiny sizes, one rep: checks that it all works
//	go run ./bench/cmd/compare -only 1,latency -out bench/out/table.md
//
// The binary is its own poold worker (poold.Init first thing in main), its
// own remote worker through ssh (`compare worker`: poold.ServeWorker), its
// own ping-pong child, and its own child for the peak-RSS runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/poold/poold"
	"github.com/poold/poold/bench"
)

// childEnv, when set, makes the binary one of the harness's own children
// rather than the harness: "pingpong", "rss", "primes", "apicmd" or
// "queue".
const childEnv = "POOLD_BENCH_CHILD"

func main() {
	poold.Init(bench.Registry) // in a poold worker: serve tasks, then exit
	if len(os.Args) == 2 && os.Args[1] == workerArg {
		// Started through ssh by workload 8: a worker by command line.
		os.Exit(poold.ServeWorker(bench.Registry))
	}
	switch os.Getenv(childEnv) {
	case "":
	case "pingpong":
		pingPongChild()
		return
	case "rss":
		os.Exit(rssChild())
	case "primes":
		os.Exit(primesChild())
	case "apicmd":
		os.Exit(apiChild())
	case "queue":
		os.Exit(queueChild())
	default:
		fmt.Fprintf(os.Stderr, "compare: unknown %s=%q\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// workload is one of the harness's comparisons. run returns its rows;
// an error fails the whole workload.
type workload struct {
	id    string
	name  string
	title string
	run   func(h *harness) ([]Row, error)
}

var workloads = []workload{
	{"1", "apply", "100,000 trivial tasks submitted one at a time (ApplyAsync), then gathered; 2 workers (processes, then threads)", runApplyAsync},
	{"2", "map", "Map over 1,000,000 trivial items, default chunking; 2 workers (processes, then threads)", runMap},
	{"3", "latency", "single-task round trip: 10,000 sequential Apply calls; 2 workers (processes, then threads)", runLatency},
	{"4", "cpu", "CPU-bound speed-up from 1 to 2 workers: primes below 1,000,000 by trial division in 8 tasks", runCPU},
	{"5", "startup", "pool creation until 4 workers are ready (processes, then threads)", runStartup},
	{"6", "exec", "1,000 exec tasks of `true`, 4 at a time", runExec},
	{"7", "rss", "parent peak RSS streaming trivial tasks through IMap from a lazy iter.Seq; 2 workers", runRSS},
	{"8", "ssh", "workers through ssh to an sshd on 127.0.0.1, beside local workers; the poold command with --ssh beside GNU parallel -S", runSSH},
	{"9", "command", "the poold command as a whole process (poold -n 2 --json FILE > /dev/null) over echo tasks, JSON array and JSON Lines, beside the Go API and a Python Pool(2) script", runCommand},
	{"10", "growth", "how cost grows: throughput against workers (1-16), MB/s against argument size (16 B-1 MiB), parent memory against queued tasks (10,000-1,000,000)", runGrowth},
}

// harness is the state shared by the workloads of one run.
type harness struct {
	ctx   context.Context
	out   io.Writer
	smoke bool
	reps  int // from -reps; 0: each workload's default
	py    *python
	pyWhy string // why py is nil
	tmp   string // the run's temporary directory, removed at its end
	// pooldBin is the poold command built into tmp (buildPoold), once
	// built.
	pooldBin string
}

// size is full in a normal run, small under -smoke.
func (h *harness) size(full, small int) int {
	if h.smoke {
		return small
	}
	return full
}

// nreps is the number of repetitions of a workload whose default is def.
func (h *harness) nreps(def int) int {
	switch {
	case h.smoke:
		return 1
	case h.reps > 0:
		return h.reps
	}
	return def
}

func (h *harness) logf(format string, a ...any) { fmt.Fprintf(h.out, "   "+format+"\n", a...) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	smoke := fs.Bool("smoke", false, "tiny sizes and one rep: checks that every workload works and prints every row (figures mean nothing)")
	pyFlag := fs.String("python", "", "Python interpreter (default: the real executable behind python3 on PATH; \"none\" to skip Python)")
	only := fs.String("only", "", "comma-separated workloads to run, by number or name: "+workloadNames())
	outFile := fs.String("out", "", "also write the table, the machine and the command as Markdown to this file")
	reps := fs.Int("reps", 0, "repetitions of each workload (default: each workload's own, 3 for most)")
	noiseDur := fs.Duration("noise", 2*time.Second, "length of the noise check before each workload (200ms under -smoke)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the harness process (the pool's parent side) to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "compare: unexpected arguments %q\n", fs.Args())
		return 2
	}
	selected, err := selectWorkloads(*only)
	if err != nil {
		fmt.Fprintln(stderr, "compare:", err)
		return 2
	}
	if *smoke && !isFlagSet(fs, "noise") {
		*noiseDur = 200 * time.Millisecond
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "compare:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "compare:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}

	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "poold-compare-")
	if err != nil {
		fmt.Fprintln(stderr, "compare:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	h := &harness{ctx: ctx, out: stdout, smoke: *smoke, reps: *reps, tmp: tmp}
	h.py, h.pyWhy = findPython(ctx, *pyFlag, tmp)

	command := "go run ./bench/cmd/compare"
	if len(args) > 0 {
		command += " " + strings.Join(args, " ")
	}
	m := describeMachine(h.py, h.pyWhy)
	fmt.Fprintln(stdout, "poold comparison harness:", command)
	for _, l := range m.lines() {
		fmt.Fprintln(stdout, l)
	}
	if *smoke {
		fmt.Fprintln(stdout, "SMOKE RUN: tiny sizes, one rep; the figures and MET/NOT MET mean nothing.")
	}

	var rows []Row
	var noises []string
	status := 0
	start := time.Now()
	for _, w := range selected {
		fmt.Fprintf(stdout, "\n== (%s) %s\n", w.id, w.title)
		nz := checkNoise(*noiseDur)
		fmt.Fprintf(stdout, "   noise check (%v, nothing running): %s\n", *noiseDur, nz)
		noises = append(noises, fmt.Sprintf("(%s) %s", w.id, nz))
		t0 := time.Now()
		rs, err := w.run(h)
		if err != nil {
			status = 1
			rs = append(rs, Row{ID: w.id, What: w.name, Poold: "error", Vs: "—", Status: statusError, Note: err.Error()})
			fmt.Fprintf(stdout, "   ERROR: %v\n", err)
		}
		fmt.Fprintf(stdout, "   (%s) took %.1f s\n", w.id, time.Since(t0).Seconds())
		rows = append(rows, rs...)
	}

	fmt.Fprintf(stdout, "\n== Results (%s, %d rows, %.0f s in all); ratio = poold ÷ comparison\n\n", command, len(rows), time.Since(start).Seconds())
	printTable(stdout, rows)
	met, notMet := 0, 0
	for _, r := range rows {
		switch r.Status {
		case statusMet:
			met++
		case statusNotMet:
			notMet++
		}
	}
	fmt.Fprintf(stdout, "\ntargets: %d MET, %d NOT MET\n", met, notMet)

	if *outFile != "" {
		if err := writeMarkdown(*outFile, command, m, *smoke, rows, noises); err != nil {
			fmt.Fprintln(stderr, "compare:", err)
			status = 1
		} else {
			fmt.Fprintln(stdout, "wrote", *outFile)
		}
	}
	return status
}

func writeMarkdown(name, command string, m machine, smoke bool, rows []Row, noises []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured by `%s`.\n\n", command)
	for _, l := range m.lines() {
		fmt.Fprintf(&b, "- %s\n", strings.Join(strings.Fields(l), " "))
	}
	if smoke {
		fmt.Fprintf(&b, "\n**Smoke run: tiny sizes, one rep; the figures mean nothing.**\n")
	}
	b.WriteString("\nratio = poold ÷ comparison.\n\n")
	markdownTable(&b, rows)
	b.WriteString("\nNoise check before each workload (share of all cores busy while the harness ran nothing):\n\n")
	for _, n := range noises {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	return os.WriteFile(name, []byte(b.String()), 0o644)
}

func workloadNames() string {
	var s []string
	for _, w := range workloads {
		s = append(s, w.id+"="+w.name)
	}
	return strings.Join(s, ", ")
}

// selectWorkloads parses -only: numbers or names, comma-separated.
func selectWorkloads(only string) ([]workload, error) {
	if strings.TrimSpace(only) == "" {
		return workloads, nil
	}
	want := map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		found := false
		for _, w := range workloads {
			if s == w.id || s == w.name {
				want[w.id], found = true, true
			}
		}
		if !found {
			return nil, fmt.Errorf("-only: unknown workload %q (have %s)", s, workloadNames())
		}
	}
	var out []workload
	for _, w := range workloads {
		if want[w.id] {
			out = append(out, w)
		}
	}
	return out, nil
}

func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
