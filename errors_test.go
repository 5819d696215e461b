package poold_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/poold/poold"
)

func TestUnknownFunc(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		check := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, poold.KindUnknownFunc) {
				t.Errorf("%s: %v, want KindUnknownFunc", what, err)
				return
			}
			for _, name := range []string{"square", "summarize", "exit_once"} {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("%s: %q does not list the known task %q", what, err, name)
				}
			}
		}
		_, err := p.Apply(ctx, "no_such_task", 1)
		check("Apply", err)
		a, err := p.ApplyAsync("no_such_task", 1)
		check("ApplyAsync", err)
		if a != nil {
			t.Error("ApplyAsync returned a handle with its error")
		}
		_, err = p.Map(ctx, "no_such_task", []any{1, 2})
		check("Map", err)
		var errs []error
		for _, err := range p.IMap(ctx, "no_such_task", slices.Values([]any{1, 2})) {
			errs = append(errs, err)
		}
		if len(errs) != 1 {
			t.Errorf("IMap yielded %v; want one error", errs)
		} else {
			check("IMap", errs[0])
		}
		if s := p.Stats(); s.TasksDone != 0 {
			t.Errorf("%d tasks ran", s.TasksDone)
		}
	})
}

// Task errors are the root package's own types, matched by kind.
func TestTaskErrorTypes(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))

		_, err := explode.Apply(ctx, p, "typed")
		if got := fmt.Sprintf("%T", err); got != "*poold.TaskError" {
			t.Errorf("a panic's error is a %s, want *poold.TaskError", got)
		}
		if !errors.Is(err, poold.KindPanic) || errors.Is(err, poold.KindWorkerLost) || errors.Is(err, poold.KindError) {
			t.Errorf("a panic's error %v: Is KindPanic %v, KindWorkerLost %v, KindError %v; want true, false, false",
				err, errors.Is(err, poold.KindPanic), errors.Is(err, poold.KindWorkerLost), errors.Is(err, poold.KindError))
		}
		if te := taskErr(t, err); te.Exit != nil || errors.Unwrap(err) != nil {
			t.Errorf("a panic has a worker exit: %v, unwraps to %v", te.Exit, errors.Unwrap(err))
		}

		_, err = fail.Apply(ctx, p, "plain")
		if !errors.Is(err, poold.KindError) || errors.Is(err, poold.KindPanic) {
			t.Errorf("a returned error %v does not match KindError alone", err)
		}

		// A lost worker: processes only (os.Exit would end this process in
		// threads mode).
		if !m.threads {
			_, err = exitWith.Apply(ctx, p, 4)
			if got := fmt.Sprintf("%T", err); got != "*poold.TaskError" {
				t.Errorf("a lost worker's error is a %s, want *poold.TaskError", got)
			}
			if !errors.Is(err, poold.KindWorkerLost) || errors.Is(err, poold.KindPanic) {
				t.Errorf("a lost worker's error %v does not match KindWorkerLost alone", err)
			}
			te := taskErr(t, err)
			we := exitErr(t, err)
			if te.Exit == nil || we != te.Exit || errors.Unwrap(err) != error(te.Exit) {
				t.Errorf("Exit %v, errors.As %v, Unwrap %v; want the same *WorkerExitError", te.Exit, we, errors.Unwrap(err))
			}
			if got := fmt.Sprintf("%T", te.Exit); got != "*poold.WorkerExitError" {
				t.Errorf("Exit is a %s", got)
			}
			if we.ExitCode != 4 || we.PID != te.PID || te.Attempts != 1 || te.Func != "exit" {
				t.Errorf("TaskError %+v, exit %+v; want exit code 4 on the task's pid, 1 attempt, func exit", te, we)
			}
		}

		// Errors that no worker reported are of the same type.
		_, err = p.Apply(ctx, "no_such_task", 1)
		if got := fmt.Sprintf("%T", err); got != "*poold.TaskError" {
			t.Errorf("an unknown task's error is a %s, want *poold.TaskError", got)
		}
		if te := taskErr(t, err); te.Kind != poold.KindUnknownFunc || te.Func != "no_such_task" || te.PID != 0 {
			t.Errorf("unknown task: %+v; want kind unknown_func, func no_such_task, no pid", te)
		}
		_, err = echo.Apply(ctx, p, make(chan int))
		if got := fmt.Sprintf("%T", err); got != "*poold.TaskError" || !errors.Is(err, poold.KindEncode) {
			t.Errorf("an argument that does not encode: %v (%s), want a *poold.TaskError of kind encode", err, got)
		}

		p.Close()
		if _, err := square.Apply(ctx, p, 1); !errors.Is(err, poold.ErrPoolClosed) || errors.As(err, new(*poold.TaskError)) {
			t.Errorf("Apply after Close: %v (%T), want ErrPoolClosed and no task error", err, err)
		}
	})
}

