package ipc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// The wire format is plain msgpack with the layout documented in doc.go:
// another msgpack library can read what Writer writes, and Reader reads what
// another msgpack library writes.

// bodies splits a stream into frame bodies, checking each length prefix.
func bodies(t *testing.T, data []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(data) > 0 {
		if len(data) < headerSize {
			t.Fatalf("%d bytes left, not a header", len(data))
		}
		n := int(binary.BigEndian.Uint32(data))
		if len(data)-headerSize < n {
			t.Fatalf("header says %d bytes, %d follow", n, len(data)-headerSize)
		}
		out = append(out, data[headerSize:headerSize+n])
		data = data[headerSize+n:]
	}
	return out
}

// generic decodes one frame body with the msgpack library alone, as any
// msgpack reader would.
func generic(t *testing.T, body []byte) []any {
	t.Helper()
	var v []any
	dec := msgpack.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("msgpack cannot decode the frame: %v", err)
	}
	if _, err := dec.PeekCode(); err == nil {
		t.Fatal("bytes after the message")
	}
	return v
}

// num turns any msgpack integer that DecodeInterface produced (it picks the
// narrowest type) into an int64, or fails.
func num(t *testing.T, v any) int64 {
	t.Helper()
	switch n := v.(type) {
	case int8:
		return int64(n)
	case int16:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	case uint8:
		return int64(n)
	case uint16:
		return int64(n)
	case uint32:
		return int64(n)
	case uint64:
		if n > math.MaxInt64 {
			t.Fatalf("%d does not fit int64", n)
		}
		return int64(n)
	}
	t.Fatalf("%#v (%T) is not an integer", v, v)
	return 0
}

func unum(t *testing.T, v any) uint64 {
	t.Helper()
	if n, ok := v.(uint64); ok {
		return n
	}
	n := num(t, v)
	if n < 0 {
		t.Fatalf("%d is negative", n)
	}
	return uint64(n)
}

func TestWriterFramesAreMsgpack(t *testing.T) {
	arg1, arg2 := mp(t, map[string]any{"x": 3}), mp(t, []any{"a", 1.5})
	val := mp(t, "value")
	data := writeFrames(t, 0, func(w *Writer) error {
		w.WriteHello(&Hello{PID: 77, Version: ProtocolVersion, Tasks: []string{"a", "b"}})
		w.WriteHello(&Hello{PID: 78, Version: ProtocolVersion})
		w.WriteTask(&Task{ID: math.MaxUint64, Func: "sq", Timeout: 2e9, Eager: true, Args: []msgpack.RawMessage{arg1, arg2}})
		w.WriteResult(&Result{ID: 5, From: 2, Items: []Item{
			{OK: true, Value: val, Output: []byte("out"), Start: 10, End: -20, CPU: 70000},
			{OK: false, Err: &ErrorInfo{Kind: "panic", Message: "boom", Stack: "trace"}, CPU: -1},
		}})
		w.WriteTask(&Task{ID: 6, Func: "sq", Args: []msgpack.RawMessage{arg1}})
		w.WriteResult(&Result{ID: 6, From: math.MaxInt32})
		return nil
	})
	b := bodies(t, data)
	if len(b) != 6 {
		t.Fatalf("%d frames, want 6", len(b))
	}

	// Hello [1, pid, version, [task names...], program, host, cpus, setup]
	v := generic(t, b[0])
	if len(v) != 8 || num(t, v[0]) != int64(KindHello) || num(t, v[1]) != 77 || num(t, v[2]) != ProtocolVersion ||
		!reflect.DeepEqual(v[3], []any{"a", "b"}) {
		t.Errorf("hello: %#v", v)
	}
	v = generic(t, b[1])
	if len(v) != 8 || !reflect.DeepEqual(v[3], []any{}) {
		t.Errorf("hello without tasks: %#v, want an empty list", v)
	}

	// Task [2, id, func, timeout_ns, eager, [args...]]
	v = generic(t, b[2])
	if len(v) != 6 || num(t, v[0]) != int64(KindTask) || unum(t, v[1]) != math.MaxUint64 || v[2] != "sq" || num(t, v[3]) != 2e9 || v[4] != true {
		t.Errorf("task: %#v", v)
	}
	args, ok := v[5].([]any)
	if !ok || len(args) != 2 {
		t.Fatalf("task args: %#v", v[5])
	}
	if !reflect.DeepEqual(args[0], map[string]any{"x": int8(3)}) || !reflect.DeepEqual(args[1], []any{"a", 1.5}) {
		t.Errorf("task args are not the raw values: %#v", args)
	}

	// Result [3, id, from, [[ok, value, err, output, start_ns, end_ns, cpu_ns]...]], err nil or [kind, message, stack, type, detail]
	v = generic(t, b[3])
	if len(v) != 4 || num(t, v[0]) != int64(KindResult) || num(t, v[1]) != 5 || unum(t, v[2]) != 2 {
		t.Errorf("result: %#v", v)
	}
	items, ok := v[3].([]any)
	if !ok || len(items) != 2 {
		t.Fatalf("result items: %#v", v[3])
	}
	it0, _ := items[0].([]any)
	if len(it0) != 8 || num(t, it0[7]) != 0 || it0[0] != true || it0[1] != "value" || it0[2] != nil ||
		!reflect.DeepEqual(it0[3], []byte("out")) || num(t, it0[4]) != 10 || num(t, it0[5]) != -20 || num(t, it0[6]) != 70000 {
		t.Errorf("result item 0: %#v", items[0])
	}
	it1, _ := items[1].([]any)
	if len(it1) != 8 || num(t, it1[7]) != 0 || it1[0] != false || it1[1] != nil || !reflect.DeepEqual(it1[2], []any{"panic", "boom", "trace", "", nil}) ||
		it1[3] != nil || num(t, it1[4]) != 0 || num(t, it1[5]) != 0 || num(t, it1[6]) != -1 {
		t.Errorf("result item 1: %#v", items[1])
	}

	// A task that is not eager says false (a bool, not nil); a result
	// without items says its from all the same.
	v = generic(t, b[4])
	if len(v) != 6 || num(t, v[0]) != int64(KindTask) || num(t, v[1]) != 6 || v[4] != false {
		t.Errorf("task, not eager: %#v", v)
	}
	v = generic(t, b[5])
	if len(v) != 4 || num(t, v[0]) != int64(KindResult) || num(t, v[1]) != 6 || unum(t, v[2]) != math.MaxInt32 || !reflect.DeepEqual(v[3], []any{}) {
		t.Errorf("result, largest from, no items: %#v", v)
	}
}

