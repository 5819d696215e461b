package tasks

import (
	"bytes"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Task values travel as msgpack. Struct fields are named by their msgpack
// tag, else by their json tag, else by the Go field name, so that a type
// written for encoding/json works unchanged, and JSON task files map onto it.
const structTag = "json"

type encoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

type decoder struct {
	r   bytes.Reader
	dec *msgpack.Decoder
}

// Pools rather than per-call construction: building a msgpack encoder or
// decoder allocates, and these run once per task on both sides of the pipe.
var (
	encoders = sync.Pool{New: func() any {
		e := &encoder{}
		e.enc = msgpack.NewEncoder(&e.buf)
		e.enc.SetCustomStructTag(structTag)
		e.enc.UseCompactInts(true)
		return e
	}}
	decoders       = sync.Pool{New: func() any { return newDecoder(false) }}
	strictDecoders = sync.Pool{New: func() any { return newDecoder(true) }}
)

// newDecoder makes a decoder for the pools above; a strict one refuses
// unknown struct fields.
func newDecoder(strict bool) *decoder {
	d := &decoder{}
	d.dec = msgpack.NewDecoder(&d.r)
	d.dec.SetCustomStructTag(structTag)
	d.dec.DisallowUnknownFields(strict)
	return d
}

// Marshal encodes v as one msgpack value.
func Marshal(v any) (msgpack.RawMessage, error) {
	if b, ok := appendScalar(nil, v); ok {
		return b, nil
	}
	return AppendMarshal(nil, v)
}

// AppendMarshal appends the encoding of v to dst: encoding many values into
// one buffer costs one allocation, not one each.
func AppendMarshal(dst []byte, v any) ([]byte, error) {
	if b, ok := appendScalar(dst, v); ok {
		return b, nil
	}
	e := encoders.Get().(*encoder)
	defer encoders.Put(e)
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return dst, err
	}
	if dst == nil {
		return bytes.Clone(e.buf.Bytes()), nil
	}
	return append(dst, e.buf.Bytes()...), nil
}

// Unmarshal decodes one msgpack value into v. Unknown struct fields are
// ignored.
func Unmarshal(raw []byte, v any) error {
	if decodeScalar(raw, v) {
		return nil
	}
	return unmarshal(&decoders, raw, v)
}

// DecodeArgs decodes a task's arguments into v, refusing unknown struct
// fields (a misspelt argument should not silently become its zero value).
// An integer field also accepts a float with an integral value, since JSON
// readers often turn every number into a float. A struct wants a map, not
// an array. Errors wrap ErrBadArgs and name the offending field, e.g.
//
//	bad arguments: field "seconds": want a number, got string
func DecodeArgs(raw []byte, v any) error {
	if len(raw) == 0 {
		return nil // no arguments: v keeps its zero value
	}
	if decodeScalar(raw, v) {
		return nil
	}
	if k := valueKind(raw); k == "array" && isStructPointer(v) {
		// msgpack would fill the struct's fields in order: arguments are
		// named, and so must be robust to fields added or reordered.
		return BadArgs("want a map of named arguments, got %s", k)
	}
	err := unmarshal(&strictDecoders, raw, v)
	if err == nil {
		return nil
	}
	// The fast path failed: go again field by field (args.go), which either
	// repairs integral floats or finds the culprit.
	return decodeArgsSlow(raw, v, err)
}

func unmarshal(p *sync.Pool, raw []byte, v any) error {
	d := p.Get().(*decoder)
	defer p.Put(d)
	d.r.Reset(raw)
	d.dec.ResetReader(&d.r)
	return d.dec.Decode(v)
}
