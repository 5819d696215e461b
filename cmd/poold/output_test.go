package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/poold/poold"
)

func raw(t *testing.T, v any) poold.Raw {
	t.Helper()
	// The root package has no public encoder; workers encode with
	// msgpack, so the test does too.
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestResultJSON(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"string", "1152921504606846976", `"1152921504606846976"`},
		{"int", 42, `42`},
		{"float", 3.25, `3.25`},
		{"nil", nil, `null`},
		{"list", []any{1, "a", true}, `[1,"a",true]`},
		{"map", map[string]any{"k": []any{1}}, `{"k":[1]}`},
		{"no HTML escaping", "<a&b>", `"<a&b>"`},
		{"integer keys", map[int]string{1: "one"}, `{"1":"one"}`},
		{"NaN falls back to text", math.NaN(), `"NaN"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(resultJSON(raw(t, tt.v))); got != tt.want {
				t.Errorf("resultJSON = %s, want %s", got, tt.want)
			}
		})
	}
	if got := string(resultJSON(nil)); got != "null" {
		t.Errorf("resultJSON(nil) = %s, want null", got)
	}
	if got := string(resultJSON(poold.Raw{0xc1})); !strings.HasPrefix(got, `"<undecodable result`) {
		t.Errorf("resultJSON of bad msgpack = %s", got)
	}
}

