package ipc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// Writer encodes messages into frames on a buffered stream. It reuses its
// encoder and scratch buffer; nothing reaches the stream until Flush (or until
// the buffer fills), so the caller decides when a syscall happens. A Writer is
// not safe for concurrent use.
type Writer struct {
	bw   *bufio.Writer
	max  int
	body bytes.Buffer
	enc  *msgpack.Encoder
}

// NewWriter returns a Writer on w whose frames may not exceed maxFrame bytes
// (DefaultMaxFrame when maxFrame <= 0).
func NewWriter(w io.Writer, maxFrame int) *Writer {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	fw := &Writer{bw: bufio.NewWriterSize(w, 64<<10), max: maxFrame}
	fw.enc = msgpack.NewEncoder(&fw.body)
	return fw
}

// Flush writes everything buffered to the underlying stream.
func (w *Writer) Flush() error { return w.bw.Flush() }

// WriteHello buffers a Hello frame.
func (w *Writer) WriteHello(h *Hello) error {
	w.begin(KindHello, 3)
	w.enc.EncodeInt(int64(h.PID))
	w.enc.EncodeInt(int64(h.Version))
	w.enc.EncodeArrayLen(len(h.Tasks))
	for _, name := range h.Tasks {
		w.enc.EncodeString(name)
	}
	return w.commit()
}

// WriteTask buffers a Task frame. Each argument must be one well-formed
// msgpack value.
func (w *Writer) WriteTask(t *Task) error {
	w.begin(KindTask, 4)
	w.enc.EncodeUint(t.ID)
	w.enc.EncodeString(t.Func)
	w.enc.EncodeInt(t.Timeout)
	w.enc.EncodeArrayLen(len(t.Args))
	for _, a := range t.Args {
		if err := w.raw(a); err != nil {
			return fmt.Errorf("argument of task %d: %w", t.ID, err)
		}
	}
	return w.commit()
}

// WriteResult buffers a Result frame. A result above the frame cap returns an
// error wrapping ErrFrameTooLarge and writes nothing: the stream stays intact.
func (w *Writer) WriteResult(r *Result) error {
	w.begin(KindResult, 2)
	w.enc.EncodeUint(r.ID)
	w.enc.EncodeArrayLen(len(r.Items))
	for i := range r.Items {
		it := &r.Items[i]
		w.enc.EncodeArrayLen(6)
		w.enc.EncodeBool(it.OK)
		if err := w.raw(it.Value); err != nil {
			return fmt.Errorf("value of task %d: %w", r.ID, err)
		}
		if it.Err == nil {
			w.enc.EncodeNil()
		} else {
			w.enc.EncodeArrayLen(3)
			w.enc.EncodeString(it.Err.Kind)
			w.enc.EncodeString(it.Err.Message)
			w.enc.EncodeString(it.Err.Stack)
		}
		w.enc.EncodeBytes(it.Output)
		w.enc.EncodeInt(it.Start)
		w.enc.EncodeInt(it.End)
	}
	return w.commit()
}

// WriteCancel buffers a Cancel frame.
func (w *Writer) WriteCancel(id uint64) error {
	w.begin(KindCancel, 1)
	w.enc.EncodeUint(id)
	return w.commit()
}

// WriteShutdown buffers a Shutdown frame.
func (w *Writer) WriteShutdown() error {
	w.begin(KindShutdown, 0)
	return w.commit()
}

// WriteRaw buffers b as a frame without looking at it. Tests use it to play a
// hostile peer.
func (w *Writer) WriteRaw(b []byte) error {
	var hdr [headerSize]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	w.bw.Write(hdr[:])
	_, err := w.bw.Write(b)
	return err
}

func (w *Writer) begin(k Kind, fields int) {
	w.body.Reset()
	// Writes into a bytes.Buffer cannot fail, so the encoder's errors are
	// not checked field by field.
	w.enc.EncodeArrayLen(1 + fields)
	w.enc.EncodeUint(uint64(k))
}

// raw appends one user value. The encoder has no buffer of its own (bytes.Buffer
// has WriteByte), so writing straight into body keeps the order.
func (w *Writer) raw(v msgpack.RawMessage) error {
	if len(v) == 0 {
		return w.enc.EncodeNil()
	}
	if err := Validate(v); err != nil {
		return err
	}
	w.body.Write(v)
	return nil
}

func (w *Writer) commit() error {
	n := w.body.Len()
	if n > w.max {
		return fmt.Errorf("%w: %d bytes, cap %d", ErrFrameTooLarge, n, w.max)
	}
	var hdr [headerSize]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(n))
	w.bw.Write(hdr[:])
	_, err := w.bw.Write(w.body.Bytes())
	return err
}

// fieldCount is the length of each kind's message array, the kind included.
var fieldCount = [...]int{KindHello: 4, KindTask: 5, KindResult: 3, KindCancel: 2, KindShutdown: 1}

// Reader decodes frames from a stream. It reuses its frame buffer and
// decoder; every slice in a decoded Message is freshly allocated, so the
// message may outlive the next Read. A Reader is not safe for concurrent use.
type Reader struct {
	fr  frameReader
	br  bytes.Reader
	dec *msgpack.Decoder
}

