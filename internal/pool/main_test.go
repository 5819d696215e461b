package pool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/poold/poold/internal/tasks"
	child "github.com/poold/poold/internal/worker"
)

// The test binary is its own worker: TestMain serves when a pool started it.
// explicitVar makes the test binary an explicit worker (child.ServeStdio,
// as `poold worker`), whatever else its environment says.
const explicitVar = "POOLD_TEST_EXPLICIT"

func TestMain(m *testing.M) {
	if os.Getenv(explicitVar) != "" {
		os.Exit(child.ServeStdio(testRegistry()))
	}
	if child.IsWorker() {
		os.Exit(child.Serve(testRegistry()))
	}
	goleak.VerifyTestMain(m)
}

func testRegistry() *tasks.Registry {
	r := tasks.NewRegistry()
	r.Register("echo", tasks.Typed(func(_ context.Context, v any) (any, error) { return v, nil }))
	r.Register("pid", tasks.Typed(func(context.Context, struct{}) (int, error) { return os.Getpid(), nil }))
	r.Register("sleep_ms", tasks.Typed(func(ctx context.Context, ms int) (int, error) {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			return os.Getpid(), nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}))
	r.Register("exit", tasks.Typed(func(_ context.Context, code int) (int, error) { os.Exit(code); return 0, nil }))
	r.Register("kill", tasks.Typed(func(context.Context, struct{}) (int, error) {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}))
	r.Register("panic", tasks.Typed(func(context.Context, struct{}) (int, error) { panic("boom") }))
	r.Register("fail", tasks.Typed(func(context.Context, struct{}) (int, error) { return 0, errors.New("nope") }))
	r.Register("print", tasks.Typed(func(_ context.Context, n int) (int, error) {
		s := strings.Repeat("x", n)
		fmt.Print(s)
		fmt.Fprint(os.Stderr, "E")
		return n, nil
	}))
	r.Register("procs", tasks.Typed(func(context.Context, struct{}) (int, error) { return runtime.GOMAXPROCS(0), nil }))
	r.Register("nul", tasks.Typed(func(_ context.Context, n int) (int, error) { return os.Stdout.Write(make([]byte, n)) }))
	r.Register("big", tasks.Typed(func(_ context.Context, n int) (string, error) { return strings.Repeat("b", n), nil }))
	r.Register("stderr", tasks.Typed(func(context.Context, struct{}) (int, error) {
		os.Stderr.Write([]byte("\x00\xff\xfe not utf-8 \x80\n"))
		os.Stderr.Write([]byte("{not json\n"))
		os.Stderr.Write([]byte(strings.Repeat("long ", 20000) + "\n"))
		os.Stderr.Write([]byte(`{"@level":"error","@message":"structured hello","answer":42}` + "\n"))
		os.Stderr.Write([]byte("no newline at the end"))
		return os.Getpid(), nil
	}))
	return r
}

func newTestPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Terminate() })
	return p
}

func raw(t testing.TB, v any) []byte {
	b, err := tasks.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// call is one call's outcome, as a test keeps it.
type call struct {
	Outcome
	Value []byte
}

// run submits one call per argument, chunk of them to a task, and waits for
// all of them; the outcomes are in argument order.
func run(t *testing.T, p *Pool, fn string, chunk int, args ...any) []call {
	t.Helper()
	calls, wait := start(t, p, fn, chunk, nil, args...)
	wait()
	return calls
}

// start submits as run does, with the task's settings from proto, and
// returns a function that waits for every outcome.
func start(t *testing.T, p *Pool, fn string, chunk int, proto *Task, args ...any) ([]call, func()) {
	t.Helper()
	calls := make([]call, len(args))
	var wg sync.WaitGroup
	var mu sync.Mutex
	each := func(task *Task, i int, o *Outcome) {
		mu.Lock()
		defer mu.Unlock()
		c := &calls[task.Tag+i]
		c.Outcome = *o
		c.Value = bytes.Clone(o.Value)
		c.Output = bytes.Clone(o.Output)
	}
	for first := 0; first < len(args); first += chunk {
		n := min(chunk, len(args)-first)
		var buf []byte
		for _, a := range args[first : first+n] {
			buf = append(buf, raw(t, a)...)
		}
		task := &Task{Func: fn, Args: buf, Calls: n, Tag: first, Each: each, Done: func(*Task) { wg.Done() }}
		if proto != nil {
			task.Timeout, task.Retries, task.RetryOn, task.AtMostOnce = proto.Timeout, proto.Retries, proto.RetryOn, proto.AtMostOnce
		}
		wg.Add(1)
		if err := p.Submit(task); err != nil {
			t.Fatal(err)
		}
	}
	return calls, func() {
		t.Helper()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("tasks did not finish")
		}
	}
}

func value[T any](t *testing.T, c call) T {
	t.Helper()
	if c.Fail != nil {
		t.Fatalf("call failed: %s: %s", c.Fail.Kind, c.Fail.Message)
	}
	var v T
	if err := tasks.Unmarshal(c.Value, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// failed reports whether c failed with kind k.
func failed(c call, k Kind) bool { return c.Fail != nil && c.Fail.Kind == k }

func ints(n int) []any {
	args := make([]any, n)
	for i := range args {
		args[i] = i
	}
	return args
}

// syncLog is a buffer for a logger written from several goroutines.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
