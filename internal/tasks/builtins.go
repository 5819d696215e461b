package tasks

import (
	"context"
	"math"
	"reflect"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// RegisterBuiltins registers the built-in tasks in r: the ones [Builtins]
// describes.
func RegisterBuiltins(r *Registry) {
	for _, b := range builtinTasks() {
		r.Register(b.doc.Name, b.fn)
	}
}

// builtinTasks are the built-in tasks with their descriptions, in the order
// the help lists them. Each argument type describes its task (see about).
func builtinTasks() []builtinTask {
	return []builtinTask{
		builtin("crash", crashTask),
		builtin("echo", echoTask),
		builtin("exec", execTask),
		builtin("pi", piTask),
		builtin("pow", powTask),
		builtin("primes", primesTask),
		builtin("print", printTask),
		builtin("sha256", sha256Task),
		builtin("sleep", sleepTask),
	}
}

type builtinTask struct {
	doc TaskDoc
	fn  Func
}

// documented is an argument type that says what its task is for and what
// it returns.
type documented interface {
	about() (summary, result string)
}

// builtin is the task fn, named name, described by its argument type.
func builtin[A documented, R any](name string, fn func(context.Context, A) (R, error)) builtinTask {
	var a A
	summary, result := a.about()
	return builtinTask{TaskDoc{Name: name, Args: reflect.TypeFor[A](), Summary: summary, Result: result}, Typed(fn)}
}

// SleepArgs are the arguments of "sleep".
type SleepArgs struct {
	Seconds float64 `json:"seconds" default:"0" doc:"how long, from 0 to about 292 years"`
}

func (SleepArgs) about() (string, string) {
	return "wait, then return",
		"a number, the seconds asked for (not the time measured)"
}

// sleepTask sleeps and returns the seconds it was asked to sleep (not the
// measured time, so that the result is reproducible).
func sleepTask(ctx context.Context, a SleepArgs) (float64, error) {
	if err := checkSeconds("seconds", a.Seconds); err != nil {
		return 0, err
	}
	return a.Seconds, sleep(ctx, a.Seconds)
}

// checkSeconds refuses a duration that is negative, not a number, or too
// long for a time.Duration.
func checkSeconds(field string, s float64) error {
	if !(s >= 0 && s*float64(time.Second) < math.MaxInt64) { // also catches NaN
		return BadArgs("field %q: want a number of seconds from 0 to about 292 years, got %v", field, s)
	}
	return nil
}

// sleep waits s seconds or until ctx is done, returning ctx.Err() then.
func sleep(ctx context.Context, s float64) error {
	if s == 0 {
		return ctx.Err()
	}
	t := time.NewTimer(time.Duration(s * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// EchoArgs are the arguments of "echo". Value is kept as raw msgpack, so it
// comes back byte for byte.
type EchoArgs struct {
	Value msgpack.RawMessage `json:"value" type:"any" default:"null" doc:"what to return"`
}

func (EchoArgs) about() (string, string) {
	return "return a value unchanged",
		"value, byte for byte as it arrived"
}

func echoTask(_ context.Context, a EchoArgs) (msgpack.RawMessage, error) {
	if len(a.Value) == 0 { // no value given: answer nil rather than nothing
		return msgpack.RawMessage{msgpcode.Nil}, nil
	}
	return a.Value, nil
}
