package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/poold/poold/internal/kind"
)

// SHA256Args are the arguments of "sha256": exactly one of Data (hash these
// bytes) and Path (hash this file). Pointers tell "" from absent.
type SHA256Args struct {
	Data *string `json:"data,omitempty" default:"none" doc:"hash these bytes (the string's UTF-8); give exactly one of data and path"`
	Path *string `json:"path,omitempty" default:"none" doc:"hash this file, on the worker's machine"`
}

func (SHA256Args) about() (string, string) {
	return "hash a string or a file",
		"a string, the SHA-256 digest in lowercase hex"
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
	Argv  []string `json:"argv" default:"required" doc:"the program, then its arguments; no shell; a name without a slash is looked up in PATH"`
	Stdin string   `json:"stdin,omitempty" doc:"the program's standard input"`
	Dir   string   `json:"dir,omitempty" default:"the worker's" doc:"the program's working directory"`
}

func (ExecArgs) about() (string, string) {
	return "run a program",
		"{exit_code: 0, stdout, stderr} when it exits with status 0. Any other " +
			"end fails with kind exit_status, whose detail is {exit_code (-1 for a " +
			"signal), signal (\"SIGKILL\", ...), stdout, stderr}. Of each output the " +
			"first and last 2 MiB are kept, with a line saying how much was cut"
}

// ExecResult is the result of "exec", a program that exited with status 0.
// Any other end is an [ExitError].
type ExecResult struct {
	ExitCode int    `json:"exit_code"` // always 0: kept for readers of the older result
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
}

// ExitError is the error of "exec" when the program exited with a status
// other than 0 or was killed by a signal. Its kind is "exit_status"; its
// detail, the ExitDetail, says how it ended and what it wrote.
type ExitError struct{ ExitDetail }

// ExitDetail is what an [ExitError] carries to the caller, as the detail of
// the task's error.
type ExitDetail struct {
	ExitCode int    `json:"exit_code"`        // -1 when a signal ended the program
	Signal   string `json:"signal,omitempty"` // the signal that ended it: "SIGKILL", ...
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
}

// Error says "exit status 3" or "killed by signal SIGKILL", then the last
// line the program wrote to stderr, if any: what a person reads first.
func (e *ExitError) Error() string {
	msg := fmt.Sprintf("exit status %d", e.ExitCode)
	if e.Signal != "" {
		msg = "killed by signal " + e.Signal
	}
	if line := lastLine(e.Stderr); line != "" {
		msg += ": " + line
	}
	return msg
}

// Kind is the task failure kind the worker reports for e.
func (e *ExitError) Kind() string { return kind.ExitStatus.String() }

// Detail is what the worker sends with e: the ExitDetail, as a msgpack map.
func (e *ExitError) Detail() any { return e.ExitDetail }

// lastLine is the last line of s that is not blank, trimmed.
func lastLine(s string) string {
	s = strings.TrimRight(s, " \t\r\n")
	return strings.TrimSpace(s[strings.LastIndexByte(s, '\n')+1:])
}

// execWaitDelay bounds how long exec waits, after the program exits or is
// killed, for its output pipes to close: a grandchild that inherited them
// could otherwise hold the task open indefinitely.
const execWaitDelay = 2 * time.Second

// maxExecOutput bounds what exec keeps of each of the program's stdout and
// stderr, as the worker bounds what a task prints: the first and the last
// half of it, with a line saying how much was cut between them.
const maxExecOutput = 4 << 20

// execTask runs a program. Cancelling ctx kills it (the program only, not
// its own children: the pool kills a worker's whole process group when it
// has to). Failing to start it, e.g. not found, is an error; so is any end
// but exit status 0, an *ExitError.
func execTask(ctx context.Context, a ExecArgs) (ExecResult, error) {
	if len(a.Argv) == 0 || a.Argv[0] == "" {
		return ExecResult{}, BadArgs("field \"argv\": want a non-empty array of strings, the program first")
	}
	cmd := exec.CommandContext(ctx, a.Argv[0], a.Argv[1:]...)
	cmd.Dir = a.Dir
	if a.Stdin != "" {
		cmd.Stdin = strings.NewReader(a.Stdin)
	}
	stdout, stderr := newCappedBuffer(maxExecOutput), newCappedBuffer(maxExecOutput)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = execWaitDelay
	cmd.SysProcAttr = execProcAttr()

	runtime.LockOSThread() // the Pdeathsig of execProcAttr follows this thread
	err := cmd.Run()
	runtime.UnlockOSThread()
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
	res := ExecResult{Stdout: stdout.String(), Stderr: stderr.String()}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		d := ExitDetail{ExitCode: code, Stdout: res.Stdout, Stderr: res.Stderr}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			d.Signal = signalName(ws.Signal())
		}
		return ExecResult{}, &ExitError{d}
	}
	return res, nil
}

// signalName is "SIGKILL" for SIGKILL, and so on.
func signalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return sig.String()
}

// cappedBuffer keeps the first and the last max/2 bytes written to it, and
// counts the rest.
type cappedBuffer struct {
	half  int
	head  []byte // the first half bytes
	tail  []byte // what followed, of which the last half bytes count
	total int64
}

func newCappedBuffer(max int) *cappedBuffer { return &cappedBuffer{half: max / 2} }

func (b *cappedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	b.total += int64(n)
	if room := b.half - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head, p = append(b.head, p[:k]...), p[k:]
	}
	if len(p) >= b.half {
		b.tail = append(b.tail[:0], p[len(p)-b.half:]...)
		return n, nil
	}
	b.tail = append(b.tail, p...)
	if len(b.tail) > 2*b.half { // keep the last half, in a buffer that stops growing
		b.tail = b.tail[:copy(b.tail, b.tail[len(b.tail)-b.half:])]
	}
	return n, nil
}

// String is everything written when it fits, else the first and the last
// half with a line between them saying how much was cut.
func (b *cappedBuffer) String() string {
	kept := int64(len(b.head) + len(b.tail))
	if kept == b.total {
		return string(b.head) + string(b.tail)
	}
	tail := b.tail[len(b.tail)-b.half:]
	cut := b.total - int64(len(b.head)+len(tail))
	return fmt.Sprintf("%s\n[poold: exec: %d of %d bytes cut here]\n%s", b.head, cut, b.total, tail)
}

// PrintArgs are the arguments of "print". Times defaults to 1.
type PrintArgs struct {
	Text  string `json:"text" doc:"the line to write; a newline is added if it has none"`
	Times *int   `json:"times,omitempty" default:"1" doc:"how many times, from 0 to 1000000"`
}

func (PrintArgs) about() (string, string) {
	return "write a line to stdout and to stderr, to see what is captured",
		"an integer, the bytes written to stdout (the output comes with the result)"
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
