// Package tasks holds the task registry and the built-in tasks.
//
// A task is a function from one msgpack value to one msgpack value. The
// registry maps names to such functions; [Typed] adapts an ordinary Go
// function of a typed argument and result. This package knows nothing of
// pipes or processes: the worker's serve loop looks a task up here and runs it.
package tasks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
)

// Func runs one task. args is one msgpack value (nil when the caller gave
// none); it appends the result, one msgpack value, to dst and returns the
// extended slice (dst unchanged on an error), so that the results of a chunk
// share one buffer.
type Func func(ctx context.Context, args msgpack.RawMessage, dst []byte) ([]byte, error)

// ErrBadArgs marks an error caused by the task's arguments rather than by
// the task: the worker reports it with kind "bad_args".
var ErrBadArgs = errors.New("bad arguments")

// ErrEncodeResult marks a result that could not be encoded: the worker
// reports it with kind "encode".
var ErrEncodeResult = errors.New("encoding the result")

// BadArgs returns an error wrapping ErrBadArgs.
func BadArgs(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadArgs, fmt.Sprintf(format, a...))
}

// Registry maps task names to functions. Register everything before the
// registry is shared; lookups are then safe from any goroutine.
type Registry struct {
	funcs map[string]Func
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{funcs: map[string]Func{}} }

// Register adds fn under name. An empty name, a nil fn or a name registered
// twice is a programming error and panics, like http.ServeMux does.
func (r *Registry) Register(name string, fn Func) {
	switch {
	case name == "":
		panic("tasks: Register with an empty name")
	case fn == nil:
		panic("tasks: Register " + name + " with a nil function")
	case r.funcs[name] != nil:
		panic("tasks: " + name + " registered twice")
	}
	r.funcs[name] = fn
}

// Lookup returns the function registered under name.
func (r *Registry) Lookup(name string) (Func, bool) {
	fn, ok := r.funcs[name]
	return fn, ok
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string { return slices.Sorted(maps.Keys(r.funcs)) }

// Typed adapts fn to a Func: the argument is decoded into an A, the result
// encoded from an R. A decoding failure wraps ErrBadArgs.
func Typed[A, R any](fn func(context.Context, A) (R, error)) Func {
	return func(ctx context.Context, raw msgpack.RawMessage, dst []byte) ([]byte, error) {
		var a A
		if err := DecodeArgs(raw, &a); err != nil {
			return dst, err
		}
		r, err := fn(ctx, a)
		if err != nil {
			return dst, err
		}
		if out, ok := appendScalarAt(dst, &r); ok {
			return out, nil
		}
		out, err := AppendMarshal(dst, r)
		if err != nil {
			return dst, fmt.Errorf("%w: %v", ErrEncodeResult, err)
		}
		return out, nil
	}
}
