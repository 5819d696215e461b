package pool

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/poold/poold/internal/ipc"
	child "github.com/poold/poold/internal/worker" // the worker side; "worker" here is the parent's view of one
)

// worker is the parent's side of one worker process. Three goroutines serve
// it: readLoop (frames out of its stdout, then Wait) and stderrLoop (its log
// lines into the pool's logger). Frames into its stdin are written by
// whichever goroutine dispatched them (see flush).
type worker struct {
	p      *Pool
	slot   int
	pid    int
	cmd    *exec.Cmd
	stdin  *os.File
	stdout *os.File
	stderr *os.File
	in     *ipc.Reader
	log    hclog.Logger
	tail   stderrTail
	logged chan struct{} // closed when stderrLoop is done

	// The write side, held by whoever flushes (see flush).
	wmu         sync.Mutex
	out         *ipc.Writer
	frame       ipc.Task // scratch for encoding
	spare       []*job
	broken      bool // a write failed: the worker is gone
	stdinClosed bool
	inClosed    atomic.Bool // stdinClosed, for a look without wmu

	// Jobs dispatched and not yet written, in dispatch order.
	omu     sync.Mutex
	outbox  []*job
	closing bool // no job will follow the outbox: close stdin after it
	killMu  sync.Mutex
	reaped  bool // Wait has returned: the pid may belong to someone else now
	killers []*time.Timer

	// Guarded by p.mu.
	ready      bool
	inflight   []*job      // sent or about to be, oldest first; the head is running
	window     int         // how many jobs may be in flight
	pipeCap    int         // bytes the pipe to its stdin holds
	finishing  bool        // the result of its only job is arriving: it reads its input next
	assigned   int         // tasks ever dispatched to it, for MaxTasksPerWorker
	stopping   bool        // no new jobs: stdin closes once the outbox is written
	dirty      bool        // in p.dirty
	deadline   *time.Timer // kills the worker if the head job runs past its limit
	startTimer *time.Timer // kills the worker if its handshake is late
	blame      *blame      // set when the pool kills the worker on purpose
}

// blame says why the pool killed a worker, and which job it meant: a kill
// aimed at one job never fails another.
type blame struct {
	kind   Kind
	jobID  uint64
	reason string
}

