package poold_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poold/poold"
)

// Processes only: the first attempt exits its worker.
func TestRetries(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		poolOpts []poold.Option
		callOpts []poold.CallOption
		retried  bool
	}{
		{"Retries(2)", nil, []poold.CallOption{poold.Retries(2)}, true},
		{"WithRetries(2)", []poold.Option{poold.WithRetries(2)}, nil, true},
		{"none", nil, nil, false},
		{"Retries(0) overrides WithRetries(2)", []poold.Option{poold.WithRetries(2)}, []poold.CallOption{poold.Retries(0)}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			p := newPool(t, append([]poold.Option{poold.WithWorkers(1)}, c.poolOpts...)...)
			first := p.PIDs()[0]
			args := exitOnceArgs{Marker: filepath.Join(t.TempDir(), "marker"), Code: 3}
			r, err := exitOnce.Apply(ctx, p, args, c.callOpts...)
			if _, statErr := os.Stat(args.Marker); statErr != nil {
				t.Fatalf("the first attempt did not run: %v", statErr)
			}
			if !c.retried {
				if !errors.Is(err, poold.KindWorkerLost) || r.Attempts != 1 {
					t.Errorf("without retries: %v, attempts %d; want KindWorkerLost after 1", err, r.Attempts)
				}
				return
			}
			if err != nil {
				t.Fatalf("with retries: %v", err)
			}
			if r.Attempts != 2 {
				t.Errorf("Attempts %d, want 2", r.Attempts)
			}
			if r.PID == first || r.Value != r.PID {
				t.Errorf("the retry ran on pid %d (value %d); the first attempt's worker was %d", r.PID, r.Value, first)
			}
		})
	}
}

// Processes only: in threads mode such a task is abandoned, not killed
// (threads_test.go).
func TestTimeoutKillsATaskThatIgnoresIt(t *testing.T) {
	const limit, grace = 300 * time.Millisecond, 200 * time.Millisecond
	for _, c := range []struct {
		name     string
		poolOpts []poold.Option
		callOpts []poold.CallOption
	}{
		{"Timeout", nil, []poold.CallOption{poold.Timeout(limit)}},
		{"WithTimeout", []poold.Option{poold.WithTimeout(limit)}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := testCtx(t)
			p := newPool(t, append([]poold.Option{poold.WithWorkers(1), poold.WithKillGrace(grace)}, c.poolOpts...)...)
			first := p.PIDs()[0]
			start := time.Now()
			_, err := hang.Apply(ctx, p, struct{}{}, c.callOpts...)
			el := time.Since(start)
			if !errors.Is(err, poold.KindTimeout) {
				t.Fatalf("%v, want KindTimeout", err)
			}
			if el < limit || el > limit+grace+1500*time.Millisecond {
				t.Errorf("timed out after %v; limit %v, kill grace %v", el, limit, grace)
			}
			te := taskErr(t, err)
			we := exitErr(t, err)
			if te.PID != first || we.PID != first || we.Signal != syscall.SIGKILL {
				t.Errorf("task error pid %d, exit %+v; want pid %d killed by SIGKILL", te.PID, we, first)
			}
			// The pool serves more tasks, on a new worker.
			r, err := square.Apply(ctx, p, 11)
			if err != nil || r.Value != 121 || r.PID == first {
				t.Errorf("after the timeout: %v, %v on pid %d", r.Value, err, r.PID)
			}
			if c.callOpts == nil { // the pool's default applies to the next task too
				_, err := waitCtx.Apply(ctx, p, struct{}{})
				if !errors.Is(err, poold.KindTimeout) {
					t.Errorf("the pool's default timeout did not apply to a later task: %v", err)
				}
			}
		})
	}
}

