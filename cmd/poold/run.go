package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/vbauerster/mpb/v8"

	"github.com/poold/poold"
)

// job is what to run: the entries of a checked task file, or a stream.
type job struct {
	src    *source
	tf     *TaskFile // a checked file; nil for a stream
	stream string    // the name of what is read as the run goes, for the header of a stream and messages
	window int       // most results in flight at once; 0: no limit

	jobLog *jobLog   // --joblog; nil: none
	skip   resumeSet // --resume, --resume-failed: the task ids done; nil: none
}

// checkAndExecute sizes the hosts whose workers were given no count, checks
// the workers against the machine's limits, and runs j: what the command,
// `poold run` and `poold serve` do once their input is open. A failure
// stops j's source and is the run's, status 1.
func checkAndExecute(cfg *config, j *job, start time.Time, stdout, stderr io.Writer) int {
	if err := sizeHosts(context.Background(), cfg, stderr); err != nil {
		j.src.Stop()
		fmt.Fprintf(stderr, "poold: %v\n", err)
		return exitFailed
	}
	if err := checkWorkers(cfg); err != nil {
		j.src.Stop()
		fmt.Fprintf(stderr, "poold: %v\n", err)
		return exitFailed
	}
	return execute(cfg, j, start, stdout, stderr)
}

// execute runs a job's entries on a new pool and reports every result.
// start is when poold started, for the wall time.
func execute(cfg *config, j *job, start time.Time, stdout, stderr io.Writer) (code int) {
	defer j.src.Stop()
	if cfg.threads {
		var restore func()
		stdout, restore = takeStdout(stdout)
		defer restore()
	}
	if cfg.jobLog != "" {
		if err := openJob(cfg, j); err != nil {
			fmt.Fprintf(stderr, "poold: %v\n", err)
			return exitUsage
		}
		defer j.jobLog.Close()
	}
	tr, err := openTrace(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "poold: %v\n", err)
		return exitUsage
	}
	if tr != nil {
		defer func() { // after the run: the pool has written the trace's end
			if err := tr.finish(); err != nil {
				fmt.Fprintf(stderr, "poold: %v\n", err)
				code = max(code, exitFailed)
			}
		}()
	}
	// The progress bar: on when stderr is a terminal, or with --progress.
	// Whatever else goes to stderr is then written above it, and so is the
	// table when stdout is the same terminal: lines written straight there
	// would tear the bar.
	width := terminalWidth(stdout)
	errTTY := isTerminal(stderr)
	var prog *mpb.Progress
	var bars []*barWriter
	if cfg.progress || (!cfg.noProgress && errTTY) {
		prog = mpb.New(mpb.WithOutput(stderr), mpb.WithRefreshRate(100*time.Millisecond),
			mpb.ContainerOptional(mpb.WithAutoRefresh(), !errTTY))
		errs := &barWriter{prog: prog, after: stderr}
		bars = append(bars, errs)
		stderr = errs
		if isTerminal(stdout) && errTTY {
			outs := &barWriter{prog: prog, after: stdout}
			bars = append(bars, outs)
			stdout = outs
		}
	}
	// The logger (from pool goroutines) and the reporter share stderr.
	stderr = &lockedWriter{w: stderr}
	// Results are written in batches: the runner flushes whenever it would
	// wait, so each is out as soon as nothing else is ready.
	out := bufio.NewWriterSize(stdout, 64<<10)
	defer out.Flush()
	text := newTextReporter(out, j.tf)
	text.attempts = cfg.retries > 0 || (j.tf != nil && j.tf.Retries)
	text.width = width
	text.hosts = hostColumn(cfg)
	var rep reporter = text
	if cfg.json {
		rep = newJSONReporter(out, stderr)
	}
	if cfg.quiet {
		rep = quietReporter{rep}
	}
	var bar *progressReporter
	if prog != nil {
		bar = newProgressReporter(rep, prog, cfg.workers, func() { out.Flush() }, func() {
			for _, b := range bars {
				b.stop()
			}
		})
		// Whichever way the run ends, the bar comes down before poold
		// writes its last lines.
		defer bar.end()
		rep = bar
	}
	// Signals are watched before the header is written: whoever has read
	// the header can count on SIGTERM ending the run, not poold.
	in := watchSignals()
	defer in.stop()

	h := header{Tasks: -1, Stream: j.stream, Workers: cfg.workers, CPUs: runtime.NumCPU(), PID: os.Getpid(), Hosts: hostsSaid(cfg)}
	if j.tf != nil {
		h.Tasks = j.tf.Results
	}
	rep.Header(h)
	out.Flush()

	r := &runner{cfg: cfg, rep: rep, out: out, window: j.window, log: newLogger(cfg, stderr), jobLog: j.jobLog, skip: j.skip, total: h.Tasks}
	if tr != nil {
		r.trace = tr.writer()
	}
	if cfg.halt != nil && (r.window == 0 || r.window > cfg.workers) {
		// What is in flight runs: a result that fires the rule then stops
		// every task that has not started, since none is queued.
		r.window = cfg.workers
	}
	if bar != nil {
		r.pendingHook, r.skipHook = bar.setPending, bar.skipped
	}
	if cfg.keepOrder {
		r.order = newOrderBuffer()
	}
	r.run(in.ctx, j.src)
	if r.startErr != nil {
		out.Flush()
		if in.signal() != 0 {
			fmt.Fprintln(stderr, "poold: interrupted while starting the workers")
			return exitCode(in.signal())
		}
		fmt.Fprintln(stderr, r.startErr) // "poold: worker could not start: ..."
		return exitFailed
	}

	if j.jobLog != nil && j.jobLog.err != nil {
		fmt.Fprintf(stderr, "poold: writing the job log %s: %v\n", j.jobLog.path, j.jobLog.err)
	}
	s := summary{Tasks: r.ok + r.failed, OK: r.ok, Failed: r.failed, Skipped: r.skipped, PIDs: len(r.pids), Wall: time.Since(start), Signal: in.signal(), Stats: r.stats}
	if r.pool != nil {
		s.WorkersStarted = r.pool.Stats().WorkersStarted
	}
	rep.Summary(s)
	out.Flush()
	if r.readErr != nil {
		fmt.Fprintf(stderr, "poold: reading %s stopped early: %v\n", j.stream, r.readErr)
	}
	switch {
	case s.Signal != 0:
		return exitCode(s.Signal)
	case servedOK(cfg, r.readErr):
		return exitOK
	case r.failed > 0 || r.readErr != nil:
		return exitFailed
	default:
		return exitOK
	}
}

