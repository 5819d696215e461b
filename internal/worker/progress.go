package worker

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Progress is where a worker records which job, and which call of it, it is running,
// in memory that its parent can read after the worker's death (a shared
// mapping, for a worker process): the pool then knows which call was
// running when the worker died, which calls before it ran, and that the
// calls after it never started. Two atomic stores per chunk and one per
// call; nothing for a job of one call, which the parent knows by itself.
type Progress struct {
	job  *atomic.Uint64
	call *atomic.Uint64
}

// ProgressSize is the bytes of memory a Progress needs.
const ProgressSize = 16

// NewProgress records into mem, which must hold ProgressSize bytes and be
// 8-byte aligned (a mapping's start is).
func NewProgress(mem []byte) *Progress {
	words := (*[2]atomic.Uint64)(unsafe.Pointer(unsafe.SliceData(mem[:ProgressSize])))
	return &Progress{job: &words[0], call: &words[1]}
}

// ReadProgress returns what a Progress on mem last recorded: job 0 if
// nothing.
func ReadProgress(mem []byte) (job uint64, call int) {
	p := NewProgress(mem)
	return p.job.Load(), int(p.call.Load())
}

// begin records that job starts, at its call 0. The call is reset first:
// a reader that sees the new job never sees the old job's call.
func (p *Progress) begin(job uint64) {
	if p != nil {
		p.call.Store(0)
		p.job.Store(job)
	}
}

// at records that call i of the job starts.
func (p *Progress) at(i int) {
	if p != nil {
		p.call.Store(uint64(i))
	}
}

// mapProgress maps the progress memory the launcher gave at descriptor fd,
// and closes fd (the mapping stays): nil if it cannot, and the parent then
// knows less after a death, nothing worse.
func mapProgress(fd int) *Progress {
	mem, err := unix.Mmap(fd, 0, ProgressSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	unix.Close(fd)
	if err != nil {
		return nil
	}
	return NewProgress(mem)
}
