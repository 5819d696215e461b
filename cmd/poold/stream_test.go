package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestParseLineGood(t *testing.T) {
	e := parseLine(3, 7, []byte(`  {"id": "x", "func": "echo", "args": {"value": [1, 2.5, "s"]}, "timeout": "2s", "retries": 1}  `), testKnown)
	want := map[string]any{"value": []any{int64(1), 2.5, "s"}}
	if e.Bad != "" || e.ID != "x" || e.Func != "echo" || e.IsMap || e.Pos != 3 || e.Line != 7 ||
		e.Timeout != 2*time.Second || !e.HasRetries || e.Retries != 1 || !reflect.DeepEqual(plainArgs(t, e.Args), want) {
		t.Errorf("task line: %+v, args %#v", e, e.Args)
	}

	e = parseLine(4, 9, []byte(`{"map": "pow", "args": [{"base": 2, "exp": 2}, null], "chunksize": 1}`+"\r"), testKnown)
	if e.Bad != "" || e.ID != "4" || !e.IsMap || e.Count() != 2 || e.ChunkSize != 1 || e.ResultID(1) != "4[1]" {
		t.Errorf("map line: %+v", e)
	}

	// With --worker-cmd any name goes; the pool checks it.
	if e := parseLine(0, 1, []byte(`{"func": "custom"}`), nil); e.Bad != "" || e.Func != "custom" || e.ID != "0" {
		t.Errorf("unchecked name: %+v", e)
	}
}

func TestParseLineBad(t *testing.T) {
	tests := []struct {
		name, line    string
		id, fn        string   // what names the result
		want, wantNot []string // substrings of Bad
	}{
		{"bad JSON names line and column", `{"func": "echo" "args": 1}`, "5", "?",
			[]string{`line 12, column 17: invalid character '"' after object key:value pair`}, nil},
		{"column counts characters", `{"é": 1,}`, "5", "?", []string{"line 12, column 9: invalid character '}'"}, nil},
		{"cut short", `{"func": "echo", "args": {"value": 1}`, "5", "?",
			[]string{"line 12: unexpected end of the line (an entry is one JSON object on one line)"}, nil},
		{"two values", `{"func": "echo"} {"func": "echo"}`, "5", "?",
			[]string{"line 12, column 18: unexpected data after the entry"}, nil},
		{"not an object", `[{"func": "echo"}]`, "5", "?", []string{"line 12: want an object, got an array"}, nil},
		{"unknown func lists the known names", `{"id": "u", "func": "powr"}`, "u", "powr",
			[]string{`line 12: unknown task "powr"; known task names: crash, echo, pow, sleep`}, nil},
		{"unknown map func", `{"map": "nope", "args": [1, 2]}`, "5", "nope",
			[]string{`line 12: unknown task "nope"`, "known task names: crash, echo"}, nil},
		{"missing func", `{"args": {"value": 1}}`, "5", "?",
			[]string{`line 12: missing "func" (the task to run), or "map" for a map entry; known task names: crash`}, nil},
		{"every problem of the line, once located", `{"id": "k", "func": "echo", "fnuc": 1, "timeout": "soon"}`, "k", "echo",
			[]string{`line 12: unknown key "fnuc"; a task has id, func, args, timeout, retries, retry_on, at_most_once; "timeout": "soon" is not a duration`},
			[]string{"entry", "known task names"}},
		{"bad id keeps the default", `{"id": 7, "func": "echo"}`, "5", "echo",
			[]string{`line 12: "id" must be a non-empty string, got the number 7`}, nil},
		{"bad retries", `{"func": "echo", "retries": -1}`, "5", "echo", []string{`"retries" must be an integer of at least 0`}, nil},
		{"func and map", `{"func": "echo", "map": "echo", "args": []}`, "5", "?", []string{`has both "func" and "map"`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := parseLine(5, 12, []byte(tt.line), testKnown)
			if e.Bad == "" {
				t.Fatalf("no problem found: %+v", e)
			}
			if e.ID != tt.id || e.Func != tt.fn || e.Pos != 5 || e.Line != 12 || e.IsMap || e.Count() != 1 || e.ResultID(0) != tt.id {
				t.Errorf("bad entry %+v; want id %q, func %q, one result", e, tt.id, tt.fn)
			}
			rest := e.Bad
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("message\n%s\ndoes not contain (in order) %q", e.Bad, w)
				}
				rest = rest[i+len(w):]
			}
			for _, w := range tt.wantNot {
				if strings.Contains(e.Bad, w) {
					t.Errorf("message\n%s\ncontains %q", e.Bad, w)
				}
			}
		})
	}
}

