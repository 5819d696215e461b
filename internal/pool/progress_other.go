//go:build !linux

package pool

import (
	"os"

	"golang.org/x/sys/unix"

	child "github.com/poold/poold/internal/worker"
)

// progressMemory is progress_linux.go's without memfd_create: an unlinked
// temporary file, mapped shared by both sides (the two mappings of one
// file see each other's stores; no write(2) is involved).
func progressMemory() (f *os.File, read func() (job uint64, call int), err error) {
	f, err = os.CreateTemp("", "poold-progress-*")
	if err != nil {
		return nil, nil, err
	}
	os.Remove(f.Name())
	if err := f.Truncate(child.ProgressSize); err != nil {
		f.Close()
		return nil, nil, err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, child.ProgressSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	read = func() (uint64, int) {
		job, call := child.ReadProgress(mem)
		unix.Munmap(mem)
		return job, call
	}
	return f, read, nil
}
