package main

// bracketExtent is the length of the array or object at pos: up to the
// bracket that closes it, or to the end of the input. Brackets are only
// counted: whatever is wrong inside comes before the end found, where
// encoding/json will find it.
func (w *walker) bracketExtent() int {
	depth, inString, escaped := 0, false, false
	for i := 0; ; {
		for ; w.pos+i < w.end; i++ {
			c := w.buf[w.pos+i]
			switch {
			case inString:
				switch {
				case escaped:
					escaped = false
				case c == '\\':
					escaped = true
				case c == '"':
					inString = false
				}
			case c == '"':
				inString = true
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		if !w.fill(i + 1) {
			return i
		}
	}
}

// scalarExtent is the length of the scalar at pos, and one byte more if
// there is one: encoding/json looks at the byte after a literal to end it
// ("tru]" is an error in a literal, not a value cut short).
func (w *walker) scalarExtent() int {
	i := 0
	if w.buf[w.pos] == '"' {
		escaped := false
	str:
		for i = 1; ; {
			for ; w.pos+i < w.end; i++ {
				c := w.buf[w.pos+i]
				switch {
				case escaped:
					escaped = false
				case c == '\\':
					escaped = true
				case c == '"':
					i++
					break str
				}
			}
			if !w.fill(i + 1) {
				return i
			}
		}
	} else {
	scalar:
		for {
			for ; w.pos+i < w.end; i++ {
				switch w.buf[w.pos+i] {
				case ' ', '\t', '\r', '\n', ',', ']', '}':
					break scalar
				}
			}
			if !w.fill(i + 1) {
				return i
			}
		}
	}
	if w.fill(i + 1) {
		i++
	}
	return i
}
