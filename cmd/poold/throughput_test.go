package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poold/poold"
)

// The command against the pool it drives: the same 100,000 echo tasks on 2
// workers, through the Go API (BenchmarkAPIEcho) and through the whole
// command, from a JSON array and from JSON Lines, with --json output
// (BenchmarkCommandEcho). Each reports tasks/s. Run them alone, with
// -benchtime 1x -count 3 (each iteration is a whole run of N tasks); add
// -cpuprofile to see where the command spends its time.

// benchTasks is how many tasks each run has; POOLD_BENCH_TASKS overrides it.
func benchTasks(b *testing.B) int {
	n := 100_000
	if s := os.Getenv("POOLD_BENCH_TASKS"); s != "" {
		if _, err := fmt.Sscan(s, &n); err != nil {
			b.Fatalf("POOLD_BENCH_TASKS=%q: %v", s, err)
		}
	}
	return n
}

func BenchmarkAPIEcho(b *testing.B) {
	n := benchTasks(b)
	var elapsed time.Duration
	for b.Loop() {
		p, err := poold.New(context.Background(), poold.WithWorkers(2))
		if err != nil {
			b.Fatal(err)
		}
		rs := make([]*poold.AsyncResult[poold.Raw], n)
		t0 := time.Now()
		for i := range rs {
			args := map[string]any{"value": int64(i + 1)}
			if rs[i], err = p.ApplyAsync("echo", args); err != nil {
				b.Fatal(err)
			}
		}
		for _, a := range rs {
			if _, err := a.Get(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		elapsed += time.Since(t0)
		p.Close()
		p.Join(context.Background())
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "tasks/s")
}

// writeEchoTasks writes n echo tasks, one entry a line: a JSON array, or
// JSON Lines.
func writeEchoTasks(b *testing.B, path string, n int, jsonl bool) {
	var sb strings.Builder
	if !jsonl {
		sb.WriteString("[\n")
	}
	for i := range n {
		fmt.Fprintf(&sb, `{"id":"t%d","func":"echo","args":{"value":%d}}`, i+1, i+1)
		if !jsonl && i < n-1 {
			sb.WriteByte(',')
		}
		sb.WriteByte('\n')
	}
	if !jsonl {
		sb.WriteString("]\n")
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkCommandEcho(b *testing.B) {
	n := benchTasks(b)
	for _, format := range []string{"json", "jsonl"} {
		b.Run(format, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "tasks."+format)
			writeEchoTasks(b, path, n, format == "jsonl")
			var elapsed time.Duration
			for b.Loop() {
				t0 := time.Now()
				if code := run([]string{"-n", "2", "--json", "--no-progress", path}, nil, io.Discard, io.Discard); code != 0 {
					b.Fatalf("exit status %d", code)
				}
				elapsed += time.Since(t0)
			}
			b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "tasks/s")
		})
	}
}

// BenchmarkCheckTaskFile is the first pass alone over a file of echo
// tasks (MB/s): what a JSON array adds to the run of the same tasks as
// JSON Lines, before anything starts.
func BenchmarkCheckTaskFile(b *testing.B) {
	n := benchTasks(b)
	path := filepath.Join(b.TempDir(), "tasks.json")
	writeEchoTasks(b, path, n, false)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	known := newRegistry().Names()
	for b.Loop() {
		in, first, done, err := openTaskFile(path, "tasks.json", nil)
		if err != nil {
			b.Fatal(err)
		}
		c := newChecker("tasks.json", known, false)
		w := newWalker(first)
		w.fast = &c.fast
		res, err := w.walk(c.entry)
		done()
		tf, err := c.finish(res, err, func() (io.Reader, error) { return in.reader(), nil })
		in.f.Close()
		if err != nil || tf.Results != n {
			b.Fatalf("%v, %+v", err, tf)
		}
	}
}
