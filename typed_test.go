package poold_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/poold/poold"
)

func TestTypedStructs(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))

		in := shape{Label: "triangle", Points: []point{{1, 2}, {3, 4}, {5, 6}}}
		r, err := summarize.Apply(ctx, p, in)
		if err != nil {
			t.Fatal(err)
		}
		want := summary{Label: "triangle", Total: point{9, 12}, Count: 3, PID: r.PID}
		if r.Value != want {
			t.Errorf("summarize = %+v, want %+v", r.Value, want)
		}
		if r.PID == 0 || (r.PID == os.Getpid()) != m.threads {
			t.Errorf("PID %d (this process %d; threads mode %v)", r.PID, os.Getpid(), m.threads)
		}

		// On the wire, fields are named by their json tags: an untyped caller
		// can speak them, and read them.
		raw, err := p.Apply(ctx, "summarize", map[string]any{
			"label":  "segment",
			"points": []any{map[string]any{"x": 1, "y": 1}, map[string]any{"x": 2, "y": 3}},
		})
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := raw.Value.Decode(&fields); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"label", "total", "count", "pid"} {
			if _, ok := fields[k]; !ok {
				t.Errorf("result %v has no field %q", fields, k)
			}
		}
		var s summary
		if err := raw.Value.Decode(&s); err != nil {
			t.Fatal(err)
		}
		if s.Label != "segment" || s.Total != (point{3, 4}) || s.Count != 2 {
			t.Errorf("decoded %+v", s)
		}

		// A misspelt argument is not silently ignored.
		_, err = p.Apply(ctx, "summarize", map[string]any{"lable": "x"})
		if !errors.Is(err, poold.KindBadArgs) {
			t.Errorf("misspelt field: %v, want KindBadArgs", err)
		}
	})
}

func TestResultNotDecodable(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		// The worker returns a string; this handle wants an int.
		r, err := resultMismatch.Apply(ctx, p, struct{}{})
		if !errors.Is(err, poold.KindEncode) {
			t.Fatalf("string result into an int: %v, want KindEncode", err)
		}
		te := taskErr(t, err)
		if te.Kind != poold.KindEncode || !strings.Contains(te.Message, "decoding the result") {
			t.Errorf("TaskError %+v", te)
		}
		if r.PID == 0 || te.PID != r.PID {
			t.Errorf("result PID %d, error PID %d; want the worker's", r.PID, te.PID)
		}
		if r, err := square.Apply(ctx, p, 3); err != nil || r.Value != 9 {
			t.Errorf("afterwards: %v, %v", r.Value, err)
		}
	})
}

func TestResultNotEncodable(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(1))
		before := p.PIDs()
		_, err := unencodable.Apply(ctx, p, struct{}{})
		// errors.go: KindEncode, the arguments or the result could not be
		// encoded or decoded.
		if !errors.Is(err, poold.KindEncode) {
			t.Errorf("a result msgpack cannot encode: %v, want KindEncode", err)
		}
		if r, err := square.Apply(ctx, p, 3); err != nil || r.Value != 9 || r.PID != before[0] {
			t.Errorf("afterwards: %v, %v on pid %d; want 9 on pid %d", r.Value, err, r.PID, before[0])
		}
	})
}

func TestArgsNotEncodable(t *testing.T) {
	t.Parallel()
	inModes(t, func(t *testing.T, m mode) {
		ctx := testCtx(t)
		p := m.pool(t, poold.WithWorkers(2))

		_, err := echo.Apply(ctx, p, make(chan int))
		if !errors.Is(err, poold.KindEncode) {
			t.Fatalf("echo(chan): %v, want KindEncode", err)
		}
		if te := taskErr(t, err); te.Kind != poold.KindEncode {
			t.Errorf("kind %q", te.Kind)
		}

		args := []any{1, make(chan int), 3, func() {}, 5}
		rs, err := p.Map(ctx, "echo", args, poold.ChunkSize(2))
		if len(rs) != len(args) {
			t.Fatalf("%d results for %d arguments (err %v)", len(rs), len(args), err)
		}
		if err != rs[1].Err {
			t.Errorf("Map's error %v; want the first failure in input order, %v", err, rs[1].Err)
		}
		for i, r := range rs {
			if i == 1 || i == 3 {
				if te := taskErr(t, r.Err); te.Kind != poold.KindEncode || r.Index != i {
					t.Errorf("task %d: %v (index %d), want kind encode", i, r.Err, r.Index)
				}
				continue
			}
			if r.Err != nil || decodeInt(t, r.Value) != args[i] {
				t.Errorf("task %d: %v, %v", i, r.Value, r.Err)
			}
		}
	})
}