func TestShorten(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"this is too long", 10, "this is t…"},
		{"ééééééééééé", 5, "éééé…"},
		{"two\nlines\tand  spaces", 40, "two lines and spaces"},
	} {
		if got := shorten(tt.in, tt.n); got != tt.want {
			t.Errorf("shorten(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "-"},
		{153456 * time.Nanosecond, "153µs"},
		{12345678 * time.Nanosecond, "12.3ms"},
		{2001234567 * time.Nanosecond, "2.001s"},
	} {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

var (
	t0 = time.Date(2025, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	t1 = t0.Add(1500 * time.Millisecond)
)

func okOutcome(t *testing.T) outcome {
	return outcome{ID: "sq[1]", Index: 3, Res: poold.Result[poold.Raw]{
		Value: raw(t, "4"), Func: "pow", PID: 4242, Attempts: 1, Start: t0, End: t1, CPU: 1234567,
	}}
}

func lostOutcome() outcome {
	exit := &poold.WorkerExitError{PID: 4243, ExitCode: -1, Signal: syscall.SIGKILL, Stderr: []string{"bye"}}
	return outcome{ID: "k", Index: 0, Res: poold.Result[poold.Raw]{
		Func: "crash", PID: 4243, Attempts: 2, End: t1, CPU: -1,
		Err: &poold.TaskError{Kind: poold.KindWorkerLost, Func: "crash", PID: 4243, Attempts: 2, Message: exit.Error(), Exit: exit},
	}}
}

func TestJSONRecord(t *testing.T) {
	var out, log bytes.Buffer
	rep := newJSONReporter(&out, &log)
	rep.Header(header{Tasks: 2, Workers: 4, CPUs: 8, PID: 99})
	ok := okOutcome(t)
	ok.Res.Output = []byte("hi\n")
	ok.Res.MaxRSS = 7 << 20
	rep.Result(ok)
	rep.Result(lostOutcome())
	exited := &poold.WorkerExitError{PID: 7, ExitCode: 3}
	rep.Result(outcome{ID: "e", Index: 1, Res: poold.Result[poold.Raw]{Func: "crash", PID: 7, Attempts: 1, CPU: -1,
		Err: &poold.TaskError{Kind: poold.KindWorkerLost, Message: exited.Error(), Exit: exited}}})
	rep.Result(outcome{ID: "p", Index: 2, Res: poold.Result[poold.Raw]{Func: "crash", PID: 8, Attempts: 1, Start: t0, End: t1, CPU: 250 * time.Microsecond,
		Err: &poold.TaskError{Kind: poold.KindPanic, Message: "panic: boom", Stack: "goroutine 1"}}})
	rep.Summary(summary{Tasks: 4, OK: 1, Failed: 3, PIDs: 4, WorkersStarted: 5, Wall: 2 * time.Second})

	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := []string{
		`{"id":"sq[1]","index":3,"func":"pow","ok":true,"result":"4","host":":","pid":4242,"attempts":1,"start":"2025-01-02T03:04:05.6Z","end":"2025-01-02T03:04:07.1Z","duration_ms":1500,"cpu_ms":1.234567,"max_rss_bytes":7340032,"output":"hi\n"}`,
		`{"id":"k","index":0,"func":"crash","ok":false,"error":{"kind":"worker_lost","message":"worker pid 4243 killed by signal 9 (killed); stderr: bye","pid":4243,"signal":"SIGKILL","stderr":["bye"]},"host":":","pid":4243,"attempts":2,"end":"2025-01-02T03:04:07.1Z","duration_ms":0,"cpu_ms":null,"max_rss_bytes":null}`,
		`{"id":"e","index":1,"func":"crash","ok":false,"error":{"kind":"worker_lost","message":"worker pid 7 exited with code 3","pid":7,"exit_code":3},"host":":","pid":7,"attempts":1,"duration_ms":0,"cpu_ms":null,"max_rss_bytes":null}`,
		`{"id":"p","index":2,"func":"crash","ok":false,"error":{"kind":"panic","message":"panic: boom","stack":"goroutine 1"},"host":":","pid":8,"attempts":1,"start":"2025-01-02T03:04:05.6Z","end":"2025-01-02T03:04:07.1Z","duration_ms":1500,"cpu_ms":0.25,"max_rss_bytes":null}`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines on stdout, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[i], want[i])
		}
		if !json.Valid([]byte(lines[i])) {
			t.Errorf("line %d is not JSON", i)
		}
	}
	wantLog := "poold: 2 tasks on 4 workers (8 CPUs), parent pid 99\n" +
		"4 tasks: 1 ok, 3 failed; 4 worker pids used, 5 workers started; wall time 2s\n" +
		// The summary as JSON, last; empty figures when no task ran (the
		// reporter was given no stats).
		`{"summary":{"tasks":4,"ok":1,"failed":3,"skipped":0,"worker_pids":4,"workers_started":5,"wall_ms":2000,"workers":[],"longest":[],` +
		`"restarts":{"count":0,"lost_ms":0},"cpu":{"cpu_ms":0,"task_ms":0,"share":null,"verdict":"","unknown":0}}}` + "\n"
	if log.String() != wantLog {
		t.Errorf("stderr:\n%s\nwant\n%s", log.String(), wantLog)
	}
}

func TestJSONRecordNullResult(t *testing.T) {
	rec := newJSONRecord(outcome{ID: "n", Res: poold.Result[poold.Raw]{Value: raw(t, nil), Func: "echo"}})
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"ok":true,"result":null,`) {
		t.Errorf("a null result must still be present: %s", b)
	}
}

func TestTextReporter(t *testing.T) {
	tf := newTaskFile([]*Entry{
		{ID: "sq", Func: "pow", IsMap: true, MapArgs: make([]any, 12)},
		{ID: "k", Func: "crash"},
	})
	var out bytes.Buffer
	rep := newTextReporter(&out, tf)
	rep.Header(header{Tasks: 13, Workers: 1, CPUs: 1, PID: 99})
	rep.Result(okOutcome(t))
	rep.Result(lostOutcome())
	long := outcome{ID: "sq[11]", Res: poold.Result[poold.Raw]{Func: "pow", Value: raw(t, strings.Repeat("9", 100))}}
	rep.Result(long)
	never := outcome{ID: "k", Res: poold.Result[poold.Raw]{Func: "crash",
		Err: &poold.TaskError{Kind: poold.KindTerminated, Message: "pool terminated before the task started"}}}
	rep.Result(never)
	rep.Summary(summary{Tasks: 13, OK: 2, Failed: 2, PIDs: 2, WorkersStarted: 1, Wall: 1234 * time.Millisecond, Signal: syscall.SIGINT})

	want := `poold: 13 tasks on 1 worker (1 CPU), parent pid 99
    PID  ID      FUNC   STATUS           TIME  RESULT
   4242  sq[1]   pow    ok               1.5s  "4"
   4243  k       crash  worker_lost         -  worker pid 4243 killed by signal 9 (killed); stderr: bye
      -  sq[11]  pow    ok                  -  "` + strings.Repeat("9", 58) + `…
      -  k       crash  terminated          -  pool terminated before the task started
interrupted by SIGINT: unfinished tasks were terminated
13 tasks: 2 ok, 2 failed; 2 worker pids used, 1 worker started; wall time 1.234s
`
	if out.String() != want {
		t.Errorf("text output:\n%s\nwant\n%s", out.String(), want)
	}
}

func TestErrorKindOfOtherErrors(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &poold.TaskError{Kind: poold.KindTimeout, Message: "too slow"})
	if errorKind(err) != poold.KindTimeout || errorMessage(err) != "too slow" {
		t.Errorf("wrapped TaskError: %s, %q", errorKind(err), errorMessage(err))
	}
	plain := fmt.Errorf("plain")
	if errorKind(plain) != poold.KindError || errorMessage(plain) != "plain" {
		t.Errorf("plain error: %s, %q", errorKind(plain), errorMessage(plain))
	}
}

// TestJSONErrorDetail: an exit_status failure spreads its detail into the
// error (exit_code or signal, the program's stdout and stderr); any other
// detail is shown whole, as JSON.
func TestJSONErrorDetail(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  *poold.TaskError
		want string
	}{
		{"exit code", &poold.TaskError{Kind: poold.KindExitStatus, Message: "exit status 3: err", Type: "*tasks.ExitError",
			Detail: raw(t, map[string]any{"exit_code": 3, "stdout": "out\n", "stderr": "err\n"})},
			`{"kind":"exit_status","message":"exit status 3: err","exit_code":3,"stdout":"out\n","stderr":"err\n","type":"*tasks.ExitError"}`},
		{"signal", &poold.TaskError{Kind: poold.KindExitStatus, Message: "killed by signal SIGKILL",
			Detail: raw(t, map[string]any{"exit_code": -1, "signal": "SIGKILL", "stdout": "", "stderr": ""})},
			`{"kind":"exit_status","message":"killed by signal SIGKILL","signal":"SIGKILL","stdout":"","stderr":""}`},
		{"exit_status of another shape", &poold.TaskError{Kind: poold.KindExitStatus, Message: "failed", Detail: raw(t, map[string]any{"code": 2})},
			`{"kind":"exit_status","message":"failed","detail":{"code":2}}`},
		{"a kind of the worker's own", &poold.TaskError{Kind: "rate_limited", Message: "slow down", Detail: raw(t, map[string]any{"retry_after": 1.5})},
			`{"kind":"rate_limited","message":"slow down","detail":{"retry_after":1.5}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(newJSONError(tt.err))
			if err != nil || string(got) != tt.want {
				t.Errorf("got %s, %v\nwant %s", got, err, tt.want)
			}
		})
	}
}
