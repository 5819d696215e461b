package tasks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// SHA256Args are the arguments of "sha256": exactly one of Data (hash these
// bytes) and Path (hash this file). Pointers tell "" from absent.
type SHA256Args struct {
	Data *string `json:"data,omitempty"`
	Path *string `json:"path,omitempty"`
}

func sha256Task(ctx context.Context, a SHA256Args) (string, error) {
	if (a.Data == nil) == (a.Path == nil) {
		return "", BadArgs("want exactly one of the fields \"data\" and \"path\"")
	}
	h := sha256.New()
	if a.Data != nil {
		h.Write([]byte(*a.Data))
	} else {
		f, err := os.Open(*a.Path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader stops reading once ctx is done, so that hashing a huge file
// can be cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// ExecArgs are the arguments of "exec": the program and its arguments (no
// shell is involved), its standard input, and its working directory (the
// worker's if empty).
type ExecArgs struct {
	Argv  []string `json:"argv"`
	Stdin string   `json:"stdin,omitempty"`
	Dir   string   `json:"dir,omitempty"`
}

// ExecResult is the result of "exec". A program that ran is a success
// whatever its exit status: ExitCode is its exit code, or -1 if a signal
// ended it, and Signal then names the signal ("killed", "segmentation
// fault": the strings of syscall.Signal).
type ExecResult struct {
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	Signal   string `json:"signal,omitempty"`
}

// execWaitDelay bounds how long exec waits, after the program exits or is
// killed, for its output pipes to close: a grandchild that inherited them
// could otherwise hold the task open indefinitely.
const execWaitDelay = 2 * time.Second

// execTask runs a program. Cancelling ctx kills it (the program only, not
// its own children: the pool kills a worker's whole process group when it
// has to). Failing to start it, e.g. not found, is an error.
func execTask(ctx context.Context, a ExecArgs) (ExecResult, error) {
	if len(a.Argv) == 0 || a.Argv[0] == "" {
		return ExecResult{}, BadArgs("field \"argv\": want a non-empty array of strings, the program first")
	}
	cmd := exec.CommandContext(ctx, a.Argv[0], a.Argv[1:]...)
	cmd.Dir = a.Dir
	if a.Stdin != "" {
		cmd.Stdin = strings.NewReader(a.Stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = execWaitDelay

	err := cmd.Run()
	if cmd.ProcessState == nil { // it never started
		return ExecResult{}, err
	}
	if err != nil && ctx.Err() != nil {
		return ExecResult{}, ctx.Err()
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) && !errors.Is(err, exec.ErrWaitDelay) {
		return ExecResult{}, err
	}
	res := ExecResult{
		ExitCode: cmd.ProcessState.ExitCode(),
		Stdout:   stdout.String(),
		Stderr:   stderr.String(),
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Signal = ws.Signal().String()
	}
	return res, nil
}

// PrintArgs are the arguments of "print". Times defaults to 1.
type PrintArgs struct {
	Text  string `json:"text"`
	Times *int   `json:"times,omitempty"`
}

// maxPrintTimes bounds "print"'s loop.
const maxPrintTimes = 1_000_000

// printTask writes Text, newline-terminated, Times times to standard output
// and as many times to standard error, and returns the bytes written to
// standard output. It writes to the file descriptors, as any task code
// might: capturing them is the worker's business.
func printTask(ctx context.Context, a PrintArgs) (int, error) {
	times := 1
	if a.Times != nil {
		times = *a.Times
	}
	if times < 0 || times > maxPrintTimes {
		return 0, BadArgs("field \"times\": want an integer from 0 to %d, got %d", maxPrintTimes, times)
	}
	line := a.Text
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	total := 0
	for range times {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := io.WriteString(os.Stdout, line)
		total += n
		if err != nil {
			return total, err
		}
		if _, err := io.WriteString(os.Stderr, line); err != nil {
			return total, err
		}
	}
	return total, nil
}
