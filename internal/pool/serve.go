package pool

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/tasks"
	"golang.org/x/sys/unix"
)

// IsWorker reports whether this process was started by a pool as a worker.
func IsWorker() bool { return os.Getenv(EnvWorker) != "" }

// Serve runs this process as a worker of the parent that started it and
// returns the exit status to end with: 0 once its input has ended and every
// task it received has been answered.
//
// The protocol runs on private close-on-exec copies of the descriptors the
// worker was started with. Descriptor 1 then points at a capture file and
// descriptor 0 at /dev/null, so that nothing a task prints or reads, by any
// route (fmt, cgo, a child process), can touch the protocol. What a task
// prints to stdout comes back with its result; what it writes to stderr goes
// to the parent's logger, with this worker's pid.
func Serve(reg *tasks.Registry) int {
	if v := os.Getenv(EnvWorker); v != strconv.Itoa(ipc.ProtocolVersion) {
		fmt.Fprintf(os.Stderr, "poold worker: parent speaks protocol %q, this worker %d\n", v, ipc.ProtocolVersion)
		return 3
	}
	maxFrame, maxOutput := envInt(EnvMaxFrame, ipc.DefaultMaxFrame), envInt(EnvMaxOutput, 4<<20)
	initName, initArgs, profDir := os.Getenv(EnvInit), os.Getenv(EnvInitArgs), os.Getenv(EnvCPUProfile)
	level := hclog.LevelFromString(os.Getenv(EnvLogLevel))
	if n := envInt(EnvProcs, 0); n > 0 {
		runtime.GOMAXPROCS(n)
	}
	// What a task starts must not believe it is a worker too.
	for _, k := range []string{EnvWorker, EnvMaxFrame, EnvMaxOutput, EnvLogLevel, EnvInit, EnvInitArgs, EnvCPUProfile, EnvProcs} {
		os.Unsetenv(k)
	}
	io, err := takeStdio(maxOutput)
	if err != nil {
		fmt.Fprintln(os.Stderr, "poold worker:", err)
		return 3
	}
	signal.Ignore(syscall.SIGINT) // Ctrl-C is the parent's to handle
	// SIGTERM (the pool's Terminate, or the parent's death through
	// Pdeathsig) ends the worker's whole process group, children of its
	// tasks included. A worker is its group's leader; anything else was
	// not started by a pool and must not kill its caller's group.
	if unix.Getpgrp() == os.Getpid() {
		terms := make(chan os.Signal, 1)
		signal.Notify(terms, syscall.SIGTERM)
		go func() {
			<-terms
			unix.Kill(0, unix.SIGKILL)
		}()
	}
	log := hclog.New(&hclog.LoggerOptions{
		Output:     io.log,
		JSONFormat: true,
		Level:      level,
	})
	s := &server{
		reg: reg,
		io:  io,
		log: log,
		rd:  ipc.NewReader(io.in, maxFrame),
		wr:  ipc.NewWriter(io.out, maxFrame),
	}
	s.base = tasks.WithProtocolStream(context.Background(), io.out)
	if profDir != "" {
		defer profileCPU(profDir, log)()
	}
	return s.run(initName, initArgs)
}

// profileCPU writes this worker's CPU profile to dir/worker-PID.pprof until
// the returned function is called: workers are separate processes, so a
// profile of the parent does not show them.
func profileCPU(dir string, log hclog.Logger) func() {
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("worker-%d.pprof", os.Getpid())))
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		log.Warn("cannot profile", "error", err.Error())
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// checkAfter is how long a job must have run for the kernel to be asked
// about its output even in the middle of a burst of jobs.
const checkAfter = 20 * time.Microsecond

type server struct {
	reg   *tasks.Registry
	io    *stdio
	log   hclog.Logger
	rd    *ipc.Reader
	wr    *ipc.Writer
	items []ipc.Item      // reused for each result
	vals  []byte          // the values of a job's tasks, back to back; reused
	base  context.Context // every task's context derives from it
}

