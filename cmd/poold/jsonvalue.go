package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// convert turns a value decoded with UseNumber into what msgpack encodes
// naturally: integers as int64 (uint64 above its range), other numbers as
// float64, objects as map[string]any, arrays as []any. An integer beyond 64
// bits is an error, not a float: a float would round it. The error names
// where the value is ("args.n", "args[2]").
func convert(v any) (any, error) { return convertAt(v, "args") }

func convertAt(v any, at string) (any, error) {
	switch v := v.(type) {
	case json.Number:
		x, err := number(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		return x, nil
	case []any:
		for i := range v {
			c, err := convertAt(v[i], at+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			v[i] = c
		}
		return v, nil
	case map[string]any:
		for k, x := range v {
			c, err := convertAt(x, at+keyPath(k))
			if err != nil {
				return nil, firstError(v, at)
			}
			v[k] = c
		}
		return v, nil
	default:
		return v, nil
	}
}

// firstError converts the values of m in the order of their keys and
// returns the first error, so that a message does not depend on the order
// of a map. The values converted already stay as they are.
func firstError(m map[string]any, at string) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		c, err := convertAt(m[k], at+keyPath(k))
		if err != nil {
			return err
		}
		m[k] = c
	}
	return nil
}

// keyPath is ".k", or [\"k\"] when k is not a plain name.
func keyPath(k string) string {
	if k != "" && strings.IndexFunc(k, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) < 0 {
		return "." + k
	}
	return "[" + strconv.Quote(k) + "]"
}

func number(n json.Number) (any, error) {
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return u, nil
	}
	if !strings.ContainsAny(string(n), ".eE") {
		return nil, fmt.Errorf("the integer %s does not fit in 64 bits (-2^63 to 2^64-1), and would be rounded: pass it as a string, \"%s\"", n, n)
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) {
		return nil, fmt.Errorf("the number %s is out of range", n)
	}
	return f, nil
}

// intValue reads a JSON integer that fits in an int.
func intValue(v any) (int, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(string(n))
	return i, err == nil
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, int64, uint64, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// describe names v's type, and v itself when it is short, so that a message
// shows what the user wrote.
func describe(v any) string {
	switch v := v.(type) {
	case json.Number:
		return "the number " + string(v)
	case string:
		return fmt.Sprintf("the string %q", v)
	case bool:
		return fmt.Sprintf("%v", v)
	}
	return jsonType(v)
}
