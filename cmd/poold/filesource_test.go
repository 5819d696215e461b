package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// TestVerifier: the second pass gets the bytes the first hashed, and
// nothing else: a changed byte, a file that grew or shrank, stops it at
// the block where it is.
func TestVerifier(t *testing.T) {
	for _, size := range []int{0, 1, blockSize - 1, blockSize, blockSize + 1, 3*blockSize + 7} {
		data := bytes.Repeat([]byte("0123456789abcdef\n"), size/17+1)[:size]
		s := newSummer(iotest.HalfReader(bytes.NewReader(data)))
		if got, err := io.ReadAll(s); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: the first pass read %d bytes, %v", size, len(got), err)
		}
		if got, err := io.ReadAll(newVerifier(bytes.NewReader(data), s.fs)); err != nil || !bytes.Equal(got, data) {
			t.Errorf("size %d: the second pass read %d bytes, %v", size, len(got), err)
		}
		changed := func(what string, other []byte, from int64) {
			t.Helper()
			got, err := io.ReadAll(newVerifier(bytes.NewReader(other), s.fs))
			var ce *changedError
			if !errors.As(err, &ce) || ce.from != from {
				t.Errorf("size %d, %s: %v, want a change from byte %d", size, what, err, from)
			}
			if int64(len(got)) > from {
				t.Errorf("size %d, %s: %d bytes passed on, beyond the change at %d", size, what, len(got), from)
			}
		}
		changed("grown", append(bytes.Clone(data), 'x'), int64(size/blockSize*blockSize))
		if size > 0 {
			last := bytes.Clone(data)
			last[size-1] ^= 1
			changed("last byte changed", last, int64((size-1)/blockSize*blockSize))
			changed("shrunk", data[:size-1], int64((size-1)/blockSize*blockSize))
		}
	}
}

// echoFile writes a JSON array of n echo tasks whose values are their
// positions.
func echoFile(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("[\n")
	for i := range n {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `{"id": "t%d", "func": "echo", "args": {"value": %d}}`, i, i)
	}
	b.WriteString("\n]\n")
	path := filepath.Join(t.TempDir(), "tasks.json")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkEchoOutput checks that --json output has the n results of
// echoFile, each once.
func checkEchoOutput(t *testing.T, out string, n int) {
	t.Helper()
	seen := make([]bool, n)
	count := 0
	for line := range strings.Lines(out) {
		var r struct {
			ID     string
			Index  int
			OK     bool
			Result int
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		if !r.OK || r.Index < 0 || r.Index >= n || seen[r.Index] || r.Result != r.Index || r.ID != fmt.Sprintf("t%d", r.Index) {
			t.Fatalf("result %q: not one of the file's, or twice", line)
		}
		seen[r.Index] = true
		count++
	}
	if count != n {
		t.Errorf("%d results, want %d", count, n)
	}
}

// TestRunFileTwoPasses: a file, standard input (copied), and a named pipe
// (copied) all run whole, in the same order of results as the file.
func TestRunFileTwoPasses(t *testing.T) {
	defer goleak.VerifyNone(t)
	const n = 3000
	path := echoFile(t, n)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-n", "2", "--json", path}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("a file: exit status %d; stderr:\n%s", code, stderr.String())
	}
	checkEchoOutput(t, stdout.String(), n)

	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"-n", "2", "--json", "-"}, bytes.NewReader(data), &stdout, &stderr); code != 0 {
		t.Fatalf("stdin: exit status %d; stderr:\n%s", code, stderr.String())
	}
	checkEchoOutput(t, stdout.String(), n)

	fifo := filepath.Join(t.TempDir(), "fifo.json")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			f.Write(data)
			f.Close()
		}
	}()
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"-n", "2", "--json", fifo}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("a named pipe: exit status %d; stderr:\n%s", code, stderr.String())
	}
	checkEchoOutput(t, stdout.String(), n)
}

// TestFileChangedBetweenPasses: a file written over after the first pass
// is refused before anything runs.
func TestFileChangedBetweenPasses(t *testing.T) {
	path := echoFile(t, 10)
	in, first, done, err := openTaskFile(path, "tasks.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer in.f.Close()
	if _, err := io.ReadAll(first); err != nil || done() != nil {
		t.Fatal(err)
	}
	if err := in.unchanged(); err != nil {
		t.Fatalf("unchanged: %v", err)
	}
	if err := os.WriteFile(path, []byte(`[{"func": "echo"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(path, time.Now(), time.Now().Add(time.Hour))
	if err := in.unchanged(); err == nil || !strings.Contains(err.Error(), "tasks.json changed while it was being checked") {
		t.Errorf("unchanged after a change: %v", err)
	}
}

// TestIDCollision: two ids with one hash are told apart by the exact
// check, which finds no duplicate; a real duplicate far from the first is
// found, as before.
func TestIDCollision(t *testing.T) {
	path := echoFile(t, 2000)
	data, _ := os.ReadFile(path)
	c := newChecker("t.json", testKnown, false)
	res, err := newWalker(bytes.NewReader(data)).walk(c.entry)
	if err != nil || len(c.twice) != 0 {
		t.Fatalf("walk: %v, %d hashes seen twice", err, len(c.twice))
	}
	// As if t5 and t1500 had one hash.
	c.twice = map[uint64]bool{c.ids.hash([]byte("t5")): true, c.ids.hash([]byte("t1500")): true}
	reread := func() (io.Reader, error) { return bytes.NewReader(data), nil }
	if tf, err := c.finish(res, err, reread); err != nil || tf.Results != 2000 {
		t.Errorf("a collision: %+v, %v; want the file, no error", tf, err)
	}

	dup := bytes.Replace(data, []byte(`"id": "t1999"`), []byte(`"id": "t3"`), 1)
	_, err = ParseTaskFile("t.json", dup, testKnown)
	if err == nil || err.Error() != `t.json: entry 1999 (id "t3", line 2001): duplicate id "t3", also used by entry 3` {
		t.Errorf("a duplicate: %v", err)
	}
}

// TestStdinCopy: standard input is copied to a temporary file that is
// gone at once; with no temporary file to be had, it is read into memory
// and runs all the same.
func TestStdinCopy(t *testing.T) {
	data, err := os.ReadFile(echoFile(t, 500))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-n", "1", "--json", "-"}, bytes.NewReader(data), &stdout, &stderr); code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", code, stderr.String())
	}
	checkEchoOutput(t, stdout.String(), 500)
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in $TMPDIR: %v", left)
	}

	t.Setenv("TMPDIR", filepath.Join(tmp, "no such directory"))
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"-n", "1", "--json", "-"}, bytes.NewReader(data), &stdout, &stderr); code != 0 {
		t.Fatalf("no temporary file: exit status %d; stderr:\n%s", code, stderr.String())
	}
	checkEchoOutput(t, stdout.String(), 500)
	stderr.Reset()
	bad := bytes.Replace(data, []byte(`"func": "echo", "args": {"value": 7}`), []byte(`"func": "echo", "args": {"value": 7}, "x": 1`), 1)
	if code := run([]string{"-n", "1", "--json", "-"}, bytes.NewReader(bad), io.Discard, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), `poold: stdin: entry 7 (id "t7", line 9): unknown key "x"`) {
		t.Errorf("no temporary file, a bad entry: exit %d, stderr:\n%s", code, stderr.String())
	}
}
