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
		w.WriteTask(&Task{ID: math.MaxUint64, Func: "sq", Timeout: 2e9, Args: []msgpack.RawMessage{arg1, arg2}})
		w.WriteResult(&Result{ID: 5, Items: []Item{
			{OK: true, Value: val, Output: []byte("out"), Start: 10, End: -20},
			{OK: false, Err: &ErrorInfo{Kind: "panic", Message: "boom", Stack: "trace"}},
		}})
		return nil
	})
	b := bodies(t, data)
	if len(b) != 4 {
		t.Fatalf("%d frames, want 4", len(b))
	}

	// Hello [1, pid, version, [task names...]]
	v := generic(t, b[0])
	if len(v) != 4 || num(t, v[0]) != int64(KindHello) || num(t, v[1]) != 77 || num(t, v[2]) != ProtocolVersion ||
		!reflect.DeepEqual(v[3], []any{"a", "b"}) {
		t.Errorf("hello: %#v", v)
	}
	v = generic(t, b[1])
	if len(v) != 4 || !reflect.DeepEqual(v[3], []any{}) {
		t.Errorf("hello without tasks: %#v, want an empty list", v)
	}

	// Task [2, id, func, timeout_ns, [args...]]
	v = generic(t, b[2])
	if len(v) != 5 || num(t, v[0]) != int64(KindTask) || unum(t, v[1]) != math.MaxUint64 || v[2] != "sq" || num(t, v[3]) != 2e9 {
		t.Errorf("task: %#v", v)
	}
	args, ok := v[4].([]any)
	if !ok || len(args) != 2 {
		t.Fatalf("task args: %#v", v[4])
	}
	if !reflect.DeepEqual(args[0], map[string]any{"x": int8(3)}) || !reflect.DeepEqual(args[1], []any{"a", 1.5}) {
		t.Errorf("task args are not the raw values: %#v", args)
	}

	// Result [3, id, [[ok, value, err, output, start_ns, end_ns]...]], err nil or [kind, message, stack]
	v = generic(t, b[3])
	if len(v) != 3 || num(t, v[0]) != int64(KindResult) || num(t, v[1]) != 5 {
		t.Errorf("result: %#v", v)
	}
	items, ok := v[2].([]any)
	if !ok || len(items) != 2 {
		t.Fatalf("result items: %#v", v[2])
	}
	it0, _ := items[0].([]any)
	if len(it0) != 6 || it0[0] != true || it0[1] != "value" || it0[2] != nil ||
		!reflect.DeepEqual(it0[3], []byte("out")) || num(t, it0[4]) != 10 || num(t, it0[5]) != -20 {
		t.Errorf("result item 0: %#v", items[0])
	}
	it1, _ := items[1].([]any)
	if len(it1) != 6 || it1[0] != false || it1[1] != nil || !reflect.DeepEqual(it1[2], []any{"panic", "boom", "trace", "", nil}) ||
		it1[3] != nil || num(t, it1[4]) != 0 || num(t, it1[5]) != 0 {
		t.Errorf("result item 1: %#v", items[1])
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
		{"task/wide ints", []any{uint64(2), int64(7), "f", int32(-5), []msgpack.RawMessage{arg}},
			Message{Kind: KindTask, Task: Task{ID: 7, Func: "f", Timeout: -5, Args: []msgpack.RawMessage{arg}}}},
		{"task/uint16 kind", []any{uint16(2), uint8(7), "f", int8(0), []msgpack.RawMessage{arg}},
			Message{Kind: KindTask, Task: Task{ID: 7, Func: "f", Args: []msgpack.RawMessage{arg}}}},
		{"result", []any{int16(3), uint64(8), []any{
			[]any{true, msgpack.RawMessage(arg), nil, []byte("o"), int64(1), uint64(2)},
			[]any{false, nil, []any{"k", "m", "s", "*fs.PathError", map[string]int{"code": 3}}, nil, int8(-1), int16(-2)},
		}}, Message{Kind: KindResult, Result: Result{ID: 8, Items: []Item{
			{OK: true, Value: arg, Output: []byte("o"), Start: 1, End: 2},
			{OK: false, Value: msgpackNil, Err: &ErrorInfo{Kind: "k", Message: "m", Stack: "s", Type: "*fs.PathError", Detail: msgpack.RawMessage{0x81, 0xa4, 'c', 'o', 'd', 'e', 0x03}}, Start: -1, End: -2},
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
