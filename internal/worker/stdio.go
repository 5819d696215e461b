package worker

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// stdio is a worker's view of its descriptors once it has taken them over.
type stdio struct {
	in      *os.File // the protocol from the parent (private copy of fd 0)
	out     *os.File // the protocol to the parent (private copy of fd 1)
	log     *os.File // the worker's logs: fd 2, which stays the parent's pipe
	capture *capture // what fd 1 now points at
}

// takeStdio moves the protocol off fds 0 and 1 onto close-on-exec copies
// (so that a task's child processes do not inherit them), points fd 0 at
// /dev/null and fd 1 at a capture file (see openOutput). Fd 2 stays the pipe
// the parent reads: whatever a dying worker writes there (Go's crash report,
// a C library's complaint) must reach the parent, and a capture file would
// die with the worker.
func takeStdio(maxOutput int) (*stdio, error) {
	private := func(fd int, name string) (*os.File, error) {
		nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			return nil, fmt.Errorf("dup fd %d: %w", fd, err)
		}
		return os.NewFile(uintptr(nfd), name), nil
	}
	s := &stdio{}
	var err error
	if s.in, err = private(0, "protocol-in"); err != nil {
		return nil, err
	}
	if s.out, err = private(1, "protocol-out"); err != nil {
		return nil, err
	}
	s.log = os.Stderr
	null, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ofd, err := openOutput()
	if err != nil {
		return nil, err
	}
	for _, d := range [][2]int{{null, 0}, {ofd, 1}} {
		if err := dupOnto(d[0], d[1]); err != nil { // the copies are inherited: fine for 0-2
			return nil, err
		}
	}
	unix.Close(null)
	if s.capture, err = newCapture(ofd, maxOutput); err != nil {
		return nil, fmt.Errorf("output capture: %w", err)
	}
	return s, nil
}
