// Package conformance checks a worker program against poold's worker
// protocol, as docs/protocol.md specifies it: [Run] starts the program as
// a parent would, speaks to it with package ipc over its stdin and stdout,
// and fails the test where the worker breaks a rule. It is the arbiter of
// the spec: a worker in any language that passes it can serve a pool.
//
// Every step has a time limit, so that a broken worker fails the test
// rather than hanging it, and every process Run starts is gone (its whole
// process group killed) when the test ends.
package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/kind"
)

// Worker is a worker program to check.
type Worker struct {
	// Argv is its command line, run without a shell: the program itself,
	// not a launcher in front of it (its hello must give the pid Run
	// started).
	Argv []string
	// Env is added to the test process's environment. A worker that
	// reads POOLD_WORKER=5 from it may skip the setup (the env-marker
	// mode of poold's Go workers); any other must ask for one.
	Env []string
	// Fail is a call that the worker fails with kind Kind (and error type
	// Type, when not ""), the worker living on.
	Fail Call
}

// Call is one call of a task: its function, its arguments (encoded with
// msgpack by Run) and how it must fail.
type Call struct {
	Func string
	Args any
	Kind string
	Type string
}

// Time limits of the steps: generous, since other work may load the
// machine; a conforming worker takes milliseconds.
const (
	stepTimeout = 15 * time.Second // a hello, a result
	exitTimeout = 15 * time.Second // from EOF or garbage to the worker's exit
)

// Run checks w, each rule in a subtest of t: the hello and the setup
// handshake; one task of echo with values of every msgpack type; a chunk,
// in order, in one or more results; an eager chunk, a result per call;
// pipelined tasks, answered in order; an unknown function and a failing
// call, which fail alone; what a task prints, which must not reach the
// protocol; garbage from the parent, at which the worker exits non-zero
// without another frame; and the end of stdin, at which it exits 0 once
// it has answered every task. The worker must serve echo as poold's
// built-in does ({"value": V} → V); sleep ({"seconds": S}) and print
// ({"text": T, "times": N}), if its hello names them, are used too.
func Run(t *testing.T, w Worker) {
	t.Helper()
	if len(w.Argv) == 0 {
		t.Fatal("conformance: no command line")
	}
	t.Run("hello", func(t *testing.T) { checkHello(t, w) })
	t.Run("hello only", func(t *testing.T) { checkHelloOnly(t, w) })
	t.Run("echo", func(t *testing.T) { checkEcho(t, w) })
	t.Run("chunk", func(t *testing.T) { checkChunk(t, w) })
	t.Run("chunk as it goes", func(t *testing.T) { checkChunkAsItGoes(t, w) })
	t.Run("eager chunk", func(t *testing.T) { checkEager(t, w) })
	t.Run("pipelined", func(t *testing.T) { checkPipelined(t, w) })
	t.Run("unknown function", func(t *testing.T) { checkUnknown(t, w) })
	t.Run("task error", func(t *testing.T) { checkFail(t, w) })
	t.Run("print", func(t *testing.T) { checkPrint(t, w) })
	t.Run("stdin EOF", func(t *testing.T) { checkEOF(t, w) })
	t.Run("stdin EOF with a task running", func(t *testing.T) { checkEOFRunning(t, w) })
	for _, g := range garbage {
		t.Run("garbage/"+g.name, func(t *testing.T) { checkGarbage(t, w, g) })
	}
}

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

// ---------------------------------------------------------------------------
// Encoding.

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// echoArgs are the arguments {"value": raw} of echo.
func echoArgs(raw []byte) []byte {
	return append([]byte{0x81, 0xa5, 'v', 'a', 'l', 'u', 'e'}, raw...)
}

func task(id uint64, fn string, args ...[]byte) *ipc.Task {
	t := &ipc.Task{ID: id, Func: fn}
	for _, a := range args {
		t.Args = append(t.Args, a)
	}
	return t
}