// encodeWidths encodes v with the msgpack library, keeping the integer
// widths v asks for.
func encodeWidths(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReaderReadsOtherEncoders: frames made by msgpack.Marshal from plain
// slices decode, whatever integer widths the encoder picked.
func TestReaderReadsOtherEncoders(t *testing.T) {
	arg := mp(t, []any{1, "two"})
	cases := []struct {
		name string
		body any
		want Message
	}{
		{"hello/wide ints", []any{int64(1), int64(99), uint32(1), []string{"f"}},
			Message{Kind: KindHello, Hello: Hello{PID: 99, Version: 1, Tasks: []string{"f"}}}},
		{"task/wide ints", []any{uint64(2), int64(7), "f", int32(-5), false, []msgpack.RawMessage{arg}},
			Message{Kind: KindTask, Task: Task{ID: 7, Func: "f", Timeout: -5, Args: []msgpack.RawMessage{arg}}}},
		{"task/uint16 kind", []any{uint16(2), uint8(7), "f", int8(0), false, []msgpack.RawMessage{arg}},
			Message{Kind: KindTask, Task: Task{ID: 7, Func: "f", Args: []msgpack.RawMessage{arg}}}},
		{"task/eager", []any{int64(2), uint32(9), "g", int64(1e9), true, []msgpack.RawMessage{arg, arg}},
			Message{Kind: KindTask, Task: Task{ID: 9, Func: "g", Timeout: 1e9, Eager: true, Args: []msgpack.RawMessage{arg, arg}}}},
		{"task/eager, as_array struct", &taskV3{Kind: uint8(KindTask), ID: 10, Func: "h", Timeout: 7, Eager: true, Args: []msgpack.RawMessage{arg}},
			Message{Kind: KindTask, Task: Task{ID: 10, Func: "h", Timeout: 7, Eager: true, Args: []msgpack.RawMessage{arg}}}},
		{"result/from as int8", []any{uint8(3), uint8(9), int8(4), []any{}},
			Message{Kind: KindResult, Result: Result{ID: 9, From: 4}}},
		{"result/max from as int64", []any{int64(3), int64(9), int64(math.MaxInt32), []any{
			[]any{true, msgpack.RawMessage(arg), nil, nil, uint8(0), uint8(0)},
		}}, Message{Kind: KindResult, Result: Result{ID: 9, From: math.MaxInt32, Items: []Item{{OK: true, Value: arg, CPU: -1}}}}},
		{"result/max from as uint64", []any{uint64(3), uint64(9), uint64(math.MaxInt32), []any{}},
			Message{Kind: KindResult, Result: Result{ID: 9, From: math.MaxInt32}}},
		{"result/from, as_array struct", &resultV3{Kind: uint8(KindResult), ID: 11, From: 70000, Items: []any{
			[]any{false, nil, []any{"timeout", "m", "", "", nil}, []byte("o"), int64(5), int64(6)},
		}}, Message{Kind: KindResult, Result: Result{ID: 11, From: 70000, Items: []Item{
			{Value: msgpackNil, Err: &ErrorInfo{Kind: "timeout", Message: "m"}, Output: []byte("o"), Start: 5, End: 6, CPU: -1},
		}}}},
		{"result", []any{int16(3), uint64(8), uint32(0), []any{
			[]any{true, msgpack.RawMessage(arg), nil, []byte("o"), int64(1), uint64(2)},
			[]any{false, nil, []any{"k", "m", "s", "*fs.PathError", map[string]int{"code": 3}}, nil, int8(-1), int16(-2)},
		}}, Message{Kind: KindResult, Result: Result{ID: 8, Items: []Item{
			{OK: true, Value: arg, Output: []byte("o"), Start: 1, End: 2, CPU: -1},
			{OK: false, Value: msgpackNil, Err: &ErrorInfo{Kind: "k", Message: "m", Stack: "s", Type: "*fs.PathError", Detail: msgpack.RawMessage{0x81, 0xa4, 'c', 'o', 'd', 'e', 0x03}}, Start: -1, End: -2, CPU: -1},
		}}}},
		{"result/cpu in any width", []any{uint8(3), uint8(8), uint8(0), []any{
			[]any{true, msgpack.RawMessage(arg), nil, nil, int64(1), int64(2), uint8(200)},
			[]any{true, msgpack.RawMessage(arg), nil, nil, int64(1), int64(2), uint32(1 << 30)},
			[]any{true, msgpack.RawMessage(arg), nil, nil, int64(1), int64(2), int64(math.MaxInt64)},
			[]any{true, msgpack.RawMessage(arg), nil, nil, int64(1), int64(2), uint64(0)},
			[]any{true, msgpack.RawMessage(arg), nil, nil, int64(1), int64(2), int8(-1)},
			[]any{true, msgpack.RawMessage(arg), nil, nil, int64(1), int64(2), int64(math.MinInt64)},
		}}, Message{Kind: KindResult, Result: Result{ID: 8, Items: []Item{
			{OK: true, Value: arg, Start: 1, End: 2, CPU: 200},
			{OK: true, Value: arg, Start: 1, End: 2, CPU: 1 << 30},
			{OK: true, Value: arg, Start: 1, End: 2, CPU: math.MaxInt64},
			{OK: true, Value: arg, Start: 1, End: 2, CPU: 0},
			{OK: true, Value: arg, Start: 1, End: 2, CPU: -1},
			{OK: true, Value: arg, Start: 1, End: 2, CPU: math.MinInt64},
		}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := encodeWidths(t, tc.body)
			var m Message
			if err := NewReader(bytes.NewReader(frame(body)), 0).Read(&m); err != nil {
				t.Fatalf("% x: %v", body, err)
			}
			if !reflect.DeepEqual(m, tc.want) {
				t.Fatalf("got  %s\nwant %s", describe(&m), describe(&tc.want))
			}
		})
	}
}

// taskV3 and resultV3 are how a peer written with the msgpack library alone
// would declare the messages of protocol 3.
type taskV3 struct {
	//lint:ignore U1000 the msgpack library reads its tag
	_msgpack struct{} `msgpack:",as_array"`
	Kind     uint8
	ID       uint64
	Func     string
	Timeout  int64
	Eager    bool
	Args     []msgpack.RawMessage
}

type resultV3 struct {
	//lint:ignore U1000 the msgpack library reads its tag
	_msgpack struct{} `msgpack:",as_array"`
	Kind     uint8
	ID       uint64
	From     uint32
	Items    []any
}

// TestProtocol2FramesRefused: a task without eager and a result without
// from, as a peer of protocol 2 sends them, are refused for their length.
func TestProtocol2FramesRefused(t *testing.T) {
	arg := mp(t, 1)
	for _, tc := range []struct {
		name string
		body []any
		want string
	}{
		{"task", []any{uint8(2), uint64(7), "f", int64(0), []msgpack.RawMessage{arg}}, "task message with 5 fields, want 6"},
		{"result", []any{uint8(3), uint64(7), []any{}}, "result message with 3 fields, want 4"},
		{"result with an item", []any{uint8(3), uint64(7), []any{
			[]any{true, msgpack.RawMessage(arg), nil, nil, int64(0), int64(0)},
		}}, "result message with 3 fields, want 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := encodeWidths(t, tc.body)
			var m Message
			err := NewReader(bytes.NewReader(frame(body)), 0).Read(&m)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("% x: got %v, want ErrMalformed for %q", body, err, tc.want)
			}
			if !isZero(&m) {
				t.Fatalf("message not left zero: %s", describe(&m))
			}
		})
	}
}

