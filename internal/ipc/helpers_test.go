package ipc

import (
	"bytes"
	"encoding/binary"
	"io"
	"runtime"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// mp marshals v with the msgpack library, for building values and frames by
// hand.
func mp(t testing.TB, v any) msgpack.RawMessage {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// frame prefixes body with its 4-byte length.
func frame(body []byte) []byte {
	out := make([]byte, headerSize+len(body))
	binary.BigEndian.PutUint32(out, uint32(len(body)))
	copy(out[headerSize:], body)
	return out
}

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// writeFrames runs write on a Writer over a buffer and returns what it wrote.
func writeFrames(t testing.TB, maxFrame int, write func(w *Writer) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, maxFrame)
	if err := write(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// allocated returns how many bytes f allocated on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// lazyReader yields prefix, then zeros until size bytes in all, without ever
// holding them: a stream that claims gigabytes costs nothing to make.
type lazyReader struct {
	prefix []byte
	size   int64
	off    int64
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.off >= l.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), l.size-l.off))
	for i := range n {
		if l.off+int64(i) < int64(len(l.prefix)) {
			p[i] = l.prefix[l.off+int64(i)]
		} else {
			p[i] = 0
		}
	}
	l.off += int64(n)
	return n, nil
}
