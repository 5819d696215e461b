package ipc

import (
	"bytes"
	"io"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// The benchmarks measure the hot path in memory: one small task and its
// result, as a pool with short tasks sends and receives them. Compare runs
// with benchstat:
//
//	go test -run '^$' -bench . -count 10 ./internal/ipc/ > new.txt
//	benchstat old.txt new.txt

func benchTask(nargs int) *Task {
	arg, err := msgpack.Marshal(map[string]any{"x": 3, "name": "item"})
	if err != nil {
		panic(err)
	}
	t := &Task{ID: 1 << 20, Func: "square", Timeout: 5e9}
	for range nargs {
		t.Args = append(t.Args, arg)
	}
	return t
}

func benchResult(nitems int) *Result {
	val, err := msgpack.Marshal(map[string]any{"y": 9, "name": "item"})
	if err != nil {
		panic(err)
	}
	r := &Result{ID: 1 << 20}
	for range nitems {
		r.Items = append(r.Items, Item{OK: true, Value: val, Start: 1732550000000000000, End: 1732550000000123456, CPU: 98765})
	}
	return r
}

// loopReader returns data over and over, forever.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.data[l.off:])
		n += c
		l.off = (l.off + c) % len(l.data)
	}
	return n, nil
}

// encodeFrames returns the bytes of frames written by write, and the size of one.
func encodeFrames(b *testing.B, write func(*Writer) error) (one []byte) {
	var buf bytes.Buffer
	w := NewWriter(&buf, 0)
	if err := write(w); err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func benchWrite(b *testing.B, write func(*Writer) error) {
	one := encodeFrames(b, write)
	w := NewWriter(io.Discard, 0)
	b.SetBytes(int64(len(one)))
	b.ReportAllocs()
	for b.Loop() {
		if err := write(w); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
}

func benchRead(b *testing.B, write func(*Writer) error, want Kind) {
	one := encodeFrames(b, write)
	// Repeat the frame so that a Read never waits for its refill.
	data := bytes.Repeat(one, max(1, (256<<10)/len(one)))
	r := NewReader(&loopReader{data: data}, 0)
	var m Message
	b.SetBytes(int64(len(one)))
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Read(&m); err != nil {
			b.Fatal(err)
		}
		if m.Kind != want {
			b.Fatalf("kind %v, want %v", m.Kind, want)
		}
	}
}

func BenchmarkWriteTask(b *testing.B) {
	t := benchTask(1)
	benchWrite(b, func(w *Writer) error { return w.WriteTask(t) })
}

func BenchmarkWriteTaskChunk100(b *testing.B) {
	t := benchTask(100)
	benchWrite(b, func(w *Writer) error { return w.WriteTask(t) })
}

func BenchmarkWriteResult(b *testing.B) {
	r := benchResult(1)
	benchWrite(b, func(w *Writer) error { return w.WriteResult(r) })
}

func BenchmarkWriteResultChunk100(b *testing.B) {
	r := benchResult(100)
	benchWrite(b, func(w *Writer) error { return w.WriteResult(r) })
}

func BenchmarkReadTask(b *testing.B) {
	t := benchTask(1)
	benchRead(b, func(w *Writer) error { return w.WriteTask(t) }, KindTask)
}

func BenchmarkReadTaskChunk100(b *testing.B) {
	t := benchTask(100)
	benchRead(b, func(w *Writer) error { return w.WriteTask(t) }, KindTask)
}

func BenchmarkReadResult(b *testing.B) {
	r := benchResult(1)
	benchRead(b, func(w *Writer) error { return w.WriteResult(r) }, KindResult)
}

func BenchmarkReadResultChunk100(b *testing.B) {
	r := benchResult(100)
	benchRead(b, func(w *Writer) error { return w.WriteResult(r) }, KindResult)
}

// BenchmarkRoundTrip is one task and its result through both directions of
// an in-memory pipe: encode, frame, flush, read, decode, and back.
func BenchmarkRoundTrip(b *testing.B) {
	t := benchTask(1)
	res := benchResult(1)
	var toWorker, toParent bytes.Buffer
	pw, wr := NewWriter(&toWorker, 0), NewReader(&toWorker, 0)
	ww, pr := NewWriter(&toParent, 0), NewReader(&toParent, 0)
	var tm, rm Message
	b.ReportAllocs()
	for b.Loop() {
		if err := pw.WriteTask(t); err != nil {
			b.Fatal(err)
		}
		if err := pw.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := wr.Read(&tm); err != nil {
			b.Fatal(err)
		}
		res.ID = tm.Task.ID
		if err := ww.WriteResult(res); err != nil {
			b.Fatal(err)
		}
		if err := ww.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := pr.Read(&rm); err != nil {
			b.Fatal(err)
		}
		if rm.Kind != KindResult || len(rm.Result.Items) != 1 {
			b.Fatalf("got %+v", rm)
		}
	}
}
