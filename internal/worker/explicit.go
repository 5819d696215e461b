package worker

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/mattn/go-isatty"
	"golang.org/x/sys/unix"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/tasks"
)

// MemoryPrefix starts the line a worker writes to stderr when it ends
// itself for passing the memory limit of its Setup; the rest of the line
// says by how much. Its parent blames the task it ran.
const MemoryPrefix = "poold worker: memory limit: "

// Explanation is what `poold worker` says when it is run by hand on a
// terminal, where nobody speaks its protocol.
const Explanation = `poold worker: this is the worker end of a pool. A poold on this machine or
another starts it through a launcher (ssh, srun, docker run -i, kubectl exec -i)
and speaks poold's binary protocol with it on stdin and stdout; it does nothing
useful on a terminal.

To run tasks:                     poold [flags] TASKFILE
To run workers on other machines: poold --ssh HOST[,HOST...] TASKFILE
                                  poold --worker-cmd 'srun -N1 -n1 --input=all poold worker' TASKFILE
`

// ServeStdio runs this process as a worker that a command line started
// (`poold worker`) through a launcher that carries only its stdin, stdout
// and stderr: ssh, srun, a container runtime. No environment tells it its
// settings, so it says hello at once, asking for them (the parent then
// knows the launcher worked, and which version answered), and takes them
// from the Setup its parent sends back.
//
// Nothing stops it but its parent: it ends when its stdin ends, and ends
// its process group, tasks' children included, when the reader of its
// stdout goes away (the parent died, or its connection did), however busy
// it is. It makes itself the leader of a process group of its own first,
// so that this never touches the launcher's processes.
//
// With its stdin on a terminal (run by hand) it writes [Explanation] and
// returns 1.
func ServeStdio(reg *tasks.Registry) int {
	// Stdin only: srun -u gives its task's stdout a pseudo-terminal (raw:
	// the bytes pass unchanged), and a worker behind it must serve.
	if isatty.IsTerminal(os.Stdin.Fd()) {
		fmt.Fprint(os.Stderr, Explanation)
		return 1
	}
	// A session leader (a launcher that setsid's it) leads its group
	// already: then this fails, harmlessly.
	unix.Setpgid(0, 0)
	profDir := os.Getenv(EnvCPUProfile)
	clearEnv() // srun passes the parent's environment on: it is not ours
	std, err := takeStdio(defaultMaxOutput)
	if err != nil {
		fmt.Fprintln(os.Stderr, "poold worker:", err)
		return 3
	}
	handleSignals()
	go endWithReader(int(std.out.Fd()))
	s := newServer(reg, Streams{In: std.in, Out: std.out, Log: std.log}, Settings{})
	s.capture, s.owner, s.explicit = std.capture, true, true
	if profDir != "" {
		defer profileCPU(profDir, s.log)()
	}
	return s.run(nil)
}

// ProgramVersion is this binary's version, as its hello tells it: the
// module's version and the Go release that built it.
func ProgramVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown) " + runtime.Version()
	}
	return bi.Main.Path + " " + bi.Main.Version + " " + bi.GoVersion
}

// errNoSetup: the parent closed the worker's input after its first hello,
// which is all it wanted (the CPU count, for a host given without a
// number of workers).
var errNoSetup = errors.New("no setup: the parent asked only for the hello")

// hello is the worker's hello: setup says whether it asks for a Setup.
func (s *server) hello(setup bool) *ipc.Hello {
	host, _ := os.Hostname()
	return &ipc.Hello{PID: os.Getpid(), Version: ipc.ProtocolVersion, Tasks: s.reg.Names(),
		Program: ProgramVersion(), Host: host, CPUs: runtime.NumCPU(), Setup: setup}
}

// setUp asks the parent for its settings and takes them, before the
// initializer and the hello that ends the handshake.
func (s *server) setUp() error {
	if err := s.wr.WriteHello(s.hello(true)); err != nil {
		return err
	}
	if err := s.wr.Flush(); err != nil {
		return err
	}
	var m ipc.Message
	if err := s.rd.Read(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return errNoSetup
		}
		return fmt.Errorf("reading the setup: %w", err)
	}
	if m.Kind != ipc.KindSetup {
		return fmt.Errorf("%w: %s message instead of the setup", ipc.ErrMalformed, m.Kind)
	}
	set := &m.Setup
	s.rd.SetMaxFrame(set.MaxFrame)
	s.wr.SetMaxFrame(set.MaxFrame)
	if set.LogLevel != "" {
		s.log.SetLevel(hclog.LevelFromString(set.LogLevel))
	}
	if s.capture != nil && set.MaxOutput > 0 {
		s.capture.max = set.MaxOutput
	}
	if set.Procs > 0 {
		runtime.GOMAXPROCS(set.Procs)
	}
	s.init, s.initArgs = set.Initializer, set.InitializerArgs
	if set.MaxMemory > 0 {
		every := time.Duration(set.MemoryInterval)
		if every <= 0 {
			every = 50 * time.Millisecond
		}
		go limitMemory(set.MaxMemory, every, s.logw)
	}
	return nil
}

// limitMemory ends the worker's process group once the worker's resident
// memory passes limit, saying so on log first (the parent reads it there
// and blames the task that ran): a parent on another machine cannot read
// this one's memory, nor signal it but by closing the connection, which a
// task allocating fast would outrun.
func limitMemory(limit int64, every time.Duration, log io.Writer) {
	for range time.Tick(every) {
		if rss := residentRSS(); rss > limit {
			fmt.Fprintf(log, "%sresident memory reached %.1f MiB, over the limit of %.1f MiB\n",
				MemoryPrefix, float64(rss)/(1<<20), float64(limit)/(1<<20))
			unix.Kill(0, unix.SIGKILL)
			return
		}
	}
}

// endWithReader ends the process group once fd, the worker's stdout, has no
// reader left: poll reports POLLERR on a pipe (POLLHUP on a socket) whose
// other end is closed, without writing anything. A worker whose parent or
// connection died mid-task learns it here, while its task still runs.
func endWithReader(fd int) {
	fds := []unix.PollFd{{Fd: int32(fd)}}
	for {
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return
		}
		if fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
			unix.Kill(0, unix.SIGKILL)
			return
		}
	}
}