// sameValue reports whether a value came back as it went: the same bytes,
// or the same value once decoded (integers of any width, float32 as
// float64), as a worker that decodes and encodes again sends it.
func sameValue(got, want []byte) (bool, string) {
	if bytes.Equal(got, want) {
		return true, ""
	}
	g, err := decodeNormal(got)
	if err != nil {
		return false, fmt.Sprintf("% x: %v", got, err)
	}
	w, err := decodeNormal(want)
	if err != nil {
		return false, fmt.Sprintf("% x, which is not what was sent (% x)", got, want)
	}
	if reflect.DeepEqual(g, w) {
		return true, ""
	}
	return false, fmt.Sprintf("%#v (% x)", g, clip(got))
}

func clip(b []byte) []byte {
	if len(b) > 48 {
		return b[:48]
	}
	return b
}

func decodeNormal(b []byte) (any, error) {
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.SetMapDecoder(func(d *msgpack.Decoder) (any, error) { return d.DecodeUntypedMap() })
	v, err := dec.DecodeInterface()
	if err != nil {
		return nil, err
	}
	return normal(v), nil
}

// normal turns every integer into an int64 (a uint64 beyond its range)
// and every float into a float64.
func normal(v any) any {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
		return x
	case float32:
		return float64(x)
	case []any:
		for i := range x {
			x[i] = normal(x[i])
		}
		return x
	case map[any]any:
		m := make(map[any]any, len(x))
		for k, e := range x {
			m[normal(k)] = normal(e)
		}
		return m
	}
	return v
}

// ---------------------------------------------------------------------------
// Checks.

func checkHello(t *testing.T, w Worker) {
	p := start(t, w)
	p.handshake(nil)
	if p.first.Program == "" {
		t.Logf("the hello does not say its program (SHOULD)")
	}
	if p.first.Host == "" || p.first.CPUs == 0 {
		t.Logf("the hello does not say its host and CPUs (SHOULD): host %q, %d CPUs", p.first.Host, p.first.CPUs)
	}
	t.Logf("hello: pid %d, program %q, host %q, %d CPUs, setup %v, tasks %q", p.first.PID, p.first.Program, p.first.Host, p.first.CPUs, p.first.Setup, p.hello.Tasks)
	p.stdin.Close()
	if code := p.exit("after the handshake and stdin's end"); code != 0 {
		p.errorf("exit status %d at the end of stdin, want 0", code)
	}
}

func checkHelloOnly(t *testing.T, w Worker) {
	if w.envMode() {
		t.Skip("a worker in env-marker mode asks for no setup")
	}
	p := start(t, w)
	p.first = p.readHello("first hello")
	p.stdin.Close() // the parent wanted the hello alone (its CPU count)
	if code := p.exit("stdin closed after the first hello"); code != 0 {
		p.errorf("exit status %d at the end of stdin after the first hello, want 0", code)
	}
}

// echoCase is a value for echo, as msgpack.
type echoCase struct {
	name string
	raw  []byte
}

