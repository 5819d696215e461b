package ipc

import (
	"bufio"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// fieldCount is the length of each kind's message array, the kind included;
// 0 for a kind that does not exist.
var fieldCount = [...]int{KindHello: 4, KindTask: 5, KindResult: 3}

// minItemSize is the smallest encoding of a result item: a fixarray header
// and six one-byte values.
const minItemSize = 7

// Reader decodes frames from a stream. It reuses its frame buffer; every
// slice and string in a decoded Message is freshly allocated (or shared with
// an earlier message and never written), so the message may outlive the next
// Read. The arguments of one Task, and the values and outputs of one Result,
// share one backing array (each slice's capacity ends where it ends). A
// Reader is not safe for concurrent use.
//
// The decoder is strict: each field must have the msgpack type that Writer
// gives it (an integer that fits, a str, a bin or nil, ...), with any of
// msgpack's integer encodings accepted, so another msgpack encoder can speak
// the protocol.
type Reader struct {
	fr    frameReader
	names map[string]string
}

// NewReader returns a Reader on r that refuses frames above maxFrame bytes
// (DefaultMaxFrame when maxFrame <= 0).
func NewReader(r io.Reader, maxFrame int) *Reader {
	return &Reader{fr: frameReader{r: bufio.NewReaderSize(r, 64<<10), max: frameCap(maxFrame)}}
}

// Read decodes the next frame into m, which it clears first. It returns
// io.EOF at a clean end of stream; any other error (ErrFrameTooLarge,
// ErrMalformed, io.ErrUnexpectedEOF, ...) means the stream is broken. On an
// error m is left zero.
func (r *Reader) Read(m *Message) error {
	*m = Message{}
	body, err := r.fr.next()
	if err == nil {
		err = r.decode(body, m)
	}
	if err != nil {
		*m = Message{}
	}
	return err
}

// ReadShared is Read without copies, for a caller that is done with each
// message before it reads the next: the message's slices point into the
// Reader's frame buffer, and a Result's Items reuse the array of the Items
// m held before. Both are valid only until the next read.
func (r *Reader) ReadShared(m *Message) error {
	items := m.Result.Items[:0]
	*m = Message{}
	m.Result.Items = items
	body, err := r.fr.next()
	if err == nil {
		err = r.decodeWith(body, m, true)
	}
	if err != nil {
		*m = Message{}
	}
	return err
}

// OnBigFrame makes the Reader call fn when it has read the header of a frame
// of at least size bytes, before it reads the body: a large frame takes a
// while to arrive, and the sender is done with it as it starts to send it.
func (r *Reader) OnBigFrame(size int, fn func()) { r.fr.bigFrame, r.fr.bigSize = fn, size }

// Buffered reports whether bytes of a next frame are already buffered.
func (r *Reader) Buffered() bool { return r.fr.r.Buffered() > 0 }

func (r *Reader) decode(body []byte, m *Message) error { return r.decodeWith(body, m, false) }

func (r *Reader) decodeWith(body []byte, m *Message, shared bool) error {
	// Validate bounds every length and nesting level in the frame before
	// anything is decoded; the cursor below checks bounds again on its own.
	if err := Validate(body); err != nil {
		return err
	}
	c := cursor{b: body, names: &r.names, shared: shared}
	n, err := c.arrayLen("message")
	if err != nil {
		return fmt.Errorf("%w: not a message array: %v", ErrMalformed, err)
	}
	if n < 1 {
		return fmt.Errorf("%w: empty message array", ErrMalformed)
	}
	k, err := c.uint("message kind")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if k >= uint64(len(fieldCount)) || fieldCount[k] == 0 {
		return fmt.Errorf("%w: unknown message kind %d", ErrMalformed, k)
	}
	kind := Kind(k)
	if want := fieldCount[k]; n != want {
		return fmt.Errorf("%w: %s message with %d fields, want %d", ErrMalformed, kind, n, want)
	}
	switch kind {
	case KindHello:
		err = c.hello(&m.Hello)
	case KindTask:
		err = c.task(&m.Task)
	case KindResult:
		err = c.result(&m.Result)
	}
	if err == nil && c.off != len(c.b) {
		err = fmt.Errorf("%d bytes after the message", len(c.b)-c.off)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, kind, err)
	}
	m.Kind = kind
	return nil
}

func (c *cursor) hello(h *Hello) (err error) {
	if h.PID, err = c.int("pid"); err != nil {
		return err
	}
	if h.Version, err = c.int("version"); err != nil {
		return err
	}
	n, err := c.arrayLen("task names")
	if err != nil {
		return err
	}
	if n > 0 {
		h.Tasks = make([]string, n)
	}
	for i := range h.Tasks {
		if h.Tasks[i], err = c.str("task name"); err != nil {
			return err
		}
	}
	return nil
}

func (c *cursor) task(t *Task) (err error) {
	if t.ID, err = c.uint("id"); err != nil {
		return err
	}
	if t.Func, err = c.name("func"); err != nil {
		return err
	}
	if t.Timeout, err = c.int64("timeout"); err != nil {
		return err
	}
	n, err := c.arrayLen("args")
	if err != nil {
		return err
	}
	if n < 1 {
		return fmt.Errorf("task %d has no arguments", t.ID)
	}
	// n is at most the bytes left (each value takes one at least), so the
	// slice costs at most 24 bytes for each byte of the frame.
	c.own()
	t.Args = make([]msgpack.RawMessage, n)
	for i := range t.Args {
		if t.Args[i], err = c.raw("argument"); err != nil {
			return err
		}
	}
	return nil
}

func (c *cursor) result(res *Result) (err error) {
	if res.ID, err = c.uint("id"); err != nil {
		return err
	}
	n, err := c.arrayLen("items")
	if err != nil {
		return err
	}
	if n > (len(c.b)-c.off)/minItemSize {
		return fmt.Errorf("%d items claimed in %d bytes", n, len(c.b)-c.off)
	}
	if n == 0 {
		return nil
	}
	c.own()
	if c.shared && cap(res.Items) >= n && (n >= cap(res.Items)/16 || cap(res.Items) <= 1<<12) {
		res.Items = res.Items[:n]
		clear(res.Items)
	} else {
		res.Items = make([]Item, n)
	}
	for i := range res.Items {
		if err := c.item(&res.Items[i]); err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
	}
	return nil
}

func (c *cursor) item(it *Item) (err error) {
	n, err := c.arrayLen("item")
	if err != nil {
		return err
	}
	if n != 6 {
		return fmt.Errorf("result item with %d fields, want 6", n)
	}
	if it.OK, err = c.bool("ok"); err != nil {
		return err
	}
	if it.Value, err = c.raw("value"); err != nil {
		return err
	}
	if !c.nil() {
		n, err := c.arrayLen("error")
		if err != nil {
			return err
		}
		if n != 3 {
			return fmt.Errorf("error with %d fields, want 3", n)
		}
		e := new(ErrorInfo)
		if e.Kind, err = c.str("error kind"); err != nil {
			return err
		}
		if e.Message, err = c.str("error message"); err != nil {
			return err
		}
		if e.Stack, err = c.str("error stack"); err != nil {
			return err
		}
		it.Err = e
	}
	if it.Output, err = c.binOrNil("output"); err != nil {
		return err
	}
	if it.Start, err = c.int64("start"); err != nil {
		return err
	}
	it.End, err = c.int64("end")
	return err
}
