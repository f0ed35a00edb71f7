package output

// JSONIndentAppender is a JSONAppender that also writes its JSON indented,
// exactly as json.MarshalIndent would with prefix and indent, so an
// indented array need not indent compact JSON in a second pass (that pass
// cost three times the encoding in `status --json`).
type JSONIndentAppender interface {
	JSONAppender
	AppendJSONIndent(b []byte, prefix, indent string) []byte
}

// JSONWriter lays out a JSON value's objects and arrays, compact or
// indented as json.MarshalIndent would, so that one encoder writes both
// forms: the encoder calls Open, Key or Elem before each member or
// element, and Close, and appends the scalar values to B itself.
type JSONWriter struct {
	B []byte
	// Indented puts each member and element on a line of its own, after
	// Prefix and one Indent per level, with ": " after a key.
	Indented       bool
	Prefix, Indent string
	depth          int
	// empty: nothing written since the last Open.
	empty bool
}

func (w *JSONWriter) newline() {
	w.B = append(w.B, '\n')
	w.B = append(w.B, w.Prefix...)
	for range w.depth {
		w.B = append(w.B, w.Indent...)
	}
}

// Open starts an object ('{') or an array ('[').
func (w *JSONWriter) Open(c byte) {
	w.B = append(w.B, c)
	w.depth++
	w.empty = true
}

// Close ends the object ('}') or array (']') last opened; an empty one
// stays on one line ("{}", "[]"), as encoding/json writes it.
func (w *JSONWriter) Close(c byte) {
	w.depth--
	if w.Indented && !w.empty {
		w.newline()
	}
	w.B = append(w.B, c)
	w.empty = false
}

// Elem starts the next element of an array.
func (w *JSONWriter) Elem() {
	if !w.empty {
		w.B = append(w.B, ',')
	}
	w.empty = false
	if w.Indented {
		w.newline()
	}
}

// Key starts the next member of an object. key is written as it is: it
// must need no escaping.
func (w *JSONWriter) Key(key string) {
	w.Elem()
	w.B = append(w.B, '"')
	w.B = append(w.B, key...)
	w.B = append(w.B, '"', ':')
	if w.Indented {
		w.B = append(w.B, ' ')
	}
}