func echoCases(t *testing.T) []echoCase {
	deep := []byte{}
	for range 50 { // 50 levels in the value, 52 with the args map and the message's arrays
		deep = append(deep, 0x91)
	}
	deep = append(deep, 0x01)
	bigMap := map[string]any{}
	for i := range 20 {
		bigMap[fmt.Sprintf("k%02d", i)] = i
	}
	cases := []echoCase{
		{"nil", []byte{0xc0}},
		{"true", []byte{0xc3}},
		{"false", []byte{0xc2}},
		{"fixint 0", []byte{0x00}},
		{"fixint 127", []byte{0x7f}},
		{"negative fixint -32", []byte{0xe0}},
		{"int8 -33", []byte{0xd0, 0xdf}},
		{"uint8 200", []byte{0xcc, 0xc8}},
		{"int8 5 (not the shortest)", []byte{0xd0, 0x05}},
		{"uint16 5 (not the shortest)", []byte{0xcd, 0x00, 0x05}},
		{"int64 5 (as msgpack.Marshal writes an int64)", encode(t, int64(5))},
		{"uint16 65535", []byte{0xcd, 0xff, 0xff}},
		{"int16 -32768", []byte{0xd1, 0x80, 0x00}},
		{"uint32 4294967295", encode(t, uint32(math.MaxUint32))},
		{"int32 -2147483649 as int64", encode(t, int64(math.MinInt32-1))},
		{"int64 max", encode(t, int64(math.MaxInt64))},
		{"int64 min", encode(t, int64(math.MinInt64))},
		{"uint64 max", encode(t, uint64(math.MaxUint64))},
		{"float64 1.5", encode(t, 1.5)},
		{"float64 -1e300", encode(t, -1e300)},
		{"float32 0.25", encode(t, float32(0.25))},
		{"empty str", []byte{0xa0}},
		{"str", encode(t, "héllo, wörld ✓")},
		{"str8", encode(t, strings.Repeat("x", 200))},
		{"str16", encode(t, strings.Repeat("ü", 1000))},
		{"str not UTF-8", []byte{0xa3, 0xff, 0xfe, 'a'}},
		{"bin8", encode(t, []byte{0, 1, 2, 0xff})},
		{"empty bin", []byte{0xc4, 0x00}},
		{"bin32", encode(t, bytes.Repeat([]byte{7}, 70000))},
		{"empty array", []byte{0x90}},
		{"array", encode(t, []any{int64(1), "x", nil, []any{true, 2.5}})},
		{"array16", encode(t, make([]int, 20))},
		{"empty map", []byte{0x80}},
		{"map", encode(t, map[string]any{"a": []any{int64(1), int64(2)}, "b": map[string]any{"c": nil}})},
		{"map16", encode(t, bigMap)},
		{"map with integer keys", []byte{0x82, 0x01, 0xa3, 'o', 'n', 'e', 0x02, 0xa3, 't', 'w', 'o'}},
		{"50 nested arrays", deep},
	}
	return cases
}

func checkEcho(t *testing.T, w Worker) {
	p := start(t, w)
	p.handshake(nil)
	t0 := time.Now().Add(-time.Minute).UnixNano()
	id := uint64(1)
	for _, c := range echoCases(t) {
		id++
		items := p.run(task(id, "echo", echoArgs(c.raw)))
		it := items[0]
		if !it.OK || it.Err != nil {
			p.errorf("echo of %s: ok %v, error %+v; want ok with the value", c.name, it.OK, it.Err)
			continue
		}
		if same, got := sameValue(it.Value, c.raw); !same {
			p.errorf("echo of %s (% x): got %s", c.name, clip(c.raw), got)
		}
		checkTimes(p, fmt.Sprintf("echo of %s", c.name), &it, t0)
	}
	// An id beyond 32 bits (ids are uint64).
	big := uint64(1)<<40 + 7
	if items := p.run(task(big, "echo", echoArgs([]byte{0x07}))); !items[0].OK {
		p.errorf("echo in task %d: %+v", big, items[0].Err)
	}
}

// checkTimes checks an item's times: unix nanoseconds, start before end,
// CPU negative (unknown) or at most the call's share of the machine, peak
// memory not negative.
func checkTimes(p *proc, what string, it *ipc.Item, t0 int64) {
	p.t.Helper()
	now := time.Now().Add(time.Minute).UnixNano()
	if it.Start < t0 || it.End > now || it.End < it.Start {
		p.errorf("%s: start %d, end %d: want unix nanoseconds, start ≤ end, between %d and %d", what, it.Start, it.End, t0, now)
	}
	if it.MaxRSS < 0 {
		p.errorf("%s: max_rss %d", what, it.MaxRSS)
	}
}

