package bench

// Benchmarks of poold's hot path through the public API, comparable across
// commits with benchstat:
//
//	go test -run '^$' -bench . -count 10 ./bench/ > new.txt
//	benchstat old.txt new.txt
//
// One op is one task everywhere; tasks/s is the same figure as a rate.

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/poold/poold"
)

// The test binary is its own worker.
func TestMain(m *testing.M) {
	poold.Init(Registry)
	os.Exit(m.Run())
}

func benchPool(b *testing.B, workers int, opts ...poold.Option) *poold.Pool {
	b.Helper()
	p, err := poold.New(context.Background(), append([]poold.Option{poold.WithWorkers(workers)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Terminate() })
	if _, err := Ident.Map(context.Background(), p, make([]int64, 4*workers), poold.ChunkSize(1)); err != nil {
		b.Fatal(err)
	}
	return p
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkApply: one task at a time, from Apply to its result (the
// harness's workload 3), on 2 workers.
func BenchmarkApply(b *testing.B) { benchApply(b) }

// BenchmarkApplyAsyncPipelined: b.N tasks submitted one at a time with
// ApplyAsync, then gathered (the harness's workload 1), on 2 workers.
func BenchmarkApplyAsyncPipelined(b *testing.B) { benchApplyAsync(b) }

// BenchmarkMapChunked: one Map of b.N items with the default chunking (the
// harness's workload 2), on 2 workers.
func BenchmarkMapChunked(b *testing.B) { benchMap(b) }

// BenchmarkThreadsApply is BenchmarkApply in threads mode (2 worker
// goroutines): the harness's row 3ta.
func BenchmarkThreadsApply(b *testing.B) { benchApply(b, poold.WithThreads(Registry)) }

// BenchmarkThreadsApplyAsyncPipelined is BenchmarkApplyAsyncPipelined in
// threads mode: the harness's row 1ta.
func BenchmarkThreadsApplyAsyncPipelined(b *testing.B) {
	benchApplyAsync(b, poold.WithThreads(Registry))
}

// BenchmarkThreadsMapChunked is BenchmarkMapChunked in threads mode: the
// harness's row 2ta.
func BenchmarkThreadsMapChunked(b *testing.B) { benchMap(b, poold.WithThreads(Registry)) }

func benchApply(b *testing.B, opts ...poold.Option) {
	p := benchPool(b, 2, opts...)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := Ident.Apply(ctx, p, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func benchApplyAsync(b *testing.B, opts ...poold.Option) {
	p := benchPool(b, 2, opts...)
	ctx := context.Background()
	rs := make([]*poold.AsyncResult[int64], b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		var err error
		if rs[i], err = Ident.ApplyAsync(p, int64(i)); err != nil {
			b.Fatal(err)
		}
	}
	for _, a := range rs {
		if _, err := a.Get(ctx); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func benchMap(b *testing.B, opts ...poold.Option) {
	p := benchPool(b, 2, opts...)
	ctx := context.Background()
	args := make([]int64, b.N)
	for i := range args {
		args[i] = int64(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := Ident.Map(ctx, p, args); err != nil {
		b.Fatal(err)
	}
	reportRate(b)
}

// smokeRows are the rows the harness prints, every one of them in every run.
var smokeRows = []string{
	"1a", "1b", "1c", "1d", "1ta", "1tb", "2a", "2ta", "2tb",
	"3a", "3b", "3c", "3d", "3e", "3ta", "3tb", "3tc", "3td", "4a", "4b", "4c", "4d",
	"5a", "5b", "5c", "5ta", "5tb", "6a", "6b", "6c", "7a", "7b",
	"8a", "8b", "8c", "8d", "8e", "8f", "8g", "8h",
	"9a", "9b", "9c", "9d", "9e", "9f", "9g",
	"10a", "10b", "10c", "10d", "10e", "10f", "10g", "10h", "10i", "10j", "10k", "10l", "10m",
}

// TestCompareSmoke builds the harness and runs it as CI does, in -smoke
// mode: every workload must work and print every row. Figures are not
// checked: a smoke run's mean nothing.
func TestCompareSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the comparison harness")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the harness with")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "compare")
	if out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, "./cmd/compare").CombinedOutput(); err != nil {
		t.Fatalf("go build ./bench/cmd/compare: %v\n%s", err, out)
	}
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		t.Logf("compare %s:\n%s", strings.Join(args, " "), out.String())
		if err != nil {
			t.Fatalf("compare %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	rowLine := func(out, id string) string {
		return regexp.MustCompile(`(?m)^` + id + `  .*$`).FindString(out)
	}

	t.Run("all", func(t *testing.T) {
		md := filepath.Join(dir, "table.md")
		out := run(t, "-smoke", "-out", md)
		for _, id := range smokeRows {
			line := rowLine(out, id)
			if line == "" {
				t.Errorf("row %s missing", id)
				continue
			}
			if strings.Contains(line, "ERROR") {
				t.Errorf("row %s: %s", id, line)
			}
		}
		for _, want := range []string{"machine:", "go:", "python:", "date:", "noise check", "targets:"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q", want)
			}
		}
		b, err := os.ReadFile(md)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range smokeRows {
			if !strings.Contains(string(b), "| "+id+" |") {
				t.Errorf("Markdown table lacks row %s", id)
			}
		}
	})

	// Without Python, the Python columns say n/a and the run still passes.
	t.Run("no-python", func(t *testing.T) {
		out := run(t, "-smoke", "-python", "none", "-only", "apply,cpu,command")
		for _, id := range []string{"1a", "1ta", "4a", "9c", "9d"} {
			if line := rowLine(out, id); !strings.Contains(line, "n/a") {
				t.Errorf("row %s without Python: %q, want n/a", id, line)
			}
		}
		for _, id := range []string{"1b", "1tb", "9a", "9e"} {
			if line := rowLine(out, id); line == "" || strings.Contains(line, "n/a") {
				t.Errorf("row %s does not need Python: %q", id, line)
			}
		}
	})
}

// BenchmarkMapValues: BenchmarkMapChunked through MapValues, which keeps
// the values and who ran each, not a Result per item.
func BenchmarkMapValues(b *testing.B) {
	p := benchPool(b, 2)
	args := make([]int64, b.N)
	for i := range args {
		args[i] = int64(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if _, err := Ident.MapValues(context.Background(), p, args); err != nil {
		b.Fatal(err)
	}
	reportRate(b)
}