// The errors' text, and how they match, without a pool.
func TestErrorValues(t *testing.T) {
	t.Parallel()
	if got := poold.KindWorkerLost.Error(); got != "worker_lost" || fmt.Sprint(poold.KindWorkerLost) != "worker_lost" {
		t.Errorf("KindWorkerLost prints as %q and %q, want worker_lost", got, fmt.Sprint(poold.KindWorkerLost))
	}
	exit := &poold.WorkerExitError{PID: 7, ExitCode: -1, Signal: syscall.SIGSEGV, CoreDump: true, Reason: "timeout",
		Stderr: []string{"goroutine 1 [running]:", "panic: nil map", "main.main()", "exit status 2"}}
	if got, want := exit.Error(), "worker pid 7 killed by signal 11 (segmentation fault), core dumped [timeout]; stderr: panic: nil map"; got != want {
		t.Errorf("WorkerExitError:\n got %s\nwant %s", got, want)
	}
	for _, c := range []struct {
		e    *poold.WorkerExitError
		want string
	}{
		{&poold.WorkerExitError{PID: 8, ExitCode: 3}, "worker pid 8 exited with code 3"},
		{&poold.WorkerExitError{PID: 8, ExitCode: 3, Stderr: []string{"a", "b"}}, "worker pid 8 exited with code 3; stderr: b"},
		{&poold.WorkerExitError{PID: 8, ExitCode: 1, Stderr: []string{"x", "fatal error: out of memory", "y"}}, "worker pid 8 exited with code 1; stderr: fatal error: out of memory"},
		{&poold.WorkerExitError{PID: 8, ExitCode: 1, Stderr: []string{"poold worker: bad frame", "SIGQUIT: quit"}}, "worker pid 8 exited with code 1; stderr: poold worker: bad frame"},
		{&poold.WorkerExitError{PID: 9, ExitCode: -1, Signal: syscall.SIGKILL, Reason: "memory limit"}, "worker pid 9 killed by signal 9 (killed) [memory limit]"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("WorkerExitError %+v:\n got %s\nwant %s", c.e, got, c.want)
		}
	}

	lost := &poold.TaskError{Kind: poold.KindWorkerLost, Func: "f", PID: 7, Attempts: 2, Message: exit.Error(), Exit: exit}
	if got, want := lost.Error(), "task f: worker_lost (pid 7): "+exit.Error(); got != want {
		t.Errorf("TaskError:\n got %s\nwant %s", got, want)
	}
	wrapped := fmt.Errorf("wrapped: %w", lost)
	if !errors.Is(wrapped, poold.KindWorkerLost) || errors.Is(wrapped, poold.KindTimeout) || errors.Is(wrapped, poold.ErrPoolClosed) {
		t.Errorf("a wrapped worker_lost TaskError matches the wrong kinds")
	}
	var we *poold.WorkerExitError
	if !errors.As(wrapped, &we) || we != exit {
		t.Errorf("errors.As found %v, want the Exit", we)
	}
	if got := (&poold.TaskError{Kind: poold.KindTerminated, Func: "g"}).Error(); got != "task g: terminated" {
		t.Errorf("a TaskError without pid or message: %q", got)
	}
	if err := errors.Unwrap(&poold.TaskError{Kind: poold.KindPanic}); err != nil {
		t.Errorf("a TaskError without Exit unwraps to %#v, want nil", err)
	}
}

// commandError is a task error that chooses its own kind and says more
// than its message.
type commandError struct{ code int }

func (e *commandError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
func (e *commandError) Kind() string  { return "exit_status" }
func (e *commandError) Detail() any   { return map[string]int{"exit_code": e.code} }

var (
	openMissing = poold.Register(reg, "open_missing", func(context.Context, struct{}) (int, error) {
		_, err := os.Open("/nonexistent/poold")
		return 0, fmt.Errorf("reading the config: %w", err)
	})
	indexPanic = poold.Register(reg, "index_panic", func(_ context.Context, i int) (int, error) {
		return []int{1}[i], nil
	})
	failCommand = poold.Register(reg, "fail_command", func(_ context.Context, code int) (int, error) {
		return 0, &commandError{code}
	})
)

// A task's error keeps its Go type's name, a panic its value's, and an error
// with a Kind and a Detail method keeps both.
func TestTaskErrorKeepsItsType(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		_, err := openMissing.Apply(ctx, p, struct{}{})
		if te := taskErr(t, err); te.Kind != poold.KindError || te.Type != "*fs.PathError" {
			t.Errorf("a wrapped *fs.PathError: kind %s, type %q", te.Kind, te.Type)
		}
		_, err = indexPanic.Apply(ctx, p, 3)
		if te := taskErr(t, err); te.Kind != poold.KindPanic || te.Type != "runtime.boundsError" {
			t.Errorf("an index out of range: kind %s, type %q", te.Kind, te.Type)
		}
		_, err = failCommand.Apply(ctx, p, 7)
		te := taskErr(t, err)
		var detail map[string]int
		if te.Kind != "exit_status" || te.Type != "*poold_test.commandError" || te.Detail.Decode(&detail) != nil || detail["exit_code"] != 7 {
			t.Errorf("an error of its own kind: kind %s, type %q, detail %v", te.Kind, te.Type, detail)
		}
		if !errors.Is(err, poold.Kind("exit_status")) {
			t.Errorf("errors.Is(err, Kind(%q)) is false for %v", "exit_status", err)
		}
	})
}
