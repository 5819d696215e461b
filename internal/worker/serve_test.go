package worker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"

	"github.com/poold/poold/internal/ipc"
	"github.com/poold/poold/internal/kind"
	"github.com/poold/poold/internal/tasks"
)

// The test binary is also a worker process: TestMain serves when
// startProcess started it.
func TestMain(m *testing.M) {
	if IsWorker() {
		os.Exit(Serve(testRegistry()))
	}
	goleak.VerifyTestMain(m)
}

func testRegistry() *tasks.Registry {
	r := tasks.NewRegistry()
	r.Register("double", tasks.Typed(func(_ context.Context, n int) (int, error) { return 2 * n, nil }))
	r.Register("hold", holdTask())
	r.Register("panic", tasks.Typed(func(context.Context, struct{}) (int, error) { panic("boom") }))
	r.Register("fail", tasks.Typed(func(context.Context, struct{}) (int, error) { return 0, errors.New("nope") }))
	r.Register("echo", tasks.Typed(func(_ context.Context, v any) (any, error) { return v, nil }))
	r.Register("wait_ctx", tasks.Typed(func(ctx context.Context, _ struct{}) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}))
	// spin_sleep burns SpinUS µs of CPU, then sleeps SleepMS ms, and
	// returns the ns of CPU it burned.
	r.Register("spin_sleep", tasks.Typed(func(_ context.Context, a struct{ SpinUS, SleepMS int }) (int64, error) {
		burned := spin(time.Duration(a.SpinUS) * time.Microsecond)
		time.Sleep(time.Duration(a.SleepMS) * time.Millisecond)
		return int64(burned), nil
	}))
	// sh runs a shell script and returns the ns of CPU it took, as wait4
	// told.
	r.Register("sh", tasks.Typed(func(ctx context.Context, script string) (int64, error) {
		cmd := exec.CommandContext(ctx, "sh", "-c", script)
		if err := cmd.Run(); err != nil {
			return 0, err
		}
		return int64(cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()), nil
	}))
	r.Register("init", tasks.Typed(func(_ context.Context, ok bool) (bool, error) {
		if !ok {
			return false, errors.New("refused")
		}
		return true, nil
	}))
	return r
}

// conn is a worker served by ServeConn in a goroutine, over two os.Pipes.
type conn struct {
	t    *testing.T
	in   *os.File // the test's end of the worker's input
	wr   *ipc.Writer
	ctl  *ipc.Writer // the control stream
	rd   *ipc.Reader
	log  *bytes.Buffer // read it only after wait
	done chan int
}

func start(t *testing.T, s Settings) *conn {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{t: t, in: inW, wr: ipc.NewWriter(inW, 0), ctl: ipc.NewWriter(ctlW, 0), rd: ipc.NewReader(outR, 0), log: &bytes.Buffer{}, done: make(chan int, 1)}
	go func() {
		code := ServeConn(testRegistry(), Streams{In: inR, Out: outW, Log: c.log, Control: ctlR}, s)
		inR.Close()
		outW.Close() // the test's reader sees EOF
		ctlW.Close() // the parent closes the control stream when the worker is gone
		c.done <- code
	}()
	t.Cleanup(func() {
		inW.Close()
		outR.Close()
	})
	return c
}

func (c *conn) read() ipc.Message {
	c.t.Helper()
	var m ipc.Message
	if err := c.rd.Read(&m); err != nil {
		c.t.Fatalf("reading from the worker: %v", err)
	}
	return m
}

func (c *conn) hello() ipc.Hello {
	c.t.Helper()
	m := c.read()
	if m.Kind != ipc.KindHello {
		c.t.Fatalf("first frame: %v, want hello", m.Kind)
	}
	return m.Hello
}

func (c *conn) task(id uint64, fn string, args ...any) ipc.Result {
	c.t.Helper()
	c.send(id, fn, args...)
	return c.result(id, len(args))
}

// send writes task id without waiting for its result.
func (c *conn) send(id uint64, fn string, args ...any) {
	c.t.Helper()
	t := ipc.Task{ID: id, Func: fn}
	for _, a := range args {
		b, err := msgpack.Marshal(a)
		if err != nil {
			c.t.Fatal(err)
		}
		t.Args = append(t.Args, b)
	}
	if err := c.wr.WriteTask(&t); err != nil {
		c.t.Fatal(err)
	}
	if err := c.wr.Flush(); err != nil {
		c.t.Fatal(err)
	}
}