func checkChunk(t *testing.T, w Worker) {
	p := start(t, w)
	p.handshake(nil)
	const n = 7
	tk := task(3, "echo")
	for i := range n {
		tk.Args = append(tk.Args, echoArgs(encode(t, fmt.Sprintf("call %d", i))))
	}
	p.send(tk)
	items, results := p.items(tk, n)
	for i, it := range items {
		want := encode(t, fmt.Sprintf("call %d", i))
		if !it.OK {
			p.errorf("call %d of the chunk failed: %+v", i, it.Err)
		} else if same, got := sameValue(it.Value, want); !same {
			p.errorf("call %d of the chunk: got %s, want %q", i, got, fmt.Sprintf("call %d", i))
		}
	}
	t.Logf("%d calls in %d results", n, results)
	// The worker goes on.
	if items := p.run(task(4, "echo", echoArgs([]byte{0x2a}))); !items[0].OK {
		p.errorf("echo after the chunk: %+v", items[0].Err)
	}
}

func checkChunkAsItGoes(t *testing.T, w Worker) {
	p := start(t, w)
	p.handshake(nil)
	if !p.serves("sleep") {
		t.Skip("the worker serves no sleep")
	}
	const n = 4
	tk := task(5, "sleep")
	for range n {
		tk.Args = append(tk.Args, encode(t, map[string]any{"seconds": 0.03}))
	}
	p.send(tk)
	items, results := p.items(tk, n)
	for i, it := range items {
		if !it.OK {
			p.errorf("call %d of the sleep chunk failed: %+v", i, it.Err)
		}
		if i > 0 && it.Start < items[i-1].End {
			p.errorf("call %d started at %d, before call %d ended (%d): a worker runs a task's calls in turn", i, it.Start, i-1, items[i-1].End)
		}
	}
	if results == 1 {
		// SHOULD, not MUST: the finished calls of a long chunk go out
		// before the next starts once a while has passed.
		t.Logf("4 calls of 30 ms in one result: the worker does not report a chunk as it goes (SHOULD)")
	} else {
		t.Logf("4 calls of 30 ms in %d results", results)
	}
}

func checkEager(t *testing.T, w Worker) {
	p := start(t, w)
	p.handshake(nil)
	const n = 3
	tk := task(6, "echo")
	tk.Eager = true
	for i := range n {
		tk.Args = append(tk.Args, echoArgs(encode(t, i)))
	}
	p.send(tk)
	for i := range n {
		m := p.next(fmt.Sprintf("eager chunk, call %d", i))
		if m.Kind != ipc.KindResult || m.Result.ID != tk.ID || m.Result.From != i || len(m.Result.Items) != 1 {
			p.fatalf("eager chunk: %s message, id %d, from %d, %d items; want a result of task %d from %d with 1 item: an eager task's calls are reported one by one",
				m.Kind, m.Result.ID, m.Result.From, len(m.Result.Items), tk.ID, i)
		}
		if !m.Result.Items[0].OK {
			p.errorf("eager chunk, call %d: %+v", i, m.Result.Items[0].Err)
		}
	}
}

func checkPipelined(t *testing.T, w Worker) {
	p := start(t, w)
	p.handshake(nil)
	var tasks []*ipc.Task
	for i := range 5 {
		tasks = append(tasks, task(uint64(100+i), "echo", echoArgs(encode(t, i)), echoArgs(encode(t, -i))))
	}
	p.send(tasks...) // in one write: a pool sends more tasks before the first is answered
	for i, tk := range tasks {
		items, _ := p.items(tk, 2)
		for j, it := range items {
			want := encode(t, i)
			if j == 1 {
				want = encode(t, -i)
			}
			if same, got := sameValue(it.Value, want); !it.OK || !same {
				p.errorf("task %d, call %d: ok %v, %s", tk.ID, j, it.OK, got)
			}
		}
	}
}

