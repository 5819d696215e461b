package worker

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// openOutput creates the file that fd 1 will point at: an in-memory file
// (memfd_create), so that output costs no disk and vanishes with the worker.
func openOutput() (int, error) {
	fd, err := unix.MemfdCreate("poold-task-output", unix.MFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	return fd, nil
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
	buf := readBack(c.fd, c.max)
	if buf != nil {
		// Back to an all-zero first page at offset 0 (readBack's truncation
		// dropped the written bytes; growing again brings zeros).
		unix.Ftruncate(c.fd, capturePage)
	}
	return buf
}
