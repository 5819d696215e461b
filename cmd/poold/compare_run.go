package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// sideRun is one run of one mode: a child process, from its start to its
// reaping.
type sideRun struct {
	Mode   string
	N      int // -n
	Rep    int // 0-based
	Wall   time.Duration
	User   time.Duration // wait4: the child's, and that of every process it waited for
	Sys    time.Duration
	Usage  *usageReport // the child's own report (usage.go); nil when it did not reach its end
	Mem    memFigures   // sampled while it ran (compare_mem_linux.go)
	OK     int          // results that succeeded
	Failed int
	Kinds  map[string]int // failed results by kind
	Status int            // exit status; -1 when a signal ended the child
	Signal syscall.Signal // the signal that ended it; 0: none
	Err    error          // the child could not be started
	Stderr []string       // the last lines it wrote to stderr

	interrupted bool // compare was interrupted by a signal during the run
}

// CPU is the user and system time of the run: the child's and its workers'.
func (r *sideRun) CPU() time.Duration { return r.User + r.Sys }

// Results is how many results the run printed.
func (r *sideRun) Results() int { return r.OK + r.Failed }

// memFigures is the memory of a run's processes, sampled while it ran:
// each process's VmHWM and the sum of their resident sets. On systems
// without /proc, nothing is sampled.
type memFigures struct {
	Sampled   bool
	RootPeak  int64 // the run's poold: its largest VmHWM seen
	ChildPeak int64 // the largest VmHWM seen of a descendant (a worker, a program an exec task ran)
	TotalPeak int64 // the largest sum of the resident sets of poold and its descendants
}

// parentPeak is poold's own peak memory: its VmHWM at exit, as it
// reported; the last sampled one if it did not report; its ru_maxrss where
// there is no /proc. 0 when unknown.
func (r *sideRun) parentPeak() int64 {
	switch {
	case r.Usage != nil && r.Usage.Peak > 0:
		return r.Usage.Peak
	case r.Mem.RootPeak > 0:
		return r.Mem.RootPeak
	case r.Usage != nil:
		return r.Usage.MaxRSS
	}
	return 0
}

// childPeak is the peak memory of the run's largest child process: the
// largest VmHWM sampled; where nothing is sampled, the children's
// ru_maxrss (an upper bound). 0 when unknown or when there was none.
func (r *sideRun) childPeak() int64 {
	if r.Mem.Sampled {
		return r.Mem.ChildPeak
	}
	if r.Usage != nil {
		return r.Usage.ChildrenMaxRSS
	}
	return 0
}

// lostHow says how the run lost its process, or "" if it reached poold's
// ordinary end: an exit status of 0 or 1, after poold's final usage
// report. A task that calls os.Exit(1) in threads mode exits with an
// ordinary status, but without the report.
func (r *sideRun) lostHow() string {
	switch {
	case r.Err != nil:
		return fmt.Sprintf("could not start: %v", r.Err)
	case r.Signal != 0:
		return "signal " + signalName(r.Signal)
	case r.Status != exitOK && r.Status != exitFailed:
		return fmt.Sprintf("exit status %d", r.Status)
	case r.Usage == nil:
		return fmt.Sprintf("exit status %d without poold's final report (a task ended the process)", r.Status)
	}
	return ""
}

// childWaitDelay bounds the wait for a child's output once it has exited:
// a process it left behind could hold its stderr open.
const childWaitDelay = 5 * time.Second

// stderrTailLines is how many of a run's last stderr lines compare keeps.
const stderrTailLines = 20

// comparison is one poold compare: its runs, and what it made of them.
type comparison struct {
	cc     *compareConfig
	plan   *comparePlan
	exe    string
	stderr io.Writer
	cpus   int
	counts []*countResult

	mu  sync.Mutex
	cur *os.Process    // the child running now; nil between runs
	sig syscall.Signal // the first SIGINT or SIGTERM compare got; 0: none
}

// countResult is what compare found for one count of -n.
type countResult struct {
	N       int // -n
	Workers int // the workers a run has: -n, or fewer for a JSON file of fewer tasks
	Sides   [2]*side
	Verdict *verdict
}

// side is one mode's runs for one count.
type side struct {
	Mode string
	Runs []*sideRun // the runs that reached their end
	Lost *sideRun   // the run that lost its process; nil if none did
	Rep  *sideRun   // the run whose figures are shown (compare_verdict.go)
}

func newComparison(cc *compareConfig, plan *comparePlan, exe string, stderr io.Writer) *comparison {
	return &comparison{cc: cc, plan: plan, exe: exe, stderr: stderr, cpus: runtime.NumCPU()}
}

// run makes every run: for each count, R rounds of both modes, the order
// swapped every other round (P T, T P, ...) so that a machine whose load
// drifts favours neither. A mode whose process was lost is not run again
// for that count: a task that kills its process would kill it again. The
// first SIGINT or SIGTERM is passed to the child running then, which ends
// as poold does on one; no run starts after it, and a second kills the
// child.
func (c *comparison) run() {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go c.watch(ch, done)
	defer func() {
		signal.Stop(ch)
		close(ch)
		<-done
	}()
	progress := isTerminal(c.stderr)
	for _, n := range c.cc.counts {
		cr := &countResult{N: n, Workers: n}
		if !c.plan.stream {
			cr.Workers = min(n, c.plan.tasks)
		}
		for i, mode := range compareModes {
			cr.Sides[i] = &side{Mode: mode}
		}
		c.counts = append(c.counts, cr)
		for rep := range c.cc.reps {
			order := []*side{cr.Sides[0], cr.Sides[1]}
			if rep%2 == 1 {
				slices.Reverse(order)
			}
			for _, s := range order {
				if s.Lost != nil {
					continue
				}
				r := c.runOne(s.Mode, n, rep)
				if r.interrupted {
					return
				}
				if r.lostHow() != "" {
					s.Lost = r
				} else {
					s.Runs = append(s.Runs, r)
				}
				if progress {
					fmt.Fprintf(c.stderr, "poold compare: -n %d, %s, run %d of %d: %s\n", n, s.Mode, rep+1, c.cc.reps, c.runSummary(r))
				}
			}
		}
	}
}

