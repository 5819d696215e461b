package conformance

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poold/poold/internal/ipc"
)

// ---------------------------------------------------------------------------
// A worker process.

// frame is what the reader of a worker's stdout got: a message, or the
// error that ended the stream (io.EOF at a clean end).
type frame struct {
	m   ipc.Message
	err error
}

type proc struct {
	t      *testing.T
	w      Worker
	cmd    *exec.Cmd
	stdin  *os.File
	wr     *ipc.Writer
	frames chan frame // closed after the one that ends the stream
	stderr *lockedBuffer
	exited chan struct{} // closed once the process is reaped
	first  ipc.Hello     // its first hello
	hello  ipc.Hello     // the hello that ended the handshake
}

// start starts the worker, without a handshake.
func start(t *testing.T, w Worker) *proc {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(w.Argv[0], w.Argv[1:]...)
	cmd.Env = append(os.Environ(), w.Env...)
	cmd.Stdin, cmd.Stdout = inR, outW
	p := &proc{t: t, w: w, cmd: cmd, stdin: inW, wr: ipc.NewWriter(inW, 0), frames: make(chan frame, 64),
		stderr: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	cmd.WaitDelay = 2 * time.Second // a child of a task holding stderr
	// A group of its own, as a pool starts it: the cleanup kills it whole.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		t.Fatalf("start %q: %v", w.Argv, err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer outR.Close()
		rd := ipc.NewReader(outR, 0)
		for {
			var m ipc.Message
			err := rd.Read(&m)
			p.frames <- frame{m, err}
			if err != nil {
				close(p.frames)
				return
			}
		}
	}()
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		p.stdin.Close()
		// Frames nobody read: drop them, until the reader ends.
		timeout := time.After(exitTimeout)
		frames := p.frames
		for _, done := range []<-chan struct{}{read, p.exited} {
			for done != nil {
				select {
				case <-done:
					done = nil
				case _, ok := <-frames:
					if !ok {
						frames = nil
					}
				case <-timeout:
					t.Errorf("worker pid %d: not gone %v after SIGKILL", cmd.Process.Pid, exitTimeout)
					return
				}
			}
		}
	})
	return p
}

// next returns the next frame of the worker, failing the test if none
// comes within stepTimeout or the stream ends.
func (p *proc) next(what string) *ipc.Message {
	p.t.Helper()
	f, ok := p.nextFrame(stepTimeout)
	switch {
	case !ok:
		p.fatalf("%s: no frame within %v", what, stepTimeout)
	case errors.Is(f.err, io.EOF):
		p.fatalf("%s: the worker closed its stdout", what)
	case f.err != nil:
		p.fatalf("%s: the worker wrote a frame that is not a valid message: %v", what, f.err)
	}
	return &f.m
}

// nextFrame waits up to d for the reader's next frame; ok is false if
// none came (or the stream had ended already).
func (p *proc) nextFrame(d time.Duration) (f frame, ok bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case f, ok = <-p.frames:
		return f, ok
	case <-timer.C:
		return frame{}, false
	}
}

func (p *proc) fatalf(format string, args ...any) {
	p.t.Helper()
	p.t.Fatalf("%s%s", fmt.Sprintf(format, args...), p.stderrTail())
}

func (p *proc) errorf(format string, args ...any) {
	p.t.Helper()
	p.t.Errorf("%s%s", fmt.Sprintf(format, args...), p.stderrTail())
}

func (p *proc) stderrTail() string {
	s := strings.TrimSpace(p.stderr.String())
	if s == "" {
		return ""
	}
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return "\nthe worker's stderr:\n" + s
}

// flush sends what the Writer holds.
func (p *proc) flush() {
	p.t.Helper()
	if err := p.wr.Flush(); err != nil {
		p.fatalf("writing to the worker's stdin: %v", err)
	}
}

// send sends tasks, in one write.
func (p *proc) send(tasks ...*ipc.Task) {
	p.t.Helper()
	for _, task := range tasks {
		if err := p.wr.WriteTask(task); err != nil {
			p.t.Fatalf("encoding task %d: %v", task.ID, err)
		}
	}
	p.flush()
}

// sendRaw writes b to the worker's stdin as it is.
func (p *proc) sendRaw(b []byte) {
	p.t.Helper()
	if _, err := p.stdin.Write(b); err != nil {
		p.fatalf("writing to the worker's stdin: %v", err)
	}
}

// envMode reports whether the worker is told by its environment that it
// is a worker (and so may skip the setup).
func (w Worker) envMode() bool {
	return slices.ContainsFunc(w.Env, func(kv string) bool { return strings.HasPrefix(kv, "POOLD_WORKER=") })
}

