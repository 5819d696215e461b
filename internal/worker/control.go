package worker

import (
	"context"
	"io"
	"sync"

	"github.com/poold/poold/internal/ipc"
)

// control reads the parent's cancel frames beside the serve loop, which
// does not read while a task runs: a cancelled job that runs has its
// context cancelled; one not read yet fails without running when it is.
//
// Jobs share one cancellable context until one of them is cancelled, when
// the next job gets a fresh one: a context per job cost 0.7 µs a job (4.2
// → 4.9 µs per pipelined task on 2 workers), most of what a trivial job
// costs the worker. A context that a finished task left to a goroutine of
// its own is cancelled with a later job's: harmless, since its task is over.
type control struct {
	mu      sync.Mutex
	base    context.Context
	ctx     context.Context    // the jobs' context, until a cancellation
	cancel  context.CancelFunc // ctx's
	running uint64             // the job now running; 0: none
	skip    map[uint64]bool    // jobs cancelled before they were read
}

// newControl starts reading r; the reader ends with r (the parent closes
// it when it is done with the worker).
func newControl(base context.Context, r io.Reader) *control {
	c := &control{base: base, skip: make(map[uint64]bool)}
	go c.read(ipc.NewReader(r, 1<<10))
	return c
}

func (c *control) read(rd *ipc.Reader) {
	var m ipc.Message
	for rd.Read(&m) == nil {
		if m.Kind == ipc.KindCancel {
			c.cancelJob(m.Cancel.ID)
		}
	}
}

func (c *control) cancelJob(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == c.running {
		c.cancel()
		return
	}
	c.skip[id] = true
}

// start begins job id and returns its context, already cancelled if the
// parent cancelled the job first. Job ids grow with each dispatch, so a
// cancellation of an earlier id came after its job had finished.
func (c *control) start(id uint64) context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	for old := range c.skip {
		if old < id {
			delete(c.skip, old)
		}
	}
	if c.ctx == nil || c.ctx.Err() != nil {
		c.ctx, c.cancel = context.WithCancel(c.base)
	}
	if c.skip[id] {
		delete(c.skip, id)
		c.cancel()
	}
	c.running = id
	return c.ctx
}

// end ends the running job.
func (c *control) end() {
	c.mu.Lock()
	c.running = 0
	c.mu.Unlock()
}
