package conformance

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/kind"
)

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