func checkUnknown(t *testing.T, w Worker) {
	p := start(t, w)
	p.handshake(nil)
	const name = "no-such-task-conformance"
	if p.serves(name) {
		t.Skipf("the worker serves %q", name)
	}
	tk := task(7, name, []byte{0xc0}, []byte{0x01})
	p.send(tk)
	items, _ := p.items(tk, 2)
	for i, it := range items {
		switch {
		case it.OK || it.Err == nil:
			p.errorf("call %d of an unknown function: ok %v, error %+v; want not ok, with an error", i, it.OK, it.Err)
		case it.Err.Kind == "" || it.Err.Message == "":
			p.errorf("call %d of an unknown function: kind %q, message %q; want both", i, it.Err.Kind, it.Err.Message)
		case it.Err.Kind != string(kind.UnknownFunc):
			t.Logf("an unknown function fails with kind %q; %q is recommended", it.Err.Kind, kind.UnknownFunc)
		}
	}
	if len(items) > 0 && items[0].Err != nil {
		t.Logf("unknown function: kind %q, message %q", items[0].Err.Kind, items[0].Err.Message)
	}
	if items := p.run(task(8, "echo", echoArgs([]byte{0x01}))); !items[0].OK {
		p.errorf("echo after an unknown function: %+v", items[0].Err)
	}
}

func checkFail(t *testing.T, w Worker) {
	if w.Fail.Func == "" {
		t.Skip("no failing call given")
	}
	p := start(t, w)
	p.handshake(nil)
	items := p.run(task(9, w.Fail.Func, encode(t, w.Fail.Args)))
	it := items[0]
	switch {
	case it.OK || it.Err == nil:
		p.fatalf("%s %v: ok %v, error %+v; want it to fail", w.Fail.Func, w.Fail.Args, it.OK, it.Err)
	case it.Err.Kind != w.Fail.Kind:
		p.errorf("%s %v: kind %q, want %q (message %q)", w.Fail.Func, w.Fail.Args, it.Err.Kind, w.Fail.Kind, it.Err.Message)
	case it.Err.Message == "":
		p.errorf("%s %v: no message", w.Fail.Func, w.Fail.Args)
	case w.Fail.Type != "" && it.Err.Type != w.Fail.Type:
		p.errorf("%s %v: type %q, want %q", w.Fail.Func, w.Fail.Args, it.Err.Type, w.Fail.Type)
	}
	if it.Err != nil {
		t.Logf("%s: kind %q, type %q, message %q, %d bytes of stack", w.Fail.Func, it.Err.Kind, it.Err.Type, it.Err.Message, len(it.Err.Stack))
	}
	if items := p.run(task(10, "echo", echoArgs([]byte{0x01}))); !items[0].OK {
		p.errorf("echo after a failed call: %+v", items[0].Err)
	}
}

func checkPrint(t *testing.T, w Worker) {
	p := start(t, w)
	p.handshake(nil)
	if !p.serves("print") {
		t.Skip("the worker serves no print")
	}
	const line = "a line a task prints\n"
	items := p.run(task(11, "print", encode(t, map[string]any{"text": line, "times": 3})))
	it := items[0]
	if !it.OK {
		p.fatalf("print: %+v", it.Err)
	}
	if same, got := sameValue(it.Value, encode(t, 3*len(line))); !same {
		p.errorf("print returned %s, want %d (bytes written)", got, 3*len(line))
	}
	switch out := string(it.Output); out {
	case "":
		t.Logf("the worker does not capture what a task prints (MAY)")
	case strings.Repeat(line, 3):
	default:
		p.errorf("print's output %q; want what it printed, %q", out, strings.Repeat(line, 3))
	}
	// What it printed stayed off the protocol: the stream goes on.
	if items := p.run(task(12, "echo", echoArgs([]byte{0x01}))); !items[0].OK {
		p.errorf("echo after print: %+v", items[0].Err)
	} else if len(items[0].Output) != 0 {
		p.errorf("echo after print has output %q: a call's output is its own", items[0].Output)
	}
}

