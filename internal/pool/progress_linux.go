package pool

import (
	"os"

	"golang.org/x/sys/unix"

	child "github.com/poold/poold/internal/worker"
)

// progressMemory makes the memory where a worker records which call of a
// chunk it runs: a memfd that the worker maps at the descriptor it is
// given, and that the parent keeps mapped to read once the worker has
// exited. read unmaps it: it is called once.
func progressMemory() (f *os.File, read func() (job uint64, call int), err error) {
	fd, err := unix.MemfdCreate("poold-progress", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.Ftruncate(fd, child.ProgressSize); err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	mem, err := unix.Mmap(fd, 0, child.ProgressSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	read = func() (uint64, int) {
		job, call := child.ReadProgress(mem)
		unix.Munmap(mem)
		return job, call
	}
	return os.NewFile(uintptr(fd), "progress"), read, nil
}
