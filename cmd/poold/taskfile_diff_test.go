package main

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// The walker and the quick way against the file decoded whole
// (refParseTaskFile, how poold read files before): the same messages, or
// the same entries, for every input.

// diffInputs are inputs where the two could part: structure, syntax at
// every place the walker judges, and entries that the quick way refuses.
var diffInputs = []string{
	``, ` `, `[`, `]`, `{`, `}`, `[]`, `[ ]`, `{}`, `[]]`, `[] x`, `[],`, `[]{}`, `{}x`, `42`, `42 43`, `42x`, `"s"`, `"s`, `tru`,
	`true`, `null`, `nul]`, `-`, `[-]`, `[1 2]`, `[12x]`, `[tru]`, `[tru`, `[nul `, `[1,]`, `[,1]`, `[1,,2]`, `[}`, `[:`, `[1:2]`,
	`["é",}`, "[\n x]", "[\n  {\"func\": \"echo\"}", `[{"func": "echo"} {"func": "echo"}]`, `[{"func": "echo"},]`,
	`[{"func": "echo"}]]`, `[{"func": "echo"}}`, `[{"func": "echo"`, `[{"func": "ec`, `[{"func": "echo", }]`, `[{"func" "echo"}]`,
	`[{"func": "echo" "args": 2}]`, `[{func: "echo"}]`, `[{"func": "echo", "args": [1, }]`, `[{"func": "echo", "args": {"a": ]}}]`,
	`[{"func": "echo", "args": [1}]`, `[{"func": "echo", "args": "\x"}]`, `[{"func": "echo", "args": "\u12"}]`, "[{\"func\": \"echo\", \"args\": \"a\nb\"}]",
	`{"tasks": []}`, `{"tasks": [], }`, `{"tasks": [] "x": 1}`, `{"tasks" []}`, `{"tasks": }`, `{"tasks"`, `{"tasks": [`, `{tasks: []}`,
	`{"tasks": [], "jobs": 1}`, `{"b": 1, "a": [}`, `{"b": 1, "a": 2, "tasks": []}`, `{"tasks": {}}`, `{"tasks": 5}`, `{"tasks": "x"}`,
	`{"tasks": null}`, `{"jobs": []}`, `{"t\u0061sks": [{"func": "echo"}]}`, `{"tasks": [{"func": "nope"}], "tasks": [{"func": "echo"}]}`,
	`{"tasks": [{"func": "echo"}], "tasks": []}`, `{"tasks": [{"func": "echo"}], "tasks": 1}`, `{"tasks": 1, "tasks": [{"func": "echo"}]}`,
	`{"tasks": [{"func": "echo"}, 1], "tasks": [{"id": "a", "func": "echo"}, {"id": "a", "func": "echo"}]}`,
	`[1, "x", null, true, [], {}]`, `[{"func": "echo", "func": "pow"}]`, `[{"func": "echo", "args": {"a": 1, "a": 2}}]`,
	`[{"func": "echo", "args": {"value": "\ud800"}}]`, `[{"func": "echo", "args": {"value": "\ud83d\ude00 \u00e9 \"q\" \\ \/ \b\f\n\r\t"}}]`,
	"[{\"func\": \"echo\", \"args\": {\"value\": \"\xff\"}}]", `[{"func": "echo", "args": {"value": 1e400}}]`, `[{"func": "echo", "args": {"value": -0}}]`,
	`[{"func": "echo", "args": {"value": [9223372036854775807, -9223372036854775808, 9223372036854775808, 18446744073709551616, -9223372036854775809]}}]`,
	`[{"func": "echo", "args": {"value": [0.5, 1E2, -1e-2, 1.0, 123456789012345678901234567890.0, 1e-400]}}]`,
	`[{"func": "echo", "args": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}]`,
	`[{"id": "\u0061", "func": "echo"}, {"id": "a", "func": "echo"}]`, `[{"\u0066unc": "echo"}]`, `[{"func": "\u0065cho"}]`,
	`[{"id": "m[1]", "func": "echo"}, {"id": "m", "map": "echo", "args": [1, 2]}]`, `[{"id": "1", "func": "echo"}, {"func": "echo"}]`,
	`[{"id": "a", "func": "echo"}, {"id": "a", "map": "echo", "args": []}, {"id": "a", "func": "nope"}, {"id": "a", "func": "echo"}]`,
	`[{"map": "echo", "args": [1, 2], "id": "x"}, {"map": "echo", "args": [3], "id": "x"}, {"id": "x[0]", "func": "echo"}]`,
	`[{"func": "echo", "timeout": "0"}, {"func": "echo", "timeout": "1m30s", "retries": 3, "retry_on": ["timeout", "exit_status"], "at_most_once": true}]`,
	`[{"func": "echo", "timeout": "-1s"}, {"func": "echo", "retries": 1.0}, {"func": "echo", "retry_on": []}, {"func": "echo", "at_most_once": 1}]`,
	`[{"map": "echo", "args": [1, {"a": [2]}, null, "s"], "chunksize": 2}, {"map": "echo", "args": null}, {"map": "echo", "chunksize": 1}]`,
	`[{"func": "echo", "chunksize": 1}, {"func": "echo", "map": "echo"}, {"args": 1}, {"func": ""}, {"func": 3}, {"id": "", "func": "echo"}]`,
	`[{"func": "echo", "retry_on": ["terminated"]}, {"func": "echo", "retry_on": ["nope"]}, {"func": "echo", "retry_on": [1]}]`,
	` [ {"func":"echo","args":{"value":{"z":1,"a":{"y":[1,2,{"b":null}]}}}} ] ` + "\n",
	"[\r\n\t{\"func\": \"echo\"},\r\n\t{\"id\": \"é\", \"func\": \"echo\"}\r\n]\r\n",
	`[{"func": "echo", "args": {"value": "` + strings.Repeat("x", 70000) + `"}}, {"map": "echo", "args": [` + strings.Repeat("1,", 20) + `1]}]`,
	`[{"func": "echo", "args": {"value": [` + strings.Repeat("1,", 70000) + `1]}}]`,
	`[` + strings.Repeat(`{"func": "nope"},`, 30) + `{"func": "nope"}]`,
	`[` + strings.Repeat(`{"id": "d", "func": "echo"},`, 30) + `{"id": "d", "func": "echo"}]`,
}

