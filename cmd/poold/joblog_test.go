package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readJobLog: the header and lines it cannot read are skipped, the id comes
// from the Command column (\0 read as a newline only where the JSON needs
// it: a string may hold the text \0), the last line of an id
// wins, and --resume-failed counts only Exitval 0 and Signal 0 as done.
func TestReadJobLog(t *testing.T) {
	log := jobLogHeader +
		"1\t:\t1.000\t     0.000\t0\t0\t0\t0\t{\"id\":\"a\",\"func\":\"echo\",\"args\":null}\t1\t1\tok\n" +
		"2\t:\t1.000\t     0.000\t0\t0\t3\t0\t{\"id\":\"b\",\"func\":\"exec\",\"args\":null}\t1\t1\texit_status\n" +
		"3\t:\t1.000\t     0.000\t0\t0\t1\t9\t{\"id\":\"c\\\\0d\",\"func\":\"x\",\"args\":null}\t1\t1\texit_status\n" + // the id c\0d
		"7\t:\t1.000\t     0.000\t0\t0\t0\t0\t{\"id\":\"f\",\\0\"func\":\"x\"}\t1\t1\tok\n" + // a newline written \0
		"2\t:\t1.000\t     0.000\t0\t0\t0\t0\t{\"id\":\"b\",\"func\":\"exec\",\"args\":null}\t1\t2\tok\n" +
		"4\t:\t1.000\t     0.000\t0\t0\t-1\t0\t{\"id\":\"e\",\"func\":\"sleep\",\"args\":null}\t1\t1\ttimeout\n" +
		"5\t:\t1.0\n" + // cut short
		"6\t:\t1.000\t     0.000\t0\t0\t0\t0\techo 6\n" // parallel's own line: no id
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		failedOnly bool
		want       resumeSet
	}{
		{false, resumeSet{"a": true, "b": true, `c\0d`: true, "e": true, "f": true}},
		{true, resumeSet{"a": true, "b": true, `c\0d`: false, "e": false, "f": true}},
	} {
		got, err := readJobLog("+"+path, c.failedOnly)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(c.want) {
			t.Errorf("failedOnly=%v: %v, want %v", c.failedOnly, got, c.want)
		}
		for id, done := range c.want {
			if got[id] != done {
				t.Errorf("failedOnly=%v: %q done %v, want %v", c.failedOnly, id, got[id], done)
			}
		}
	}
	if got, err := readJobLog(filepath.Join(t.TempDir(), "none"), false); err != nil || len(got) != 0 {
		t.Errorf("a missing log: %v, %v; want empty", got, err)
	}
}

// TestJobLogArgs: the Command column has a task's arguments as JSON, keys
// in order, as they were given, for a task and for a map entry's items
// (whose arguments the quick parser keeps as msgpack).
func TestJobLogArgs(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tasks.json")
	log := filepath.Join(dir, "job.log")
	tasks := `[{"id": "a", "func": "echo", "args": {"value": {"z": 1, "a": [1, 2.5, "s\u00e9", null, true]}}},
	  {"id": "m", "map": "echo", "args": [{"value": 1}, null]}]`
	if err := os.WriteFile(file, []byte(tasks), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-n", "1", "--joblog", log, file}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for line := range strings.Lines(string(data)) {
		if cols := strings.Split(line, "\t"); len(cols) > 8 && cols[0] != "Seq" {
			got[cols[8]] = true
		}
	}
	for _, want := range []string{
		`{"id":"a","func":"echo","args":{"value":{"a":[1,2.5,"sé",null,true],"z":1}}}`,
		`{"id":"m[0]","func":"echo","args":{"value":1}}`,
		`{"id":"m[1]","func":"echo","args":null}`,
	} {
		if !got[want] {
			t.Errorf("no Command %s in the job log:\n%s", want, data)
		}
	}
}
