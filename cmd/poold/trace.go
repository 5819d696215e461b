package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/poold/poold/internal/timeline"
)

// traceOutput is what --trace and --timeline write: the trace as the run
// goes (to a temporary file when only the timeline was asked for), and the
// timeline page drawn from it once the run is over.
type traceOutput struct {
	f        *os.File
	temp     bool   // f is ours, removed at the end
	timeline string // --timeline FILE.html; "": none
	title    string
}

// openTrace opens the files of cfg's --trace and --timeline; nil when it
// asks for neither. The page is created at once, so that a path that cannot
// be written is a usage error before anything runs.
func openTrace(cfg *config) (*traceOutput, error) {
	if cfg.trace == "" && cfg.timeline == "" {
		return nil, nil
	}
	t := &traceOutput{timeline: cfg.timeline, title: "poold: " + filepath.Base(cfg.taskFile)}
	if cfg.timeline != "" {
		page, err := os.Create(cfg.timeline)
		if err != nil {
			return nil, fmt.Errorf("--timeline: %w", err)
		}
		page.Close()
	}
	var err error
	if cfg.trace != "" {
		if t.f, err = os.Create(cfg.trace); err != nil {
			return nil, fmt.Errorf("--trace: %w", err)
		}
		return t, nil
	}
	if t.f, err = os.CreateTemp("", "poold-trace-*.json"); err != nil {
		return nil, fmt.Errorf("--timeline: a file for its trace: %w", err)
	}
	t.temp = true
	return t, nil
}

// writer is where the pool writes the trace.
func (t *traceOutput) writer() io.Writer { return t.f }

// finish closes the trace, once the pool has exited, and draws the
// timeline from it.
func (t *traceOutput) finish() error {
	if t.temp {
		defer os.Remove(t.f.Name())
	}
	if t.timeline == "" {
		return t.f.Close()
	}
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		t.f.Close()
		return fmt.Errorf("--timeline: rereading the trace: %w", err)
	}
	page, err := os.Create(t.timeline)
	if err != nil {
		t.f.Close()
		return fmt.Errorf("--timeline: %w", err)
	}
	err = timeline.Render(t.f, page, t.title)
	return errors.Join(err, page.Close(), t.f.Close())
}
