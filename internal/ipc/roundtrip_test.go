package ipc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/vmihailenco/msgpack/v5"
)

var msgpackNil = msgpack.RawMessage{0xc0}

// roundTripCases are messages and what Read gives back for them. want is
// nil when Read gives back exactly the message.
func roundTripCases(t testing.TB) []struct {
	name string
	msg  Message
	want *Message
} {
	manyArgs := make([]msgpack.RawMessage, 1000)
	for i := range manyArgs {
		manyArgs[i] = mp(t, map[string]any{"i": i, "s": strings.Repeat("x", i%40)})
	}
	stack := "goroutine 1 [running]:\nmain.f()\n\t/src/main.go:12 +0x1d\n" + strings.Repeat("frame\n", 200)
	items := []Item{
		{OK: true, Value: mp(t, 49), Start: 1732550000000000000, End: 1732550000000123456, CPU: 120001, MaxRSS: 5 << 20},
		{OK: true, Value: mp(t, []any{"a", 1.5, nil, map[string]any{"k": []byte{1, 2}}}), Output: []byte("printed\n"), CPU: -1},
		{OK: false, Err: &ErrorInfo{Kind: "panic", Message: "runtime error: index out of range [3] with length 3", Stack: stack}, Output: []byte{}, CPU: 300},
		{OK: false, Err: &ErrorInfo{}, Start: -1, End: math.MaxInt64, CPU: math.MaxInt64, MaxRSS: math.MaxInt64},
		{OK: true, Value: mp(t, strings.Repeat("v", 70000)), Output: bytes.Repeat([]byte{0, 0xff}, 40000), CPU: math.MinInt64},
		{OK: true, Value: msgpackNil},
	}
	nilValue := Item{OK: true, Value: nil, Start: 5, End: 6, CPU: 1}
	nilValueWant := nilValue
	nilValueWant.Value = msgpackNil

	return []struct {
		name string
		msg  Message
		want *Message
	}{
		{name: "hello", msg: Message{Kind: KindHello, Hello: Hello{PID: 4242, Version: ProtocolVersion, Tasks: []string{"square", "sleep", "", "ünïcødé"}}}},
		{name: "hello/no tasks", msg: Message{Kind: KindHello, Hello: Hello{PID: 1, Version: 1, Tasks: []string{}}},
			want: &Message{Kind: KindHello, Hello: Hello{PID: 1, Version: 1}}},
		{name: "hello/nil tasks", msg: Message{Kind: KindHello, Hello: Hello{PID: math.MaxInt32, Version: -1}}},
		{name: "hello/explicit", msg: Message{Kind: KindHello, Hello: Hello{PID: 7, Version: ProtocolVersion, Tasks: []string{"echo"},
			Program: "poold v1.2.3 go1.26.8", Host: "node-7", CPUs: 64, Setup: true}}},
		{name: "setup", msg: Message{Kind: KindSetup, Setup: Setup{MaxFrame: 1 << 20, MaxOutput: 4 << 20, LogLevel: "debug",
			Initializer: "warm", InitializerArgs: []byte{0x93, 1, 2, 3}, Procs: 2, MaxMemory: 1 << 30, MemoryInterval: 50e6}}},
		{name: "setup/zero", msg: Message{Kind: KindSetup}},
		{name: "task", msg: Message{Kind: KindTask, Task: Task{ID: 1, Func: "square", Timeout: 5e9, Args: []msgpack.RawMessage{mp(t, 7)}}}},
		{name: "task/max id", msg: Message{Kind: KindTask, Task: Task{ID: math.MaxUint64, Func: "", Timeout: math.MinInt64, Args: []msgpack.RawMessage{mp(t, "x")}}}},
		{name: "task/nil arg", msg: Message{Kind: KindTask, Task: Task{ID: 2, Func: "f", Args: []msgpack.RawMessage{nil, msgpackNil}}},
			want: &Message{Kind: KindTask, Task: Task{ID: 2, Func: "f", Args: []msgpack.RawMessage{msgpackNil, msgpackNil}}}},
		{name: "task/chunk of 1000", msg: Message{Kind: KindTask, Task: Task{ID: 3, Func: "chunked", Timeout: 1, Args: manyArgs}}},
		{name: "task/long func name", msg: Message{Kind: KindTask, Task: Task{ID: 4, Func: strings.Repeat("f", 300), Args: []msgpack.RawMessage{mp(t, true)}}}},
		{name: "task/eager", msg: Message{Kind: KindTask, Task: Task{ID: 5, Func: "charge", Timeout: 3e9, Eager: true, Args: []msgpack.RawMessage{mp(t, 7)}}}},
		{name: "task/eager chunk", msg: Message{Kind: KindTask, Task: Task{ID: 6, Func: "charge", Eager: true, Args: []msgpack.RawMessage{mp(t, 1), nil, mp(t, "three")}}},
			want: &Message{Kind: KindTask, Task: Task{ID: 6, Func: "charge", Eager: true, Args: []msgpack.RawMessage{mp(t, 1), msgpackNil, mp(t, "three")}}}},
		{name: "task/eager, max id", msg: Message{Kind: KindTask, Task: Task{ID: math.MaxUint64, Func: "f", Timeout: math.MaxInt64, Eager: true, Args: []msgpack.RawMessage{mp(t, "x")}}}},
		{name: "result", msg: Message{Kind: KindResult, Result: Result{ID: 9, Items: items[:1]}}},
		{name: "result/many items", msg: Message{Kind: KindResult, Result: Result{ID: 10, Items: items}}},
		{name: "result/nil value", msg: Message{Kind: KindResult, Result: Result{ID: 11, Items: []Item{nilValue}}},
			want: &Message{Kind: KindResult, Result: Result{ID: 11, Items: []Item{nilValueWant}}}},
		{name: "result/no items", msg: Message{Kind: KindResult, Result: Result{ID: 12, Items: []Item{}}},
			want: &Message{Kind: KindResult, Result: Result{ID: 12}}},
		{name: "result/max id", msg: Message{Kind: KindResult, Result: Result{ID: math.MaxUint64, Items: items[5:]}}},
		{name: "result/from", msg: Message{Kind: KindResult, Result: Result{ID: 13, From: 7, Items: items[:2]}}},
		{name: "result/from 1", msg: Message{Kind: KindResult, Result: Result{ID: 14, From: 1, Items: items[1:2]}}},
		{name: "result/from above uint16", msg: Message{Kind: KindResult, Result: Result{ID: 15, From: 70000, Items: items[2:4]}}},
		{name: "result/max from", msg: Message{Kind: KindResult, Result: Result{ID: 16, From: math.MaxInt32, Items: items[5:]}}},
		{name: "result/max id and from", msg: Message{Kind: KindResult, Result: Result{ID: math.MaxUint64, From: math.MaxInt32, Items: items[:1]}}},
		{name: "result/from, no items", msg: Message{Kind: KindResult, Result: Result{ID: 17, From: 3, Items: []Item{}}},
			want: &Message{Kind: KindResult, Result: Result{ID: 17, From: 3}}},
		{name: "cancel", msg: Message{Kind: KindCancel, Cancel: Cancel{ID: 77}}},
		{name: "cancel/max id", msg: Message{Kind: KindCancel, Cancel: Cancel{ID: math.MaxUint64}}},
	}
}

