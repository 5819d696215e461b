package worker

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// handleSignals sets up a worker process's signals. Ctrl-C at a terminal
// is the parent's to handle, so SIGINT is ignored. SIGTERM (the pool's
// Terminate, or the parent's death through Pdeathsig) ends the worker's
// whole process group, children of its tasks included. A worker is its
// group's leader; a process that is not was not started by a pool and must
// not kill its caller's group.
func handleSignals() {
	signal.Ignore(syscall.SIGINT)
	if unix.Getpgrp() != os.Getpid() {
		return
	}
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	go func() {
		<-terms
		unix.Kill(0, unix.SIGKILL)
	}()
}
