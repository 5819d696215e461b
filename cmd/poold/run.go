package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold"
)

// execute runs a checked task file on a new pool and reports every result.
func execute(cfg *config, tf *TaskFile, stdout, stderr io.Writer) int {
	start := time.Now()
	// The logger (from pool goroutines) and the reporter share stderr.
	stderr = &lockedWriter{w: stderr}
	var rep reporter = newTextReporter(stdout, tf)
	if cfg.json {
		rep = newJSONReporter(stdout, stderr)
	}
	rep.Header(header{Tasks: tf.Results, Workers: cfg.workers, CPUs: runtime.NumCPU(), PID: os.Getpid()})

	in := watchSignals()
	defer in.stop()

	r := &runner{tf: tf, rep: rep, emitted: make([]bool, tf.Results)}
	if tf.Results > 0 { // an empty list needs no workers
		r.log = hclog.New(&hclog.LoggerOptions{Name: "poold", Level: cfg.logLevel, Output: stderr})
		p, err := poold.New(in.ctx, poolOptions(cfg, r.log)...)
		switch {
		case err != nil && in.signal() != 0:
			fmt.Fprintln(stderr, "poold: interrupted while starting the workers")
			return exitCode(in.signal())
		case err != nil:
			fmt.Fprintln(stderr, err) // "poold: worker could not start: ..."
			return exitFailed
		}
		r.pool = p
		r.run(in.ctx)
	}

	s := summary{Tasks: tf.Results, OK: r.ok, Failed: r.failed, PIDs: len(r.pids), Wall: time.Since(start), Signal: in.signal()}
	if r.pool != nil {
		s.WorkersStarted = r.pool.Stats().WorkersStarted
	}
	rep.Summary(s)
	switch {
	case s.Signal != 0:
		return exitCode(s.Signal)
	case r.failed > 0:
		return exitFailed
	default:
		return exitOK
	}
}

func poolOptions(cfg *config, logger hclog.Logger) []poold.Option {
	opts := []poold.Option{poold.WithWorkers(cfg.workers), poold.WithLogger(logger)}
	if cfg.workerCmd != "" {
		opts = append(opts, poold.WithWorkerCommand(cfg.workerCmd))
	}
	if cfg.timeout > 0 {
		opts = append(opts, poold.WithTimeout(cfg.timeout))
	}
	if cfg.retries > 0 {
		opts = append(opts, poold.WithRetries(cfg.retries))
	}
	if cfg.maxTasks > 0 {
		opts = append(opts, poold.WithMaxTasksPerWorker(cfg.maxTasks))
	}
	if cfg.maxMemory > 0 {
		opts = append(opts, poold.WithMaxWorkerMemory(cfg.maxMemory))
	}
	return opts
}

// event says that results of an entry are ready.
type event struct {
	entry   int                      // index in TaskFile.Entries
	item    *poold.Result[poold.Raw] // a map item that succeeded
	mapDone bool                     // every item of a map entry is done
}

// runner submits the entries of a task file and reports their results in
// the order they finish.
type runner struct {
	tf   *TaskFile
	rep  reporter
	pool *poold.Pool
	log  hclog.Logger

	events  chan event
	applies []*poold.AsyncResult[poold.Raw] // by entry, for tasks
	maps    []*poold.MapResult[poold.Raw]   // by entry, for map entries

	emitted     []bool // by output index
	remaining   int    // results not yet reported
	mapsPending int    // map entries whose mapDone event has not arrived
	ok, failed  int
	pids        map[int]bool
}

