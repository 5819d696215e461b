package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// takeStdout keeps poold's standard output for its results when the tasks
// run in poold itself (--mode threads): what a task prints to fd 1 would
// land among them, so fd 1 is pointed at standard error, and stdout, if it
// is the process's fd 1, becomes a private copy of it. restore undoes it.
// A worker process does the same for its protocol (internal/worker).
func takeStdout(stdout io.Writer) (out io.Writer, restore func()) {
	if f, ok := stdout.(*os.File); !ok || f.Fd() != 1 {
		return stdout, func() {}
	}
	fd, err := unix.FcntlInt(1, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return stdout, func() {} // the prints will mix in: no worse than before
	}
	if err := unix.Dup2(2, 1); err != nil {
		unix.Close(fd)
		return stdout, func() {}
	}
	private := os.NewFile(uintptr(fd), "/dev/stdout")
	return private, func() {
		unix.Dup2(fd, 1)
		private.Close()
	}
}