// openJob reads the job log for --resume or --resume-failed, then opens it
// for writing.
func openJob(cfg *config, j *job) error {
	if cfg.resume || cfg.resumeFailed {
		done, err := readJobLog(cfg.jobLog, !cfg.resume)
		if err != nil {
			return err
		}
		j.skip = done
	}
	l, err := openJobLog(cfg.jobLog, cfg.resume || cfg.resumeFailed)
	if err != nil {
		return err
	}
	j.jobLog = l
	return nil
}

// runner submits entries as they come and reports their results in the
// order they finish.
type runner struct {
	cfg    *config
	rep    reporter
	out    *bufio.Writer // the reporter's buffered output
	log    hclog.Logger
	window int // most results in flight; 0: no limit
	pool   *poold.Pool

	events  chan event
	flights map[int]*flight // by Entry.Pos
	opts    []poold.CallOption
	pending int          // results submitted and not yet printed
	order   *orderBuffer // -k: results wait here for their turn; nil: printed as they come

	pendingHook func(pending int) // told r.pending when it changes; nil: none
	skipHook    func(n int)       // told of the results the job log skips; nil: none

	ok, failed int
	skipped    int // results skipped by the job log
	received   int // entries read
	pids       map[workerID]bool
	stats      *runStats // for the summary; nil until a result comes
	jobLog     *jobLog
	trace      io.Writer // --trace; nil: none
	skip       resumeSet
	total      int   // the tasks of the run; -1 for a stream
	halted     bool  // --halt's rule fired
	startErr   error // the workers could not start
	readErr    error // the input ended early
}