// TestRetiredKindsRefused: kinds 4 and 5 (cancel [4, id] and shutdown [5],
// which no parent ever sent) are gone; a frame of either, in the shape it
// had and in any integer width, is refused as an unknown kind.
func TestRetiredKindsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []any
		kind int
	}{
		{"cancel", []any{int8(4), uint64(300)}, 4},
		{"cancel/wide ints", []any{int64(4), uint64(math.MaxUint64)}, 4},
		{"shutdown", []any{int8(5)}, 5},
		{"shutdown/uint32", []any{uint32(5)}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := encodeWidths(t, tc.body)
			var m Message
			err := NewReader(bytes.NewReader(frame(body)), 0).Read(&m)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), fmt.Sprintf("unknown message kind %d", tc.kind)) {
				t.Fatalf("% x: got %v, want ErrMalformed for unknown message kind %d", body, err, tc.kind)
			}
			if !isZero(&m) {
				t.Fatalf("message not left zero: %s", describe(&m))
			}
		})
	}
}

// TestAppendInt: appendInt writes what the msgpack library's EncodeInt
// writes, at every boundary of the encodings.
func TestAppendInt(t *testing.T) {
	var vs []int64
	for _, v := range []int64{0, 1, 31, 32, 127, 128, 255, 256, 1<<16 - 1, 1 << 16, 1<<32 - 1, 1 << 32, math.MaxInt64,
		-1, -31, -32, -33, -127, -128, -129, -1 << 15, -1<<15 - 1, -1 << 31, -1<<31 - 1, math.MinInt64} {
		vs = append(vs, v, v+1, v-1)
	}
	for _, v := range vs {
		var buf bytes.Buffer
		if err := msgpack.NewEncoder(&buf).EncodeInt(v); err != nil {
			t.Fatal(err)
		}
		if got := appendInt([]byte{0xaa}, v); !bytes.Equal(got[1:], buf.Bytes()) || got[0] != 0xaa {
			t.Errorf("appendInt(%d) = % x, EncodeInt gives % x", v, got[1:], buf.Bytes())
		}
	}
}

