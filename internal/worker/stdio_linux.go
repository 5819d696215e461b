package worker

import (
	"encoding/binary"
	"fmt"
	"io"
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
// /dev/null and fd 1 at an in-memory capture file. Fd 2 stays the pipe the
// parent reads: whatever a dying worker writes there (Go's crash report, a
// C library's complaint) must reach the parent, and a capture file would die
// with the worker.
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
	mfd, err := unix.MemfdCreate("poold-task-output", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	for _, d := range [][2]int{{null, 0}, {mfd, 1}} {
		if err := unix.Dup3(d[0], d[1], 0); err != nil { // the copies are inherited: fine for 0-2
			return nil, fmt.Errorf("dup3 onto fd %d: %w", d[1], err)
		}
	}
	unix.Close(null)
	if s.capture, err = newCapture(mfd, maxOutput); err != nil {
		return nil, fmt.Errorf("output capture: %w", err)
	}
	return s, nil
}

// capture reads back what tasks wrote to fd 1. Fd 1 and the capture's own
// descriptor share one file offset, so the offset is how much was written
// since the last take.
//
// Asking the kernel for the offset after every task would cost a syscall per
// task, which is most of a chunked map's per-item cost. Instead the file's
// first page is kept mapped and zeroed: a task's first write lands at offset
// 0 and shows in the mapping, so take can look without a syscall. A write of
// only NUL bytes at offset 0 would go unseen; the offset is therefore also
// checked at the end of every job that ran 20 µs or more and whenever the
// worker is about to wait for input. Such output of a shorter job in the
// middle of a burst comes back with the next job that is checked.
type capture struct {
	fd   int
	max  int
	page []byte // the file's first page, mapped; all zero while nothing was written
}

const capturePage = 4096

func newCapture(fd, max int) (*capture, error) {
	if err := unix.Ftruncate(fd, capturePage); err != nil {
		return nil, err
	}
	page, err := unix.Mmap(fd, 0, capturePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	return &capture{fd: fd, max: max, page: page}, nil
}

// printed reports whether a write has landed since the last take, by
// looking at the mapped page: no syscall.
func (c *capture) printed() bool {
	return binary.NativeEndian.Uint64(c.page) != 0 || !allZero(c.page[8:64])
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// take returns what was written since the last take. With check false it
// trusts the mapped page and costs nothing when nothing was printed; with
// check true it asks the kernel. A nil capture (ServeConn's: its tasks print
// to the process's own descriptors) has nothing to give: one compare, no
// call through an interface on the path of every task.
func (c *capture) take(check bool) []byte {
	if c == nil || !check && !c.printed() {
		return nil
	}
	n, err := unix.Seek(c.fd, 0, io.SeekCurrent)
	if err != nil || n == 0 {
		return nil
	}
	keep := min(n, int64(c.max))
	buf := make([]byte, keep)
	got, _ := unix.Pread(c.fd, buf, 0)
	buf = buf[:max(got, 0)]
	if n > keep {
		buf = fmt.Appendf(buf, "\n[poold: output truncated: %d of %d bytes kept]\n", keep, n)
	}
	// Back to an all-zero first page at offset 0 (truncating drops the
	// written bytes; growing again brings zeros).
	unix.Ftruncate(c.fd, 0)
	unix.Ftruncate(c.fd, capturePage)
	unix.Seek(c.fd, 0, io.SeekStart)
	return buf
}