func (s *server) run(initName, initArgs string) int {
	if err := s.initialize(initName, initArgs); err != nil {
		// Before the handshake, so that the parent counts a failed start and
		// shows this line from stderr.
		s.log.Error("initializer failed", "error", err.Error())
		fmt.Fprintf(s.io.log, "poold worker: initializer failed: %v\n", err)
		return 4
	}
	if err := s.wr.WriteHello(&ipc.Hello{PID: os.Getpid(), Version: ipc.ProtocolVersion, Tasks: s.reg.Names()}); err != nil {
		s.log.Error("hello", "error", err)
		return 3
	}
	if err := s.wr.Flush(); err != nil {
		return 3 // the parent is gone
	}
	// One goroutine reads, runs and writes, like the simplest ping-pong: no
	// hand-off between goroutines on the way. Nothing runs beside a task, so
	// a Cancel can only arrive between tasks, when there is nothing to
	// cancel; a task's own time limit cancels its context in the worker.
	ppid := os.Getppid()
	var m ipc.Message
	for {
		// Shared: a job is done and answered before the next read.
		if err := s.rd.ReadShared(&m); err != nil {
			if errors.Is(err, io.EOF) {
				if os.Getppid() != ppid && unix.Getpgrp() == os.Getpid() {
					unix.Kill(0, unix.SIGKILL) // the parent died: take our group down
				}
				return 0 // the parent closed our input
			}
			s.log.Error("bad frame from the parent; exiting", "error", err.Error())
			return 3
		}
		switch m.Kind {
		case ipc.KindTask:
			if err := s.runJob(&m.Task); err != nil {
				if os.Getppid() != ppid {
					return 0 // the parent died: nobody reads results
				}
				s.log.Error("writing a result failed; exiting", "error", err.Error())
				return 3
			}
		case ipc.KindCancel:
		case ipc.KindShutdown:
			return 0
		default:
			s.log.Error("unexpected message from the parent; exiting", "kind", m.Kind.String())
			return 3
		}
	}
}

// runJob runs each argument of t in turn and writes one result for all of
// them. The write happens before the next job starts: a result left in a
// buffer would be lost if the next task crashed the worker.
func (s *server) runJob(t *ipc.Task) error {
	if cap(s.items) < len(t.Args) {
		// Sized once: grown by append, a chunk's items were copied over and
		// over into fresh memory, most of a new worker's first chunk.
		s.items = make([]ipc.Item, 0, len(t.Args))
	}
	if want := 4 * len(t.Args); cap(s.vals) < want {
		s.vals = make([]byte, 0, want)
	}
	res := ipc.Result{ID: t.ID, Items: s.items[:0]}
	fn, ok := s.reg.Lookup(t.Func)
	now := time.Now() // each task starts when the one before it ended
	jobStart := now
	for i, arg := range t.Args {
		var it ipc.Item
		if ok {
			it, now = s.runOne(fn, arg, time.Duration(t.Timeout), now)
			// Whether to ask the kernel, after the job's last task, for
			// output the mapped page cannot show (see capture): always
			// before the worker waits for input, and after a job long
			// enough for the syscall not to matter; not between the short
			// jobs of a burst, where it would cost a third of a task.
			check := i == len(t.Args)-1 && (!s.rd.Buffered() || now.Sub(jobStart) >= checkAfter)
			it.Output = s.io.capture.take(check)
		} else {
			it = failed(KindUnknownFunc, fmt.Sprintf("no task named %q; this worker knows %v", t.Func, s.reg.Names()))
		}
		res.Items = append(res.Items, it)
	}
	err := s.writeResult(&res)
	clear(res.Items)
	s.items = res.Items[:0]
	s.vals = s.vals[:0]
	if cap(s.vals) > 4<<20 {
		s.vals = nil // one huge result is no reason to keep its buffer
	}
	return err
}