// run submits everything, then reports results until the last one is in.
// When ctx ends (a signal), it stops submitting and terminates the pool:
// the unfinished tasks then fail with kind terminated and are reported too.
func (r *runner) run(ctx context.Context) {
	n := len(r.tf.Entries)
	// Callbacks run one at a time on a pool goroutine; the buffer lets them
	// go on while this goroutine writes output.
	r.events = make(chan event, 1024)
	r.applies = make([]*poold.AsyncResult[poold.Raw], n)
	r.maps = make([]*poold.MapResult[poold.Raw], n)
	r.remaining = r.tf.Results
	r.pids = make(map[int]bool)

	// Submitting is quick (nothing waits for a worker), and events are read
	// only after it, so the handle an event refers to is always stored.
	for i, e := range r.tf.Entries {
		if ctx.Err() != nil {
			r.fail(e, poold.KindTerminated, "interrupted before the task was submitted")
			continue
		}
		if err := r.submit(i, e); err != nil {
			r.fail(e, submitKind(err), submitMessage(err))
		}
	}
	// Nothing more will come: workers exit as soon as the queue is empty.
	r.pool.Close()

	interrupted := ctx.Done()
	terminated := make(chan struct{})
	for r.remaining > 0 || r.mapsPending > 0 {
		select {
		case ev := <-r.events:
			r.handle(ev)
		case <-interrupted:
			interrupted = nil
			// Terminate waits for the workers to exit; results keep coming
			// in meanwhile, so it must not block this loop.
			go func() {
				r.pool.Terminate()
				close(terminated)
			}()
		}
	}
	if interrupted == nil {
		<-terminated
	}
	r.join()
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

// submit hands entry i to the pool. Its results arrive as events: one per
// task (whose result the handle then gives), one per map item that
// succeeds, and one when a whole map is done, which covers the failed items
// (OnError does not say which item failed).
func (r *runner) submit(i int, e *Entry) error {
	var opts []poold.CallOption
	if e.Timeout > 0 {
		opts = append(opts, poold.Timeout(e.Timeout))
	}
	if e.HasRetries {
		opts = append(opts, poold.Retries(e.Retries))
	}
	if !e.IsMap {
		done := func() { r.events <- event{entry: i} }
		opts = append(opts,
			poold.OnSuccess(func(poold.Result[poold.Raw]) { done() }),
			poold.OnError(func(error) { done() }))
		a, err := r.pool.ApplyAsync(e.Func, e.Args, opts...)
		if err != nil {
			return err
		}
		r.applies[i] = a
		return nil
	}
	if e.ChunkSize > 0 {
		opts = append(opts, poold.ChunkSize(e.ChunkSize))
	}
	opts = append(opts, poold.OnSuccess(func(res poold.Result[poold.Raw]) {
		r.events <- event{entry: i, item: &res}
	}))
	m, err := r.pool.MapAsync(e.Func, e.MapArgs, opts...)
	if err != nil {
		return err
	}
	r.maps[i] = m
	r.mapsPending++
	go func() {
		<-m.Done()
		r.events <- event{entry: i, mapDone: true}
	}()
	return nil
}

// submitKind classifies an error of ApplyAsync or MapAsync: the task then
// fails without running.
func submitKind(err error) poold.Kind {
	switch {
	case errors.Is(err, poold.ErrUnknownFunc):
		return poold.KindUnknownFunc
	case errors.Is(err, poold.ErrPoolClosed):
		return poold.KindTerminated
	default:
		return poold.KindBadTask
	}
}

// submitMessage is err without the prefixes that the kind already says.
func submitMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "poold: ")
	if errors.Is(err, poold.ErrUnknownFunc) {
		msg = strings.TrimPrefix(msg, poold.ErrUnknownFunc.Error()+": ")
	}
	return msg
}

func (r *runner) handle(ev event) {
	e := r.tf.Entries[ev.entry]
	switch {
	case ev.item != nil:
		r.emit(e, ev.item.Index, *ev.item)
	case ev.mapDone:
		r.mapsPending--
		// Done is closed, so Get returns at once.
		results, _ := r.maps[ev.entry].Get(context.Background())
		for j, res := range results {
			r.emit(e, j, res)
		}
	default:
		res, _ := r.applies[ev.entry].Get(context.Background())
		r.emit(e, 0, res)
	}
}

// fail reports every result of an entry that never reached a worker.
func (r *runner) fail(e *Entry, kind poold.Kind, msg string) {
	for j := range e.Count() {
		r.emit(e, j, poold.Result[poold.Raw]{
			Func: e.Func,
			Err:  &poold.TaskError{Kind: kind, Func: e.Func, Message: msg},
		})
	}
}

// emit reports result j of entry e, once.
func (r *runner) emit(e *Entry, j int, res poold.Result[poold.Raw]) {
	index := e.First + j
	if r.emitted[index] {
		return
	}
	r.emitted[index] = true
	r.remaining--
	if res.Func == "" {
		res.Func = e.Func
	}
	if res.Err == nil {
		r.ok++
	} else {
		r.failed++
	}
	if res.PID != 0 {
		r.pids[res.PID] = true
	}
	r.rep.Result(outcome{ID: e.ResultID(j), Index: index, Res: res})
}

// signals turns the first SIGINT or SIGTERM into the end of a context, and
// the second into an immediate exit.
type signals struct {
	ctx    context.Context
	cancel context.CancelFunc
	ch     chan os.Signal
	sig    syscall.Signal // written before cancel; read after ctx ends
	done   chan struct{}  // closed when the watching goroutine returns
}

func watchSignals() *signals {
	s := &signals{ch: make(chan os.Signal, 2), done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	signal.Notify(s.ch, syscall.SIGINT, syscall.SIGTERM)
	go s.watch()
	return s
}

func (s *signals) watch() {
	defer close(s.done)
	first, ok := <-s.ch
	if !ok {
		return
	}
	s.sig = first.(syscall.Signal)
	s.cancel()
	if _, ok := <-s.ch; ok {
		// The user will not wait for the workers to wind down. Exiting
		// leaves none behind: each worker exits when its stdin closes, and
		// dies with the parent by Pdeathsig.
		os.Exit(exitCode(s.sig))
	}
}

// signal is the signal that interrupted the run; 0 if none did.
func (s *signals) signal() syscall.Signal {
	if s.ctx.Err() == nil {
		return 0
	}
	return s.sig
}

// stop restores the default handling and ends the watching goroutine.
func (s *signals) stop() {
	signal.Stop(s.ch)
	close(s.ch)
	<-s.done
	s.cancel()
}

func exitCode(sig syscall.Signal) int { return 128 + int(sig) }

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
