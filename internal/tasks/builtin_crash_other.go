//go:build !linux

package tasks

import (
	"errors"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Linux resets a signal to its default action with a raw rt_sigaction (see
// builtin_crash_linux.go); x/sys offers no sigaction here. So:
//
//   - abort goes through Go's own crash path, which is portable and
//     documented: under GOTRACEBACK=crash a fatal signal makes the runtime
//     print every goroutine's stack and then die by a real SIGABRT. The
//     stderr is longer than on Linux; the signal is the same.
//   - segfault has no such path (the runtime turns SIGSEGV into a panic,
//     and its crash path always raises SIGABRT, which would misname the
//     death), so it is an ordinary task error.

var errNoSegfault = errors.New("crash: mode segfault is only supported on Linux: without sigaction, Go turns SIGSEGV into a panic")

func segfault() error { return errNoSegfault }

// dieBy dies by SIGABRT, the only signal crashTask asks for, with core
// dumps off: a deliberate crash should not litter the disk.
func dieBy(sig syscall.Signal) error {
	if sig != syscall.SIGABRT {
		return errors.New("crash: only SIGABRT is supported here, not " + sig.String())
	}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return err
	}
	debug.SetTraceback("crash")
	if err := syscall.Kill(os.Getpid(), syscall.SIGABRT); err != nil {
		return err
	}
	time.Sleep(10 * time.Second) // the runtime's crash path can take seconds; this is a safety net
	return errors.New("crash: survived SIGABRT")
}
