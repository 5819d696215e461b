package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWrap(t *testing.T) {
	for _, tt := range []struct {
		s             string
		indent, width int
		want          string
	}{
		{"a b c", 0, 10, "a b c\n"},
		{"aaa bbb ccc ddd", 2, 8, "aaa bbb\n  ccc\n  ddd\n"},
		{"  x  y", 4, 79, "  x  y\n"},
		{"a verylongwordthatdoesnotfit b", 0, 10, "a\nverylongwordthatdoesnotfit\nb\n"},
		{"π π π", 0, 3, "π π\nπ\n"},
	} {
		if got := wrap(tt.s, tt.indent, tt.width); got != tt.want {
			t.Errorf("wrap(%q, %d, %d) = %q, want %q", tt.s, tt.indent, tt.width, got, tt.want)
		}
	}
}

func TestTaskReference(t *testing.T) {
	ref := taskReference()
	for line := range strings.Lines(ref) {
		if n := len([]rune(strings.TrimSuffix(line, "\n"))); n > helpWidth {
			t.Errorf("a line of %d characters:\n%s", n, line)
		}
	}
	for _, name := range newRegistry().Names() {
		if !strings.Contains(ref, "\n"+name+": ") {
			t.Errorf("no entry for %s", name)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"help", "tasks"}, nil, &stdout, &stderr); code != exitOK || stdout.String() != ref || stderr.Len() != 0 {
		t.Errorf("poold help tasks: %d, stderr %q", code, stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"help", "nope"}, nil, &stdout, &stderr); code != exitUsage || stdout.Len() != 0 || !strings.Contains(stderr.String(), "unknown topic") {
		t.Errorf("poold help nope: %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

func TestCheckWorkerCmd(t *testing.T) {
	dir := t.TempDir()
	plain, prog := filepath.Join(dir, "plain"), filepath.Join(dir, "prog")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, want string }{
		{"", ""},
		{prog, ""},
		{"sh", ""},
		{filepath.Join(dir, "none"), "no such file"},
		{plain, "not executable (-rw-r--r--)"},
		{dir, "is a directory"},
		{"poold-test-no-such-program", "no such program in $PATH"},
	} {
		var argv []string
		if tt.name != "" {
			argv = []string{tt.name}
		}
		err := checkWorkerCmd(argv)
		var ue *usageError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.name, err)
		case tt.want != "" && (!errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: %v, want a usage error saying %q", tt.name, err, tt.want)
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestNoteSlow(t *testing.T) {
	var w syncWriter
	n := noteSlow(&w, time.Hour, "slow")
	n.stop("done")
	if w.String() != "" {
		t.Errorf("a quick job printed %q", w.String())
	}
	n = noteSlow(&w, time.Millisecond, "slow")
	for deadline := time.Now().Add(5 * time.Second); w.String() == "" && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	n.stop("done")
	n.stop("again") // once stopped, nothing more
	if w.String() != "slow\ndone\n" {
		t.Errorf("a slow job printed %q", w.String())
	}
}
