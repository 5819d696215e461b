package conformance

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/poold/poold/internal/ipc"
)

// ---------------------------------------------------------------------------
// Encoding.

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// echoArgs are the arguments {"value": raw} of echo.
func echoArgs(raw []byte) []byte {
	return append([]byte{0x81, 0xa5, 'v', 'a', 'l', 'u', 'e'}, raw...)
}

func task(id uint64, fn string, args ...[]byte) *ipc.Task {
	t := &ipc.Task{ID: id, Func: fn}
	for _, a := range args {
		t.Args = append(t.Args, a)
	}
	return t
}

// sameValue reports whether a value came back as it went: the same bytes,
// or the same value once decoded (integers of any width, float32 as
// float64), as a worker that decodes and encodes again sends it.
func sameValue(got, want []byte) (bool, string) {
	if bytes.Equal(got, want) {
		return true, ""
	}
	g, err := decodeNormal(got)
	if err != nil {
		return false, fmt.Sprintf("% x: %v", got, err)
	}
	w, err := decodeNormal(want)
	if err != nil {
		return false, fmt.Sprintf("% x, which is not what was sent (% x)", got, want)
	}
	if reflect.DeepEqual(g, w) {
		return true, ""
	}
	return false, fmt.Sprintf("%#v (% x)", g, clip(got))
}

func clip(b []byte) []byte {
	if len(b) > 48 {
		return b[:48]
	}
	return b
}

func decodeNormal(b []byte) (any, error) {
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.SetMapDecoder(func(d *msgpack.Decoder) (any, error) { return d.DecodeUntypedMap() })
	v, err := dec.DecodeInterface()
	if err != nil {
		return nil, err
	}
	return normal(v), nil
}

// normal turns every integer into an int64 (a uint64 beyond its range)
// and every float into a float64.
func normal(v any) any {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
		return x
	case float32:
		return float64(x)
	case []any:
		for i := range x {
			x[i] = normal(x[i])
		}
		return x
	case map[any]any:
		m := make(map[any]any, len(x))
		for k, e := range x {
			m[normal(k)] = normal(e)
		}
		return m
	}
	return v
}
