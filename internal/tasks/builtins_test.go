package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

var builtins = sync.OnceValue(func() *Registry {
	r := NewRegistry()
	RegisterBuiltins(r)
	return r
})

// jsonArgs is a task file's "args": encoding/json turns every number into a
// float64, the hardest case for integer arguments.
type jsonArgs string

// call runs task name with args, a Go value or jsonArgs.
func call(ctx context.Context, t *testing.T, name string, args any) (msgpack.RawMessage, error) {
	t.Helper()
	fn, ok := builtins().Lookup(name)
	if !ok {
		t.Fatalf("task %q not registered", name)
	}
	if j, ok := args.(jsonArgs); ok {
		var v any
		if err := json.Unmarshal([]byte(j), &v); err != nil {
			t.Fatal(err)
		}
		args = v
	}
	return fn(ctx, mustMarshal(t, args), nil)
}

type taskTest struct {
	name string
	task string
	args any    // a Go value or jsonArgs
	want any    // the result, decoded into a value of this type
	err  string // substring of the error; "" for success
	bad  bool   // the error must wrap ErrBadArgs
}

func runTaskTests(t *testing.T, tests []taskTest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.task+"/"+tt.name, func(t *testing.T) {
			t.Parallel()
			raw, err := call(context.Background(), t, tt.task, tt.args)
			if tt.err != "" || tt.bad {
				if err == nil || !strings.Contains(err.Error(), tt.err) || errors.Is(err, ErrBadArgs) != tt.bad {
					t.Fatalf("got error %v, want one containing %q, bad args: %v", err, tt.err, tt.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := reflect.New(reflect.TypeOf(tt.want))
			if err := Unmarshal(raw, got.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Elem().Interface(), tt.want) {
				t.Fatalf("got %#v, want %#v", got.Elem().Interface(), tt.want)
			}
		})
	}
}

func TestRegisterBuiltins(t *testing.T) {
	want := []string{"crash", "echo", "exec", "pi", "pow", "primes", "print", "sha256", "sleep"}
	if got := builtins().Names(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

const pi100 = "3.1415926535897932384626433832795028841971693993751058209749445923078164062862089986280348253421170679"

func TestTasks(t *testing.T) {
	dir := t.TempDir()
	abc := filepath.Join(dir, "abc")
	if err := os.WriteFile(abc, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	const sha256abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	runTaskTests(t, []taskTest{
		{name: "float", task: "sleep", args: jsonArgs(`{"seconds":0.01}`), want: 0.01},
		{name: "int", task: "sleep", args: map[string]int{"seconds": 0}, want: 0.0},
		{name: "string", task: "sleep", args: jsonArgs(`{"seconds":"1"}`),
			err: `bad arguments: field "seconds": want a number, got string`, bad: true},
		{name: "negative", task: "sleep", args: jsonArgs(`{"seconds":-1}`), err: `field "seconds"`, bad: true},
		{name: "huge", task: "sleep", args: jsonArgs(`{"seconds":1e300}`), err: `field "seconds"`, bad: true},
		{name: "misspelt", task: "sleep", args: jsonArgs(`{"secs":1}`),
			err: `bad arguments: unknown field "secs"; known fields: seconds`, bad: true},
		{name: "array", task: "sleep", args: jsonArgs(`[1]`), err: "want a map of named arguments, got array", bad: true},

		{name: "json", task: "pow", args: jsonArgs(`{"base":8,"exp":20}`), want: "1152921504606846976"},
		{name: "int", task: "pow", args: map[string]int{"base": 2, "exp": 100}, want: "1267650600228229401496703205376"},
		{name: "negative base", task: "pow", args: map[string]int{"base": -3, "exp": 3}, want: "-27"},
		{name: "zero", task: "pow", args: map[string]int{"base": 0, "exp": 0}, want: "1"},
		{name: "sleep", task: "pow", args: jsonArgs(`{"base":7,"exp":2,"sleep":0.01}`), want: "49"},
		{name: "big one", task: "pow", args: map[string]int{"base": -1, "exp": 1 << 60}, want: "1"},
		{name: "negative exp", task: "pow", args: map[string]int{"base": 2, "exp": -1}, err: `field "exp"`, bad: true},
		{name: "fraction", task: "pow", args: jsonArgs(`{"base":8.5,"exp":2}`),
			err: `field "base": want an integer, got float 8.5`, bad: true},
		{name: "too big", task: "pow", args: map[string]int{"base": 10, "exp": 10_000_000}, err: "bits", bad: true},

		{name: "map", task: "echo", args: jsonArgs(`{"value":{"a":[1,"x",null,true,2.5]}}`),
			want: map[string]any{"a": []any{1.0, "x", nil, true, 2.5}}},
		{name: "int", task: "echo", args: map[string]any{"value": -7}, want: int8(-7)},
		{name: "absent", task: "echo", args: map[string]any{}, want: (*int)(nil)}, // nil
		{name: "extra", task: "echo", args: map[string]any{"value": 1, "x": 2}, err: `unknown field "x"`, bad: true},

		{name: "100", task: "primes", args: jsonArgs(`{"n":100}`), want: 25},
		{name: "1e5", task: "primes", args: jsonArgs(`{"n":1e5}`), want: 9592},
		{name: "range", task: "primes", args: map[string]int{"from": 5, "n": 10}, want: 2},
		{name: "empty range", task: "primes", args: map[string]int{"from": 11, "n": 10}, want: 0},
		{name: "two", task: "primes", args: map[string]int{"n": 2}, want: 1},
		{name: "prime", task: "primes", args: map[string]int{"from": 1_000_003, "n": 1_000_003}, want: 1},
		{name: "negative", task: "primes", args: map[string]int{"n": -1}, err: `"n"`, bad: true},
		{name: "string", task: "primes", args: jsonArgs(`{"n":"10"}`), err: `field "n": want an integer, got string`, bad: true},

		{name: "0", task: "pi", args: map[string]int{"digits": 0}, want: "3"},
		{name: "truncated", task: "pi", args: map[string]int{"digits": 4}, want: "3.1415"}, // rounded: 3.1416
		{name: "6", task: "pi", args: jsonArgs(`{"digits":6}`), want: "3.141592"},
		{name: "100", task: "pi", args: map[string]int{"digits": 100}, want: pi100},
		{name: "negative", task: "pi", args: map[string]int{"digits": -1}, err: `field "digits"`, bad: true},
		{name: "too many", task: "pi", args: map[string]int{"digits": maxPiDigits + 1}, err: `field "digits"`, bad: true},

		{name: "data", task: "sha256", args: map[string]string{"data": "abc"}, want: sha256abc},
		{name: "empty data", task: "sha256", args: map[string]string{"data": ""},
			want: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{name: "path", task: "sha256", args: map[string]string{"path": abc}, want: sha256abc},
		{name: "both", task: "sha256", args: map[string]string{"path": abc, "data": "abc"}, err: "exactly one", bad: true},
		{name: "neither", task: "sha256", args: map[string]string{}, err: "exactly one", bad: true},
		{name: "missing file", task: "sha256", args: map[string]string{"path": filepath.Join(dir, "nope")}, err: "no such file"},

		{name: "echo", task: "exec", args: jsonArgs(`{"argv":["echo","hi"]}`), want: ExecResult{Stdout: "hi\n"}},
		{name: "stdin", task: "exec", args: jsonArgs(`{"argv":["cat"],"stdin":"x y"}`), want: ExecResult{Stdout: "x y"}},
		{name: "dir", task: "exec", args: map[string]any{"argv": []string{"ls"}, "dir": dir}, want: ExecResult{Stdout: "abc\n"}},
		{name: "empty argv", task: "exec", args: jsonArgs(`{"argv":[]}`), err: `field "argv"`, bad: true},
		{name: "no argv", task: "exec", args: jsonArgs(`{}`), err: `field "argv"`, bad: true},
		{name: "bad argv", task: "exec", args: jsonArgs(`{"argv":["echo",1]}`),
			err: `field "argv": element 1: want a string, got float 1`, bad: true},
		{name: "not found", task: "exec", args: jsonArgs(`{"argv":["/nonexistent/program"]}`), err: "no such file"},

		{name: "unknown mode", task: "crash", args: map[string]string{"mode": "explode"},
			err: `field "mode": want one of abort, exit, fatal, hang, kill, oom, panic, protocol, segfault, got "explode"`, bad: true},
		{name: "no mode", task: "crash", args: map[string]string{}, err: `field "mode"`, bad: true},
		{name: "no stream", task: "crash", args: map[string]string{"mode": "protocol"}, err: "protocol stream", bad: true},
		{name: "bad code", task: "crash", args: map[string]any{"mode": "exit", "code": 256}, err: `field "code"`, bad: true},
		{name: "code for kill", task: "crash", args: map[string]any{"mode": "kill", "code": 1}, err: `field "code"`, bad: true},
	})
}

func TestEchoKeepsBytes(t *testing.T) {
	// A float32, which a decode and re-encode would turn into a float64.
	value := msgpack.RawMessage{0xca, 0x3f, 0xc0, 0x00, 0x00} // 1.5
	args := append(msgpack.RawMessage{0x81, 0xa5, 'v', 'a', 'l', 'u', 'e'}, value...)
	fn, _ := builtins().Lookup("echo")
	got, err := fn(context.Background(), args, nil)
	if err != nil || string(got) != string(value) {
		t.Fatalf("got % x, %v; want % x", got, err, value)
	}
}

// TestPiDigits checks pi against a reference (10000 digits from mpmath),
// and that fewer digits are always a prefix, around the six 9s at decimal
// 762 in particular, where truncation is the most fragile.
func TestPiDigits(t *testing.T) {
	long := piString(t, 10000)
	sum := sha256.Sum256([]byte(long))
	if got := hex.EncodeToString(sum[:]); got != "452304d0e15d9e9fd9b63024212bb571de54b9b9f0aa050481f90530ef0b5c5d" {
		t.Fatalf("10000 digits of pi: sha256 %s, want 452304d0…", got)
	}
	for _, d := range []int{1, 2, 50, 760, 761, 762, 763, 766, 767, 768, 1000} {
		if got := piString(t, d); got != long[:d+2] {
			t.Errorf("%d digits: got …%s, want …%s", d, got[max(0, len(got)-10):], long[d-8:d+2])
		}
	}
}

func piString(t *testing.T, digits int) string {
	t.Helper()
	s, err := piTask(context.Background(), PiArgs{Digits: digits})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPrint swaps os.Stdout and os.Stderr, so it must not run in parallel.
func TestPrint(t *testing.T) {
	tests := []struct {
		args       any
		want       string // written to each of stdout and stderr
		wantErr    string
		wantReturn int
	}{
		{args: jsonArgs(`{"text":"hi","times":3}`), want: "hi\nhi\nhi\n", wantReturn: 9},
		{args: jsonArgs(`{"text":"a line\n"}`), want: "a line\n", wantReturn: 7},
		{args: jsonArgs(`{"text":"x","times":0}`), want: "", wantReturn: 0},
		{args: jsonArgs(`{"text":"x","times":-1}`), wantErr: `bad arguments: field "times"`},
		{args: jsonArgs(`{"text":1}`), wantErr: `bad arguments: field "text": want a string, got float 1`},
	}
	for _, tt := range tests {
		var raw msgpack.RawMessage
		var err error
		stdout, stderr := capture(t, func() { raw, err = call(context.Background(), t, "print", tt.args) })
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: got error %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		var n int
		if err != nil || Unmarshal(raw, &n) != nil || n != tt.wantReturn || stdout != tt.want || stderr != tt.want {
			t.Errorf("%s: got %d, %v, stdout %q, stderr %q; want %d, stdout and stderr %q",
				tt.args, n, err, stdout, stderr, tt.wantReturn, tt.want)
		}
	}
}

// capture runs f with os.Stdout and os.Stderr sent to pipes, and returns
// what f wrote to each.
func capture(t *testing.T, f func()) (stdout, stderr string) {
	t.Helper()
	read := func(w **os.File) (restore func() string) {
		r, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		old := *w
		*w = pw
		done := make(chan string)
		go func() {
			b, _ := io.ReadAll(r)
			r.Close()
			done <- string(b)
		}()
		return func() string {
			*w = old
			pw.Close()
			return <-done
		}
	}
	restoreOut, restoreErr := read(&os.Stdout), read(&os.Stderr)
	defer func() { stdout, stderr = restoreOut(), restoreErr() }()
	f()
	return
}

// TestCancel checks that the long-running tasks stop soon after their
// context is cancelled, returning its error.
func TestCancel(t *testing.T) {
	tests := []struct {
		task string
		args any
	}{
		{"sleep", map[string]int{"seconds": 60}},
		{"pow", map[string]int{"base": 2, "exp": 2, "sleep": 60}},
		{"primes", map[string]int64{"n": 1 << 50}},
		{"primes", map[string]int64{"from": 1<<61 - 1, "n": 1<<61 - 1}}, // one huge prime: 10⁹ divisions
		{"pi", map[string]int{"digits": maxPiDigits}},
		{"exec", map[string][]string{"argv": {"sleep", "60"}}},
	}
	for _, tt := range tests {
		t.Run(tt.task, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			start := time.Now()
			_, err := call(ctx, t, tt.task, tt.args)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got error %v, want context.Canceled", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %v to notice cancellation", d)
			}
		})
	}
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if _, err := call(ctx, t, "sleep", jsonArgs(`{"seconds":60}`)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got error %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestCrashPanic(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "deliberate panic") {
			t.Fatalf("recovered %v, want the deliberate panic", r)
		}
	}()
	call(context.Background(), t, "crash", map[string]string{"mode": "panic"})
	t.Fatal("crash mode panic returned")
}

// TestExecFails: a program that exits with a status other than 0, or is
// killed by a signal, fails the task with an *ExitError of kind
// exit_status, which keeps the code or the signal and both outputs as its
// detail.
func TestExecFails(t *testing.T) {
	for _, tt := range []struct {
		name string
		argv []string
		want ExitDetail
		msg  string
	}{
		{name: "exit code", argv: []string{"sh", "-c", "echo out; echo first >&2; echo last >&2; exit 3"},
			want: ExitDetail{ExitCode: 3, Stdout: "out\n", Stderr: "first\nlast\n"}, msg: "exit status 3: last"},
		{name: "quiet", argv: []string{"false"}, want: ExitDetail{ExitCode: 1}, msg: "exit status 1"},
		{name: "signal", argv: []string{"sh", "-c", "echo dying >&2; kill -KILL $$"},
			want: ExitDetail{ExitCode: -1, Signal: "SIGKILL", Stderr: "dying\n"}, msg: "killed by signal SIGKILL: dying"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := call(context.Background(), t, "exec", map[string]any{"argv": tt.argv})
			var ee *ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("got error %v (%T), want an *ExitError", err, err)
			}
			if ee.ExitDetail != tt.want || err.Error() != tt.msg {
				t.Errorf("got %+v, %q; want %+v, %q", ee.ExitDetail, err.Error(), tt.want, tt.msg)
			}
			// What the worker reads from it: the kind, and the detail as
			// a msgpack map of the JSON names.
			if k := ee.Kind(); k != "exit_status" {
				t.Errorf("kind %q, want exit_status", k)
			}
			raw, err := Marshal(ee.Detail())
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			if m["stdout"] != tt.want.Stdout || m["stderr"] != tt.want.Stderr || fmt.Sprint(m["exit_code"]) != fmt.Sprint(tt.want.ExitCode) ||
				(tt.want.Signal != "") != (m["signal"] != nil) {
				t.Errorf("detail %v, want the fields of %+v", m, tt.want)
			}
		})
	}
}

func TestCappedBuffer(t *testing.T) {
	for _, tt := range []struct {
		writes []string
		want   string
	}{
		{writes: nil, want: ""},
		{writes: []string{"abc"}, want: "abc"},
		{writes: []string{"abcd", "efgh"}, want: "abcdefgh"},
		{writes: []string{"abcdefgh"}, want: "abcdefgh"},
		{writes: []string{"abcdefghi"}, want: "abcd\n[poold: exec: 1 of 9 bytes cut here]\nfghi"},
		{writes: []string{"ab", "cdef", "g", "hij", "klmnop", "q"}, want: "abcd\n[poold: exec: 9 of 17 bytes cut here]\nnopq"},
		{writes: []string{"abcd", strings.Repeat("x", 100), "1234"}, want: "abcd\n[poold: exec: 100 of 108 bytes cut here]\n1234"},
		{writes: []string{strings.Repeat("y", 50), "1", "2", "3", "4", "5", "6", "7", "8", "9"},
			want: "yyyy\n[poold: exec: 51 of 59 bytes cut here]\n6789"},
	} {
		b := newCappedBuffer(8)
		for _, w := range tt.writes {
			if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", w, n, err)
			}
		}
		if got := b.String(); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.writes, got, tt.want)
		}
		if len(b.tail) > 16 {
			t.Errorf("%q: the tail grew to %d bytes", tt.writes, len(b.tail))
		}
	}
}