// normalized is what Read gives back for m: an empty value comes back as
// msgpack nil, and an empty list of names or items as nil.
func normalized(m *Message) *Message {
	n := *m
	if len(n.Hello.Tasks) == 0 {
		n.Hello.Tasks = nil
	}
	if n.Task.Args != nil {
		n.Task.Args = append([]msgpack.RawMessage(nil), n.Task.Args...)
		for i, a := range n.Task.Args {
			if len(a) == 0 {
				n.Task.Args[i] = msgpackNil
			}
		}
	}
	if len(n.Result.Items) == 0 {
		n.Result.Items = nil
	} else {
		n.Result.Items = append([]Item(nil), n.Result.Items...)
		for i := range n.Result.Items {
			if len(n.Result.Items[i].Value) == 0 {
				n.Result.Items[i].Value = msgpackNil
			}
		}
	}
	return &n
}

// describe prints a message short enough for a failure report.
func describe(m *Message) string {
	s := fmt.Sprintf("%+v", *m)
	if len(s) > 600 {
		s = s[:600] + "..."
	}
	return s
}

func writeMessage(w *Writer, m *Message) error {
	switch m.Kind {
	case KindHello:
		return w.WriteHello(&m.Hello)
	case KindTask:
		return w.WriteTask(&m.Task)
	case KindResult:
		return w.WriteResult(&m.Result)
	case KindCancel:
		return w.WriteCancel(&m.Cancel)
	case KindSetup:
		return w.WriteSetup(&m.Setup)
	}
	return errors.New("no such kind")
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			want := normalized(&tc.msg)
			if tc.want != nil && !reflect.DeepEqual(want, tc.want) {
				t.Fatalf("normalized() = %s, want %s", describe(want), describe(tc.want))
			}
			data := writeFrames(t, 0, func(w *Writer) error { return writeMessage(w, &tc.msg) })
			r := NewReader(bytes.NewReader(data), 0)
			var got Message
			if err := r.Read(&got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&got, want) {
				t.Fatalf("got  %s\nwant %s", describe(&got), describe(want))
			}
			if err := r.Read(&got); err != io.EOF {
				t.Fatalf("after the only frame: %v, want io.EOF", err)
			}
		})
	}
}

