package tasks

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

type embedded struct {
	E bool `json:"e"`
}

type argsT struct {
	A int            `json:"a"`
	F float64        `json:"f"`
	S string         `json:"s,omitempty"`
	L []int          `json:"l"`
	P *int           `json:"p"`
	U uint8          `json:"u"`
	N int            `msgpack:"n" json:"ignored"`
	X int            `json:"-"`
	M map[string]int `json:"m"`
	embedded
}

func mustMarshal(t *testing.T, v any) msgpack.RawMessage {
	t.Helper()
	raw, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestDecodeArgs(t *testing.T) {
	four := 4
	tests := []struct {
		name string
		args any
		want argsT
		err  string // substring of the error; "" for success
	}{
		{name: "ints", args: map[string]any{"a": 3, "f": 2, "l": []int{1}, "p": 4, "u": 255, "n": 9, "e": true},
			want: argsT{A: 3, F: 2, L: []int{1}, P: &four, U: 255, N: 9, embedded: embedded{true}}},
		{name: "integral floats", args: map[string]any{"a": 3.0, "l": []any{1.0, 2}, "p": float32(4), "u": 255.0, "f": 0.5},
			want: argsT{A: 3, F: 0.5, L: []int{1, 2}, P: &four, U: 255}},
		{name: "nil", args: nil},
		{name: "empty map", args: map[string]any{}},
		{name: "fraction for int", args: map[string]any{"a": 3.5},
			err: `bad arguments: field "a": want an integer, got float 3.5`},
		{name: "overflow", args: map[string]any{"u": 256.0}, err: `field "u": want an integer, got float 256`},
		{name: "2^53", args: map[string]any{"a": float64(1 << 53), "l": []any{-float64(1 << 53)}},
			want: argsT{A: 1 << 53, L: []int{-1 << 53}}},
		{name: "beyond 2^53", args: map[string]any{"a": 12345678901234567.0}, // arrives as ...568
			err: `field "a": want an integer, got float 1.2345678901234568e+16 (a float beyond 2^53 may be a rounded integer: write the integer itself)`},
		{name: "beyond 2^53 in a list", args: map[string]any{"l": []any{1, float64(1<<53 + 2)}},
			err: `field "l": element 1: want an integer, got float 9.007199254740994e+15 (a float beyond 2^53`},
		{name: "string for number", args: map[string]any{"f": "x"},
			err: `bad arguments: field "f": want a number, got string`},
		{name: "bad element", args: map[string]any{"l": []any{1, "x"}}, err: `field "l": element 1: want an integer, got string`},
		{name: "int for bool", args: map[string]any{"e": 1}, err: `field "e": want a boolean, got integer`},
		{name: "bad map value", args: map[string]any{"m": map[string]any{"k": "v"}}, err: `field "m": want a map: msgpack:`},
		{name: "unknown and wrong", args: map[string]any{"zz": 1, "a": "q", "ignored": 1},
			err: `bad arguments: field "a": want an integer, got string; unknown field "ignored"; unknown field "zz"; known fields: a, f, s, l, p, u, n, m, e`},
		{name: "not a map", args: []int{1}, err: "bad arguments: want a map of named arguments, got array"},
		{name: "truncated", args: msgpack.RawMessage{0x81}, err: "bad arguments: truncated msgpack value"},
		{name: "int keys", args: map[int]int{1: 2}, err: "bad arguments: want a map of named arguments: msgpack:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got argsT
			err := DecodeArgs(mustMarshal(t, tt.args), &got)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("got %+v, want %+v", got, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrBadArgs) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got error %v, want one wrapping ErrBadArgs containing %q", err, tt.err)
			}
		})
	}
}

func TestDecodeArgsNotStruct(t *testing.T) {
	var n int
	if err := DecodeArgs(mustMarshal(t, 2.0), &n); err != nil || n != 2 {
		t.Fatalf("got %d, %v; want 2, nil", n, err)
	}
	err := DecodeArgs(mustMarshal(t, "x"), &n)
	if !errors.Is(err, ErrBadArgs) || err.Error() != "bad arguments: want an integer, got string" {
		t.Fatalf("got %v", err)
	}
	n = 5
	if err := DecodeArgs(nil, &n); err != nil || n != 5 {
		t.Fatalf("no arguments: got %d, %v; want v untouched", n, err)
	}
}
