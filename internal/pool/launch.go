package pool

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	child "github.com/poold/poold/internal/worker"
)

// Signal is what the pool sends to a worker: SIGTERM to ask, SIGKILL to end.
type Signal = syscall.Signal

const (
	SIGTERM = syscall.SIGTERM
	SIGKILL = syscall.SIGKILL
)

// A Launcher starts worker processes: how a worker comes to be is its
// business, speaking the protocol over the pipes is the pool's. Today's is
// the exec launcher (this binary re-executed, or Config.Command); a command
// line through ssh or srun fits the same seam, and the tests use one that
// runs the worker loop in a goroutine.
type Launcher interface {
	// Launch starts one worker with the given settings. The worker writes
	// its hello first.
	Launch(s child.Settings) (*Conn, error)
	// Close releases what the launcher holds, once no more launches will
	// be asked of it.
	Close()
}

// Conn is the pool's side of one launched worker.
type Conn struct {
	PID     int
	Host    string         // where it runs: "" for this machine
	Program string         // the program started, by its base name ("ssh", "srun"), for reports; "": this binary
	Stdin   io.WriteCloser // frames to the worker
	Stdout  io.ReadCloser  // frames from the worker
	Stderr  io.ReadCloser  // its log lines
	Control io.WriteCloser // cancellations, read by the worker beside its tasks; nil: none (a cancelled job that was sent is then ended by killing its worker)
	// Progress, if set, says which job and call the worker was running;
	// the pool asks once the worker has exited (job 0: none known).
	Progress func() (job uint64, call int)
	PipeCap  int // bytes Stdin holds before a write blocks; 0: 64 KiB
	Proc     Process
}

// Process is a launched worker's life, as the pool controls it.
type Process interface {
	// Signal sends sig to the worker and to what its tasks started. Safe to
	// repeat, from any goroutine; a no-op once the worker is reaped.
	Signal(sig Signal)
	// Exited blocks until the worker has exited, without reaping it, then
	// ends whatever it left behind. The pool calls it once its stdout ends.
	Exited()
	// Reap collects how the worker ended. The pool calls it once, after
	// Exited and after Stderr has been read to its end or closed.
	Reap() Exit
}

// execLauncher starts each worker as a child process: the program and its
// arguments (this binary, re-executed, by default), in its own process
// group, dying with the spawner's thread (where the system has Pdeathsig:
// see workerProcAttr).
type execLauncher struct {
	command []string // empty: this binary
	env     []string // added to this process's environment
	host    string   // where the command runs its worker: "" for this machine
	spawner *spawner
}

func (l *execLauncher) Close() { l.spawner.stop() }

// Launch starts a worker process. It is in its own process group (so that
// killing the group ends whatever its task started), dies with the
// spawner's thread (Pdeathsig, on Linux; FreeBSD's follows the parent
// process, darwin has none), and learns it is a worker from its
// environment.
func (l *execLauncher) Launch(s child.Settings) (*Conn, error) {
	var cmd *exec.Cmd
	if len(l.command) > 0 {
		cmd = exec.Command(l.command[0], l.command[1:]...)
	} else {
		cmd = &exec.Cmd{Path: selfExe(), Args: []string{os.Args[0]}}
	}
	s.ControlFD = 3 // cmd.ExtraFiles[0], below
	// Where the worker records the call it runs: without it (it cannot be
	// made) the pool knows less after a death, nothing worse.
	prog, readProgress, progErr := progressMemory()
	if progErr == nil {
		s.ProgressFD = 4 // cmd.ExtraFiles[1]
	}
	cmd.Env = append(append(os.Environ(), s.Environ()...), l.env...)
	cmd.SysProcAttr = workerProcAttr()

	// Plain pipes rather than cmd.StdoutPipe: Wait must not close what the
	// reader goroutines still read.
	var files []*os.File
	var pipeErr error
	keep := func(r, w *os.File, err error) (*os.File, *os.File) {
		if err != nil {
			pipeErr = cmp.Or(pipeErr, err)
			return nil, nil
		}
		files = append(files, r, w)
		return r, w
	}
	inR, inW := keep(blockingPipe())
	outR, outW := keep(blockingPipe())
	// Stderr is not on the hot path, and a task's children inherit it: a
	// pollable pipe lets the reaper close it under a reader that a
	// straggler keeps waiting.
	errR, errW := keep(os.Pipe())
	ctlR, ctlW := keep(os.Pipe()) // the control stream: fd 3 in the worker
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
		if readProgress != nil {
			readProgress() // unmaps it
		}
	}
	if pipeErr != nil {
		closeAll()
		return nil, fmt.Errorf("exec %s: pipes for a worker: %w", l.name(), pipeErr)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.ExtraFiles = []*os.File{ctlR}
	if prog != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, prog)
		defer prog.Close() // the worker has its own descriptor, and the parent its mapping
	}
	if err := l.spawner.start(cmd); err != nil {
		closeAll()
		return nil, fmt.Errorf("exec %s: %w", l.name(), err)
	}
	inR.Close()
	outW.Close()
	errW.Close()
	ctlR.Close()

	c := &Conn{PID: cmd.Process.Pid, Host: l.host, Program: l.program(), Stdin: inW, Stdout: outR, Stderr: errR, Control: ctlW, Progress: readProgress, Proc: &execProcess{cmd: cmd, pid: cmd.Process.Pid}}
	c.PipeCap = pipeCap(inW)
	return c, nil
}

func (l *execLauncher) program() string {
	if len(l.command) > 0 {
		return filepath.Base(l.command[0])
	}
	return ""
}

func (l *execLauncher) name() string {
	if len(l.command) > 0 {
		return l.command[0]
	}
	return "self"
}

// execProcess is a worker started by execLauncher.
type execProcess struct {
	cmd *exec.Cmd
	pid int

	mu     sync.Mutex
	reaped bool // Wait has returned: the pid may belong to someone else now
}

func (e *execProcess) Signal(sig Signal) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.reaped {
		syscall.Kill(-e.pid, sig)
	}
}

// Exited waits for the exit without reaping, so that the worker's pid still
// names its process group: whatever its tasks started dies with it.
func (e *execProcess) Exited() {
	waitExit(e.pid)
	syscall.Kill(-e.pid, syscall.SIGKILL)
}

func (e *execProcess) Reap() Exit {
	e.cmd.Wait()
	e.mu.Lock()
	e.reaped = true
	e.mu.Unlock()
	x := Exit{PID: e.pid, ExitCode: e.cmd.ProcessState.ExitCode()}
	if ws, ok := e.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		x.Signal = ws.Signal()
		x.CoreDump = ws.CoreDump()
	}
	return x
}

// workerProcs is the GOMAXPROCS a worker gets when the workers outnumber
// the CPUs: 1, since a scheduler per worker sized for the whole machine
// only spins against the others (measured: exec of 4 workers on 2 CPUs runs
// 10 % faster). With as many CPUs as workers or more the runtime's default
// stays: one P per worker made round trips slower. 0: leave it alone, as
// when the user set GOMAXPROCS for the workers.
func workerProcs(cfg Config) int {
	for _, kv := range append(os.Environ(), cfg.Env...) {
		if strings.HasPrefix(kv, "GOMAXPROCS=") {
			return 0
		}
	}
	if cfg.Workers > runtime.NumCPU() {
		return 1
	}
	return 0
}

func selfExe() string {
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		return "/proc/self/exe" // the running build, even if the file on disk was replaced
	}
	exe, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return exe
}