// TestHelloOfOtherVersions: a parent reads the hello of an older worker
// (protocol 4: three fields) and of a newer one (fields this version does
// not know, skipped), so that it can name the version it cannot serve.
func TestHelloOfOtherVersions(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []any
		want Hello
	}{
		{"protocol 4", []any{1, 10, 4, []string{"echo"}}, Hello{PID: 10, Version: 4, Tasks: []string{"echo"}}},
		{"later", []any{1, 11, 9, []string{}, "poold v9", "far", 8, true, "new", map[string]int{"x": 1}},
			Hello{PID: 11, Version: 9, Program: "poold v9", Host: "far", CPUs: 8, Setup: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			if err := NewReader(bytes.NewReader(frame(mp(t, tc.body))), 0).Read(&m); err != nil {
				t.Fatal(err)
			}
			if m.Kind != KindHello || !reflect.DeepEqual(m.Hello, tc.want) {
				t.Errorf("read %+v, want %+v", m.Hello, tc.want)
			}
		})
	}
	var m Message
	short := frame(mp(t, []any{1, 10, 4}))
	if err := NewReader(bytes.NewReader(short), 0).Read(&m); !errors.Is(err, ErrMalformed) {
		t.Errorf("a hello of 2 fields: %v, want ErrMalformed", err)
	}
	wrong := frame(mp(t, []any{1, 10, 5, []string{}, 7}))
	if err := NewReader(bytes.NewReader(wrong), 0).Read(&m); !errors.Is(err, ErrMalformed) {
		t.Errorf("a hello whose program is a number: %v, want ErrMalformed", err)
	}
}
