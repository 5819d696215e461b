package main

import (
	"os"
	"path/filepath"
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