// TestRoundTripStream sends every case down one stream, through readers
// that return a few bytes at a time, and checks the order.
func TestRoundTripStream(t *testing.T) {
	cases := roundTripCases(t)
	data := writeFrames(t, 0, func(w *Writer) error {
		for i := range cases {
			if err := writeMessage(w, &cases[i].msg); err != nil {
				return err
			}
		}
		return nil
	})
	readers := map[string]func() io.Reader{
		"whole":   func() io.Reader { return bytes.NewReader(data) },
		"onebyte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"half":    func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"dataerr": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			r := NewReader(mk(), 0)
			var m Message // reused: Read must clear what an earlier message left
			for _, tc := range cases {
				want := normalized(&tc.msg)
				if err := r.Read(&m); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if !reflect.DeepEqual(&m, want) {
					t.Fatalf("%s: got %s\nwant %s", tc.name, describe(&m), describe(want))
				}
			}
			if err := r.Read(&m); err != io.EOF {
				t.Fatalf("at the end: %v, want io.EOF", err)
			}
			if !reflect.DeepEqual(m, Message{}) {
				t.Fatalf("message after io.EOF is %+v, want zero", m)
			}
		})
	}
}

// TestLargeArgNearCap fills a frame to exactly the cap, then one byte over.
func TestLargeArgNearCap(t *testing.T) {
	const maxFrame = 1 << 20
	task := func(argLen int) *Task {
		// bin32 header + payload: one well-formed value of argLen bytes.
		arg := make([]byte, argLen)
		arg[0] = 0xc6
		arg[1], arg[2], arg[3], arg[4] = byte((argLen-5)>>24), byte((argLen-5)>>16), byte((argLen-5)>>8), byte(argLen-5)
		for i := 5; i < argLen; i++ {
			arg[i] = byte(i)
		}
		return &Task{ID: 1, Func: "big", Timeout: 0, Args: []msgpack.RawMessage{arg}}
	}
	// The frame around the argument: [2, 1, "big", 0, false, [arg]] is 1+1+1+4+1+1+1 = 10 bytes.
	const overhead = 10
	data := writeFrames(t, maxFrame, func(w *Writer) error { return w.WriteTask(task(maxFrame - overhead)) })
	if got := len(data) - headerSize; got != maxFrame {
		t.Fatalf("frame is %d bytes, want exactly the cap %d", got, maxFrame)
	}
	var m Message
	r := NewReader(bytes.NewReader(data), maxFrame)
	if err := r.Read(&m); err != nil {
		t.Fatal(err)
	}
	if want := task(maxFrame - overhead); !reflect.DeepEqual(m.Task, *want) {
		t.Fatal("large argument changed on the way")
	}
	// A reader with a smaller cap refuses the same frame.
	if err := NewReader(bytes.NewReader(data), maxFrame-1).Read(&m); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("reader cap below the frame: %v, want ErrFrameTooLarge", err)
	}

	var buf bytes.Buffer
	w := NewWriter(&buf, maxFrame)
	if err := w.WriteTask(task(maxFrame - overhead + 1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("one byte over the cap: %v, want ErrFrameTooLarge", err)
	}
	w.Flush()
	if buf.Len() != 0 {
		t.Fatalf("a refused task wrote %d bytes", buf.Len())
	}
}

