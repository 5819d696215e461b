package tasks

import (
	"slices"
	"strings"
	"testing"
)

// TestBuiltinDocs: every built-in task is described, with a summary, a
// result, and every argument's type, default and meaning.
func TestBuiltinDocs(t *testing.T) {
	docs := Builtins()
	var names []string
	for _, d := range docs {
		names = append(names, d.Name)
		if d.Summary == "" || d.Result == "" {
			t.Errorf("task %s: no summary or no result", d.Name)
		}
		for _, f := range d.Fields() {
			if f.Type == "" || f.Default == "" {
				t.Errorf("task %s, field %s: type %q, default %q", d.Name, f.Name, f.Type, f.Default)
			}
			if f.Doc == "" {
				t.Errorf("task %s, field %s: no doc tag", d.Name, f.Name)
			}
		}
	}
	if !slices.Equal(names, builtins().Names()) {
		t.Errorf("described %v, registered %v (both sorted)", names, builtins().Names())
	}
	for _, d := range docs {
		if d.Name != "crash" {
			continue
		}
		for _, m := range crashModes {
			if !strings.Contains(d.Fields()[0].Doc, m) {
				t.Errorf("crash: the doc of mode does not name mode %s: %q", m, d.Fields()[0].Doc)
			}
		}
	}
}

func TestFieldDocs(t *testing.T) {
	want := map[string][]FieldDoc{
		"exec": {
			{"argv", "array of strings", "required", "the program, then its arguments; no shell; a name without a slash is looked up in PATH"},
			{"stdin", "string", `""`, "the program's standard input"},
			{"dir", "string", "the worker's", "the program's working directory"},
		},
		"echo":  {{"value", "any", "null", "what to return"}},
		"print": {{"text", "string", `""`, "the line to write; a newline is added if it has none"}, {"times", "integer", "1", "how many times, from 0 to 1000000"}},
		"sleep": {{"seconds", "number", "0", "how long, from 0 to about 292 years"}},
	}
	for _, d := range Builtins() {
		if w, ok := want[d.Name]; ok && !slices.Equal(d.Fields(), w) {
			t.Errorf("%s: got %+v, want %+v", d.Name, d.Fields(), w)
		}
	}
}