// result reads the result of task id, which has n items, in as many
// frames as the worker wrote, and returns them as one.
func (c *conn) result(id uint64, n int) ipc.Result {
	c.t.Helper()
	all := ipc.Result{ID: id}
	for len(all.Items) < n {
		m := c.read()
		if m.Kind != ipc.KindResult || m.Result.ID != id {
			c.t.Fatalf("answer to task %d: %v of id %d", id, m.Kind, m.Result.ID)
		}
		if m.Result.From != len(all.Items) || len(m.Result.Items) == 0 {
			c.t.Fatalf("task %d: a result of %d items from %d after %d items", id, len(m.Result.Items), m.Result.From, len(all.Items))
		}
		all.Items = append(all.Items, m.Result.Items...)
	}
	if len(all.Items) != n {
		c.t.Fatalf("task %d: %d items for %d arguments", id, len(all.Items), n)
	}
	return all
}

// cancel writes a cancel frame for job id on the control stream.
func (c *conn) cancel(id uint64) {
	c.t.Helper()
	if err := c.ctl.WriteCancel(&ipc.Cancel{ID: id}); err != nil {
		c.t.Fatal(err)
	}
	if err := c.ctl.Flush(); err != nil {
		c.t.Fatal(err)
	}
}

// wait returns ServeConn's exit status, and checks that its goroutine ended.
func (c *conn) wait() int {
	c.t.Helper()
	select {
	case code := <-c.done:
		goleak.VerifyNone(c.t)
		return code
	case <-time.After(10 * time.Second):
		c.t.Fatal("ServeConn did not return")
		return 0
	}
}

func TestServeConnHello(t *testing.T) {
	c := start(t, Settings{})
	h := c.hello()
	if h.Version != ipc.ProtocolVersion || h.PID != os.Getpid() {
		t.Errorf("hello: version %d pid %d, want %d and %d", h.Version, h.PID, ipc.ProtocolVersion, os.Getpid())
	}
	if want := testRegistry().Names(); !slices.Equal(h.Tasks, want) {
		t.Errorf("hello names %v, want %v", h.Tasks, want)
	}
	c.in.Close()
	if code := c.wait(); code != 0 {
		t.Errorf("exit status at EOF: %d, want 0", code)
	}
}

func TestServeConnTasks(t *testing.T) {
	c := start(t, Settings{})
	c.hello()

	res := c.task(1, "double", 1, 2, 3, 4, 5)
	for i, it := range res.Items {
		var got int
		if !it.OK || msgpack.Unmarshal(it.Value, &got) != nil || got != 2*(i+1) {
			t.Errorf("item %d: ok %v value %x err %+v, want %d", i, it.OK, it.Value, it.Err, 2*(i+1))
		}
		if len(it.Output) != 0 {
			t.Errorf("item %d: output %q; ServeConn captures none", i, it.Output)
		}
		if it.Start == 0 || it.End < it.Start {
			t.Errorf("item %d: start %d end %d", i, it.Start, it.End)
		}
	}

	for _, it := range c.task(2, "nosuch", 1, 2).Items {
		if it.OK || it.Err == nil || it.Err.Kind != string(kind.UnknownFunc) || !strings.Contains(it.Err.Message, `"nosuch"`) {
			t.Errorf("unknown function: %+v %+v", it, it.Err)
		}
	}

	it := c.task(3, "panic", struct{}{}).Items[0]
	if it.OK || it.Err == nil || it.Err.Kind != string(kind.Panic) || !strings.Contains(it.Err.Message, "boom") ||
		!strings.Contains(it.Err.Stack, "goroutine") {
		t.Errorf("panic: %+v %+v", it, it.Err)
	}
	if it := c.task(4, "fail", struct{}{}).Items[0]; it.Err == nil || it.Err.Kind != string(kind.Error) || it.Err.Message != "nope" {
		t.Errorf("error: %+v %+v", it, it.Err)
	}
	if it := c.task(5, "double", "not a number").Items[0]; it.Err == nil || it.Err.Kind != string(kind.BadArgs) {
		t.Errorf("bad arguments: %+v %+v", it, it.Err)
	}

	// The loop goes on after all of that.
	if it := c.task(6, "double", 21).Items[0]; !it.OK || !bytes.Equal(it.Value, []byte{42}) {
		t.Errorf("after the failures: %+v %+v", it, it.Err)
	}
	c.in.Close()
	if code := c.wait(); code != 0 {
		t.Errorf("exit status at EOF: %d, want 0", code)
	}
}