func TestTimeoutCooperative(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		const limit, grace = 200 * time.Millisecond, 3 * time.Second
		p := m.pool(t, poold.WithWorkers(1), poold.WithKillGrace(grace))
		first := p.PIDs()[0]
		start := time.Now()
		_, err := waitCtx.Apply(ctx, p, struct{}{}, poold.Timeout(limit))
		el := time.Since(start)
		if !errors.Is(err, poold.KindTimeout) {
			t.Fatalf("%v, want KindTimeout", err)
		}
		if el < limit || el >= grace {
			t.Errorf("timed out after %v; limit %v, kill grace %v", el, limit, grace)
		}
		te := taskErr(t, err)
		if te.PID != first {
			t.Errorf("reported by pid %d, the worker is %d", te.PID, first)
		}
		var we *poold.WorkerExitError
		if errors.As(err, &we) {
			t.Errorf("a cooperative timeout killed the worker: %v", we)
		}
		if pids := p.PIDs(); !slices.Contains(pids, first) {
			t.Errorf("worker %d gone after a cooperative timeout: %v", first, pids)
		}
		if r, err := pid.Apply(ctx, p, struct{}{}); err != nil || r.Value != first {
			t.Errorf("next task: %v on %d; want it on %d", err, r.Value, first)
		}
		if s := p.Stats(); s.WorkersLost != 0 || s.WorkersStarted != 1 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestTimeoutRetried(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		const limit = 200 * time.Millisecond
		p := m.pool(t, poold.WithWorkers(1), poold.WithKillGrace(100*time.Millisecond))
		start := time.Now()
		r, err := stall.Apply(ctx, p, stallKey(t), poold.Timeout(limit), poold.Retries(1)) // ignores its context: killed, or abandoned
		el := time.Since(start)
		if !errors.Is(err, poold.KindTimeout) {
			t.Fatalf("%v, want KindTimeout", err)
		}
		if te := taskErr(t, err); r.Attempts != 2 || te.Attempts != 2 {
			t.Errorf("attempts: result %d, error %d; want 2", r.Attempts, te.Attempts)
		}
		if el < 2*limit {
			t.Errorf("two attempts of %v took %v", limit, el)
		}
	})
}

// A call's Timeout and Retries replace the pool's defaults: Timeout(0) runs
// without a limit, and a negative Timeout is refused.
func TestCallOverridesPoolDefaults(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1), poold.WithTimeout(50*time.Millisecond))
		if _, err := sleep.Apply(ctx, p, 300); !errors.Is(err, poold.KindTimeout) {
			t.Fatalf("300 ms under the pool's 50 ms limit: %v, want KindTimeout", err)
		}
		if _, err := sleep.Apply(ctx, p, 300, poold.Timeout(0)); err != nil {
			t.Errorf("300 ms with Timeout(0): %v, want no limit", err)
		}
		if _, err := sleep.Apply(ctx, p, 1, poold.Timeout(-time.Second)); err == nil || !strings.Contains(err.Error(), "negative") {
			t.Errorf("a negative Timeout: %v, want a refusal", err)
		}
	})
}

// RetryOn names the kinds a task is retried for: a task's own error is
// retried only when its kind is named; WithRetryOn sets the pool's default.
func TestRetryOnKinds(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1), poold.WithRetries(2))
		r, err := fail.Apply(ctx, p, "no")
		if !errors.Is(err, poold.KindError) || r.Attempts != 1 {
			t.Errorf("a task error by default: %v after %d attempts, want 1", err, r.Attempts)
		}
		r, err = fail.Apply(ctx, p, "no", poold.RetryOn(poold.KindError))
		if !errors.Is(err, poold.KindError) || r.Attempts != 3 {
			t.Errorf("with RetryOn(KindError): %v after %d attempts, want 3", err, r.Attempts)
		}
		if _, err := fail.Apply(ctx, p, "no", poold.RetryOn(poold.KindTerminated)); err == nil || !strings.Contains(err.Error(), "cannot be retried") {
			t.Errorf("RetryOn(KindTerminated): %v, want a refusal", err)
		}
		q := m.pool(t, poold.WithWorkers(1), poold.WithRetries(1), poold.WithRetryOn(poold.KindError))
		if r, _ := fail.Apply(ctx, q, "no"); r.Attempts != 2 {
			t.Errorf("WithRetryOn(KindError), 1 retry: %d attempts, want 2", r.Attempts)
		}
	})
}