func checkEOF(t *testing.T, w Worker) {
	p := start(t, w)
	p.handshake(nil)
	p.run(task(13, "echo", echoArgs([]byte{0x01})))
	p.stdin.Close()
	if code := p.exit("stdin closed"); code != 0 {
		p.errorf("exit status %d at the end of stdin, want 0", code)
	}
}

func checkEOFRunning(t *testing.T, w Worker) {
	p := start(t, w)
	p.handshake(nil)
	if !p.serves("sleep") {
		t.Skip("the worker serves no sleep")
	}
	// The tasks read before the end are answered, then the worker exits.
	tk := task(14, "sleep", encode(t, map[string]any{"seconds": 0.2}))
	tk2 := task(15, "echo", echoArgs([]byte{0x05}))
	p.send(tk, tk2)
	p.stdin.Close()
	if items, _ := p.items(tk, 1); !items[0].OK {
		p.errorf("sleep: %+v", items[0].Err)
	}
	if items, _ := p.items(tk2, 1); !items[0].OK {
		p.errorf("echo: %+v", items[0].Err)
	}
	if code := p.exit("stdin closed with tasks sent"); code != 0 {
		p.errorf("exit status %d at the end of stdin, want 0", code)
	}
}

// garbageCase is something a broken parent sends.
type garbageCase struct {
	name    string
	explain string
	setup   *ipc.Setup // the setup to give; nil: the defaults
	// beforeSetup sends it instead of the setup, to a worker that asks
	// for one.
	beforeSetup bool
	bytes       func(t *testing.T) []byte // what to write
	closeStdin  bool                      // then close stdin
}

