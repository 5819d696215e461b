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
// Not on the hot path: a job costs one context and a lock.
type control struct {
	mu      sync.Mutex
	running uint64             // the job now running; 0: none
	cancel  context.CancelFunc // its context's
	skip    map[uint64]bool    // jobs cancelled before they were read
}

// newControl starts reading r; the reader ends with r (the parent closes
// it when it is done with the worker).
func newControl(r io.Reader) *control {
	c := &control{skip: make(map[uint64]bool)}
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

// start begins job id under a context of its own, already cancelled if the
// parent cancelled the job first. Job ids grow with each dispatch, so a
// cancellation of an earlier id came after its job had finished.
func (c *control) start(base context.Context, id uint64) context.Context {
	ctx, cancel := context.WithCancel(base)
	c.mu.Lock()
	defer c.mu.Unlock()
	for old := range c.skip {
		if old < id {
			delete(c.skip, old)
		}
	}
	if c.skip[id] {
		delete(c.skip, id)
		cancel()
	}
	c.running, c.cancel = id, cancel
	return ctx
}

// end ends the running job.
func (c *control) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancel()
	c.running, c.cancel = 0, nil
}
