package poold_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/poold/poold"
)

func TestResultFields(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		const workers = 2
		p := m.pool(t, poold.WithWorkers(workers))
		before := time.Now()
		r, err := say.Apply(ctx, p, "hello there")
		after := time.Now()
		if err != nil {
			t.Fatal(err)
		}
		pids := p.PIDs()
		if r.PID == 0 || (r.PID == os.Getpid()) != m.threads || r.Value != r.PID {
			t.Errorf("PID %d (value %d, parent %d)", r.PID, r.Value, os.Getpid())
		}
		if !slices.Contains(pids, r.PID) {
			t.Errorf("PID %d not among the workers %v", r.PID, pids)
		}
		if r.Worker < 0 || r.Worker >= workers || pids[r.Worker] != r.PID {
			t.Errorf("Worker %d; workers by slot %v, PID %d", r.Worker, pids, r.PID)
		}
		if r.Attempts != 1 {
			t.Errorf("Attempts %d", r.Attempts)
		}
		if r.Start.IsZero() || r.End.Before(r.Start) || r.Duration() < 0 {
			t.Errorf("Start %v, End %v", r.Start, r.End)
		}
		const slack = 50 * time.Millisecond
		if r.Start.Before(before.Add(-slack)) || r.End.After(after.Add(slack)) {
			t.Errorf("ran from %v to %v, outside the call (%v to %v)", r.Start, r.End, before, after)
		}
		if out := string(r.Output); m.threads && out != "" {
			t.Errorf("threads mode: Output %q; a task's prints go to this process's stdout", out)
		} else if !m.threads && !strings.Contains(out, "hello there\n") {
			t.Errorf("Output %q; want what the task printed to stdout", out)
		}
		if r.Func != "say" {
			t.Errorf("Func %q", r.Func)
		}

		// A task that prints nothing has no output, even on the same worker.
		for range workers {
			q, err := square.Apply(ctx, p, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(q.Output) != 0 {
				t.Errorf("square printed %q", q.Output)
			}
		}

		// Map results too.
		rs, err := square.Map(ctx, p, ints(10), poold.ChunkSize(2))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rs {
			if r.Index != i || !slices.Contains(pids, r.PID) || r.Worker < 0 || r.Worker >= workers ||
				pids[r.Worker] != r.PID || r.Attempts != 1 || r.End.Before(r.Start) || r.Start.IsZero() {
				t.Errorf("Map result %d: %+v (workers %v)", i, r, pids)
			}
		}
	})
}

// Result.Output is documented (result.go) as "what the task wrote to stdout
// and stderr", and the issue asks for "the text the task wrote to
// stdout/stderr" in each result.
// Output is what the task printed to stdout. What it writes to stderr goes
// to the pool's logger (stderr is the worker's pipe to the parent, so that a
// dying worker's last words are never lost with it).
func TestOutputIsStdoutStderrIsLogged(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	var logs syncBuffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})
	p := newPool(t, poold.WithWorkers(1), poold.WithLogger(logger))
	r, err := say.Apply(ctx, p, "both streams")
	if err != nil {
		t.Fatal(err)
	}
	if out := string(r.Output); out != "both streams\n" {
		t.Errorf("Output %q; want what the task printed to stdout", out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "stderr: both streams") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := logs.String(); !strings.Contains(got, "stderr: both streams") || !strings.Contains(got, fmt.Sprintf("pid=%d", r.PID)) {
		t.Errorf("the task's stderr did not reach the logger with its pid:\n%s", got)
	}
}

func TestLargeOutput(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	p := newPool(t, poold.WithWorkers(1))
	const n = 1 << 20
	r, err := printBytes.Apply(ctx, p, n)
	if err != nil || r.Value != n {
		t.Fatalf("print_bytes: %v, %v", r.Value, err)
	}
	want := bytes.Repeat([]byte("0123456789abcdef"), n/16)
	if !bytes.Equal(r.Output, want) {
		t.Errorf("Output: %d bytes, want %d bytes of the pattern", len(r.Output), n)
	}
	if q, err := square.Apply(ctx, p, 9); err != nil || q.Value != 81 || q.PID != r.PID || len(q.Output) != 0 {
		t.Errorf("next task: %v, %v, pid %d (want %d), output %d bytes", q.Value, err, q.PID, r.PID, len(q.Output))
	}
}

// jsonLogger logs everything to buf, a JSON object a line.
func jsonLogger(buf *syncBuffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: buf, Level: hclog.Debug, JSONFormat: true})
}

// syncBuffer is a bytes.Buffer safe for the pool's logging goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogger(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	var buf syncBuffer
	p := newPool(t, poold.WithWorkers(1), poold.WithLogger(jsonLogger(&buf)))
	first := p.PIDs()[0]
	if _, err := exitWith.Apply(ctx, p, 3); !errors.Is(err, poold.KindWorkerLost) {
		t.Fatalf("%v", err)
	}
	// The loss is logged, naming the worker's pid.
	deadline := time.Now().Add(5 * time.Second)
	want := fmt.Sprintf(`"pid":%d`, first)
	for {
		found := false
		for line := range strings.Lines(buf.String()) {
			if strings.Contains(line, "worker lost") && strings.Contains(line, want) {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no \"worker lost\" line with %s in the log:\n%s", want, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A worker's own log lines reach the parent's logger with its pid.
	var wbuf syncBuffer
	q, err := poold.New(ctx, poold.WithWorkers(1), poold.WithLogger(jsonLogger(&wbuf)),
		poold.WithInitializer("init_fail", initArgs{Msg: "no database"}))
	if q != nil {
		terminate(t, q)
		t.Fatal("New succeeded")
	}
	if !errors.Is(err, poold.ErrWorkerStart) {
		t.Fatalf("New: %v", err)
	}
	found := false
	for line := range strings.Lines(wbuf.String()) {
		if strings.Contains(line, "initializer failed") && strings.Contains(line, "no database") && strings.Contains(line, `"pid":`) {
			found = true
		}
	}
	if !found {
		t.Errorf("the worker's \"initializer failed\" log line did not reach the parent's logger with a pid:\n%s", wbuf.String())
	}
}
