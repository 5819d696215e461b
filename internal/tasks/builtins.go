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
	for _, b := range builtinTasks {
		r.Register(b.doc.Name, b.fn)
	}
}

// builtinTasks are the built-in tasks with their descriptions, in the order
// the help lists them.
var builtinTasks = []struct {
	doc TaskDoc
	fn  Func
}{
	{TaskDoc{Name: "crash", Args: reflect.TypeFor[CrashArgs](),
		Summary: "misbehave on purpose, to see how the pool copes",
		Result: "none: panic fails the task with kind panic; the other modes end or " +
			"hang the worker (kind worker_lost, protocol; hang and oom need a time " +
			"or memory limit: kind timeout, memory_limit)"}, Typed(crashTask)},
	{TaskDoc{Name: "echo", Args: reflect.TypeFor[EchoArgs](),
		Summary: "return a value unchanged",
		Result:  "value, byte for byte as it arrived"}, Typed(echoTask)},
	{TaskDoc{Name: "exec", Args: reflect.TypeFor[ExecArgs](),
		Summary: "run a program",
		Result: "{exit_code: 0, stdout, stderr} when it exits with status 0. Any other " +
			"end fails with kind exit_status, whose detail is {exit_code (-1 for a " +
			"signal), signal (\"SIGKILL\", ...), stdout, stderr}. Of each output the " +
			"first and last 2 MiB are kept, with a line saying how much was cut"}, Typed(execTask)},
	{TaskDoc{Name: "pi", Args: reflect.TypeFor[PiArgs](),
		Summary: "compute π",
		Result:  "a string, π truncated to digits decimals: \"3.14159\" for 5, \"3\" for 0"}, Typed(piTask)},
	{TaskDoc{Name: "pow", Args: reflect.TypeFor[PowArgs](),
		Summary: "sleep, then compute base**exp exactly: the classic demo task",
		Result:  "a string, base**exp in decimal"}, Typed(powTask)},
	{TaskDoc{Name: "primes", Args: reflect.TypeFor[PrimesArgs](),
		Summary: "count primes by trial division: the CPU-bound benchmark task",
		Result:  "an integer, how many primes p satisfy from ≤ p ≤ n"}, Typed(primesTask)},
	{TaskDoc{Name: "print", Args: reflect.TypeFor[PrintArgs](),
		Summary: "write a line to stdout and to stderr, to see what is captured",
		Result:  "an integer, the bytes written to stdout (the output comes with the result)"}, Typed(printTask)},
	{TaskDoc{Name: "sha256", Args: reflect.TypeFor[SHA256Args](),
		Summary: "hash a string or a file",
		Result:  "a string, the SHA-256 digest in lowercase hex"}, Typed(sha256Task)},
	{TaskDoc{Name: "sleep", Args: reflect.TypeFor[SleepArgs](),
		Summary: "wait, then return",
		Result:  "a number, the seconds asked for (not the time measured)"}, Typed(sleepTask)},
}

// SleepArgs are the arguments of "sleep".
type SleepArgs struct {
	Seconds float64 `json:"seconds" default:"0" doc:"how long, from 0 to about 292 years"`
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

func echoTask(_ context.Context, a EchoArgs) (msgpack.RawMessage, error) {
	if len(a.Value) == 0 { // no value given: answer nil rather than nothing
		return msgpack.RawMessage{msgpcode.Nil}, nil
	}
	return a.Value, nil
}