// TestServeConnGarbage: a frame the worker cannot use is logged and ends it
// with a non-zero status (the input's EOF right after it would end it with
// 0). Kinds 4 and 5, the retired cancel and shutdown, are frames like any
// other of an unknown kind.
func TestServeConnGarbage(t *testing.T) {
	for name, tc := range map[string]struct {
		input []byte
		log   string // in the logged error
	}{
		"frame too large":       {[]byte("garbage!"), "larger than the size cap"}, // a length of 1.7 GB
		"malformed body":        {[]byte{0, 0, 0, 3, 0xc1, 0xc1, 0xc1}, "malformed"},
		"truncated frame":       {[]byte{0, 0, 0, 9, 0x93}, "unexpected EOF"},
		"result to worker":      {resultFrame(t), "unexpected message from the parent"},
		"kind 4, was cancel":    {[]byte{0, 0, 0, 3, 0x92, 0x04, 0x01}, "unknown message kind 4"},
		"kind 5, was shutdown":  {[]byte{0, 0, 0, 2, 0x91, 0x05}, "unknown message kind 5"},
		"kind 8, never defined": {[]byte{0, 0, 0, 2, 0x91, 0x08}, "unknown message kind 8"},
	} {
		t.Run(name, func(t *testing.T) {
			c := start(t, Settings{})
			c.hello()
			c.in.Write(tc.input)
			c.in.Close()
			if code := c.wait(); code == 0 {
				t.Errorf("exit status 0 after %q; log: %s", tc.input, c.log)
			}
			if !strings.Contains(c.log.String(), `"@level":"error"`) {
				t.Errorf("no error logged: %s", c.log)
			}
			if !strings.Contains(c.log.String(), tc.log) {
				t.Errorf("log does not say %q: %s", tc.log, c.log)
			}
		})
	}
}

func resultFrame(t *testing.T) []byte {
	var b bytes.Buffer
	w := ipc.NewWriter(&b, 0)
	if err := w.WriteResult(&ipc.Result{ID: 1, Items: []ipc.Item{{OK: true, Value: []byte{1}}}}); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	return b.Bytes()
}

func TestServeConnInitializer(t *testing.T) {
	args := func(v any) []byte {
		b, _ := msgpack.Marshal(v)
		return b
	}
	c := start(t, Settings{Initializer: "init", InitializerArgs: args(true)})
	c.hello()
	c.in.Close()
	if code := c.wait(); code != 0 {
		t.Errorf("exit status at EOF: %d, want 0", code)
	}

	for _, s := range []Settings{
		{Initializer: "init", InitializerArgs: args(false)},
		{Initializer: "nosuch"},
	} {
		c := start(t, s)
		if code := c.wait(); code != 4 {
			t.Errorf("initializer %q: exit status %d, want 4", s.Initializer, code)
		}
		var m ipc.Message
		if err := c.rd.Read(&m); !errors.Is(err, io.EOF) {
			t.Errorf("initializer %q: %v %v before the end, want no hello", s.Initializer, m.Kind, err)
		}
		if !strings.Contains(c.log.String(), "poold worker: initializer failed") {
			t.Errorf("initializer %q: log %s", s.Initializer, c.log)
		}
	}
}

// ServeConn leaves the process's environment alone.
func TestServeConnKeepsEnvironment(t *testing.T) {
	t.Setenv(EnvWorker, "1")
	t.Setenv(EnvCPUProfile, t.TempDir())
	c := start(t, Settings{})
	c.hello()
	c.in.Close()
	c.wait()
	if os.Getenv(EnvWorker) != "1" || os.Getenv(EnvCPUProfile) == "" {
		t.Errorf("ServeConn changed the environment")
	}
	if entries, _ := os.ReadDir(os.Getenv(EnvCPUProfile)); len(entries) != 0 {
		t.Errorf("ServeConn wrote a profile: %v", entries)
	}
}

// A cancel frame on the control stream cancels the running job's context,
// and a job cancelled before it is read fails without running; the calls
// of a cancelled chunk that had not started do not start.
func TestServeConnCancel(t *testing.T) {
	c := start(t, Settings{})
	c.hello()
	c.send(1, "wait_ctx", struct{}{}, struct{}{})
	time.Sleep(50 * time.Millisecond) // it runs
	c.cancel(1)
	r := c.result(1, 2)
	for i, it := range r.Items {
		if it.OK || it.Err == nil || it.Err.Kind != string(kind.Canceled) {
			t.Fatalf("item %d of a cancelled job: %+v", i, it)
		}
	}
	if r.Items[0].Start == 0 || r.Items[1].Start != 0 {
		t.Errorf("starts %d, %d: want the first call started and the second never", r.Items[0].Start, r.Items[1].Start)
	}
	c.cancel(3) // before it is read: the control stream is read beside the tasks'
	time.Sleep(20 * time.Millisecond)
	c.send(2, "echo", 5)
	c.send(3, "echo", 6)
	if r := c.result(2, 1); !r.Items[0].OK {
		t.Errorf("job 2, not cancelled: %+v", r.Items[0])
	}
	if r := c.result(3, 1); r.Items[0].OK || r.Items[0].Err.Kind != string(kind.Canceled) || r.Items[0].Start != 0 {
		t.Errorf("job 3, cancelled before it was read: %+v", r.Items[0])
	}
	c.in.Close()
	if code := c.wait(); code != 0 {
		t.Errorf("exit status %d", code)
	}
}
