//go:build !linux

package worker

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openOutput creates the file that fd 1 will point at. There is no
// memfd_create here (darwin has none; x/sys has none for FreeBSD), so it is
// a temporary file in os.TempDir(), unlinked at once: nothing is left on
// disk when the worker dies, and since take empties it after each task what
// tasks print seldom leaves the page cache. Capturing into a file keeps the
// promise that Output holds what the task printed; a worker that cannot
// create one (an unwritable TMPDIR) fails its start and says why.
func openOutput() (fd int, err error) {
	defer func() {
		if err != nil {
			fd, err = -1, fmt.Errorf("output capture file: %w", err)
		}
	}()
	f, err := os.CreateTemp("", "poold-task-output-*")
	if err != nil {
		return -1, err
	}
	defer f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return -1, err
	}
	// A descriptor of our own, close-on-exec: f's closes with f.
	return unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
}

// capture reads back what tasks wrote to fd 1 (see readBack). On Linux
// the file's first page stays mapped, so that a task that printed
// nothing costs no syscall. Here the kernel is asked after every task (one
// lseek): that trick relies on write(2) and a shared mapping of the file
// agreeing at once, which POSIX does not promise for a regular file, and
// which cannot be tested where these systems are only cross-compiled.
type capture struct {
	fd  int
	max int
}

func newCapture(fd, max int) (*capture, error) {
	return &capture{fd: fd, max: max}, nil
}

// take returns what was written since the last take. Its argument, whether
// to ask the kernel, does not matter here: the kernel is always asked. A nil
// capture (ServeConn's) has nothing to give.
func (c *capture) take(_ bool) []byte {
	if c == nil {
		return nil
	}
	return readBack(c.fd, c.max)
}
