package integration_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// progressTasks writes 2,000 sleep tasks of 2 ms.
func progressTasks(t *testing.T) string {
	tasks := make([]task, 2000)
	for i := range tasks {
		tasks[i] = task{ID: fmt.Sprintf("t%d", i), Func: "sleep", Args: map[string]any{"seconds": 0.002}}
	}
	return writeTasks(t, tasks)
}

var (
	// escape is a terminal control sequence: mpb moves the cursor up and
	// clears the lines below to redraw the bar.
	escape      = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)
	progressBar = regexp.MustCompile(`^(\d+)/2000 done, (\d+) failed, (\d+) running, [0-9.]+/s +\[[=>-]+\] +(\d+) % ETA [0-9hms.]+$`)
	sleepRow    = regexp.MustCompile(`^ +[0-9]+  t[0-9]+ +sleep  ok +[0-9.]+(ms|µs|s)  0\.002$`)
	summaryLine = regexp.MustCompile(`^2000 tasks: 2000 ok, 0 failed; 4 worker pids used, 4 workers started; wall time \S+$`)
	// explainLine is one of the lines after the summary's counts.
	explainLine = regexp.MustCompile(`^(busy \(task time ÷ wall time\): pid |longest: t\d+ sleep |CPU: .* of CPU in )`)
)

// runOnPty runs poold with stdout and stderr both on one pseudo-terminal,
// as a user at a terminal does, and returns what it wrote there.
func runOnPty(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(pooldBin, args...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var screen bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(&screen, f) // ends with EIO when poold exits
	}()
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Errorf("poold: %v", err)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("poold did not finish in 20 s")
	}
	<-done
	return screen.Bytes()
}

// TestProgressBarOnTerminal: on a terminal, a bar with a percentage and an
// ETA is drawn and moves, the result rows scroll above it whole, and the
// summary follows.
func TestProgressBarOnTerminal(t *testing.T) {
	t.Parallel()
	screen := runOnPty(t, "-n", "4", progressTasks(t))
	lines := strings.Split(escape.ReplaceAllString(string(screen), ""), "\n")
	percents := map[int]bool{}
	bars, rows, summaries, explains := 0, 0, 0, 0
	for _, l := range lines {
		l = strings.TrimRight(l, "\r")
		switch {
		case l == "", strings.HasPrefix(l, "poold: 2000 tasks on 4 workers"), strings.HasPrefix(l, "    PID  ID"):
		case sleepRow.MatchString(l):
			rows++
		case summaryLine.MatchString(l):
			summaries++
		case explainLine.MatchString(l):
			explains++
		case progressBar.MatchString(l):
			bars++
			pct, _ := strconv.Atoi(progressBar.FindStringSubmatch(l)[4])
			percents[pct] = true
		default:
			t.Errorf("a line that is neither a whole row, the bar, nor the header or summary (torn?): %q", l)
		}
	}
	if rows != 2000 {
		t.Errorf("%d whole table rows, want 2000", rows)
	}
	if summaries != 1 {
		t.Errorf("%d summary lines, want 1", summaries)
	}
	if explains != 3 {
		t.Errorf("%d lines explaining the run after the summary, want 3 (busy, longest, CPU)", explains)
	}
	if bars < 2 || len(percents) < 2 {
		t.Errorf("the bar was drawn %d times with %d different percentages, want it to move (at least 2)", bars, len(percents))
	}
	if t.Failed() {
		t.Logf("screen (last 3,000 bytes): %q", screen[max(0, len(screen)-3000):])
	}
}

// TestProgressNoneOffTerminal: with stderr to a file, no bar and no
// escape sequences there; --no-progress hides it on a terminal too.
func TestProgressNoneOffTerminal(t *testing.T) {
	t.Parallel()
	file := progressTasks(t)
	errPath := filepath.Join(t.TempDir(), "stderr")
	errFile, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	var stdout bytes.Buffer
	cmd := exec.Command(pooldBin, "-n", "4", file)
	cmd.Stdout, cmd.Stderr = &stdout, errFile
	if err := cmd.Run(); err != nil {
		t.Fatalf("poold: %v", err)
	}
	stderr, err := os.ReadFile(errPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"\x1b", "ETA", "[=", "=>", "done,"} {
		if bytes.Contains(stderr, []byte(s)) {
			t.Errorf("stderr to a file holds %q: %q", s, stderr)
		}
	}
	if n := strings.Count(stdout.String(), "\n"); n != 2006 {
		t.Errorf("stdout has %d lines, want 2006 (header, columns, 2000 rows, the summary's 4 lines)", n)
	}

	screen := runOnPty(t, "--no-progress", "-n", "4", file)
	for _, s := range []string{"ETA", "[=", "done,"} {
		if bytes.Contains(screen, []byte(s)) {
			t.Errorf("with --no-progress the terminal shows %q", s)
		}
	}
}

// TestProgressStream: for a stream, whose total is unknown, the bar says
// how many are done so far, and the rows stay whole.
func TestProgressStream(t *testing.T) {
	t.Parallel()
	var in strings.Builder
	for i := range 500 {
		fmt.Fprintf(&in, `{"id":"t%d","func":"sleep","args":{"seconds":0.002}}`+"\n", i)
	}
	screen := runOnPty(t, "-n", "4", writeFile(t, "tasks.jsonl", in.String()))
	streamRow := regexp.MustCompile(`^ +[0-9]+  t[0-9]+ +sleep +ok +[0-9.]+(ms|µs|s)  0\.002$`) // a stream's columns are wider
	streamBar := regexp.MustCompile(`^(\d+) done, 0 failed, \d+ running, [0-9.]+/s +\S+ *$`)
	bars, rows := 0, 0
	for _, l := range strings.Split(escape.ReplaceAllString(string(screen), ""), "\n") {
		l = strings.TrimRight(l, "\r")
		switch {
		case l == "", strings.HasPrefix(l, "poold: streaming tasks from"), strings.HasPrefix(l, "    PID  ID"),
			strings.HasPrefix(l, "500 tasks: 500 ok, 0 failed;"), explainLine.MatchString(l):
		case streamRow.MatchString(l):
			rows++
		case streamBar.MatchString(l):
			bars++
		default:
			t.Errorf("a line that is neither a whole row, the bar, nor the header or summary (torn?): %q", l)
		}
	}
	if rows != 500 || bars < 1 {
		t.Errorf("%d whole rows (want 500), the bar drawn %d times (want at least 1)", rows, bars)
	}
}
