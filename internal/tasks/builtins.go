package tasks

import (
	"context"
	"math"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// RegisterBuiltins registers the built-in tasks in r:
//
//	sleep   {seconds}              → seconds
//	echo    {value}                → value, unchanged
//	pow     {base, exp, sleep}     → base**exp as a decimal string
//	primes  {n, from}              → how many primes lie in [from, n]
//	pi      {digits}               → "3.14159…" with that many decimals
//	sha256  {data | path}          → lowercase hex digest
//	exec    {argv, stdin, dir}     → {exit_code, stdout, stderr, signal}
//	print   {text, times}          → bytes written to stdout
//	crash   {mode, code}           → never returns normally (see CrashArgs)
func RegisterBuiltins(r *Registry) {
	r.Register("sleep", Typed(sleepTask))
	r.Register("echo", Typed(echoTask))
	r.Register("pow", Typed(powTask))
	r.Register("primes", Typed(primesTask))
	r.Register("pi", Typed(piTask))
	r.Register("sha256", Typed(sha256Task))
	r.Register("exec", Typed(execTask))
	r.Register("print", Typed(printTask))
	r.Register("crash", Typed(crashTask))
}

// SleepArgs are the arguments of "sleep".
type SleepArgs struct {
	Seconds float64 `json:"seconds"`
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
	Value msgpack.RawMessage `json:"value"`
}

func echoTask(_ context.Context, a EchoArgs) (msgpack.RawMessage, error) {
	if len(a.Value) == 0 { // no value given: answer nil rather than nothing
		return msgpack.RawMessage{msgpcode.Nil}, nil
	}
	return a.Value, nil
}
