package tasks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// decodeArgsSlow is DecodeArgs after the strict decoder refused raw (with
// cause). It decodes each argument on its own, which lets it name every
// culprit and accept an integral float for an integer, something msgpack
// refuses. It returns nil if that succeeds.
//
// Only the top level of a struct is taken apart (plus untagged embedded
// structs, which msgpack inlines); a nested struct is decoded as a whole.
func decodeArgsSlow(raw []byte, v any, cause error) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: %v", ErrBadArgs, cause)
	}
	st := rv.Elem()
	if st.Kind() != reflect.Struct {
		if err := decodeValue(raw, st); err != nil {
			return BadArgs("%v", err)
		}
		return nil
	}

	var args map[string]msgpack.RawMessage
	if err := unmarshal(&strictDecoders, raw, &args); err != nil {
		switch {
		case errors.Is(cause, io.EOF) || errors.Is(cause, io.ErrUnexpectedEOF):
			return BadArgs("truncated msgpack value")
		case valueKind(raw) == "map": // with keys that are not strings
			return BadArgs("want a map of named arguments: %v", cause)
		}
		return BadArgs("want a map of named arguments, got %s", valueKind(raw))
	}
	names, index := argFields(st.Type(), nil)
	var problems []string
	unknown := false
	// Go through the struct's fields, then the unknown keys, both in a
	// fixed order so that the message is the same every time.
	for _, name := range names {
		fraw, ok := args[name]
		if !ok {
			continue
		}
		delete(args, name)
		if err := decodeValue(fraw, st.FieldByIndex(index[name])); err != nil {
			problems = append(problems, fmt.Sprintf("field %q: %v", name, err))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(args)) {
		problems = append(problems, fmt.Sprintf("unknown field %q", name))
		unknown = true
	}
	if unknown {
		problems = append(problems, "known fields: "+strings.Join(names, ", "))
	}
	if len(problems) > 0 {
		return BadArgs("%s", strings.Join(problems, "; "))
	}
	return nil
}

func isStructPointer(v any) bool {
	t := reflect.TypeOf(v)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct
}

// argFields lists the msgpack names of t's fields in declaration order, and
// the index of each, following the msgpack library's rules: the msgpack
// tag, else the json tag, else the Go name; "-" skips the field.
func argFields(t reflect.Type, prefix []int) (names []string, index map[string][]int) {
	index = map[string][]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("msgpack")
		if !ok {
			tag = f.Tag.Get(structTag)
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		at := append(prefix[:len(prefix):len(prefix)], i)
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			inner, innerIndex := argFields(f.Type, at)
			for _, n := range inner {
				names, index[n] = append(names, n), innerIndex[n]
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		names, index[name] = append(names, name), at
	}
	return names, index
}

// decodeValue decodes raw into v (settable), explaining a failure as
// "want X, got Y".
func decodeValue(raw msgpack.RawMessage, v reflect.Value) error {
	err := unmarshal(&strictDecoders, raw, v.Addr().Interface())
	if err == nil {
		return nil
	}
	t := v.Type()
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	set := func(x reflect.Value) { // store x, a t, into v (a t or a *t)
		if x.Type() != v.Type() {
			p := reflect.New(t)
			p.Elem().Set(x)
			x = p
		}
		v.Set(x)
	}
	switch {
	case isInteger(t.Kind()):
		if x, ok := integralFloat(raw, t); ok {
			set(x)
			return nil
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8 && valueKind(raw) == "array":
		// Decode element by element: integral floats in a []int, and an
		// error that says which element is wrong.
		var elems []msgpack.RawMessage
		if unmarshal(&strictDecoders, raw, &elems) == nil {
			s := reflect.MakeSlice(t, len(elems), len(elems))
			for i, e := range elems {
				if err := decodeValue(e, s.Index(i)); err != nil {
					return fmt.Errorf("element %d: %w", i, err)
				}
			}
			set(s)
			return nil
		}
	}
	want, got := wantOf(t), valueKind(raw)
	if want == "a "+got || want == "an "+got { // right kind, wrong contents: say what msgpack said
		return fmt.Errorf("want %s: %v", want, err)
	}
	if got == "float" {
		f := floatOf(raw)
		got = fmt.Sprintf("float %v", f)
		if isInteger(t.Kind()) && f == math.Trunc(f) && math.Abs(f) > maxExactFloat {
			got += " (a float beyond 2^53 may be a rounded integer: write the integer itself)"
		}
	}
	return fmt.Errorf("want %s, got %s", want, got)
}

func isInteger(k reflect.Kind) bool {
	return reflect.Int <= k && k <= reflect.Uintptr
}

// maxExactFloat is 2**53: up to it, a float64 holds every integer exactly;
// past it, a float may be an integer rounded on the way (a JSON number
// 12345678901234567.0 arrives as 12345678901234568), so it is not taken for
// an integer.
const maxExactFloat = 1 << 53

// integralFloat converts raw, a msgpack float with an integral value that
// fits t (an integer type), to a value of type t. A float beyond
// ±maxExactFloat is refused: it may not be the integer that was meant.
func integralFloat(raw []byte, t reflect.Type) (reflect.Value, bool) {
	f := floatOf(raw)
	if math.IsNaN(f) || f != math.Trunc(f) || math.Abs(f) > maxExactFloat {
		return reflect.Value{}, false
	}
	x := reflect.New(t).Elem()
	// Within ±2**53, the conversions below are exact.
	if x.CanInt() {
		if x.OverflowInt(int64(f)) {
			return reflect.Value{}, false
		}
		x.SetInt(int64(f))
	} else {
		if f < 0 || x.OverflowUint(uint64(f)) {
			return reflect.Value{}, false
		}
		x.SetUint(uint64(f))
	}
	return x, true
}

// floatOf returns the value of a msgpack float, or NaN for anything else.
func floatOf(raw []byte) float64 {
	switch {
	case len(raw) == 5 && raw[0] == msgpcode.Float:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(raw[1:])))
	case len(raw) == 9 && raw[0] == msgpcode.Double:
		return math.Float64frombits(binary.BigEndian.Uint64(raw[1:]))
	}
	return math.NaN()
}

// valueKind names the type of the msgpack value that raw starts with.
func valueKind(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch c := raw[0]; {
	case c == msgpcode.Nil:
		return "nil"
	case c == msgpcode.True || c == msgpcode.False:
		return "boolean"
	case msgpcode.IsFixedNum(c) || (msgpcode.Uint8 <= c && c <= msgpcode.Int64):
		return "integer"
	case c == msgpcode.Float || c == msgpcode.Double:
		return "float"
	case msgpcode.IsString(c):
		return "string"
	case msgpcode.IsBin(c):
		return "binary"
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		return "array"
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		return "map"
	case msgpcode.IsExt(c):
		return "extension"
	}
	return "invalid msgpack"
}

// wantOf describes the values that decode into a t, in the terms of
// valueKind.
func wantOf(t reflect.Type) string {
	switch k := t.Kind(); {
	case k == reflect.Bool:
		return "a boolean"
	case isInteger(k):
		return "an integer"
	case k == reflect.Float32 || k == reflect.Float64:
		return "a number"
	case k == reflect.String:
		return "a string"
	case (k == reflect.Slice || k == reflect.Array) && t.Elem().Kind() == reflect.Uint8:
		return "a string or binary"
	case k == reflect.Slice || k == reflect.Array:
		return "an array"
	case k == reflect.Map || k == reflect.Struct:
		return "a map"
	case k == reflect.Interface:
		return "any value"
	}
	return t.String()
}