// readHello reads and checks a hello.
func (p *proc) readHello(what string) ipc.Hello {
	p.t.Helper()
	m := p.next(what)
	if m.Kind != ipc.KindHello {
		p.fatalf("%s: a %s message; the first frame of a worker, and its first after a setup, must be a hello", what, m.Kind)
	}
	h := m.Hello
	if h.Version != ipc.ProtocolVersion {
		p.fatalf("%s: protocol version %d, want %d", what, h.Version, ipc.ProtocolVersion)
	}
	if h.PID != p.cmd.Process.Pid {
		p.errorf("%s: pid %d; the process started is %d (a worker says its own pid)", what, h.PID, p.cmd.Process.Pid)
	}
	if h.CPUs < 0 {
		p.errorf("%s: %d CPUs", what, h.CPUs)
	}
	for _, name := range h.Tasks {
		if name == "" {
			p.errorf("%s: an empty task name in %q", what, h.Tasks)
		}
	}
	return h
}

// handshake reads the hello, answers a request for a setup with set (nil:
// all defaults) and reads the hello after it.
func (p *proc) handshake(set *ipc.Setup) {
	p.t.Helper()
	p.first = p.readHello("first hello")
	h := p.first
	if !h.Setup {
		if !p.w.envMode() {
			p.fatalf("first hello: setup false; a worker that no POOLD_WORKER environment started must ask for its setup")
		}
		p.hello = h
	} else {
		if set == nil {
			set = &ipc.Setup{}
		}
		if err := p.wr.WriteSetup(set); err != nil {
			p.t.Fatal(err)
		}
		p.flush()
		p.hello = p.readHello("hello after the setup")
		if p.hello.Setup {
			p.fatalf("hello after the setup: it asks for a setup again")
		}
		if p.hello.PID != h.PID {
			p.errorf("hello after the setup: pid %d, the first hello said %d", p.hello.PID, h.PID)
		}
	}
	if !slices.Contains(p.hello.Tasks, "echo") {
		p.fatalf("the hello names the tasks %q: a worker under the conformance test serves echo", p.hello.Tasks)
	}
}

func (p *proc) serves(name string) bool { return slices.Contains(p.hello.Tasks, name) }

// items reads the Results of task, which has calls calls: the items of
// all of them, in order, and how many Results carried them.
func (p *proc) items(task *ipc.Task, calls int) (items []ipc.Item, results int) {
	p.t.Helper()
	for len(items) < calls {
		m := p.next(fmt.Sprintf("result of task %d (%d of %d calls answered)", task.ID, len(items), calls))
		if m.Kind != ipc.KindResult {
			p.fatalf("task %d: a %s message instead of a result", task.ID, m.Kind)
		}
		r := &m.Result
		switch {
		case r.ID != task.ID:
			p.fatalf("a result for task %d while task %d awaits its calls %d…: results come in the order of the tasks", r.ID, task.ID, len(items))
		case r.From != len(items):
			p.fatalf("task %d: a result from call %d after %d calls answered: each result starts where the last ended", task.ID, r.From, len(items))
		case len(r.Items) == 0:
			p.fatalf("task %d: a result with no items", task.ID)
		case len(items)+len(r.Items) > calls:
			p.fatalf("task %d: %d items for %d calls", task.ID, len(items)+len(r.Items), calls)
		}
		items = append(items, r.Items...)
		results++
	}
	return items, results
}

// run sends one task and returns its items.
func (p *proc) run(task *ipc.Task) []ipc.Item {
	p.t.Helper()
	p.send(task)
	items, _ := p.items(task, len(task.Args))
	return items
}

// exit waits for the end of the worker's stdout and of the worker, which
// must come without another frame, and returns its exit status (-1 for
// a signal).
func (p *proc) exit(what string) int {
	p.t.Helper()
	f, ok := p.nextFrame(exitTimeout)
	switch {
	case !ok:
		p.fatalf("%s: the worker did not close its stdout within %v", what, exitTimeout)
	case f.err == nil:
		p.fatalf("%s: the worker wrote a %s message; it must write nothing more", what, f.m.Kind)
	case !errors.Is(f.err, io.EOF):
		p.fatalf("%s: the worker wrote bytes that are not a frame: %v", what, f.err)
	}
	select {
	case <-p.exited:
	case <-time.After(exitTimeout):
		p.fatalf("%s: the worker closed its stdout but did not exit within %v", what, exitTimeout)
	}
	return p.cmd.ProcessState.ExitCode()
}
