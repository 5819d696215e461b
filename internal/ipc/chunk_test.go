package ipc

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func mustMarshal(t *testing.T, vs ...any) []byte {
	t.Helper()
	var b []byte
	for _, v := range vs {
		raw, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, raw...)
	}
	return b
}

// A chunk's arguments, written back to back in a few elements, arrive as one
// argument each.
func TestWriteTaskCalls(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, 0)
	a := mustMarshal(t, 1, "two", []int{3})
	b := mustMarshal(t, map[string]int{"four": 4}, 5.5)
	if err := w.WriteTask(&Task{ID: 9, Func: "f", Eager: true, Args: []msgpack.RawMessage{a, b}, Calls: 5}); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	var m Message
	if err := NewReader(&buf, 0).Read(&m); err != nil {
		t.Fatal(err)
	}
	if m.Task.ID != 9 || m.Task.Func != "f" || !m.Task.Eager || m.Task.Calls != 0 {
		t.Errorf("task %d %q eager %v calls %d, want 9 \"f\" eager true calls 0", m.Task.ID, m.Task.Func, m.Task.Eager, m.Task.Calls)
	}
	want := []any{1, "two", []int{3}, map[string]int{"four": 4}, 5.5}
	if len(m.Task.Args) != len(want) {
		t.Fatalf("%d arguments, want %d", len(m.Task.Args), len(want))
	}
	for i, v := range want {
		if got := mustMarshal(t, v); !bytes.Equal(m.Task.Args[i], got) {
			t.Errorf("argument %d: % x, want % x", i, m.Task.Args[i], got)
		}
	}
}

// A count that does not match the values, or a value that is not msgpack,
// writes nothing.
func TestWriteTaskCallsRefused(t *testing.T) {
	for name, task := range map[string]Task{
		"too few":   {Args: []msgpack.RawMessage{mustMarshal(t, 1, 2)}, Calls: 3},
		"too many":  {Args: []msgpack.RawMessage{mustMarshal(t, 1, 2)}, Calls: 1},
		"truncated": {Args: []msgpack.RawMessage{append(mustMarshal(t, 1), 0xcd, 0x01)}, Calls: 2},
		"bad code":  {Args: []msgpack.RawMessage{{0x01, 0xc1}}, Calls: 2},
	} {
		var buf bytes.Buffer
		w := NewWriter(&buf, 0)
		if err := w.WriteTask(&task); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
		w.Flush()
		if buf.Len() != 0 {
			t.Errorf("%s: %d bytes written", name, buf.Len())
		}
	}
}

func TestCountValues(t *testing.T) {
	b := mustMarshal(t, 0, -1, 200, -200, 70000, int64(1)<<40, 1.5, nil, true, "s", []any{1, []int{2}}, map[string]any{"k": []byte("v")})
	if n, err := CountValues(b); n != 12 || err != nil {
		t.Errorf("CountValues = %d, %v; want 12", n, err)
	}
	for cut := 1; cut < len(b); cut++ {
		n, err := CountValues(b[:cut])
		if err == nil {
			// A cut between two values leaves fewer, whole values.
			if n >= 12 {
				t.Errorf("cut at %d: %d values", cut, n)
			}
			continue
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("cut at %d: %v, want ErrMalformed", cut, err)
		}
	}
}

// ReadShared reuses the Items array of the message it decodes into.
func TestReadSharedReusesItems(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, 0)
	for id := range uint64(3) {
		items := []Item{{OK: true, Value: mustMarshal(t, id)}, {Err: &ErrorInfo{Kind: "error", Message: "m"}}}
		if id == 2 {
			items = items[:1] // no stale error left from the message before
			items[0].OK = false
		}
		if err := w.WriteResult(&Result{ID: id, From: int(id) * 2, Items: items}); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	r := NewReader(&buf, 0)
	var m Message
	var first *Item
	for id := range uint64(3) {
		if err := r.ReadShared(&m); err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = &m.Result.Items[0]
		} else if &m.Result.Items[0] != first {
			t.Errorf("result %d: a new Items array", id)
		}
		if m.Result.ID != id || m.Result.From != int(id)*2 || !bytes.Equal(m.Result.Items[0].Value, mustMarshal(t, id)) && id != 2 {
			t.Errorf("result %d: %+v", id, m.Result)
		}
		if id == 2 && (len(m.Result.Items) != 1 || m.Result.Items[0].Err != nil || m.Result.Items[0].OK) {
			t.Errorf("result 2: %+v", m.Result.Items)
		}
	}
}
