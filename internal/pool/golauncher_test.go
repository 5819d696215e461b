package pool

import (
	"context"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/poold/poold/internal/tasks"
	child "github.com/poold/poold/internal/worker"
)

// goLauncher is a Launcher whose workers are goroutines running the real
// worker loop (child.ServeConn) over os.Pipe: the scheduler's tests run
// without exec, in milliseconds. A signal to one of its workers is its
// death: its pipes close under it, as a killed process's would.
type goLauncher struct {
	nextPID  atomic.Int64
	launched atomic.Int64
	flaky    atomic.Int64 // runs of "flaky" so far, across workers
	marks    atomic.Int64 // runs of "mark" so far: its side effect
	mu       sync.Mutex
	runs     map[int]int       // runs of "work" by argument
	fail     func(n int) error // if set, launch n (from 1) fails when it returns an error
	// noProgress: its workers record no progress, as a foreign worker
	// started as a Go one would not, while the pool still reads it.
	noProgress bool
}

func newGoLauncher() *goLauncher {
	l := &goLauncher{}
	l.nextPID.Store(1_000_000) // never a real process's: nothing here signals by pid
	return l
}

func (l *goLauncher) Close() {}

func (l *goLauncher) Launch(s child.Settings) (*Conn, error) {
	n := int(l.launched.Add(1))
	if l.fail != nil {
		if err := l.fail(n); err != nil {
			return nil, err
		}
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	ctlR, ctlW, _ := os.Pipe()
	g := &goProcess{pid: int(l.nextPID.Add(1)), killed: make(chan struct{}), done: make(chan struct{}),
		child: []*os.File{inR, outW, errW, ctlR}}
	mem := make([]uint64, 2) // 8-byte aligned, as a mapping is
	progressMem := unsafe.Slice((*byte)(unsafe.Pointer(&mem[0])), child.ProgressSize)
	go func() {
		defer close(g.done)
		code := 3 // if a task ends the goroutine (runtime.Goexit), as a worker process then exits
		defer func() {
			g.mu.Lock()
			if g.code == 0 {
				g.code = code
			}
			g.mu.Unlock()
			g.closeChild()
		}()
		st := child.Streams{In: inR, Out: outW, Log: errW, Control: ctlR, Progress: child.NewProgress(progressMem)}
		if l.noProgress {
			st.Progress = nil
		}
		code = child.ServeConn(l.registry(g), st, s)
	}()
	return &Conn{PID: g.pid, Host: "goroutine", Stdin: inW, Stdout: outR, Stderr: errR, Control: ctlW, Proc: g,
		Progress: func() (uint64, int) { return child.ReadProgress(progressMem) }}, nil
}

// goProcess is one goroutine worker.
type goProcess struct {
	pid    int
	child  []*os.File // the worker's ends of its pipes
	killed chan struct{}
	done   chan struct{}
	once   sync.Once

	mu   sync.Mutex
	sig  Signal
	code int // set by die, else the loop's status
}

// registry is g's tasks; some of them know their process.
func (l *goLauncher) registry(g *goProcess) *tasks.Registry {
	r := tasks.NewRegistry()
	r.Register("echo", tasks.Typed(func(_ context.Context, v any) (any, error) { return v, nil }))
	r.Register("pid", tasks.Typed(func(context.Context, struct{}) (int, error) { return g.pid, nil }))
	// die ends the worker with status code, as os.Exit would.
	r.Register("die", tasks.Typed(func(_ context.Context, code int) (int, error) {
		g.die(code)
		return 0, nil
	}))
	// work returns n, or dies with status -n for a negative n.
	r.Register("work", tasks.Typed(func(_ context.Context, n int) (int, error) {
		l.mu.Lock()
		if l.runs == nil {
			l.runs = make(map[int]int)
		}
		l.runs[n]++
		l.mu.Unlock()
		if n < 0 {
			g.die(-n)
		}
		return n, nil
	}))
	// flaky dies on its first run in the launcher's life, then succeeds.
	r.Register("flaky", tasks.Typed(func(context.Context, struct{}) (int, error) {
		if l.flaky.Add(1) == 1 {
			g.die(9)
		}
		return g.pid, nil
	}))
	// mark has a side effect: it counts its runs.
	r.Register("mark", tasks.Typed(func(context.Context, struct{}) (int, error) {
		return int(l.marks.Add(1)), nil
	}))
	// sleep_or_die sleeps n ms, or dies for a negative n.
	r.Register("sleep_or_die", tasks.Typed(func(_ context.Context, n int) (int, error) {
		if n < 0 {
			g.die(-n)
		}
		time.Sleep(time.Duration(n) * time.Millisecond)
		return n, nil
	}))
	// goexit ends the goroutine that runs it.
	r.Register("goexit", tasks.Typed(func(_ context.Context, n int) (int, error) {
		if n < 0 {
			runtime.Goexit()
		}
		return n, nil
	}))
	// hang ignores its context; only the worker's death ends it.
	r.Register("hang", tasks.Typed(func(context.Context, struct{}) (int, error) {
		<-g.killed
		return 0, nil
	}))
	r.Register("sleep_ms", tasks.Typed(func(ctx context.Context, ms int) (int, error) {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			return g.pid, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-g.killed:
			return 0, nil
		}
	}))
	return r
}

// die ends the worker with status code, as os.Exit in a task would: its
// pipes close, and its goroutine ends where it is.
func (g *goProcess) die(code int) {
	g.mu.Lock()
	g.code = code
	g.mu.Unlock()
	g.closeChild()
	runtime.Goexit()
}

func (g *goProcess) closeChild() {
	g.once.Do(func() {
		for _, f := range g.child {
			f.Close()
		}
	})
}

func (g *goProcess) Signal(sig Signal) {
	select {
	case <-g.done:
		return
	default:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sig == 0 {
		g.sig = sig
		g.closeChild() // first: nothing the worker does after its death may reach the pool
		close(g.killed)
	}
}

func (g *goProcess) Exited() { <-g.done }

func (g *goProcess) Reap() Exit {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sig != 0 {
		return Exit{PID: g.pid, ExitCode: -1, Signal: g.sig}
	}
	return Exit{PID: g.pid, ExitCode: g.code}
}

// newGoPool is a pool of goroutine workers.
func newGoPool(t testingT, cfg Config) (*Pool, *goLauncher) {
	l := newGoLauncher()
	cfg.Launcher = l
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Terminate() })
	return p, l
}

type testingT interface {
	Fatal(...any)
	Cleanup(func())
}
