package timeline

// Reading a trace, leniently: what a run killed halfway leaves must draw.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// event is one trace event, with only the fields the page uses.
type event struct {
	Name string          `json:"name"`
	Ph   string          `json:"ph"`
	Ts   float64         `json:"ts"`
	Dur  float64         `json:"dur"`
	Pid  int64           `json:"pid"`
	Tid  int64           `json:"tid"`
	S    string          `json:"s"`
	Args json.RawMessage `json:"args"`
}

// runArgs are the args of a task run's complete event.
type runArgs struct {
	Func     string  `json:"func"`
	Kind     string  `json:"kind"`
	Attempts float64 `json:"attempts"`
	Pid      float64 `json:"pid"`
}

// argMap decodes args into a map: nil when they are not an object.
func argMap(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// quickArgs reads the args of a run the way poold writes them, a flat
// object of func, kind, attempts and pid, without encoding/json (which is
// most of the time for 100,000 runs). It reports false, for a full decode,
// on anything else: another key, an escape, a value of another type.
func quickArgs(raw []byte, a *runArgs) bool {
	p := skipSpace(raw, 0)
	if p == len(raw) || raw[p] != '{' {
		return false
	}
	p++
	for {
		p = skipSpaceComma(raw, p)
		if p == len(raw) {
			return false
		}
		if raw[p] == '}' {
			return true
		}
		if raw[p] != '"' {
			return false
		}
		end := bytes.IndexByte(raw[p+1:], '"')
		if end < 0 {
			return false
		}
		key := raw[p+1 : p+1+end]
		p = skipSpace(raw, p+end+2)
		if p == len(raw) || raw[p] != ':' {
			return false
		}
		p = skipSpace(raw, p+1)
		switch string(key) {
		case "func", "kind":
			if p == len(raw) || raw[p] != '"' {
				return false
			}
			end := bytes.IndexByte(raw[p+1:], '"')
			if end < 0 || bytes.IndexByte(raw[p+1:p+1+end], '\\') >= 0 {
				return false
			}
			if key[0] == 'f' {
				a.Func = string(raw[p+1 : p+1+end])
			} else {
				a.Kind = string(raw[p+1 : p+1+end])
			}
			p += end + 2
		case "attempts", "pid":
			q := p
			for q < len(raw) && raw[q] != ',' && raw[q] != '}' && raw[q] != ' ' && raw[q] != '\n' {
				q++
			}
			f, err := strconv.ParseFloat(string(raw[p:q]), 64)
			if err != nil {
				return false
			}
			if key[0] == 'a' {
				a.Attempts = f
			} else {
				a.Pid = f
			}
			p = q
		default:
			return false
		}
	}
}

// readEvents reads the events of a trace: the object form
// {"traceEvents":[...], ...} or the bare array form [...]. It is lenient as
// the viewers are: the closing "]" and "}" may be missing (a run killed
// halfway), a comma may trail the last event, and an event cut short by the
// end of the input is dropped.
func readEvents(data []byte) ([]event, error) {
	p := skipSpace(data, 0)
	if p == len(data) {
		return nil, errors.New("timeline: empty trace")
	}
	switch data[p] {
	case '[':
		return readArray(data, p+1)
	case '{':
	default:
		return nil, fmt.Errorf("timeline: not a trace: starts with %q", data[p])
	}
	p++
	var events []event
	found := false
	for {
		p = skipSpaceComma(data, p)
		if p == len(data) || data[p] == '}' {
			break
		}
		var key string
		n, err := decodeOne(data[p:], &key)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return nil, fmt.Errorf("timeline: trace object at byte %d: %w", p, err)
		}
		p = skipSpace(data, p+n)
		if p == len(data) {
			break
		}
		if data[p] != ':' {
			return nil, fmt.Errorf("timeline: trace object at byte %d: want ':' after key %q", p, key)
		}
		p = skipSpace(data, p+1)
		if key == "traceEvents" {
			if p == len(data) {
				break
			}
			if data[p] != '[' {
				return nil, fmt.Errorf("timeline: traceEvents at byte %d: not an array", p)
			}
			evs, end, err := readArrayAt(data, p+1)
			if err != nil {
				return nil, err
			}
			events, found = append(events, evs...), true
			p = end
			continue
		}
		var skip json.RawMessage
		n, err = decodeOne(data[p:], &skip)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return nil, fmt.Errorf("timeline: trace object, key %q: %w", key, err)
		}
		p += n
	}
	if !found {
		return nil, errors.New("timeline: no traceEvents in the trace")
	}
	return events, nil
}

func readArray(data []byte, p int) ([]event, error) {
	evs, _, err := readArrayAt(data, p)
	return evs, err
}

// readArrayAt reads events from p (just after the '[') to the closing ']'
// or the end of the input, and returns the offset after the ']'.
func readArrayAt(data []byte, p int) ([]event, int, error) {
	var events []event
	for {
		p = skipSpace(data, p)
		if p < len(data) && len(events) > 0 && data[p] != ']' {
			if data[p] != ',' {
				return nil, 0, fmt.Errorf("timeline: after event %d at byte %d: want ',' or ']', have %q", len(events)-1, p, data[p])
			}
			p = skipSpace(data, p+1)
		}
		if p == len(data) {
			return events, p, nil
		}
		if data[p] == ']' {
			return events, p + 1, nil
		}
		var ev event
		n, err := decodeOne(data[p:], &ev)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return events, len(data), nil // the last event, cut short
			}
			return nil, 0, fmt.Errorf("timeline: event %d at byte %d: %w", len(events), p, err)
		}
		events = append(events, ev)
		p += n
	}
}

// decodeOne decodes the one JSON value at the start of data into v and
// returns its length. A value cut short by the end of data is
// io.ErrUnexpectedEOF.
func decodeOne(data []byte, v any) (int, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		if err == io.EOF {
			return 0, io.ErrUnexpectedEOF
		}
		var se *json.SyntaxError
		if errors.As(err, &se) && se.Offset >= int64(len(bytes.TrimRight(data, " \t\r\n"))) {
			return 0, io.ErrUnexpectedEOF
		}
		return 0, err
	}
	return int(dec.InputOffset()), nil
}

func skipSpace(data []byte, p int) int {
	for p < len(data) && (data[p] == ' ' || data[p] == '\t' || data[p] == '\n' || data[p] == '\r') {
		p++
	}
	return p
}

func skipSpaceComma(data []byte, p int) int {
	for p < len(data) && (data[p] == ' ' || data[p] == '\t' || data[p] == '\n' || data[p] == '\r' || data[p] == ',') {
		p++
	}
	return p
}
