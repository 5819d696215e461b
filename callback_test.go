package poold_test

import (
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/poold/poold"
)

// A callback that panics does not take the process down: the panic is
// logged at error level with its value and stack, and becomes its result's
// error, a *CallbackError; exactly one callback still fires per task, and
// the other callbacks and results are unaffected.
func TestCallbackPanic(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		var buf syncBuffer
		p := m.pool(t, poold.WithWorkers(2), poold.WithLogger(jsonLogger(&buf)))

		var successes, failures atomic.Int32
		panicky := []poold.CallOption{
			poold.OnSuccess(func(r poold.Result[int]) {
				successes.Add(1)
				if r.Value == 9 {
					panic("no nines")
				}
			}),
			poold.OnError(func(err error) {
				failures.Add(1)
				panic(errors.New("no failures"))
			}),
		}
		callbackErr := func(what string, err error) *poold.CallbackError {
			t.Helper()
			var ce *poold.CallbackError
			if !errors.Is(err, poold.ErrCallbackPanic) || !errors.As(err, &ce) {
				t.Fatalf("%s: error %v (%T), want a *CallbackError matching ErrCallbackPanic", what, err, err)
			}
			if !strings.Contains(ce.Stack, "TestCallbackPanic") {
				t.Errorf("%s: the stack does not name the callback:\n%s", what, ce.Stack)
			}
			return ce
		}

		// A success whose OnSuccess panics keeps its value; its error says so.
		a, err := square.ApplyAsync(p, 3, panicky...)
		if err != nil {
			t.Fatal(err)
		}
		r, err := a.Get(ctx)
		ce := callbackErr("OnSuccess", err)
		if r.Value != 9 || r.Err != err {
			t.Errorf("OnSuccess panicked: value %d, Result.Err %v; want 9 and the returned error", r.Value, r.Err)
		}
		if ce.Value != "no nines" || ce.Callback != "OnSuccess" || ce.Func != "square" || ce.Err != nil || errors.Unwrap(err) != nil {
			t.Errorf("CallbackError %+v; want the panic value, OnSuccess, square, no task error", ce)
		}
		if !strings.Contains(err.Error(), "no nines") || !strings.Contains(err.Error(), "OnSuccess") {
			t.Errorf("the error %q does not say which callback panicked, and with what", err)
		}
		if ok, err := a.Successful(); ok || err != nil {
			t.Errorf("Successful = %v, %v; want false, nil", ok, err)
		}
		if s, f := successes.Load(), failures.Load(); s != 1 || f != 0 {
			t.Errorf("after OnSuccess panicked: %d success and %d error callbacks; want 1 and 0", s, f)
		}

		// A failure whose OnError panics: the error unwraps to the task's.
		b, err := fail.ApplyAsync(p, "nope", panicky...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Get(ctx)
		ce = callbackErr("OnError", err)
		if !errors.Is(err, poold.KindError) || errors.Unwrap(err) != ce.Err || taskErr(t, ce.Err).Message != "nope" {
			t.Errorf("OnError panicked: error %v unwraps to %v; want the task's error, kind error", err, errors.Unwrap(err))
		}
		if v, ok := ce.Value.(error); !ok || v.Error() != "no failures" || ce.Callback != "OnError" {
			t.Errorf("CallbackError %+v; want the panic value and OnError", ce)
		}
		if s, f := successes.Load(), failures.Load(); s != 1 || f != 1 {
			t.Errorf("after OnError panicked: %d success and %d error callbacks in all; want 1 and 1", s, f)
		}

		// The callbacks go on running, and a result whose callback did not
		// panic is as it was.
		c, err := square.ApplyAsync(p, 4, panicky...)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := c.Get(ctx); err != nil || r.Value != 16 || successes.Load() != 2 {
			t.Errorf("a later task: %d, %v, %d success callbacks; want 16, nil, 2", r.Value, err, successes.Load())
		}

		// In a Map, only the item whose callback panicked has that error.
		rs, err := square.Map(ctx, p, []int{1, 2, 3, 4}, append(panicky, poold.ChunkSize(2))...)
		callbackErr("Map", err)
		for i, r := range rs {
			if r.Value != (i+1)*(i+1) || (i == 2) != (r.Err != nil) || (i == 2 && r.Err != err) {
				t.Errorf("Map result %d: %d, %v", i, r.Value, r.Err)
			}
		}
		// In an IMap, too.
		var errs []error
		var vals []int
		for r, err := range square.IMap(ctx, p, slices.Values([]int{3, 5}), panicky...) {
			errs, vals = append(errs, err), append(vals, r.Value)
		}
		if len(errs) != 2 || errs[1] != nil || !slices.Equal(vals, []int{9, 25}) {
			t.Fatalf("IMap yielded %v, %v; want a callback error for 9, then 25", vals, errs)
		}
		callbackErr("IMap", errs[0])

		// Each panic is logged at error level with its value and stack.
		var logged []string
		for line := range strings.Lines(buf.String()) {
			if strings.Contains(line, `"@level":"error"`) && strings.Contains(line, "TestCallbackPanic") {
				logged = append(logged, line)
			}
		}
		if len(logged) != 4 || !strings.Contains(logged[0], "no nines") || !strings.Contains(logged[1], "no failures") {
			t.Errorf("%d error lines with a stack in the log, want 4, the first two naming the panics:\n%s", len(logged), buf.String())
		}
	})
}