// runOne runs one task, turning a panic into a result. start is when the
// task starts; the returned time is when it ended. The caller collects what
// it printed.
func (s *server) runOne(fn tasks.Func, arg msgpack.RawMessage, timeout time.Duration, start time.Time) (it ipc.Item, end time.Time) {
	ctx, cancel := s.base, context.CancelFunc(func() {})
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(s.base, timeout)
	}

	// The values of a job's tasks go back to back in one buffer.
	out, err, stack := call(ctx, fn, arg, s.vals)
	var val msgpack.RawMessage
	if err == nil {
		val, s.vals = out[len(s.vals):len(out):len(out)], out
	}
	end = time.Now()
	it.Start, it.End = start.UnixNano(), end.UnixNano()

	defer cancel()

	switch {
	case stack != "":
		it.Err = &ipc.ErrorInfo{Kind: string(KindPanic), Message: err.Error(), Stack: stack}
	case err == nil:
		it.OK, it.Value = true, val
	case errors.Is(err, tasks.ErrEncodeResult):
		it.Err = &ipc.ErrorInfo{Kind: string(KindEncode), Message: err.Error()}
	case errors.Is(err, tasks.ErrBadArgs):
		it.Err = &ipc.ErrorInfo{Kind: string(KindBadArgs), Message: err.Error()}
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		it.Err = &ipc.ErrorInfo{Kind: string(KindTimeout), Message: fmt.Sprintf("time limit of %v passed: %v", timeout, err)}
	case ctx.Err() != nil:
		it.Err = &ipc.ErrorInfo{Kind: string(KindCanceled), Message: err.Error()}
	default:
		it.Err = &ipc.ErrorInfo{Kind: string(KindError), Message: err.Error()}
	}
	return it, end
}

// call runs fn, appending its result to dst, and turns a panic into an
// error with its stack.
func call(ctx context.Context, fn tasks.Func, arg msgpack.RawMessage, dst []byte) (out []byte, err error, stack string) {
	defer func() {
		if r := recover(); r != nil {
			out, err, stack = dst, fmt.Errorf("panic: %v", r), string(debug.Stack())
		}
	}()
	out, err = fn(ctx, arg, dst)
	return out, err, ""
}

func failed(kind Kind, msg string) ipc.Item {
	now := time.Now().UnixNano()
	return ipc.Item{Err: &ipc.ErrorInfo{Kind: string(kind), Message: msg}, Start: now, End: now}
}

// writeResult writes and flushes res. A value that is not well-formed
// msgpack, or a result too large for a frame, fails its task alone; the
// worker and the stream carry on.
func (s *server) writeResult(res *ipc.Result) error {
	err := s.wr.WriteResult(res)
	if err != nil {
		budget := s.wr.MaxFrame()/(2*len(res.Items)) - 64
		for i := range res.Items {
			it := &res.Items[i]
			if it.OK && len(it.Value) > 0 && ipc.Validate(it.Value) != nil {
				*it = failed(KindEncode, "the task returned a value that is not well-formed msgpack")
			} else if len(it.Value)+len(it.Output) > budget {
				size := len(it.Value) + len(it.Output)
				*it = failed(KindResultTooLarge, fmt.Sprintf("result of %d bytes does not fit in a frame of at most %d bytes", size, s.wr.MaxFrame()))
			}
		}
		err = s.wr.WriteResult(res)
	}
	if err != nil {
		return err
	}
	return s.wr.Flush()
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// initialize runs the pool's initializer task, if it has one.
func (s *server) initialize(name, rawArgs string) error {
	if name == "" {
		return nil
	}
	fn, ok := s.reg.Lookup(name)
	if !ok {
		return fmt.Errorf("no task named %q; this worker knows %v", name, s.reg.Names())
	}
	args, err := base64.StdEncoding.DecodeString(rawArgs)
	if err != nil {
		return fmt.Errorf("arguments: %w", err)
	}
	it, _ := s.runOne(fn, args, 0, time.Now())
	s.io.capture.take(true) // what the initializer printed belongs to no task
	if !it.OK {
		return fmt.Errorf("%s: %s", it.Err.Kind, it.Err.Message)
	}
	return nil
}