func TestLineReader(t *testing.T) {
	in := "one\n\ntwo\r\n" + strings.Repeat("x", 10) + "\n" + strings.Repeat("y", 11) + "\n" +
		strings.Repeat("z", 200) + "\nlast"
	lr := newLineReader(strings.NewReader(in), 10)
	lr.r = bufio.NewReaderSize(strings.NewReader(in), 16) // fragments of 16 bytes: long lines span several reads
	type line struct {
		text    string
		tooLong bool
	}
	var got []line
	for {
		l, tooLong, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, line{string(l), tooLong})
	}
	want := []line{{"one", false}, {"", false}, {"two\r", false}, {strings.Repeat("x", 10), false},
		{"", true}, {"", true}, {"last", false}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lines %+v\nwant %+v", got, want)
	}

	// A line cut short by the limit at the very end of the input.
	lr = newLineReader(strings.NewReader(strings.Repeat("w", 11)), 10)
	if _, tooLong, err := lr.next(); !tooLong || err != nil {
		t.Errorf("last line over the limit: tooLong %v, err %v", tooLong, err)
	}
	if _, _, err := lr.next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last line: %v, want EOF", err)
	}
}

// errReader returns its data, then err.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestStreamSource(t *testing.T) {
	defer goleak.VerifyNone(t)
	defer func(old int) { maxLineLen = old }(maxLineLen)
	maxLineLen = 64
	in := "\n" +
		`{"func": "echo", "args": {"value": 1}}` + "\n" + // entry 0, line 2
		"  \t\n" +
		`{"id": "m", "map": "pow", "args": [{"base": 2, "exp": 2}, {"base": 3, "exp": 2}]}` + "\n" + // too long
		`{"id": "m", "map": "pow", "args": [1, 2, 3]}` + "\n" + // entry 2, line 5: results 2, 3, 4
		`{"func": "nope"}` + "\n" + // entry 3, line 6
		`{"func": "echo"}` // entry 4, line 7, no final newline
	src := streamSource(newLineReader(strings.NewReader(in), maxLineLen), nil, testKnown, nil)
	var got []string
	for e := range src.Entries() {
		got = append(got, fmt.Sprintf("%d %d %s %s %d+%d %t", e.Pos, e.Line, e.ID, e.Func, e.First, e.Count(), e.Bad != ""))
		if e.Bad != "" && !strings.Contains(e.Bad, fmt.Sprintf("line %d", e.Line)) {
			t.Errorf("entry %d: message %q does not name line %d", e.Pos, e.Bad, e.Line)
		}
	}
	want := []string{"0 2 0 echo 0+1 false", "1 4 1 ? 1+1 true", "2 5 m pow 2+3 false", "3 6 3 nope 5+1 true", "4 7 4 echo 6+1 false"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("entries\n%q\nwant\n%q", got, want)
	}
	if src.Err() != nil {
		t.Errorf("Err = %v", src.Err())
	}

	// A read error ends the input and is kept.
	src = streamSource(newLineReader(&errReader{data: []byte(`{"func": "echo"}` + "\n"), err: errors.New("disk on fire")}, 1024), nil, testKnown, nil)
	n := 0
	for range src.Entries() {
		n++
	}
	if n != 1 || src.Err() == nil || src.Err().Error() != "disk on fire" {
		t.Errorf("%d entries, Err %v; want 1 and the read error", n, src.Err())
	}

	// Stop ends a source that nobody reads any more.
	src = streamSource(newLineReader(strings.NewReader(strings.Repeat(`{"func": "echo"}`+"\n", 1000)), 1024), nil, testKnown, nil)
	<-src.C
	src.Stop()
	for range src.Entries() {
	}
}

