package worker

import (
	"fmt"
	"time"
)

// initialize runs the pool's initializer task, if it has one.
func (s *server) initialize() error {
	if s.init == "" {
		return nil
	}
	fn, ok := s.reg.Lookup(s.init)
	if !ok {
		return fmt.Errorf("no task named %q; this worker knows %v (%s)", s.init, s.reg.Names(), registerHint)
	}
	it, _ := s.runOne(s.base, fn, s.initArgs, 0, time.Now())
	s.capture.take(true) // what the initializer printed belongs to no task
	if !it.OK {
		return fmt.Errorf("%s: %s", it.Err.Kind, it.Err.Message)
	}
	return nil
}