// spawn starts a worker process for slot. The process is in its own process
// group (so that killing the group ends whatever its task started), dies with
// the spawner's thread (Pdeathsig), and learns it is a worker from its
// environment.
func (p *Pool) spawn(slot int) (*worker, error) {
	cfg := p.cfg
	var cmd *exec.Cmd
	if len(cfg.Command) > 0 {
		cmd = exec.Command(cfg.Command[0], cfg.Command[1:]...)
	} else {
		cmd = &exec.Cmd{Path: selfExe(), Args: []string{os.Args[0]}}
	}
	cmd.Env = append(os.Environ(), child.Settings{
		MaxFrame:        cfg.MaxFrame,
		MaxOutput:       cfg.MaxOutput,
		LogLevel:        cfg.Logger.GetLevel().String(),
		Initializer:     cfg.Initializer,
		InitializerArgs: cfg.InitializerArgs,
		Procs:           workerProcs(cfg),
	}.Environ()...)
	cmd.Env = append(cmd.Env, cfg.Env...)
	// SIGTERM, not SIGKILL, at the parent's death: the worker catches it and
	// kills its whole process group, so that what its tasks started dies too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}

	// Plain pipes rather than cmd.StdoutPipe: Wait must not close what the
	// reader goroutines still read.
	var files []*os.File
	var pipeErr error
	keep := func(r, w *os.File, err error) (*os.File, *os.File) {
		if err != nil {
			pipeErr = cmp.Or(pipeErr, err)
			return nil, nil
		}
		files = append(files, r, w)
		return r, w
	}
	inR, inW := keep(blockingPipe())
	outR, outW := keep(blockingPipe())
	// Stderr is not on the hot path, and a task's children inherit it: a
	// pollable pipe lets wait close it under a reader that a straggler
	// keeps waiting.
	errR, errW := keep(os.Pipe())
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	if pipeErr != nil {
		closeAll()
		return nil, fmt.Errorf("pipes for a worker: %w", pipeErr)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if err := p.spawner.start(cmd); err != nil {
		closeAll()
		return nil, err
	}
	inR.Close()
	outW.Close()
	errW.Close()

	w := &worker{
		p:      p,
		slot:   slot,
		pid:    cmd.Process.Pid,
		cmd:    cmd,
		stdin:  inW,
		stdout: outR,
		in:     ipc.NewReader(outR, cfg.MaxFrame),
		out:    ipc.NewWriter(inW, cfg.MaxFrame),
		window: 1,
		logged: make(chan struct{}),
	}
	w.pipeCap = 64 << 10 // Linux's default, should asking fail
	if n, err := unix.FcntlInt(inW.Fd(), unix.F_GETPIPE_SZ, 0); err == nil && n > 0 {
		w.pipeCap = n
	}
	w.log = p.log.Named("worker").With("pid", w.pid, "slot", slot)
	w.stderr = errR
	return w, nil
}

// serve starts the goroutines that read from the worker. The caller has
// registered the worker with the pool first, so that whatever they report
// finds it there.
func (w *worker) serve() {
	go w.stderrLoop(w.stderr)
	go w.readLoop()
}

// signal sends sig to the worker's process group unless the worker has
// been reaped (its pid could then name another process). Safe to repeat.
func (w *worker) signal(sig syscall.Signal) {
	w.killMu.Lock()
	defer w.killMu.Unlock()
	if !w.reaped {
		syscall.Kill(-w.pid, sig)
	}
}

// killAfter sends SIGKILL to the worker's group after d, unless it has been
// reaped by then.
func (w *worker) killAfter(d time.Duration) {
	t := time.AfterFunc(d, func() { w.signal(syscall.SIGKILL) })
	w.killMu.Lock()
	w.killers = append(w.killers, t)
	w.killMu.Unlock()
}

// wait reaps the process once its stdout has reached EOF: it waits for the
// exit, kills the process group, reads stderr to its end, then reaps.
func (w *worker) wait() *WorkerExitError {
	// Wait for the exit without reaping, so that the worker's pid still
	// names its process group: whatever its tasks started dies with it.
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, w.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	syscall.Kill(-w.pid, syscall.SIGKILL)
	// Read all of stderr before reaping (as os/exec asks); a process that
	// left the group may still hold it open: then stop reading.
	select {
	case <-w.logged:
	case <-time.After(w.p.cfg.KillGrace):
		w.stderr.Close()
		<-w.logged
	}
	w.cmd.Wait()
	w.killMu.Lock()
	w.reaped = true
	for _, t := range w.killers {
		t.Stop()
	}
	w.killMu.Unlock()
	w.stdout.Close()

	e := &WorkerExitError{PID: w.pid, ExitCode: w.cmd.ProcessState.ExitCode()}
	if ws, ok := w.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Signal = ws.Signal()
		e.CoreDump = ws.CoreDump()
	}
	e.Stderr = w.tail.lines()
	return e
}

// stderrLoop forwards the worker's stderr to the pool's logger: hclog JSON
// lines as structured entries at their level, anything else (a Go crash
// trace, a C library's complaint) as text. It keeps the last lines for crash
// reports. Nothing a worker writes here can crash the parent.
func (w *worker) stderrLoop(r *os.File) {
	defer close(w.logged)
	defer r.Close()
	br := bufio.NewReaderSize(r, 16<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if err == bufio.ErrBufferFull { // an overlong line: keep its start, drop the rest
				line = append(bytes.Clone(line), "…"...)
				for err == bufio.ErrBufferFull {
					_, err = br.ReadSlice('\n')
				}
			}
			w.logLine(bytes.TrimRight(line, "\r\n"))
		}
		if err != nil {
			return
		}
	}
}