// runSummary is one line about a finished run, for the progress lines.
func (c *comparison) runSummary(r *sideRun) string {
	if how := r.lostHow(); how != "" {
		return "lost its process: " + how
	}
	return fmt.Sprintf("%s, %d ok, %d failed", fmtDuration(r.Wall), r.OK, r.Failed)
}

func (c *comparison) watch(ch chan os.Signal, done chan struct{}) {
	defer close(done)
	for s := range ch {
		c.mu.Lock()
		first := c.sig == 0
		if first {
			c.sig = s.(syscall.Signal)
		}
		if p := c.cur; p != nil {
			if first {
				p.Signal(s)
			} else {
				p.Kill()
			}
		}
		c.mu.Unlock()
	}
}

// interrupted is the signal that interrupted compare; 0 if none did.
func (c *comparison) interrupted() syscall.Signal {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sig
}

// runOne runs one mode once, with n workers, and waits for its process.
func (c *comparison) runOne(mode string, n, rep int) *sideRun {
	r := &sideRun{Mode: mode, N: n, Rep: rep, Kinds: map[string]int{}, Status: -1}
	usageR, usageW, err := os.Pipe()
	if err != nil {
		r.Err = err
		return r
	}
	defer usageR.Close()
	cmd := exec.Command(c.exe, c.cc.childArgs(mode, n)...)
	cmd.Env = append(os.Environ(), usageFDVar+"=3")
	cmd.ExtraFiles = []*os.File{usageW}
	if c.plan.stdin != nil {
		cmd.Stdin = bytes.NewReader(c.plan.stdin)
	}
	tail := &tailWriter{max: stderrTailLines}
	cmd.Stderr = tail
	cmd.SysProcAttr = childProcAttr()
	cmd.WaitDelay = childWaitDelay
	out, err := cmd.StdoutPipe()
	if err != nil {
		usageW.Close()
		r.Err = err
		return r
	}

	// A signal that came before the start stops the run from starting;
	// one that comes after finds the child in c.cur.
	c.mu.Lock()
	if c.sig != 0 {
		c.mu.Unlock()
		usageW.Close()
		r.interrupted = true
		return r
	}
	start := time.Now()
	err = cmd.Start()
	usageW.Close()
	if err != nil {
		c.mu.Unlock()
		r.Err = err
		return r
	}
	c.cur = cmd.Process
	c.mu.Unlock()
	sampler := startSampler(cmd.Process.Pid)

	usage := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(usageR, 1<<16))
		usage <- b
	}()
	r.readResults(out)
	cmd.Wait() // the status is in ProcessState
	r.Wall = time.Since(start)
	r.Mem = sampler.finish()
	c.mu.Lock()
	c.cur = nil
	r.interrupted = c.sig != 0
	c.mu.Unlock()

	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		r.Signal = ws.Signal()
	} else {
		r.Status = cmd.ProcessState.ExitCode()
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.User, r.Sys = tvDuration(ru.Utime), tvDuration(ru.Stime)
	}
	var b []byte
	select {
	case b = <-usage:
	case <-time.After(childWaitDelay):
		// Something the child started holds the pipe: the child wrote its
		// report before it exited, if at all, but EOF will not come.
		usageR.Close()
		b = <-usage
	}
	if len(b) > 0 {
		var u usageReport
		if json.Unmarshal(b, &u) == nil {
			r.Usage = &u
		}
	}
	r.Stderr = tail.lines()
	return r
}

// readResults counts the --json lines of a run as they come, by their
// "ok" and their error's "kind".
func (r *sideRun) readResults(out io.Reader) {
	br := bufio.NewReaderSize(out, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var rec struct {
				OK    *bool `json:"ok"`
				Error *struct {
					Kind string `json:"kind"`
				} `json:"error"`
			}
			switch {
			case json.Unmarshal(line, &rec) != nil || rec.OK == nil:
				// Not a result: poold writes nothing else on stdout with
				// --json, but a line cut short by a death may end it.
			case *rec.OK:
				r.OK++
			default:
				r.Failed++
				kind := "?"
				if rec.Error != nil && rec.Error.Kind != "" {
					kind = rec.Error.Kind
				}
				r.Kinds[kind]++
			}
		}
		if err != nil {
			return
		}
	}
}

// tailWriter keeps the last max lines written to it, each cut to
// tailLineMax bytes.
type tailWriter struct {
	mu      sync.Mutex
	max     int
	ring    []string
	partial []byte
}

const tailLineMax = 500

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for rest := p; len(rest) > 0; {
		line, after, found := bytes.Cut(rest, []byte("\n"))
		if len(t.partial) < tailLineMax {
			t.partial = append(t.partial, line[:min(len(line), tailLineMax-len(t.partial))]...)
		}
		if !found {
			break
		}
		t.push(string(t.partial))
		t.partial, rest = t.partial[:0], after
	}
	return len(p), nil
}

func (t *tailWriter) push(line string) {
	t.ring = append(t.ring, strings.ToValidUTF8(line, "\uFFFD"))
	if len(t.ring) > t.max {
		t.ring = t.ring[1:]
	}
}

// lines is what was kept, a last line without its newline included.
func (t *tailWriter) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.partial) > 0 {
		t.push(string(t.partial))
		t.partial = t.partial[:0]
	}
	return slices.Clone(t.ring)
}
