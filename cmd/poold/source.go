package main

import (
	"iter"
	"sync"
)

// source delivers the entries to run, in order, on C, in batches; C is
// closed after the last one. The entries come from a goroutine: reading a
// stream may block, and results must still be reported meanwhile.
type source struct {
	C <-chan []*Entry
	// Drain: after a signal the runner keeps reading C and reports each
	// entry as terminated (a checked file: every task is reported). A
	// stream is not: the runner stops reading it.
	Drain bool

	stop chan struct{}
	once sync.Once
	err  error // why the input ended early; written before C is closed
}

// Entries go over in batches of sourceBatch, and C holds sourceBatches of
// them: a source parses at most about 3 × 32 entries ahead of the runner
// (64 when they went one by one). One by one, each entry cost a wake-up of
// the goroutine that parses, about 1 µs of the command's 11 µs per echo
// task (2026-12-02).
const (
	sourceBatch   = 32
	sourceBatches = 2
)

// sender is how a source's goroutine sends its entries.
type sender struct {
	ch    chan<- []*Entry
	stop  <-chan struct{}
	batch []*Entry
}

// send sends e, in a batch; false if the source was stopped.
func (s *sender) send(e *Entry) bool {
	s.batch = append(s.batch, e)
	if len(s.batch) < sourceBatch {
		return true
	}
	return s.flush()
}

// flush sends the entries of the batch now; false if the source was
// stopped.
func (s *sender) flush() bool {
	if len(s.batch) == 0 {
		return true
	}
	select {
	case s.ch <- s.batch:
		s.batch = make([]*Entry, 0, sourceBatch)
		return true
	case <-s.stop:
		return false
	}
}

func newSource(drain bool, produce func(*sender) error) *source {
	ch := make(chan []*Entry, sourceBatches)
	src := &source{C: ch, Drain: drain, stop: make(chan struct{})}
	go func() {
		defer close(ch)
		s := &sender{ch: ch, stop: src.stop, batch: make([]*Entry, 0, sourceBatch)}
		err := produce(s)
		s.flush()
		src.err = err
	}()
	return src
}

// Stop asks the source to send nothing more. Its goroutine returns at its
// next send; one blocked reading a stream returns when the read does.
func (s *source) Stop() { s.once.Do(func() { close(s.stop) }) }

// Err is the read error that ended the input early, if any. Call it only
// after C is closed.
func (s *source) Err() error { return s.err }

// Entries ranges over the entries of C, for a reader that takes them all.
func (s *source) Entries() iter.Seq[*Entry] {
	return func(yield func(*Entry) bool) {
		for batch := range s.C {
			for _, e := range batch {
				if !yield(e) {
					return
				}
			}
		}
	}
}

// sliceSource delivers the entries of a checked task file.
func sliceSource(entries []*Entry) *source {
	return newSource(true, func(s *sender) error {
		for _, e := range entries {
			if !s.send(e) {
				return nil
			}
		}
		return nil
	})
}