// TestDecodedMessageOwnsItsMemory: slices of a message survive the next
// Read, and appending to one value never writes over its neighbour.
func TestDecodedMessageOwnsItsMemory(t *testing.T) {
	args := []msgpack.RawMessage{mp(t, "first"), mp(t, "second")}
	res := &Result{ID: 1, Items: []Item{
		{OK: true, Value: mp(t, 1), Output: []byte("out1")},
		{OK: true, Value: mp(t, 2), Output: []byte("out2")},
	}}
	data := writeFrames(t, 0, func(w *Writer) error {
		if err := w.WriteTask(&Task{ID: 1, Func: "f", Args: args}); err != nil {
			return err
		}
		if err := w.WriteResult(res); err != nil {
			return err
		}
		// Frames of the same sizes with other bytes, to overwrite the reused buffer.
		if err := w.WriteTask(&Task{ID: 2, Func: "g", Args: []msgpack.RawMessage{mp(t, "FIRST"), mp(t, "SECOND")}}); err != nil {
			return err
		}
		return w.WriteResult(&Result{ID: 2, Items: []Item{{OK: true, Value: mp(t, 3), Output: []byte("OUT1")}, {OK: true, Value: mp(t, 4), Output: []byte("OUT2")}}})
	})
	r := NewReader(bytes.NewReader(data), 0)
	var tm, rm, scratch Message
	if err := r.Read(&tm); err != nil {
		t.Fatal(err)
	}
	if err := r.Read(&rm); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := r.Read(&scratch); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(tm.Task.Args, args) {
		t.Fatalf("task args changed by later reads: %q", tm.Task.Args)
	}
	if !reflect.DeepEqual(rm.Result, *res) {
		t.Fatalf("result changed by later reads: %+v", rm.Result)
	}
	_ = append(tm.Task.Args[0], 0xff, 0xff, 0xff)
	_ = append(rm.Result.Items[0].Value, 0xff, 0xff)
	_ = append(rm.Result.Items[0].Output, 0xff, 0xff)
	if !reflect.DeepEqual(tm.Task.Args, args) || !reflect.DeepEqual(rm.Result, *res) {
		t.Fatal("an append to one slice wrote over another")
	}
}

func TestBuffered(t *testing.T) {
	data := writeFrames(t, 0, func(w *Writer) error {
		w.WriteHello(&Hello{PID: 1, Version: 1})
		return w.WriteHello(&Hello{PID: 2, Version: 1})
	})
	r := NewReader(bytes.NewReader(data), 0)
	var m Message
	if err := r.Read(&m); err != nil {
		t.Fatal(err)
	}
	if !r.Buffered() {
		t.Fatal("Buffered is false with a second frame in the buffer")
	}
	if err := r.Read(&m); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() {
		t.Fatal("Buffered is true after the last frame")
	}
}

// TestWriterBuffersUntilFlush: the caller decides when bytes reach the
// stream.
func TestWriterBuffersUntilFlush(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, 0)
	if err := w.WriteHello(&Hello{PID: 1, Version: 1}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Fatalf("%d bytes reached the stream before Flush", buf.Len())
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if buf.Len() == 0 {
		t.Fatal("nothing reached the stream after Flush")
	}
}

// TestPipe runs a writer and a reader on the two ends of an OS pipe, in two
// goroutines, as the pool and a worker do.
func TestPipe(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	const n = 5000
	arg := mp(t, map[string]any{"payload": strings.Repeat("p", 500)})
	done := make(chan error, 1)
	go func() {
		defer pw.Close()
		w := NewWriter(pw, 0)
		for i := range uint64(n) {
			if err := w.WriteTask(&Task{ID: i, Func: "f", Args: []msgpack.RawMessage{arg}}); err != nil {
				done <- err
				return
			}
			if i%7 == 0 {
				if err := w.Flush(); err != nil {
					done <- err
					return
				}
			}
		}
		done <- w.Flush()
	}()
	r := NewReader(pr, 0)
	var m Message
	for i := range uint64(n) {
		if err := r.Read(&m); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if m.Kind != KindTask || m.Task.ID != i || !bytes.Equal(m.Task.Args[0], arg) {
			t.Fatalf("frame %d: got %v task %d", i, m.Kind, m.Task.ID)
		}
	}
	if err := r.Read(&m); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindHello: "hello", KindTask: "task", KindResult: "result", KindCancel: "cancel", KindSetup: "setup", 0: "unknown", 4: "unknown", 5: "unknown", 8: "unknown", 99: "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

func TestFrameCap(t *testing.T) {
	for in, want := range map[int]int{-1: DefaultMaxFrame, 0: DefaultMaxFrame, 1: 1, DefaultMaxFrame: DefaultMaxFrame} {
		if got := frameCap(in); got != want {
			t.Errorf("frameCap(%d) = %d, want %d", in, got, want)
		}
	}
	// A cap no 4-byte header can reach is clamped to what one can say.
	if got := frameCap(math.MaxInt); uint64(got) != min(math.MaxUint32, math.MaxInt) {
		t.Errorf("frameCap(MaxInt) = %d, want %d", got, uint64(min(math.MaxUint32, math.MaxInt)))
	}
}
