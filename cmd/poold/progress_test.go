package main

import (
	"bytes"
	"errors"
	"testing"
)

// recorder is an io.Writer that keeps each write apart.
type recorder struct {
	writes []string
	err    error
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

// TestBarWriterWholeLines: only whole lines go above the bar; a partial
// one waits for its end, and goes to the file once the bar is down.
func TestBarWriterWholeLines(t *testing.T) {
	prog := &recorder{}
	var after bytes.Buffer
	b := &barWriter{prog: prog, after: &after}
	for _, s := range []string{"one\ntw", "o\nthr", "ee"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if want := []string{"one\n", "two\n"}; len(prog.writes) != 2 || prog.writes[0] != want[0] || prog.writes[1] != want[1] {
		t.Errorf("above the bar: %q, want %q", prog.writes, want)
	}
	b.stop()
	b.Write([]byte("\nfour\n"))
	if got := after.String(); got != "three\nfour\n" {
		t.Errorf("after the bar: %q, want %q", got, "three\nfour\n")
	}
}

// TestBarWriterBarGone: when the bar can take no more lines, they go to
// the file, none lost.
func TestBarWriterBarGone(t *testing.T) {
	var after bytes.Buffer
	b := &barWriter{prog: &recorder{err: errors.New("done")}, after: &after}
	b.Write([]byte("one\ntw"))
	b.Write([]byte("o\n"))
	if got := after.String(); got != "one\ntwo\n" {
		t.Errorf("got %q, want %q", got, "one\ntwo\n")
	}
}