func TestRunStream(t *testing.T) {
	defer goleak.VerifyNone(t)
	in := `{"id": "a", "func": "echo", "args": {"value": "x"}}

{"func": "powr"}
{"id": "m", "map": "pow", "args": [{"base": 2, "exp": 10}, {"base": 3, "exp": 3}], "chunksize": 1}
not json
{"id": "p", "func": "crash", "args": {"mode": "panic"}}
`
	var stdout, stderr bytes.Buffer
	code := run([]string{"-n", "2", "--json", "--jsonl", "--window", "1", "-"}, strings.NewReader(in), &stdout, &stderr)
	if code != exitFailed {
		t.Errorf("exit status %d, want %d; stderr:\n%s", code, exitFailed, stderr.String())
	}
	got := map[string]string{}
	indexes := map[int]bool{}
	for line := range strings.Lines(stdout.String()) {
		var r struct {
			ID     string          `json:"id"`
			Index  int             `json:"index"`
			Result json.RawMessage `json:"result"`
			Error  *jsonError      `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		indexes[r.Index] = true
		if r.Error != nil {
			got[r.ID] = r.Error.Kind + ": " + r.Error.Message
		} else {
			got[r.ID] = string(r.Result)
		}
	}
	want := map[string]string{
		"a":    `"x"`,
		"1":    `bad_task: line 3: unknown task "powr"; known task names: crash, echo, exec, pi, pow, primes, print, sha256, sleep`,
		"m[0]": `"1024"`, "m[1]": `"27"`,
		"3": "bad_task: line 5, column 2: invalid character 'o' in literal null (expecting 'u')",
		"p": "panic: panic: poold crash task: deliberate panic",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("results\n%q\nwant\n%q", got, want)
	}
	if len(indexes) != 6 {
		t.Errorf("indexes %v, want 0..5", indexes)
	}
	if !strings.Contains(stderr.String(), "poold: streaming tasks from stdin on 2 workers") ||
		!strings.Contains(stderr.String(), "6 tasks: 3 ok, 3 failed; ") {
		t.Errorf("no header or summary on stderr:\n%s", stderr.String())
	}
}

func TestRunStreamReadError(t *testing.T) {
	defer goleak.VerifyNone(t)
	in := &errReader{data: []byte(`{"func": "echo", "args": {"value": 1}}` + "\n"), err: errors.New("disk on fire")}
	var stdout, stderr bytes.Buffer
	code := run([]string{"-n", "1", "--json", "--jsonl", "-"}, in, &stdout, &stderr)
	if code != exitFailed {
		t.Errorf("exit status %d, want %d", code, exitFailed)
	}
	if !strings.Contains(stdout.String(), `"ok":true`) || !strings.Contains(stderr.String(), "poold: reading stdin stopped early: disk on fire") {
		t.Errorf("stdout %q\nstderr %q", stdout.String(), stderr.String())
	}

	// A file that cannot be read at all is an error before anything
	// starts.
	stdout.Reset()
	stderr.Reset()
	code = run([]string{"--jsonl", "-"}, &errReader{err: errors.New("no disk")}, &stdout, &stderr)
	if code != exitUsage || stdout.Len() != 0 || stderr.String() != "poold: reading the task file: no disk\n" {
		t.Errorf("status %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

func TestRunStreamInterrupted(t *testing.T) {
	defer goleak.VerifyNone(t)
	in := `{"id": "quick", "func": "echo", "args": {"value": 1}}
{"id": "slow", "func": "sleep", "args": {"seconds": 60}}
{"id": "slower", "map": "sleep", "args": [{"seconds": 60}, {"seconds": 60}]}
` + strings.Repeat(`{"id": "never", "func": "echo"}`+"\n", 500)
	stdout := &signalOnWrite{trigger: `"id":"quick"`, sig: syscall.SIGTERM}
	var stderr bytes.Buffer
	code := run([]string{"-n", "1", "--window", "2", "--json", "--jsonl", "-"}, strings.NewReader(in), stdout, &stderr)
	if code != 128+int(syscall.SIGTERM) {
		t.Errorf("exit status %d, want 143; stderr:\n%s", code, stderr.String())
	}
	out := stdout.buf.String()
	// In flight when the signal came: slow, and perhaps the map, whose
	// two items pass the window (an entry is taken whole).
	if n := strings.Count(out, `"kind":"terminated"`); n != 1 && n != 3 {
		t.Errorf("%d tasks terminated, want 1 or 3:\n%s", n, out)
	}
	if strings.Count(out, `"ok":true`) != 1 || strings.Contains(out, "never") {
		t.Errorf("the stream was read on after the signal:\n%s", out)
	}
}
