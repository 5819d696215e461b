package poold_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/poold/poold"
)

// The test binary is its own worker program: a pool started by a test
// re-executes this binary, and TestMain hands it to poold.Init, which serves
// tasks from reg and exits. reg therefore holds every function that the tests
// and examples of this package run, and is built in package-level vars so
// that parent and workers build it the same way.
var reg = poold.NewRegistry()

// Typed handles on the test tasks.
var (
	// square returns x*x.
	square = poold.Register(reg, "square", func(_ context.Context, x int) (int, error) {
		return x * x, nil
	})

	// pid returns the worker's process id.
	pid = poold.Register(reg, "pid", func(context.Context, struct{}) (int, error) {
		return os.Getpid(), nil
	})

	// echo returns its argument.
	echo = poold.Register(reg, "echo", func(_ context.Context, v any) (any, error) { return v, nil })

	// sleep sleeps ms milliseconds, or until its context ends, and returns
	// the worker's pid.
	sleep = poold.Register(reg, "sleep", func(ctx context.Context, ms int) (int, error) {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			return os.Getpid(), nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})

	// slowEcho sleeps, then returns the index it was given.
	slowEcho = poold.Register(reg, "slow_echo", func(ctx context.Context, a slowArgs) (int, error) {
		select {
		case <-time.After(time.Duration(a.MS) * time.Millisecond):
			return a.I, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})

	// explode panics (see panicTask).
	explode = poold.Register(reg, "explode", panicTask)

	// fail returns an error carrying msg.
	fail = poold.Register(reg, "fail", func(_ context.Context, msg string) (int, error) {
		return 0, errors.New(msg)
	})

	// exitWith ends the worker process with the given exit code.
	exitWith = poold.Register(reg, "exit", func(_ context.Context, code int) (int, error) {
		os.Exit(code)
		return 0, nil
	})

	// killSelf sends SIGKILL to its own worker.
	killSelf = poold.Register(reg, "kill", func(context.Context, struct{}) (int, error) {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		for {
			time.Sleep(time.Hour)
		}
	})

	// hang blocks forever and ignores cancellation.
	hang = poold.Register(reg, "hang", func(context.Context, struct{}) (int, error) {
		for {
			time.Sleep(time.Hour)
		}
	})

	// stall ignores cancellation, as hang does, and blocks until the test
	// that made its key (see stallKey) ends: for ever in a worker process,
	// which the pool kills; in threads mode, where its goroutine is
	// abandoned rather than killed, it then returns, so that no goroutine
	// outlives the tests (goleak).
	stall = poold.Register(reg, "stall", func(_ context.Context, key string) (int, error) {
		release := stallRelease(key)
		for {
			select {
			case <-release:
				return os.Getpid(), nil
			case <-time.After(time.Hour):
			}
		}
	})

	// waitCtx blocks until its context ends and returns the context's error.
	waitCtx = poold.Register(reg, "wait_ctx", func(ctx context.Context, _ struct{}) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})

	// say prints to stdout and stderr and returns the worker's pid.
	say = poold.Register(reg, "say", func(_ context.Context, text string) (int, error) {
		fmt.Println(text)
		fmt.Fprintln(os.Stderr, "stderr:", text)
		return os.Getpid(), nil
	})

	// exitOnce exits the worker with Code the first time (when Marker does
	// not exist yet, creating it), and returns the pid on later attempts.
	exitOnce = poold.Register(reg, "exit_once", func(_ context.Context, a exitOnceArgs) (int, error) {
		if _, err := os.Stat(a.Marker); errors.Is(err, os.ErrNotExist) {
			if err := os.WriteFile(a.Marker, []byte("x"), 0o644); err != nil {
				return 0, err
			}
			os.Exit(a.Code)
		}
		return os.Getpid(), nil
	})

	// padded exits the worker with Exit if it is not 0, else returns I
	// followed by Pad bytes of padding: results big enough to make a
	// chunk's result frame large.
	padded = poold.Register(reg, "padded", func(_ context.Context, a paddedArgs) (string, error) {
		if a.Exit != 0 {
			os.Exit(a.Exit)
		}
		return strconv.Itoa(a.I) + ":" + strings.Repeat("p", a.Pad), nil
	})

	// work exits the worker with Exit if it is not 0, else sleeps MS
	// milliseconds and returns I.
	work = poold.Register(reg, "work", func(_ context.Context, a workArgs) (int, error) {
		if a.Log != "" {
			f, err := os.OpenFile(a.Log, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
			if err != nil {
				return 0, err
			}
			fmt.Fprintln(f, a.I)
			f.Close()
		}
		if a.Exit != 0 {
			os.Exit(a.Exit)
		}
		time.Sleep(time.Duration(a.MS) * time.Millisecond)
		return a.I, nil
	})

	// stubborn ignores SIGTERM and cancellation, and blocks forever.
	stubborn = poold.Register(reg, "stubborn", func(context.Context, struct{}) (int, error) {
		signal.Ignore(syscall.SIGTERM)
		for {
			time.Sleep(time.Hour)
		}
	})

	// printBytes writes n bytes to stdout and returns n.
	printBytes = poold.Register(reg, "print_bytes", func(_ context.Context, n int) (int, error) {
		b := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		if _, err := os.Stdout.Write(b); err != nil {
			return 0, err
		}
		return n, nil
	})

	// lastWords writes a line to stderr, then exits the worker with code 3.
	lastWords = poold.Register(reg, "last_words", func(_ context.Context, words string) (int, error) {
		fmt.Fprintln(os.Stderr, words)
		os.Exit(3)
		return 0, nil
	})

	// goPanic panics on a goroutine of its own, which no recover reaches:
	// the Go runtime ends the worker with exit status 2 and a trace.
	goPanic = poold.Register(reg, "go_panic", func(_ context.Context, msg string) (int, error) {
		go func() { panic(msg) }()
		for {
			time.Sleep(time.Hour)
		}
	})

	// summarize works on structs with json tags both ways.
	summarize = poold.Register(reg, "summarize", func(_ context.Context, in shape) (summary, error) {
		var s summary
		s.Label = in.Label
		for _, p := range in.Points {
			s.Total.X += p.X
			s.Total.Y += p.Y
		}
		s.Count = len(in.Points)
		s.PID = os.Getpid()
		return s, nil
	})

	// "text" returns a string; resultMismatch (below) calls it expecting an
	// int. No test calls it through a handle of its own.
	_ = poold.Register(reg, "text", func(context.Context, struct{}) (string, error) {
		return "not a number", nil
	})

	// unencodable returns a value that msgpack cannot encode.
	unencodable = poold.Register(reg, "unencodable", func(context.Context, struct{}) (func(), error) {
		return func() {}, nil
	})

	// initFail is an initializer that always fails.
	_ = poold.Register(reg, "init_fail", func(_ context.Context, a initArgs) (struct{}, error) {
		return struct{}{}, errors.New(a.Msg)
	})

	// initSet is an initializer that records its argument in the worker;
	// initValue returns it.
	_ = poold.Register(reg, "init_set", func(_ context.Context, a initArgs) (struct{}, error) {
		initialized.Store(a.Msg)
		initRuns.Add(1)
		return struct{}{}, nil
	})
	initValue = poold.Register(reg, "init_value", func(context.Context, struct{}) (string, error) {
		s, _ := initialized.Load().(string)
		return s, nil
	})
)

// initialized is set by the init_set initializer, in the worker process,
// or in threads mode in this process, by each worker goroutine at once:
// hence atomic. initRuns counts the initializer's runs there.
var (
	initialized atomic.Value // string
	initRuns    atomic.Int32
)

// resultMismatch is a handle on "text" that claims its results are ints.
// It is made from a registry that no worker serves, so that it only names
// the task; the workers run the string-returning function registered above.
var resultMismatch = poold.Register(poold.NewRegistry(), "text", func(context.Context, struct{}) (int, error) {
	return 0, nil
})

type slowArgs struct {
	I  int `json:"i"`
	MS int `json:"ms"`
}

type paddedArgs struct {
	I    int `json:"i"`
	Pad  int `json:"pad"`
	Exit int `json:"exit,omitempty"`
}

type workArgs struct {
	I    int    `json:"i"`
	MS   int    `json:"ms,omitempty"`
	Exit int    `json:"exit,omitempty"`
	Log  string `json:"log,omitempty"` // a file to which the call appends its I, first: a side effect
}

type exitOnceArgs struct {
	Marker string `json:"marker"`
	Code   int    `json:"code"`
}

type initArgs struct {
	Msg string `json:"msg"`
}

type point struct {
	X int `json:"x"`
	Y int `json:"y"`
}

type shape struct {
	Label  string  `json:"label"`
	Points []point `json:"points"`
}

type summary struct {
	Label string `json:"label"`
	Total point  `json:"total"`
	Count int    `json:"count"`
	PID   int    `json:"pid"`
}

// panicTask is a named function, so that the worker-side stack of its panic
// names it.
func panicTask(_ context.Context, msg string) (int, error) {
	panic("explode: " + msg)
}

func TestMain(m *testing.M) {
	if os.Getenv(forgetfulEnv) != "" {
		os.Exit(forgetfulMain()) // a program that forgot Init, and its workers
	}
	poold.Init(reg) // in a worker: serves and exits

	// Under the race detector every process sleeps for a second as it exits
	// (GORACE atexit_sleep_ms, default 1000), so that a worker that exits
	// (os.Exit in a task, or EOF after Close) takes a second to be reaped.
	// The workers inherit this environment; without the sleep the package
	// runs in half the time, and timing assertions stay tight.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))

	goleak.VerifyTestMain(m)
}