// run submits the entries of src, keeping at most r.window results in
// flight, and reports results until the last one is in. The pool starts
// with the first entry that needs it, so that an input with nothing to run
// starts no worker. When ctx ends (a signal), it stops submitting and
// terminates the pool: the unfinished tasks then fail with kind terminated
// and are reported too. A stream is read no further then; the rest of a
// checked file is reported as terminated.
func (r *runner) run(ctx context.Context, src *source) {
	// Callbacks run one at a time on a pool goroutine; the buffer lets them
	// go on while this goroutine writes output.
	r.events = make(chan event, 1024)
	r.flights = make(map[int]*flight)
	r.pids = make(map[workerID]bool)

	entries := src.C
	var batch []*Entry // entries received and not yet taken
	interrupted := ctx.Done()
	stopped := false
	var terminated chan struct{}
	for entries != nil || len(batch) > 0 || len(r.flights) > 0 {
		full := !stopped && !r.halted && r.window > 0 && r.pending >= r.window
		if r.halted && !src.Drain && (entries != nil || len(batch) > 0) {
			src.Stop() // --halt: a stream is read no further
			entries, batch = nil, nil
			if r.pool != nil {
				r.pool.Close()
			}
		}
		if len(batch) > 0 && !full && len(r.events) == 0 {
			// Results first: they make room in the window.
			e := batch[0]
			batch[0], batch = nil, batch[1:]
			if !r.take(ctx, e, stopped) {
				src.Stop()
				return
			}
			continue
		}
		next := entries
		if full || len(batch) > 0 {
			next = nil // wait for a result before reading on
		}
		w := r.wait(next, interrupted)
		switch {
		case w.signal:
			interrupted, stopped = nil, true
			if !src.Drain {
				src.Stop()
				entries, batch = nil, nil
			}
			if r.pool != nil {
				// Terminate waits for the workers to exit; results keep
				// coming in meanwhile, so it must not block this loop.
				terminated = make(chan struct{})
				go func() {
					r.pool.Terminate()
					close(terminated)
				}()
			}
		case w.isBatch && w.batch == nil: // the end of the input
			entries = nil
			r.readErr = src.Err()
			if r.pool != nil {
				// Nothing more will come: workers exit as soon as the
				// queue is empty.
				r.pool.Close()
			}
		case w.isBatch:
			batch = w.batch
		default:
			r.handle(w.ev)
		}
	}
	if terminated != nil {
		<-terminated
	}
	if r.pool != nil {
		r.join()
	}
}

// waited is what runner.wait got: a batch of entries (nil when the input
// ended), an event, or a signal.
type waited struct {
	isBatch bool
	batch   []*Entry
	ev      event
	signal  bool
}

// wait returns the next thing to do. Before it blocks, it flushes the
// output: results are written in batches, but never held back. Both
// channels are buffered, so their lengths say whether a receive would block
// (a value that comes just after the look costs one early flush, no more).
func (r *runner) wait(next <-chan []*Entry, interrupted <-chan struct{}) waited {
	if len(next) == 0 && len(r.events) == 0 {
		r.out.Flush()
	}
	select {
	case b := <-next:
		return waited{isBatch: true, batch: b}
	case ev := <-r.events:
		return waited{ev: ev}
	case <-interrupted:
		return waited{signal: true}
	}
}

// take runs or reports one entry; false if the workers could not start.
func (r *runner) take(ctx context.Context, e *Entry, stopped bool) bool {
	if e.Control != nil {
		r.control(e)
		return true
	}
	r.received++
	switch {
	case r.skip.skips(e):
		r.skipped += e.Count()
		if r.skipHook != nil {
			r.skipHook(e.Count())
		}
		if r.order != nil {
			for j := range e.Count() {
				r.order.skip(e.First + j)
			}
			r.order.release(r.print)
		}
	case stopped:
		r.fail(e, poold.KindTerminated, "interrupted before the task was submitted")
	case r.halted:
		r.fail(e, poold.KindCanceled, fmt.Sprintf("not started: --halt %v", r.cfg.halt))
	case e.Bad != "":
		r.fail(e, poold.KindBadTask, e.Bad)
	case e.Count() == 0:
		// An empty map entry: no result, and no reason to start a worker.
	default:
		if r.pool == nil {
			opts := poolOptions(r.cfg, r.log)
			if r.trace != nil {
				opts = append(opts, poold.WithTrace(r.trace))
			}
			p, err := poold.New(ctx, opts...)
			if err != nil {
				r.startErr = err
				return false
			}
			r.pool = p
		}
		if err := r.submit(e); err != nil {
			r.fail(e, submitKind(err), submitMessage(err))
		}
	}
	return true
}

// joinGrace bounds the wait for workers to exit once every result is in:
// with nothing left to run they exit at once, at the end of their input.
const joinGrace = 5 * time.Second

// join waits for the workers to exit. Every result is in by now, so a
// worker still running after joinGrace has nothing left to do; rather than
// hang, poold says so and terminates the pool.
func (r *runner) join() {
	ctx, cancel := context.WithTimeout(context.Background(), joinGrace)
	defer cancel()
	if err := r.pool.Join(ctx); err == nil {
		return
	}
	r.log.Warn("workers did not exit after the last task; terminating them", "waited", joinGrace)
	r.pool.Terminate()
}