func (w *worker) logLine(line []byte) {
	if len(line) == 0 {
		return
	}
	if line[0] == '{' {
		var entry map[string]any
		if json.Unmarshal(line, &entry) == nil {
			msg, _ := entry["@message"].(string)
			lvl, _ := entry["@level"].(string)
			args := make([]any, 0, 2*len(entry))
			for k, v := range entry {
				if len(k) > 0 && k[0] != '@' {
					args = append(args, k, v)
				}
			}
			level := hclog.LevelFromString(lvl)
			if level == hclog.NoLevel {
				level = hclog.Info
			}
			w.log.Log(level, msg, args...)
			w.tail.add(msg)
			return
		}
	}
	s := string(bytes.ToValidUTF8(line, []byte("�")))
	w.tail.add(s)
	// A Go crash trace is many lines; its headline reaches the task's error,
	// the rest is detail.
	w.log.Info(s)
}

// stderrTail keeps the last lines a worker wrote to stderr, and the last
// line that says what went wrong (Go's "fatal error:" or "panic:", which a
// long goroutine dump would push out of the tail).
type stderrTail struct {
	mu       sync.Mutex
	buf      [tailLines]string
	n        int
	headline string
	headAt   int // n when the headline was added
}

const tailLines = 20

func (t *stderrTail) add(s string) {
	if len(s) > 512 {
		s = s[:512] + "…"
	}
	t.mu.Lock()
	if isHeadline(s) {
		t.headline, t.headAt = s, t.n
	}
	t.buf[t.n%tailLines] = s
	t.n++
	t.mu.Unlock()
}

func isHeadline(s string) bool {
	return strings.HasPrefix(s, "fatal error:") || strings.HasPrefix(s, "panic:") ||
		strings.HasPrefix(s, "SIG") || strings.HasPrefix(s, "poold worker:")
}

func (t *stderrTail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	first := max(0, t.n-tailLines)
	if t.headline != "" && t.headAt < first {
		out = append(out, t.headline, "…")
	}
	for i := first; i < t.n; i++ {
		out = append(out, t.buf[i%tailLines])
	}
	return out
}

// workerProcs is the GOMAXPROCS a worker gets when the workers outnumber
// the CPUs: 1, since a scheduler per worker sized for the whole machine
// only spins against the others (measured: exec of 4 workers on 2 CPUs runs
// 10 % faster). With as many CPUs as workers or more the runtime's default
// stays: one P per worker made round trips slower. 0: leave it alone, as
// when the user set GOMAXPROCS for the workers.
func workerProcs(cfg Config) int {
	for _, kv := range append(os.Environ(), cfg.Env...) {
		if strings.HasPrefix(kv, "GOMAXPROCS=") {
			return 0
		}
	}
	if cfg.Workers > runtime.NumCPU() {
		return 1
	}
	return 0
}

func selfExe() string {
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		return "/proc/self/exe" // the running build, even if the file on disk was replaced
	}
	exe, err := os.Executable()
	if err != nil {
		return os.Args[0]
	}
	return exe
}

var errHandshake = errors.New("handshake")

// blockingPipe returns a pipe whose ends stay in blocking mode. Each end has
// one goroutine of ours at a time, so a read or write parked in the kernel
// costs a thread, not a netpoller round: a result reaches its reader one
// scheduler hop sooner (see the anchors' blocking ping-pong).
func blockingPipe() (r, w *os.File, err error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	// A larger pipe lets a chunk's frame, or a burst of results, pass in one
	// write. Best effort: the system may cap it.
	unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, 1<<20)
	return os.NewFile(uintptr(fds[0]), "|0"), os.NewFile(uintptr(fds[1]), "|1"), nil
}
