package pool

import (
	"os"

	"golang.org/x/sys/unix"
)

// blockingPipe returns a pipe whose ends stay in blocking mode. Each end has
// one goroutine of ours at a time, so a read or write parked in the kernel
// costs a thread, not a netpoller round: a result reaches its reader one
// scheduler hop sooner (measured against the netpoller in the bench
// harness's ping-pong rows 3a and 3e).
func blockingPipe() (r, w *os.File, err error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	// A larger pipe lets a chunk's frame, or a burst of results, pass in one
	// write. Best effort: the system may cap it.
	unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, 1<<20)
	return os.NewFile(uintptr(fds[0]), "|0"), os.NewFile(uintptr(fds[1]), "|1"), nil
}

// pipeCap is how many bytes the pipe of w holds, as the kernel says; 0 if
// it does not (the pool then assumes Linux's default).
func pipeCap(w *os.File) int {
	if n, err := unix.FcntlInt(w.Fd(), unix.F_GETPIPE_SZ, 0); err == nil && n > 0 {
		return n
	}
	return 0
}
