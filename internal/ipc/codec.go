package ipc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

// Writer encodes messages into frames on a buffered stream. It reuses its
// encoder and scratch buffer; nothing reaches the stream until Flush (or until
// the buffer fills), so the caller decides when a syscall happens. A Writer is
// not safe for concurrent use.
//
// A Write method that returns an error has written nothing: the stream stays
// intact and the next message can be written. (An error from the underlying
// stream is the exception: bufio keeps it, and every later call returns it.)
type Writer struct {
	bw   *bufio.Writer
	max  int
	body bytes.Buffer // the frame being built: room for the header, then the body
	enc  *msgpack.Encoder
	hdr  [headerSize]byte // WriteRaw's header; a field, so that it does not escape per call
}

var zeroHeader [headerSize]byte

// NewWriter returns a Writer on w whose frames may not exceed maxFrame bytes
// (DefaultMaxFrame when maxFrame <= 0).
func NewWriter(w io.Writer, maxFrame int) *Writer {
	fw := &Writer{bw: bufio.NewWriterSize(w, 64<<10), max: frameCap(maxFrame)}
	fw.enc = msgpack.NewEncoder(&fw.body)
	return fw
}

// Flush writes everything buffered to the underlying stream.
func (w *Writer) Flush() error { return w.bw.Flush() }

// WriteHello buffers a Hello frame.
func (w *Writer) WriteHello(h *Hello) error {
	w.begin(KindHello, 7)
	w.enc.EncodeInt(int64(h.PID))
	w.enc.EncodeInt(int64(h.Version))
	w.enc.EncodeArrayLen(len(h.Tasks))
	for _, name := range h.Tasks {
		w.enc.EncodeString(name)
	}
	w.enc.EncodeString(h.Program)
	w.enc.EncodeString(h.Host)
	w.enc.EncodeInt(int64(h.CPUs))
	w.enc.EncodeBool(h.Setup)
	return w.commit()
}

// WriteSetup buffers a Setup frame.
func (w *Writer) WriteSetup(s *Setup) error {
	w.begin(KindSetup, 8)
	w.enc.EncodeInt(int64(s.MaxFrame))
	w.enc.EncodeInt(int64(s.MaxOutput))
	w.enc.EncodeString(s.LogLevel)
	w.enc.EncodeString(s.Initializer)
	if len(s.InitializerArgs) == 0 {
		w.enc.EncodeNil()
	} else {
		if err := w.raw(s.InitializerArgs); err != nil {
			return err
		}
	}
	w.enc.EncodeInt(int64(s.Procs))
	w.enc.EncodeInt(s.MaxMemory)
	w.enc.EncodeInt(s.MemoryInterval)
	return w.commit()
}

// WriteTask buffers a Task frame. It needs at least one argument, and each
// argument must be one well-formed msgpack value (checked with [Validate]);
// with t.Calls set, the elements of t.Args must hold exactly t.Calls
// well-formed values between them. Otherwise it returns an error wrapping
// ErrMalformed and writes nothing.
func (w *Writer) WriteTask(t *Task) error {
	if len(t.Args) == 0 {
		return fmt.Errorf("%w: task %d has no arguments", ErrMalformed, t.ID)
	}
	w.begin(KindTask, 5)
	w.enc.EncodeUint(t.ID)
	w.enc.EncodeString(t.Func)
	w.enc.EncodeInt(t.Timeout)
	w.enc.EncodeBool(t.Eager)
	if t.Calls == 0 {
		w.enc.EncodeArrayLen(len(t.Args))
		for i, a := range t.Args {
			if err := w.raw(a); err != nil {
				return fmt.Errorf("argument %d of task %d: %w", i, t.ID, err)
			}
		}
		return w.commit()
	}
	// Elements holding several values: copied as they are, once counted.
	w.enc.EncodeArrayLen(t.Calls)
	n := 0
	for _, a := range t.Args {
		k, err := CountValues(a)
		if err == nil {
			err = w.room(len(a))
		}
		if err != nil {
			return fmt.Errorf("arguments %d… of task %d: %w", n, t.ID, err)
		}
		w.body.Write(a)
		n += k
	}
	if n != t.Calls {
		return fmt.Errorf("%w: task %d claims %d arguments and has %d", ErrMalformed, t.ID, t.Calls, n)
	}
	return w.commit()
}