// NewReader returns a Reader on r that refuses frames above maxFrame bytes
// (DefaultMaxFrame when maxFrame <= 0).
func NewReader(r io.Reader, maxFrame int) *Reader {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	rd := &Reader{fr: frameReader{r: bufio.NewReaderSize(r, 64<<10), max: maxFrame}}
	rd.dec = msgpack.NewDecoder(&rd.br)
	return rd
}

// Read decodes the next frame into m. It returns io.EOF at a clean end of
// stream; any other error (ErrFrameTooLarge, ErrMalformed,
// io.ErrUnexpectedEOF, ...) means the stream is broken.
func (r *Reader) Read(m *Message) error {
	body, err := r.fr.next()
	if err != nil {
		return err
	}
	return r.decode(body, m)
}

// Buffered reports whether bytes of a next frame are already buffered.
func (r *Reader) Buffered() bool { return r.fr.r.Buffered() > 0 }

func (r *Reader) decode(body []byte, m *Message) error {
	if err := Validate(body); err != nil {
		return err
	}
	r.br.Reset(body)
	r.dec.ResetReader(&r.br)
	d := r.dec
	n, err := d.DecodeArrayLen()
	if err != nil || n < 1 {
		return fmt.Errorf("%w: not a message array", ErrMalformed)
	}
	k, err := d.DecodeUint8()
	if err != nil {
		return fmt.Errorf("%w: message kind: %v", ErrMalformed, err)
	}
	m.Kind = Kind(k)
	want := 0
	if int(k) < len(fieldCount) {
		want = fieldCount[k]
	}
	if want == 0 {
		return fmt.Errorf("%w: unknown message kind %d", ErrMalformed, k)
	}
	if n != want {
		return fmt.Errorf("%w: %s message with %d fields, want %d", ErrMalformed, m.Kind, n, want)
	}
	switch m.Kind {
	case KindHello:
		err = r.decodeHello(&m.Hello)
	case KindTask:
		err = r.decodeTask(&m.Task)
	case KindResult:
		err = r.decodeResult(&m.Result)
	case KindCancel:
		m.Cancel, err = d.DecodeUint64()
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, m.Kind, err)
	}
	return nil
}

func (r *Reader) decodeHello(h *Hello) (err error) {
	d := r.dec
	if h.PID, err = d.DecodeInt(); err != nil {
		return err
	}
	if h.Version, err = d.DecodeInt(); err != nil {
		return err
	}
	n, err := d.DecodeArrayLen()
	if err != nil {
		return err
	}
	h.Tasks = nil
	for range n {
		s, err := d.DecodeString()
		if err != nil {
			return err
		}
		h.Tasks = append(h.Tasks, s)
	}
	return nil
}

func (r *Reader) decodeTask(t *Task) (err error) {
	d := r.dec
	if t.ID, err = d.DecodeUint64(); err != nil {
		return err
	}
	if t.Func, err = d.DecodeString(); err != nil {
		return err
	}
	if t.Timeout, err = d.DecodeInt64(); err != nil {
		return err
	}
	n, err := d.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n < 1 {
		return fmt.Errorf("task %d has no arguments", t.ID)
	}
	// Validate bounded n by the frame's size; appending (rather than making
	// n up front) keeps allocation in step with what was actually decoded.
	t.Args = make([]msgpack.RawMessage, 0, min(n, 64))
	for range n {
		a, err := d.DecodeRaw()
		if err != nil {
			return err
		}
		t.Args = append(t.Args, a)
	}
	return nil
}

func (r *Reader) decodeResult(res *Result) (err error) {
	d := r.dec
	if res.ID, err = d.DecodeUint64(); err != nil {
		return err
	}
	n, err := d.DecodeArrayLen()
	if err != nil {
		return err
	}
	res.Items = make([]Item, 0, min(n, 16))
	for range n {
		var it Item
		if err := r.decodeItem(&it); err != nil {
			return err
		}
		res.Items = append(res.Items, it)
	}
	return nil
}

func (r *Reader) decodeItem(it *Item) (err error) {
	d := r.dec
	n, err := d.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n != 6 {
		return fmt.Errorf("result item with %d fields, want 6", n)
	}
	if it.OK, err = d.DecodeBool(); err != nil {
		return err
	}
	if it.Value, err = d.DecodeRaw(); err != nil {
		return err
	}
	if n, err = d.DecodeArrayLen(); err != nil { // nil decodes as -1
		return err
	}
	switch n {
	case -1:
	case 3:
		it.Err = new(ErrorInfo)
		if it.Err.Kind, err = d.DecodeString(); err != nil {
			return err
		}
		if it.Err.Message, err = d.DecodeString(); err != nil {
			return err
		}
		if it.Err.Stack, err = d.DecodeString(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("error with %d fields, want 3", n)
	}
	if it.Output, err = d.DecodeBytes(); err != nil {
		return err
	}
	if it.Start, err = d.DecodeInt64(); err != nil {
		return err
	}
	it.End, err = d.DecodeInt64()
	return err
}
