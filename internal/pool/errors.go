package pool

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/poold/poold/internal/kind"
)

// Errors of the pool itself; every error a pool method returns is or wraps
// one of them. The root package pairs each with its own exported one.
var (
	ErrPoolClosed  = errors.New("pool is closed")         // Submit after Close or Terminate
	ErrPoolRunning = errors.New("pool is still running")  // Join before Close or Terminate, as CPython says
	ErrWorkerStart = errors.New("worker could not start") // more failed starts in a row than the pool retries
	ErrUnknownFunc = errors.New("unknown task")           // Submit of a function the workers did not announce
)

// Kind says why a call failed (see package kind).
type Kind = kind.Kind

// Exit describes how a worker process ended.
type Exit struct {
	PID      int
	ExitCode int            // -1 when a signal ended it
	Signal   syscall.Signal // 0 when it exited by itself
	CoreDump bool
	Reason   string   // why the pool killed it, if it did ("killed: the task ran past ...")
	Stderr   []string // the last lines the worker wrote to stderr
	Host     string   // where it ran: "" for this machine
	// Launcher and LauncherPID name the program that started the worker
	// and reported its end ("ssh", "srun"), when that is not the worker
	// itself: ExitCode and Signal are then the launcher's.
	Launcher    string
	LauncherPID int
}

// sshFailed is ssh's own exit status: it could not connect, lost the
// connection, or the remote command was killed by a signal.
const sshFailed = 255

func (e *Exit) Error() string {
	var b strings.Builder
	b.WriteString("worker ")
	if e.PID != 0 {
		fmt.Fprintf(&b, "pid %d ", e.PID)
	}
	if e.Host != "" {
		fmt.Fprintf(&b, "on %s ", e.Host)
	}
	switch {
	case e.Launcher == "":
		e.ownEnd(&b)
	case e.PID == 0: // it never said hello: what ran was its launcher
		fmt.Fprintf(&b, "did not start: its %s (pid %d) ", e.Launcher, e.LauncherPID)
		e.ownEnd(&b)
		b.WriteString(launcherHint(e.Launcher, e.ExitCode))
	case e.Signal != 0:
		fmt.Fprintf(&b, "lost: its %s (pid %d) was killed by signal %d (%s)", e.Launcher, e.LauncherPID, int(e.Signal), e.Signal)
	case e.Launcher == "ssh" && e.ExitCode == sshFailed:
		fmt.Fprintf(&b, "lost: ssh (pid %d) exited with %d: the connection failed, or the worker was killed by a signal", e.LauncherPID, sshFailed)
	default:
		e.ownEnd(&b)
		if sig := syscall.Signal(e.ExitCode - 128); e.ExitCode > 128 && sig < 65 {
			// A launcher's (a shell's, srun's) way to say "killed by".
			fmt.Fprintf(&b, ", 128 + signal %d (%s),", int(sig), sig)
		}
		fmt.Fprintf(&b, " as its %s (pid %d) reported", e.Launcher, e.LauncherPID)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, " [%s]", e.Reason)
	}
	if tail := lastMeaningful(e.Stderr); tail != "" {
		fmt.Fprintf(&b, "; stderr: %s", tail)
	}
	return b.String()
}

// launcherHint says what a launcher's exit status before the worker's
// hello means, where it is known.
func launcherHint(launcher string, code int) string {
	switch {
	case launcher == "ssh" && code == sshFailed:
		return " (ssh could not connect or log in)"
	case code == 127:
		return " (no such program where it ran: check the worker's path)"
	case code == 126:
		return " (the worker program is not executable where it ran)"
	}
	return ""
}

func (e *Exit) ownEnd(b *strings.Builder) {
	if e.Signal != 0 {
		fmt.Fprintf(b, "killed by signal %d (%s)", int(e.Signal), e.Signal)
		if e.CoreDump {
			b.WriteString(", core dumped")
		}
	} else {
		fmt.Fprintf(b, "exited with code %d", e.ExitCode)
	}
}

// lastMeaningful picks the stderr line that best says what happened: Go's
// "fatal error:" or "panic:" line if there is one, else the last line.
func lastMeaningful(lines []string) string {
	for _, l := range lines {
		if isHeadline(l) {
			return l
		}
	}
	if len(lines) > 0 {
		return lines[len(lines)-1]
	}
	return ""
}
