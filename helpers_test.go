package poold_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/poold/poold"
)

// Helpers shared by the tests of this package.

// testCtx is the test's context, bounded so that a hang fails the test
// rather than the whole run.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newPool starts a pool and terminates it when the test ends.
func newPool(t *testing.T, opts ...poold.Option) *poold.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := poold.New(ctx, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { terminate(t, p) })
	return p
}

// terminate terminates p, and fails the test with every goroutine's stack
// rather than hang the whole run if Terminate does not return.
func terminate(t *testing.T, p *poold.Pool) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Terminate() }()
	select {
	case err := <-done:
		return err
	case <-time.After(15 * time.Second):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("Terminate did not return within 15 s; goroutines:\n%s", buf)
		return errors.New("terminate hung")
	}
}

// taskErr returns err as a *TaskError, failing the test if it is not one.
func taskErr(t *testing.T, err error) *poold.TaskError {
	t.Helper()
	var te *poold.TaskError
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a *poold.TaskError", err, err)
	}
	return te
}

// exitErr returns the *WorkerExitError under err, failing the test if there
// is none.
func exitErr(t *testing.T, err error) *poold.WorkerExitError {
	t.Helper()
	var we *poold.WorkerExitError
	if !errors.As(err, &we) {
		t.Fatalf("error %v has no *poold.WorkerExitError", err)
	}
	return we
}

// gone reports whether no process has the given pid any more.
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// waitAllReady waits until every slot of p has a ready worker, and returns
// their pids.
func waitAllReady(t *testing.T, p *poold.Pool) []int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		pids := p.PIDs()
		if !slices.Contains(pids, 0) {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers not all ready: %v", pids)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ints(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func decodeInt(t *testing.T, r poold.Raw) int {
	t.Helper()
	var v int
	if err := r.Decode(&v); err != nil {
		t.Fatalf("decoding %x: %v", []byte(r), err)
	}
	return v
}

// errsOf runs an IMap and returns the errors it yielded.
func errsOf[R any](it func(func(poold.Result[R], error) bool)) []error {
	var errs []error
	for _, err := range it {
		errs = append(errs, err)
	}
	return errs
}

// withErrs is an input that yields vals, then err if it is not nil, and
// fails the test (by a panic the range statement reports) if it is read
// after its error.
func withErrs[A any](vals []A, err error) func(func(A, error) bool) {
	return func(yield func(A, error) bool) {
		for _, v := range vals {
			if !yield(v, nil) {
				return
			}
		}
		if err != nil && yield(*new(A), err) {
			panic(fmt.Sprintf("the input was read on after its error %v", err))
		}
	}
}

// mode is how a test's pool runs its workers. The behavioural tests of
// this package run in every mode where the behaviour is the same (see
// inModes); threads_test.go tests where it differs.
type mode struct {
	name    string
	threads bool
}

func (m mode) options() []poold.Option {
	if m.threads {
		return []poold.Option{poold.WithThreads(reg)}
	}
	return nil
}

// pool starts a pool in mode m, with opts, and terminates it when the test
// ends.
func (m mode) pool(t *testing.T, opts ...poold.Option) *poold.Pool {
	t.Helper()
	return newPool(t, append(m.options(), opts...)...)
}

// inModes runs test once for worker processes and once for goroutines, as
// subtests named after the mode.
func inModes(t *testing.T, test func(t *testing.T, m mode)) {
	t.Helper()
	for _, m := range []mode{{"processes", false}, {"threads", true}} {
		t.Run(m.name, func(t *testing.T) { test(t, m) })
	}
}

// stalls holds, by key, the channel that releases the stall tasks of that
// key; stallKeys numbers the keys, so that none is used twice (-count).
var (
	stalls    sync.Map // string → chan struct{}
	stallKeys atomic.Int64
)

func stallRelease(key string) chan struct{} {
	ch, _ := stalls.LoadOrStore(key, make(chan struct{}))
	return ch.(chan struct{})
}

// stallKey returns the argument of stall tasks that t's end releases (a
// stall that starts later returns at once).
func stallKey(t *testing.T) string {
	key := fmt.Sprintf("%s#%d", t.Name(), stallKeys.Add(1))
	release := stallRelease(key)
	t.Cleanup(func() { close(release) })
	return key
}

// workerID names the worker that ran a result in either mode: in threads
// mode every worker has this process's PID, and only the slot tells them
// apart.
type workerID struct{ pid, slot int }

func workerOf[R any](r poold.Result[R]) workerID { return workerID{r.PID, r.Worker} }

// checkWorkersGone checks that the workers of pids are gone after Terminate
// or Join: the processes no longer exist, or, in threads mode (where the
// PIDs are this process's), no slot has a worker goroutine.
func checkWorkersGone(t *testing.T, m mode, p *poold.Pool, pids []int, when string) {
	t.Helper()
	if m.threads {
		for _, pid := range pids {
			if pid != os.Getpid() {
				t.Errorf("threads mode: worker pid %d, not this process's %d", pid, os.Getpid())
			}
		}
		if slots := p.PIDs(); slices.ContainsFunc(slots, func(pid int) bool { return pid != 0 }) {
			t.Errorf("threads mode: slots %v still have worker goroutines %s", slots, when)
		}
		return
	}
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("worker %d still exists %s", pid, when)
		}
	}
}
