package integration_test

import (
	"bufio"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"
)

// TestTableFitsTheTerminal: on a terminal of 60 columns, every line of the
// table fits: the result column is cut, not the ones before it.
func TestTableFitsTheTerminal(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a long value ", 20)
	tasks := []task{
		{ID: "short", Func: "echo", Args: map[string]any{"value": "x"}},
		{ID: "long", Func: "echo", Args: map[string]any{"value": long}},
		{ID: "fails", Func: "crash", Args: map[string]any{"mode": "panic"}},
	}
	file := writeTasks(t, tasks)
	cmd := exec.Command(pooldBin, "-n", "1", file)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 60})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
		}
	}()
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case <-waitErr:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("poold did not finish")
	}
	// The slave side closed with poold: the reader gets what is left, then
	// EIO. Closing the master before would drop output still buffered.
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("the terminal's output did not end after poold exited")
	}
	f.Close()
	<-done
	row := regexp.MustCompile(`^ +[0-9]+  `)
	rows := 0
	for _, l := range lines {
		if !row.MatchString(l) {
			continue
		}
		rows++
		if n := utf8.RuneCountInString(l); n > 60 {
			t.Errorf("a table line of %d columns on a terminal of 60: %q", n, l)
		}
	}
	if rows != 3 {
		t.Errorf("%d table rows, want 3; output:\n%s", rows, strings.Join(lines, "\n"))
	}
}
