package main

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/poold/poold"
)

var testKnown = []string{"crash", "echo", "pow", "sleep"}

func TestParseTaskFileErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string // substrings of the error, in order
	}{
		{"empty", "", []string{"t.json: the file is empty"}},
		{"blank", " \n\t\n", []string{"the file is empty"}},
		{"syntax error names line and column", "[\n  {\"func\": \"echo\" \"args\": 2}\n]", []string{"t.json: line 2, column 19: invalid character '\"' after object key:value pair"}},
		{"column counts characters", "[\"é\",}", []string{"line 1, column 6: invalid character '}'"}},
		{"unterminated", "[\n{\"func\": \"echo\"", []string{"line 2, column 16: unexpected end of the file"}},
		{"trailing data", "[]\n  x", []string{"line 2, column 3: unexpected data after the task list"}},
		{"second value", "[] []", []string{"line 1, column 4: unexpected data after the task list"}},
		{"scalar", "42", []string{"the file holds a number; want a JSON array of tasks"}},
		{"object without tasks", `{"jobs": []}`, []string{`unknown key "jobs" in the top-level object`}},
		{"object with empty", `{}`, []string{`no "tasks" key in the top-level object`}},
		{"tasks not an array", `{"tasks": {}}`, []string{`"tasks" is an object; want an array of tasks`}},
		{"entry not an object", `[1]`, []string{"entry 0 (line 1): want an object, got a number"}},
		{"unknown func lists names", "[\n{\"func\": \"echo\"},\n{\"id\": \"b\", \"func\": \"powr\"}]",
			[]string{`entry 1 (id "b", line 3): unknown task "powr"`, "known task names: crash, echo, pow, sleep"}},
		{"missing func", `[{"id": "a", "args": {}}]`, []string{`entry 0 (id "a", line 1): missing "func"`, "known task names: crash, echo"}},
		{"empty func", `[{"func": ""}]`, []string{`"func" must be a task name, got the string ""`, "known task names"}},
		{"func not a string", `[{"func": 3}]`, []string{`"func" must be a task name, got the number 3`}},
		{"id a number", `[{"id": 3, "func": "echo"}]`, []string{`entry 0 (line 1): "id" must be a non-empty string, got the number 3`}},
		{"id null", `[{"id": null, "func": "echo"}]`, []string{`"id" must be a non-empty string, got null`}},
		{"id empty", `[{"id": "", "func": "echo"}]`, []string{`"id" must be a non-empty string, got the string ""`}},
		{"id an object", `[{"id": {}, "func": "echo"}]`, []string{`got an object`}},
		{"unknown key", `[{"func": "echo", "agrs": {}}]`, []string{`unknown key "agrs"; a task has id, func, args, timeout, retries, retry_on, at_most_once`}},
		{"chunksize on a task", `[{"func": "echo", "chunksize": 2}]`, []string{`unknown key "chunksize" ("chunksize" is for map entries`}},
		{"unknown key in a map", `[{"map": "echo", "args": [], "func2": 1}]`, []string{`unknown key "func2"; a map entry has id, map, args, chunksize, timeout, retries, retry_on, at_most_once`}},
		{"func and map", `[{"func": "echo", "map": "echo"}]`, []string{`has both "func" and "map"`}},
		{"map without args", `[{"map": "echo"}]`, []string{`a map entry needs "args"`}},
		{"map args not a list", `[{"map": "echo", "args": {"value": 1}}]`, []string{`a map entry's "args" must be an array`}},
		{"map unknown func", `[{"map": "nope", "args": []}]`, []string{`unknown task "nope"`, "known task names"}},
		{"chunksize zero", `[{"map": "echo", "args": [1], "chunksize": 0}]`, []string{`"chunksize" must be an integer of at least 1, got the number 0`}},
		{"chunksize string", `[{"map": "echo", "args": [1], "chunksize": "2"}]`, []string{`got the string "2"`}},
		{"bad timeout", `[{"func": "echo", "timeout": "soon"}]`, []string{`"timeout": "soon" is not a duration`}},
		{"numeric timeout", `[{"func": "echo", "timeout": 5}]`, []string{`"timeout" must be a duration string such as "500ms"`}},
		{"negative timeout", `[{"func": "echo", "timeout": "-1s"}]`, []string{`"timeout" must not be negative, got "-1s" ("0" means no limit)`}},
		{"negative retries", `[{"func": "echo", "retries": -1}]`, []string{`"retries" must be an integer of at least 0, got the number -1`}},
		{"fractional retries", `[{"func": "echo", "retries": 1.5}]`, []string{`got the number 1.5`}},
		{"duplicate ids", `[{"id": "a", "func": "echo"}, {"id": "a", "func": "echo"}]`, []string{`entry 1 (id "a", line 1): duplicate id "a", also used by entry 0`}},
		{"default id collides", `[{"id": "1", "func": "echo"}, {"func": "echo"}]`, []string{`duplicate id "1"`}},
		{"map id collides", `[{"id": "m[1]", "func": "echo"}, {"id": "m", "map": "echo", "args": [1, 2]}]`, []string{`duplicate id "m[1]"`}},
		{"number out of range", `[{"func": "echo", "args": {"value": 1e999}}]`, []string{"args.value: the number 1e999 is out of range"}},
		{"integer beyond 64 bits", `[{"func": "echo", "args": {"value": [1, {"n": 123456789012345678901234567890}]}}]`,
			[]string{`entry 0 (line 1): args.value[1].n: the integer 123456789012345678901234567890 does not fit in 64 bits (-2^63 to 2^64-1), and would be rounded: pass it as a string, "123456789012345678901234567890"`}},
		{"integer beyond 64 bits in a map entry", `[{"map": "echo", "args": [1, {"a b": -18446744073709551616}]}]`,
			[]string{`args[1]["a b"]: the integer -18446744073709551616 does not fit in 64 bits`}},
		{"the first key in order", `[{"func": "echo", "args": {"z": 1e999, "b": 99999999999999999999, "a": 1}}]`, []string{`args.b: the integer`}},
		{"retry_on not a list", `[{"func": "echo", "retry_on": "timeout"}]`, []string{`"retry_on" must be an array of failure kinds such as ["exit_status", "timeout"], got the string "timeout"`}},
		{"retry_on not strings", `[{"func": "echo", "retry_on": ["timeout", 3]}]`, []string{`"retry_on"[1] must be a kind name, got the number 3`}},
		{"retry_on unknown kind", `[{"map": "echo", "args": [1], "retry_on": ["timout"]}]`,
			[]string{`entry 0 (line 1): "retry_on": unknown kind "timout"; the kinds that can be retried: worker_lost, timeout, memory_limit, protocol, exit_status, error, panic, bad_args, encode, result_too_large, canceled`}},
		{"retry_on a kind of the pool", `[{"func": "echo", "retry_on": ["terminated"]}]`, []string{`"retry_on": kind terminated cannot be retried`}},
		{"every problem reported", `[{"func": "nope"}, {"func": "echo", "x": 1}]`, []string{`entry 0 (line 1): unknown task "nope"`, `entry 1 (line 1): unknown key "x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf, err := ParseTaskFile("t.json", []byte(tt.data), testKnown)
			if err == nil {
				t.Fatalf("no error; parsed %+v", tf)
			}
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error is a %T, not a *FileError: %v", err, err)
			}
			msg := err.Error()
			rest := msg
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error\n%s\ndoes not contain (in order) %q", msg, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestParseTaskFileManyProblemsAreCapped(t *testing.T) {
	data := "[" + strings.Repeat(`{"func": "nope"},`, 30) + `{"func": "nope"}]`
	_, err := ParseTaskFile("t.json", []byte(data), testKnown)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if n := strings.Count(msg, "unknown task"); n != maxProblems {
		t.Errorf("%d problems shown, want %d", n, maxProblems)
	}
	if !strings.Contains(msg, "... and 11 more problems") {
		t.Errorf("no count of the problems left out:\n%s", msg)
	}
}

func TestParseTaskFile(t *testing.T) {
	data := `{"tasks": [
	  {"func": "echo", "args": {"value": [1, -2, 3.5, 9007199254740993, 18446744073709551615, "s", true, null, {"k": 1}]}},
	  {"id": "sq", "map": "pow", "args": [{"base": 2, "exp": 3}, null], "chunksize": 2, "timeout": "1.5s", "retries": 0},
	  {"id": "s", "func": "sleep", "timeout": "500ms", "retries": 2},
	  {"map": "echo", "args": []},
	  {"func": "echo", "args": null}
	]}`
	tf, err := ParseTaskFile("t.json", []byte(data), testKnown)
	if err != nil {
		t.Fatal(err)
	}
	if tf.Results != 5 || len(tf.Entries) != 5 {
		t.Fatalf("%d results in %d entries, want 5 in 5", tf.Results, len(tf.Entries))
	}
	e0, sq, s, empty, null := tf.Entries[0], tf.Entries[1], tf.Entries[2], tf.Entries[3], tf.Entries[4]

	wantArgs := map[string]any{"value": []any{int64(1), int64(-2), 3.5, int64(9007199254740993),
		uint64(18446744073709551615), "s", true, nil, map[string]any{"k": int64(1)}}}
	if e0.ID != "0" || e0.Func != "echo" || e0.IsMap || e0.Line != 2 || e0.First != 0 || !reflect.DeepEqual(plainArgs(t, e0.Args), wantArgs) {
		t.Errorf("entry 0 = %+v\nargs %#v", e0, e0.Args)
	}
	if e0.Timeout != 0 || e0.HasTimeout || e0.HasRetries || e0.HasRetryOn {
		t.Errorf("entry 0 has options it was not given: %+v", e0)
	}
	wantMap := []any{map[string]any{"base": int64(2), "exp": int64(3)}, nil}
	if sq.ID != "sq" || sq.Func != "pow" || !sq.IsMap || sq.ChunkSize != 2 || sq.Timeout != 1500*time.Millisecond ||
		!sq.HasRetries || sq.Retries != 0 || sq.First != 1 || sq.Line != 3 || !reflect.DeepEqual(plainArgs(t, sq.MapArgs), wantMap) {
		t.Errorf("map entry = %+v", sq)
	}
	if got := []string{sq.ResultID(0), sq.ResultID(1)}; !reflect.DeepEqual(got, []string{"sq[0]", "sq[1]"}) {
		t.Errorf("map result ids %q", got)
	}
	if s.ID != "s" || s.Timeout != 500*time.Millisecond || !s.HasRetries || s.Retries != 2 || s.First != 3 || s.ResultID(0) != "s" {
		t.Errorf("entry 2 = %+v", s)
	}
	if empty.Count() != 0 || empty.First != 4 || empty.ID != "3" {
		t.Errorf("empty map entry = %+v", empty)
	}
	if null.Args != nil || null.First != 4 || null.ID != "4" || null.Line != 6 {
		t.Errorf("entry 4 = %+v", null)
	}
}

// TestParseTaskFileOptions: a timeout of 0 is no limit, set (unlike no
// timeout, the pool's default); retry_on lists kinds, [] none.
func TestParseTaskFileOptions(t *testing.T) {
	data := `[
	  {"func": "echo", "timeout": "0"},
	  {"func": "echo", "timeout": "0s", "retry_on": ["exit_status", "timeout"]},
	  {"map": "echo", "args": [1], "retry_on": []},
	  {"func": "echo"}
	]`
	tf, err := ParseTaskFile("t.json", []byte(data), testKnown)
	if err != nil {
		t.Fatal(err)
	}
	e := tf.Entries
	if !e[0].HasTimeout || e[0].Timeout != 0 || !e[1].HasTimeout || e[1].Timeout != 0 || e[3].HasTimeout {
		t.Errorf("timeouts: %+v, %+v, %+v", e[0], e[1], e[3])
	}
	if !e[1].HasRetryOn || !reflect.DeepEqual(e[1].RetryOn, []poold.Kind{poold.KindExitStatus, poold.KindTimeout}) ||
		!e[2].HasRetryOn || len(e[2].RetryOn) != 0 || e[0].HasRetryOn {
		t.Errorf("retry_on: %+v, %+v, %+v", e[0], e[1], e[2])
	}
	// With --worker-cmd (no known names), the worker's own kinds go.
	tf, err = ParseTaskFile("t.json", []byte(`[{"func": "custom", "retry_on": ["rate_limited"]}]`), nil)
	if err != nil || !reflect.DeepEqual(tf.Entries[0].RetryOn, []poold.Kind{"rate_limited"}) {
		t.Errorf("a custom kind with --worker-cmd: %+v, %v", tf, err)
	}
	if _, err := ParseTaskFile("t.json", []byte(`[{"func": "custom", "retry_on": ["Bad Kind"]}]`), nil); err == nil {
		t.Errorf("a kind that is not a kind name was accepted")
	}
}

func TestParseTaskFileEmptyLists(t *testing.T) {
	for _, data := range []string{`[]`, `{"tasks": []}`, " [ ] \n"} {
		tf, err := ParseTaskFile("t.json", []byte(data), testKnown)
		if err != nil || tf.Results != 0 || len(tf.Entries) != 0 {
			t.Errorf("%q: %+v, %v; want no tasks and no error", data, tf, err)
		}
	}
}

func TestParseTaskFileUnknownNamesWithoutRegistry(t *testing.T) {
	// With --worker-cmd the names are the workers' business: nil skips the
	// check, but a func must still be given.
	tf, err := ParseTaskFile("t.json", []byte(`[{"func": "custom"}]`), nil)
	if err != nil || tf.Entries[0].Func != "custom" {
		t.Errorf("got %+v, %v", tf, err)
	}
	_, err = ParseTaskFile("t.json", []byte(`[{"args": 1}]`), nil)
	if err == nil || !strings.Contains(err.Error(), `missing "func"`) || strings.Contains(err.Error(), "known task names") {
		t.Errorf("missing func without a registry: %v", err)
	}
}

func TestPosition(t *testing.T) {
	data := []byte("ab\ncdé\nf")
	for _, tt := range []struct {
		off  int
		want string
	}{
		{0, "line 1, column 1"},
		{2, "line 1, column 3"},
		{3, "line 2, column 1"},
		{7, "line 2, column 4"}, // after the two bytes of é
		{8, "line 3, column 1"},
		{100, "line 3, column 2"},
		{-5, "line 1, column 1"},
	} {
		if got := position(data, tt.off); got != tt.want {
			t.Errorf("position(%d) = %q, want %q", tt.off, got, tt.want)
		}
	}
}

// plainArgs turns arguments as an entry holds them (msgpack, poold.Raw, or
// Go values) into Go values with the types that convert gives: int64 (or
// uint64 beyond it), float64, string, bool, nil, []any, map[string]any.
func plainArgs(t *testing.T, v any) any {
	t.Helper()
	switch v := v.(type) {
	case poold.Raw:
		x, err := decodeAny(v)
		if err != nil {
			t.Fatalf("args %x: %v", []byte(v), err)
		}
		return plainArgs(t, x)
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = plainArgs(t, v[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = plainArgs(t, x)
		}
		return out
	case int8:
		return int64(v)
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case uint8:
		return int64(v)
	case uint16:
		return int64(v)
	case uint32:
		return int64(v)
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v)
		}
		return v
	case float32:
		return float64(v)
	}
	return v
}