// WriteResult buffers a Result frame. From must be an argument's index (0 to
// math.MaxInt32), and each value empty (nil) or one well-formed msgpack
// value; otherwise it returns an error wrapping ErrMalformed and writes
// nothing. A result above the frame cap returns an error wrapping
// ErrFrameTooLarge and writes nothing: the stream stays intact.
func (w *Writer) WriteResult(r *Result) error {
	if uint64(r.From) > math.MaxInt32 { // a negative From too: the Reader refuses both
		return fmt.Errorf("%w: result %d: from %d is not an argument's index", ErrMalformed, r.ID, r.From)
	}
	w.begin(KindResult, 3)
	w.body.Grow(28 * len(r.Items)) // most of it, at once: items of trivial results take about that
	w.enc.EncodeUint(r.ID)
	w.enc.EncodeUint(uint64(r.From))
	w.enc.EncodeArrayLen(len(r.Items))
	for i := range r.Items {
		it := &r.Items[i]
		ok := byte(0xc2) // false
		if it.OK {
			ok = 0xc3
		}
		w.body.Write(append(w.body.AvailableBuffer(), 0x90|8, ok)) // fixarray of 8 fields
		if err := w.raw(it.Value); err != nil {
			return fmt.Errorf("value %d of task %d: %w", i, r.ID, err)
		}
		if it.Err == nil {
			w.enc.EncodeNil()
		} else {
			w.enc.EncodeArrayLen(5)
			w.enc.EncodeString(it.Err.Kind)
			w.enc.EncodeString(it.Err.Message)
			w.enc.EncodeString(it.Err.Stack)
			w.enc.EncodeString(it.Err.Type)
			if err := w.raw(it.Err.Detail); err != nil {
				return fmt.Errorf("error detail %d of task %d: %w", i, r.ID, err)
			}
		}
		if err := w.room(len(it.Output)); err != nil {
			return fmt.Errorf("output %d of task %d: %w", i, r.ID, err)
		}
		w.enc.EncodeBytes(it.Output)
		// The four integers in one write: the encoder makes one call
		// through an interface per piece, a good part of a trivial item.
		w.body.Write(appendInt(appendInt(appendInt(appendInt(w.body.AvailableBuffer(), it.Start), it.End), it.CPU), it.MaxRSS))
	}
	return w.commit()
}

// appendInt appends v in msgpack's shortest encoding, as Encoder.EncodeInt
// writes it: a fixint, or a uint of 8 to 64 bits for other values not
// negative, an int of 8 to 64 bits for the others.
func appendInt(b []byte, v int64) []byte {
	be := binary.BigEndian
	switch u := uint64(v); {
	case v >= -32 && v <= math.MaxInt8: // positive or negative fixint
		return append(b, byte(v))
	case v > 0 && u <= math.MaxUint8:
		return append(b, 0xcc, byte(u))
	case v > 0 && u <= math.MaxUint16:
		return be.AppendUint16(append(b, 0xcd), uint16(u))
	case v > 0 && u <= math.MaxUint32:
		return be.AppendUint32(append(b, 0xce), uint32(u))
	case v > 0:
		return be.AppendUint64(append(b, 0xcf), u)
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return be.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return be.AppendUint32(append(b, 0xd2), uint32(v))
	}
	return be.AppendUint64(append(b, 0xd3), uint64(v))
}

// WriteCancel buffers a Cancel frame.
func (w *Writer) WriteCancel(c *Cancel) error {
	w.begin(KindCancel, 1)
	w.enc.EncodeUint(c.ID)
	return w.commit()
}

// WriteRaw buffers b as a frame without looking at it, whatever the cap.
// Tests use it to play a hostile peer.
func (w *Writer) WriteRaw(b []byte) error {
	if uint64(len(b)) > math.MaxUint32 {
		return fmt.Errorf("%w: %d bytes do not fit a frame header", ErrFrameTooLarge, len(b))
	}
	binary.BigEndian.PutUint32(w.hdr[:], uint32(len(b)))
	if _, err := w.bw.Write(w.hdr[:]); err != nil {
		return err
	}
	_, err := w.bw.Write(b)
	return err
}

// begin starts a frame: room for the header, then the message array and its
// kind. Writes into a bytes.Buffer cannot fail, so the encoder's errors are
// not checked field by field.
func (w *Writer) begin(k Kind, fields int) {
	w.body.Reset()
	w.body.Write(zeroHeader[:])
	w.enc.EncodeArrayLen(1 + fields)
	w.enc.EncodeUint(uint64(k))
}

// room refuses to add n more bytes when they alone would take the frame
// over the cap, before they are copied.
func (w *Writer) room(n int) error {
	if have := w.body.Len() - headerSize; n > w.max-have {
		return fmt.Errorf("%w: %d more bytes after %d, cap %d", ErrFrameTooLarge, n, have, w.max)
	}
	return nil
}

// raw appends one user value, nil when v is empty. The encoder has no buffer
// of its own (bytes.Buffer has WriteByte), so writing straight into body
// keeps the order.
func (w *Writer) raw(v msgpack.RawMessage) error {
	if len(v) == 0 {
		return w.enc.EncodeNil()
	}
	if err := w.room(len(v)); err != nil {
		return err
	}
	if err := Validate(v); err != nil {
		return err
	}
	w.body.Write(v)
	return nil
}

// commit fills in the header and hands the frame to the stream.
func (w *Writer) commit() error {
	b := w.body.Bytes()
	n := len(b) - headerSize
	if n > w.max {
		w.body = bytes.Buffer{} // a frame above the cap is no reason to keep its buffer
		return fmt.Errorf("%w: %d bytes, cap %d", ErrFrameTooLarge, n, w.max)
	}
	binary.BigEndian.PutUint32(b, uint32(n))
	_, err := w.bw.Write(b)
	if w.body.Cap() > keepFrameBuf && n <= keepFrameBuf/16 {
		w.body = bytes.Buffer{} // drop what one huge frame grew
	}
	return err
}

// SetMaxFrame changes the cap on the frames written from now on
// (DefaultMaxFrame when maxFrame <= 0).
func (w *Writer) SetMaxFrame(maxFrame int) { w.max = frameCap(maxFrame) }