func frameOf(body []byte) []byte {
	return append([]byte{byte(len(body) >> 24), byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
}

func written(t *testing.T, write func(w *ipc.Writer) error) []byte {
	var b bytes.Buffer
	w := ipc.NewWriter(&b, 0)
	if err := write(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func fixed(b []byte) func(*testing.T) []byte { return func(*testing.T) []byte { return b } }

var garbage = []garbageCase{
	{name: "huge frame header", explain: "a header claiming 4 GiB, no body: refused before reading it",
		bytes: fixed([]byte{0xff, 0xff, 0xff, 0xff})},
	{name: "frame over the setup's cap", explain: "a header 1 byte over the max_frame of the setup",
		setup: &ipc.Setup{MaxFrame: 1 << 20}, bytes: fixed([]byte{0x00, 0x10, 0x00, 0x01})},
	{name: "not msgpack", explain: "a body of 0xc1, a code msgpack never uses",
		bytes: fixed(frameOf([]byte{0xc1}))},
	{name: "not a message array", explain: `a map {"a": 1}`,
		bytes: fixed(frameOf([]byte{0x81, 0xa1, 'a', 0x01}))},
	{name: "unknown kind", explain: "[9]",
		bytes: fixed(frameOf([]byte{0x91, 0x09}))},
	{name: "hello from the parent", explain: "a hello, which only a worker sends",
		bytes: func(t *testing.T) []byte {
			return written(t, func(w *ipc.Writer) error {
				return w.WriteHello(&ipc.Hello{PID: 1, Version: ipc.ProtocolVersion, Tasks: []string{"echo"}})
			})
		}},
	{name: "result from the parent", explain: "a result, which only a worker sends",
		bytes: func(t *testing.T) []byte {
			return written(t, func(w *ipc.Writer) error {
				return w.WriteResult(&ipc.Result{ID: 1, Items: []ipc.Item{{OK: true}}})
			})
		}},
	{name: "cancel on stdin", explain: "a cancel, which comes only on the control stream",
		bytes: func(t *testing.T) []byte {
			return written(t, func(w *ipc.Writer) error { return w.WriteCancel(&ipc.Cancel{ID: 1}) })
		}},
	{name: "setup after the handshake", explain: "a second setup",
		bytes: func(t *testing.T) []byte {
			return written(t, func(w *ipc.Writer) error { return w.WriteSetup(&ipc.Setup{}) })
		}},
	{name: "task without arguments", explain: `[2, 1, "echo", 0, false, []]`,
		bytes: fixed(frameOf([]byte{0x96, 0x02, 0x01, 0xa4, 'e', 'c', 'h', 'o', 0x00, 0xc2, 0x90}))},
	{name: "task with a string id", explain: `[2, "1", "echo", 0, false, [nil]]`,
		bytes: fixed(frameOf([]byte{0x96, 0x02, 0xa1, '1', 0xa4, 'e', 'c', 'h', 'o', 0x00, 0xc2, 0x91, 0xc0}))},
	{name: "task of 5 fields", explain: `[2, 1, "echo", 0, [nil]]`,
		bytes: fixed(frameOf([]byte{0x95, 0x02, 0x01, 0xa4, 'e', 'c', 'h', 'o', 0x00, 0x91, 0xc0}))},
	{name: "bytes after the message", explain: "a good task, then nil, in one frame",
		bytes: fixed(frameOf([]byte{0x96, 0x02, 0x01, 0xa4, 'e', 'c', 'h', 'o', 0x00, 0xc2, 0x91, 0xc0, 0xc0}))},
	{name: "argument truncated", explain: "a task whose argument claims 5 bytes of str and has 2",
		bytes: fixed(frameOf([]byte{0x96, 0x02, 0x01, 0xa4, 'e', 'c', 'h', 'o', 0x00, 0xc2, 0x91, 0xa5, 'a', 'b'}))},
	{name: "argument nested too deep", explain: "an argument of 63 nested arrays: 65 levels in the frame",
		bytes: func(*testing.T) []byte {
			b := []byte{0x96, 0x02, 0x01, 0xa4, 'e', 'c', 'h', 'o', 0x00, 0xc2, 0x91}
			for range 63 {
				b = append(b, 0x91)
			}
			return frameOf(append(b, 0xc0))
		}},
	{name: "stream ends inside a frame", explain: "a header of 10 bytes, 3 of them, then the end of stdin",
		bytes: fixed([]byte{0x00, 0x00, 0x00, 0x0a, 0x96, 0x02, 0x01}), closeStdin: true},
	{name: "stream ends inside a header", explain: "2 bytes of a header, then the end of stdin",
		bytes: fixed([]byte{0x00, 0x00}), closeStdin: true},
	{name: "task instead of the setup", explain: "a task in answer to a hello that asks for a setup",
		beforeSetup: true, bytes: func(t *testing.T) []byte {
			return written(t, func(w *ipc.Writer) error {
				return w.WriteTask(&ipc.Task{ID: 1, Func: "echo", Args: []msgpack.RawMessage{echoArgs([]byte{0x01})}})
			})
		}},
}

func checkGarbage(t *testing.T, w Worker, g garbageCase) {
	if (g.beforeSetup || g.setup != nil) && w.envMode() {
		t.Skip("a worker in env-marker mode asks for no setup")
	}
	p := start(t, w)
	if g.beforeSetup {
		p.first = p.readHello("first hello")
		if !p.first.Setup {
			p.fatalf("first hello: setup false")
		}
	} else {
		p.handshake(g.setup)
		p.run(task(1, "echo", echoArgs([]byte{0x01})))
	}
	p.sendRaw(g.bytes(t))
	if g.closeStdin {
		p.stdin.Close()
	}
	code := p.exit(g.explain)
	switch {
	case code == 0:
		p.errorf("%s: exit status 0; a worker that reads garbage from its parent exits non-zero", g.explain)
	case code < 0:
		t.Logf("%s: the worker died by a signal (%v): non-zero, but an exit status is better", g.explain, p.cmd.ProcessState)
	}
}

// lockedBuffer is a bytes.Buffer safe for the writer (exec's copier) and
// a reader in the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