func TestParseTaskFileAsBefore(t *testing.T) {
	for _, in := range diffInputs {
		compareParses(t, []byte(in))
	}
}

func FuzzParseTaskFile(f *testing.F) {
	for _, in := range diffInputs {
		if len(in) < 1000 {
			f.Add([]byte(in))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { compareParses(t, data) })
}

// compareParses checks data both ways, and the walker over readers that
// return little at a time.
func compareParses(t *testing.T, data []byte) {
	t.Helper()
	name := string(data)
	if len(name) > 80 {
		name = name[:80] + "..."
	}
	want, wantErr := refParseTaskFile("t.json", data, testKnown)
	got, gotErr := ParseTaskFile("t.json", data, testKnown)
	switch {
	case (wantErr == nil) != (gotErr == nil):
		t.Fatalf("%q:\nbefore: %v\nnow:    %v", name, wantErr, gotErr)
	case wantErr != nil:
		if wantErr.Error() != gotErr.Error() {
			t.Fatalf("%q:\nbefore: %v\nnow:    %v", name, wantErr, gotErr)
		}
	default:
		sameEntries(t, name, want, got)
	}
	for _, r := range []func(io.Reader) io.Reader{iotest.OneByteReader, iotest.HalfReader} {
		streamed, err := checkReader(data, r)
		switch {
		case (err == nil) != (gotErr == nil) || (err != nil && err.Error() != gotErr.Error()):
			t.Fatalf("%q streamed: %v\nwhole: %v", name, err, gotErr)
		case err == nil && (streamed.Results != got.Results || streamed.IDWidth != got.IDWidth ||
			streamed.FuncWidth != got.FuncWidth || streamed.Retries != got.Retries || streamed.Entries != nil):
			t.Fatalf("%q streamed: %+v\nwhole: %+v", name, streamed, got)
		}
	}
}

// checkReader checks data as a file is checked, read through r.
func checkReader(data []byte, r func(io.Reader) io.Reader) (*TaskFile, error) {
	c := newChecker("t.json", testKnown, false)
	w := newWalker(r(bytes.NewReader(data)))
	w.fast = &c.fast
	res, err := w.walk(c.entry)
	return c.finish(res, err, func() (io.Reader, error) { return r(bytes.NewReader(data)), nil })
}

func sameEntries(t *testing.T, name string, want, got *TaskFile) {
	t.Helper()
	if want.Results != got.Results || len(want.Entries) != len(got.Entries) || want.IDWidth != got.IDWidth ||
		want.FuncWidth != got.FuncWidth || want.Retries != got.Retries {
		t.Fatalf("%q: now %+v\nbefore %+v", name, got, want)
	}
	for i, w := range want.Entries {
		g := *got.Entries[i]
		wa, ga := plainArgs(t, w.Args), plainArgs(t, g.Args)
		wm, gm := plainArgs(t, w.MapArgs), plainArgs(t, g.MapArgs)
		w := *w
		w.Args, w.MapArgs, g.Args, g.MapArgs = nil, nil, nil, nil
		if len(w.RetryOn) == 0 && len(g.RetryOn) == 0 && w.HasRetryOn == g.HasRetryOn {
			w.RetryOn, g.RetryOn = nil, nil
		}
		if !reflect.DeepEqual(w, g) || !reflect.DeepEqual(wa, ga) || !reflect.DeepEqual(wm, gm) {
			t.Fatalf("%q: entry %d\nnow    %+v args %#v map args %#v\nbefore %+v args %#v map args %#v", name, i, g, ga, gm, w, wa, wm)
		}
	}
}
