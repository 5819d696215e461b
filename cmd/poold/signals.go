package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// signals turns the first SIGINT or SIGTERM into the end of a context, and
// the second into an immediate exit.
type signals struct {
	ctx    context.Context
	cancel context.CancelFunc
	ch     chan os.Signal
	sig    syscall.Signal // written before cancel; read after ctx ends
	done   chan struct{}  // closed when the watching goroutine returns
}

func watchSignals() *signals {
	s := &signals{ch: make(chan os.Signal, 2), done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	signal.Notify(s.ch, syscall.SIGINT, syscall.SIGTERM)
	go s.watch()
	return s
}

func (s *signals) watch() {
	defer close(s.done)
	first, ok := <-s.ch
	if !ok {
		return
	}
	s.sig = first.(syscall.Signal)
	s.cancel()
	if _, ok := <-s.ch; ok {
		// The user will not wait for the workers to wind down. Exiting
		// leaves none behind: each worker exits when its stdin closes, and
		// dies with the parent by Pdeathsig.
		os.Exit(exitCode(s.sig))
	}
}

// signal is the signal that interrupted the run; 0 if none did.
func (s *signals) signal() syscall.Signal {
	if s.ctx.Err() == nil {
		return 0
	}
	return s.sig
}

// stop restores the default handling and ends the watching goroutine.
func (s *signals) stop() {
	signal.Stop(s.ch)
	close(s.ch)
	<-s.done
	s.cancel()
}

func exitCode(sig syscall.Signal) int { return 128 + int(sig) }

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
