package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/poold/poold"
)

// The job log (--joblog) is GNU parallel's: a header line, then one line a
// task as it finishes, tab-separated. poold adds three columns of its own
// after Command (Pid, Attempts, Kind); parallel's --resume and
// --resume-failed read only the first eight.
const jobLogHeader = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\tPid\tAttempts\tKind\n"

// jobLog writes the job log. Each line is one write to the file, so that a
// run killed halfway leaves a log of what finished.
type jobLog struct {
	f    *os.File
	path string
	err  error // the first write error, reported once
}

// jobLogPath splits --joblog's value: "+FILE" appends to FILE.
func jobLogPath(arg string) (path string, appendTo bool) {
	if p, ok := strings.CutPrefix(arg, "+"); ok {
		return p, true
	}
	return arg, false
}

// openJobLog opens the job log: it appends with "+FILE" or when resuming
// (as GNU parallel does), else it truncates. A file that is empty or new
// gets the header.
func openJobLog(arg string, resume bool) (*jobLog, error) {
	path, appendTo := jobLogPath(arg)
	flags := os.O_WRONLY | os.O_CREATE
	if appendTo || resume {
		flags |= os.O_APPEND
	} else {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--joblog: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() == 0 {
		_, err = f.WriteString(jobLogHeader)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("--joblog %s: %w", path, err)
	}
	return &jobLog{f: f, path: path}, nil
}

func (l *jobLog) Close() error { return l.f.Close() }

// jobCommand is the Command column: the task as JSON.
type jobCommand struct {
	ID   string `json:"id"`
	Func string `json:"func"`
	Args any    `json:"args"`
}

// write logs result j of entry e, whose output index is index.
func (l *jobLog) write(e *Entry, j, index int, res poold.Result[poold.Raw]) {
	var args any
	if e.IsMap {
		if j < len(e.MapArgs) {
			args = e.MapArgs[j]
		}
	} else {
		args = e.Args
	}
	if raw, ok := args.(poold.Raw); ok {
		args = resultJSON(raw) // the quick way keeps arguments as msgpack: the same JSON, as a map's keys in order
	}
	cmd, err := marshalErr(jobCommand{ID: e.ResultID(j), Func: e.Func, Args: args})
	if err != nil {
		cmd, _ = marshalErr(jobCommand{ID: e.ResultID(j), Func: e.Func})
	}
	start := res.Start
	if start.IsZero() {
		start = res.End
	}
	if start.IsZero() {
		start = time.Now()
	}
	exitval, sig := jobExit(res.Err)
	kind := "ok"
	if res.Err != nil {
		kind = string(errorKind(res.Err))
	}
	line := fmt.Sprintf("%d\t%s\t%.3f\t%10.3f\t0\t%d\t%d\t%d\t%s\t%d\t%d\t%s\n",
		index+1, hostName(res.Host), float64(start.UnixNano())/1e9, duration(res).Seconds(), len(res.Output),
		exitval, sig, strings.ReplaceAll(string(cmd), "\n", `\0`), res.PID, res.Attempts, kind)
	if _, err := l.f.WriteString(line); err != nil && l.err == nil {
		l.err = err
	}
}

// jobExit is a result's Exitval and Signal columns.
func jobExit(err error) (exitval, sig int) {
	if err == nil {
		return 0, 0
	}
	var we *poold.WorkerExitError
	if errors.As(err, &we) && we.Signal != 0 {
		sig = int(we.Signal)
	}
	var te *poold.TaskError
	kind := errorKind(err)
	switch kind {
	case poold.KindTimeout, poold.KindMemoryLimit, poold.KindCanceled:
		return -1, sig
	case poold.KindExitStatus:
		var d exitDetail
		if errors.As(err, &te) && te.Detail.Decode(&d) == nil {
			if d.Signal != "" {
				if n := unix.SignalNum(d.Signal); n != 0 {
					sig = int(n)
				}
				return 1, sig
			}
			if d.ExitCode != nil && *d.ExitCode > 0 {
				return *d.ExitCode, sig
			}
		}
	}
	return 1, sig
}

// resumeSet is what an existing job log says: for each task id, whether
// its last line counts as done.
type resumeSet map[string]bool

// readJobLog reads the job log for --resume (every task logged is done) or
// --resume-failed (only those with Exitval 0 and Signal 0). A log that
// does not exist yet is empty. Lines that cannot be read (a header, a line
// cut short) are skipped.
func readJobLog(arg string, failedOnly bool) (resumeSet, error) {
	path, _ := jobLogPath(arg)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return resumeSet{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--joblog: %w", err)
	}
	done := resumeSet{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<30)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 9 {
			continue
		}
		if _, err := strconv.Atoi(cols[0]); err != nil {
			continue // the header
		}
		var c struct {
			ID *string `json:"id"`
		}
		// Compact JSON has no newline to write as \0, and a JSON string may
		// hold the text \0 itself ("\\0"): read the column as it is, and
		// undo the \0 rule only if that fails.
		cmd := []byte(cols[8])
		if json.Unmarshal(cmd, &c) != nil {
			c.ID = nil
			if json.Unmarshal(bytes.ReplaceAll(cmd, []byte(`\0`), []byte("\n")), &c) != nil {
				continue
			}
		}
		if c.ID == nil {
			continue
		}
		done[*c.ID] = !failedOnly || (cols[6] == "0" && cols[7] == "0")
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--joblog %s: %w", path, err)
	}
	return done, nil
}

// skips says whether every result of e is done in the log. A map entry is
// skipped only when all of its items are; otherwise it runs whole.
func (s resumeSet) skips(e *Entry) bool {
	if s == nil || e.Bad != "" || e.Count() == 0 {
		return false
	}
	for j := range e.Count() {
		if !s[e.ResultID(j)] {
			return false
		}
	}
	return true
}
