package poold

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// callbacks runs a pool's result callbacks one at a time, in completion
// order, on a goroutine that exists only while there are callbacks to run.
type callbacks struct {
	mu      sync.Mutex
	queue   []func()
	running bool
}

func (c *callbacks) run(fn func()) {
	c.mu.Lock()
	c.queue = append(c.queue, fn)
	if c.running {
		c.mu.Unlock()
		return
	}
	c.running = true
	c.mu.Unlock()
	go c.drain()
}

// drain runs the queued callbacks until none is left. A callback that ends
// its goroutine (runtime.Goexit, as t.FailNow does) hands the rest to a
// new one, so that later callbacks still run.
func (c *callbacks) drain() {
	returned := false
	defer func() {
		if !returned {
			go c.drain()
		}
	}()
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.running = false
			c.mu.Unlock()
			returned = true
			return
		}
		fn := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.mu.Unlock()
		fn()
	}
}

// guard calls callback, the callback which of a call of task fn. A panic
// in it is recovered (the process, and the goroutine that runs the
// callbacks, live on), logged at error level with its value and stack,
// and returned as a *CallbackError that wraps taskErr.
func (p *Pool) guard(fn, which string, taskErr error, callback func()) (cbErr *CallbackError) {
	defer func() {
		if v := recover(); v != nil {
			cbErr = &CallbackError{Func: fn, Callback: which, Value: v, Stack: string(debug.Stack()), Err: taskErr}
			if p.log != nil {
				p.log.Error("callback panicked", "func", fn, "callback", which, "panic", fmt.Sprint(v), "stack", cbErr.Stack)
			}
		}
	}()
	callback()
	return nil
}
