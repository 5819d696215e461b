//go:build !linux

package pool

import (
	"os"
	"syscall"
)

// blockingPipe returns a close-on-exec pipe whose ends stay in blocking mode,
// as on Linux (see pipe_linux.go), at the size the system chooses: there is
// no F_SETPIPE_SZ here. Without pipe2 on darwin, the descriptors are made
// close-on-exec under syscall.ForkLock, as os.Pipe does, so that no worker
// started meanwhile inherits another's stdin: it would hold that pipe open,
// and the other worker would not see EOF when the parent dies.
func blockingPipe() (r, w *os.File, err error) {
	var fds [2]int
	syscall.ForkLock.RLock()
	err = syscall.Pipe(fds[:])
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "|0"), os.NewFile(uintptr(fds[1]), "|1"), nil
}

// pipeCap is how many bytes the pool counts on a pipe holding. Neither
// darwin nor FreeBSD can be asked, and both size a pipe as they go: a new
// one holds 16 KiB, and grows to 64 KiB only when a large write finds
// memory to spare (FreeBSD under pressure may even start at one page). So
// the pool counts on 16 KiB, which makes it pipeline less to a busy worker
// than on Linux (at most 8 KiB of jobs behind the running one, against
// half of the 1 MiB asked for there).
func pipeCap(*os.File) int { return 16 << 10 }
