// Package worker is the child side of a pool: the process a pool starts,
// which says hello, then reads tasks from its parent, runs them and writes
// back their results.
//
// [Serve] runs a whole process as a worker: it reads its [Settings] from the
// environment, takes over the process's descriptors and signals, and serves.
// [ServeConn] runs the same loop over given streams and touches nothing of
// the process, so that a parent's tests can run a worker in a goroutine.
package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/tasks"
)

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
	set, setErr := readSettings(os.Getenv)
	if _, ok := setErr.(*versionError); ok {
		fmt.Fprintf(os.Stderr, "poold worker: %v\n", setErr)
		return 3
	}
	profDir := os.Getenv(EnvCPUProfile)
	set.applyToProcess()
	clearEnv()
	std, err := takeStdio(cmp.Or(set.MaxOutput, defaultMaxOutput))
	if err != nil {
		fmt.Fprintln(os.Stderr, "poold worker:", err)
		return 3
	}
	handleSignals()
	st := Streams{In: std.in, Out: std.out, Log: std.log}
	// A launcher between the parent and this process (srun passes the
	// environment on, not the descriptors) may leave the numbers naming
	// nothing: the parent, seeing another pid in the hello, expects
	// neither then.
	if !validFD(set.ControlFD) {
		set.ControlFD = 0
	}
	if !validFD(set.ProgressFD) {
		set.ProgressFD = 0
	}
	if set.ControlFD > 0 {
		// Close-on-exec, so that what a task starts cannot read it.
		unix.CloseOnExec(set.ControlFD)
		st.Control = os.NewFile(uintptr(set.ControlFD), "control")
	}
	if set.ProgressFD > 0 {
		st.Progress = mapProgress(set.ProgressFD)
	}
	s := newServer(reg, st, set)
	s.capture, s.owner = std.capture, true
	if profDir != "" {
		defer profileCPU(profDir, s.log)()
	}
	// A bad setting of the initializer fails the start as the initializer
	// itself would.
	return s.run(setErr)
}

// Streams are what a worker serves over.
type Streams struct {
	In      io.Reader // frames from the parent
	Out     io.Writer // frames to the parent
	Log     io.Writer // the worker's logs, hclog JSON lines; nil discards them
	Control io.Reader // the parent's cancel frames, read beside the tasks; nil: none
	// Progress, if set, is where the worker records which call of a chunk
	// it runs, for the parent to read after its death.
	Progress *Progress
}

// ServeConn runs the worker's loop over st, as Serve does over the
// process's descriptors: hello first, then each task read, run and answered
// before the next read. It returns the exit status Serve would: 0 when
// st.In ends, non-zero on a broken protocol or a failed initializer.
//
// It leaves the process alone: no descriptor is taken over, no signal
// handled, nothing read from or removed from the environment, and s.Procs
// is not applied. What a task prints is therefore not captured (its Output
// stays empty, and s.MaxOutput has no use).
func ServeConn(reg *tasks.Registry, st Streams, s Settings) int {
	if st.Log == nil {
		st.Log = io.Discard
	}
	return newServer(reg, st, s).run(nil)
}

type server struct {
	reg      *tasks.Registry
	log      hclog.Logger
	logw     io.Writer // where log writes
	capture  *capture  // what the tasks print to fd 1; nil: not captured (ServeConn)
	owner    bool      // the server owns the process (Serve): it may act on the parent's death
	explicit bool      // started as `poold worker` (ServeStdio): its settings come in a Setup
	init     string    // the initializer task; "": none
	initArgs []byte
	rd       *ipc.Reader
	wr       *ipc.Writer
	items    []ipc.Item      // reused for each result
	vals     []byte          // the values of a job's tasks, back to back; reused
	base     context.Context // every task's context derives from it
	control  *control        // nil: the parent cannot cancel
	progress *Progress       // nil: the parent cannot see which call runs
	job      jobRun          // the job running
	cpu      cpuMeter        // the CPU time of the calls
	peak     peakMeter       // the worker's peak memory, as the calls report it
	waited   bool            // the job running was not buffered when the worker went to read it
}

func newServer(reg *tasks.Registry, st Streams, set Settings) *server {
	in, out, logw := st.In, st.Out, st.Log
	s := &server{
		reg: reg,
		log: hclog.New(&hclog.LoggerOptions{
			Output:     logw,
			JSONFormat: true,
			Level:      hclog.LevelFromString(set.LogLevel),
		}),
		logw:     logw,
		init:     set.Initializer,
		initArgs: set.InitializerArgs,
		rd:       ipc.NewReader(in, set.MaxFrame),
		wr:       ipc.NewWriter(out, set.MaxFrame),
		base:     tasks.WithProtocolStream(context.Background(), out),
		cpu:      newCPUMeter(),
	}
	if st.Control != nil {
		s.control = newControl(s.base, st.Control)
	}
	s.progress = st.Progress
	return s
}

// run serves until the input ends. A non-nil startErr fails the start as a
// failed initializer does.
func (s *server) run(startErr error) int {
	err := startErr
	if err == nil && s.explicit {
		if err := s.setUp(); errors.Is(err, errNoSetup) {
			return 0
		} else if err != nil {
			s.log.Error("setup", "error", err)
			fmt.Fprintf(s.logw, "poold worker: setup failed: %v\n", err)
			return 3
		}
	}
	if err == nil {
		err = s.initialize()
	}
	if err != nil {
		// Before the handshake, so that the parent counts a failed start and
		// shows this line from stderr.
		s.log.Error("initializer failed", "error", err.Error())
		fmt.Fprintf(s.logw, "poold worker: initializer failed: %v\n", err)
		return 4
	}
	if err := s.wr.WriteHello(s.hello(false)); err != nil {
		s.log.Error("hello", "error", err)
		return 3
	}
	if err := s.wr.Flush(); err != nil {
		return 3 // the parent is gone
	}
	// One goroutine reads, runs and writes, like the simplest ping-pong: no
	// hand-off between goroutines on the way. Nothing runs beside a task: a
	// task's own time limit cancels its context in the worker, and the
	// parent ends a worker by closing its input (or by a signal).
	ppid := os.Getppid()
	// parentDied reports whether the parent is gone, and then takes the
	// worker's group down with it: what its tasks started must not outlive
	// it (Pdeathsig does this on Linux; elsewhere only this does).
	parentDied := func() bool {
		died := s.owner && os.Getppid() != ppid
		if died && unix.Getpgrp() == os.Getpid() {
			unix.Kill(0, unix.SIGKILL)
		}
		return died
	}
	var m ipc.Message
	for {
		// Shared: a job is done and answered before the next read.
		s.waited = !s.rd.Buffered()
		if err := s.rd.ReadShared(&m); err != nil {
			if errors.Is(err, io.EOF) {
				parentDied()
				return 0 // the parent closed our input
			}
			s.log.Error("bad frame from the parent; exiting", "error", err.Error())
			return 3
		}
		switch m.Kind {
		case ipc.KindTask:
			if err := s.runJob(&m.Task); err != nil {
				if parentDied() {
					return 0 // the parent died: nobody reads results
				}
				s.log.Error("writing a result failed; exiting", "error", err.Error())
				return 3
			}
		default:
			s.log.Error("unexpected message from the parent; exiting", "kind", m.Kind.String())
			return 3
		}
	}
}

// validFD reports whether fd is an open descriptor of this process.
func validFD(fd int) bool {
	if fd <= 2 {
		return false
	}
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}
