// Package output formats what commands print: tables for people (aligned
// on a terminal, tab-separated otherwise), documented JSON for machines,
// colour only where a terminal shows it, and every stored string escaped
// (Escape). It decides nothing: what to print comes from pkg/report.
package output

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// Table writes rows as aligned columns without borders, in the style of
// kubectl and gh, so the output greps and cuts cleanly. Every cell is
// escaped (Escape).
func Table(w io.Writer, header []string, rows [][]string) error {
	return TableWith(w, header, rows, TableOptions{})
}

// TableOptions choose how TableWith renders.
type TableOptions struct {
	// Plain writes tab-separated lines with no padding and no colour, for
	// stdout that is not a terminal (pipes, cron mail, scripts), as gh
	// does.
	Plain bool
	// Style, if set, decorates a cell after it was escaped (colour for a
	// status word); it is skipped when Plain.
	Style func(col int, cell string) string
}

// TableWith writes rows as Table does, or as plain tab-separated text.
// Every cell is escaped first, so a stored name with a newline, a tab or an
// escape sequence cannot add rows, split columns or recolour the terminal.
func TableWith(w io.Writer, header []string, rows [][]string, opts TableOptions) error {
	if opts.Plain {
		bw := bufio.NewWriter(w)
		writeTSV(bw, header)
		for _, r := range rows {
			writeTSV(bw, r)
		}
		return bw.Flush()
	}
	escaped := make([][]string, len(rows))
	for i, r := range rows {
		escaped[i] = make([]string, len(r))
		for j, c := range r {
			c = Escape(c)
			if c == "" {
				// An empty cell would collapse alignment in some
				// renderers and reads as "missing" anyway.
				c = "-"
			}
			if opts.Style != nil {
				c = opts.Style(j, c)
			}
			escaped[i][j] = c
		}
	}
	rows = escaped
	var buf bytes.Buffer
	t := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Symbols: tw.NewSymbols(tw.StyleNone),
			Settings: tw.Settings{
				Separators: tw.Separators{BetweenRows: tw.Off, BetweenColumns: tw.Off},
				Lines:      tw.Lines{ShowHeaderLine: tw.Off},
			},
		})),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithPadding(tw.Padding{Left: "", Right: "  ", Overwrite: true}),
	)
	t.Header(toAny(header)...)
	for _, r := range rows {
		if err := t.Append(toAny(r)...); err != nil {
			return fmt.Errorf("render table: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("render table: %w", err)
	}
	// The renderer pads the last column; trailing blanks only get in the
	// way of diff and grep.
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	bw := bufio.NewWriter(w)
	for sc.Scan() {
		bw.WriteString(strings.TrimRight(sc.Text(), " "))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// writeTSV writes one escaped, tab-separated line; Escape turns tabs and
// newlines inside a cell into \t and \n, so columns and rows stay intact.
func writeTSV(w *bufio.Writer, cells []string) {
	for i, c := range cells {
		if i > 0 {
			w.WriteByte('\t')
		}
		w.WriteString(Escape(c))
	}
	w.WriteByte('\n')
}

// JSON writes v as indented JSON followed by a newline.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// JSONArray writes rows as the same indented array JSON writes, one
// element at a time through a buffer, so a 100,000-row array never sits
// in memory whole (JSON marshals it all, then indents a second copy).
func JSONArray[T any](w io.Writer, rows []T) error {
	if rows == nil {
		return JSON(w, rows)
	}
	a := NewJSONArrayWriter(w)
	for i := range rows {
		if err := a.Add(&rows[i]); err != nil {
			return err
		}
	}
	return a.Close()
}

// JSONArrayWriter writes an indented JSON array, as JSON would write the
// slice, element by element: the caller need not hold the elements.
type JSONArrayWriter struct {
	bw *bufio.Writer
	// One encoder and two buffers for every element: MarshalIndent would
	// allocate them afresh per element. The encoder writes compact JSON
	// that indentJSON indents: encoding/json's own indenting runs its
	// full scanner over every byte and was a quarter of `status --json`.
	buf bytes.Buffer
	out []byte
	enc *json.Encoder
	n   int
}

// NewJSONArrayWriter starts an array on w; Close ends it.
func NewJSONArrayWriter(w io.Writer) *JSONArrayWriter {
	a := &JSONArrayWriter{bw: bufio.NewWriterSize(w, 64<<10)}
	a.enc = json.NewEncoder(&a.buf)
	return a
}

// Add writes one element.
func (a *JSONArrayWriter) Add(v any) error {
	if ap, ok := v.(JSONIndentAppender); ok {
		a.begin()
		a.out = ap.AppendJSONIndent(a.out[:0], "  ", "  ")
		a.bw.Write(a.out)
		return nil
	}
	a.buf.Reset()
	if ap, ok := v.(JSONAppender); ok {
		a.buf.Write(ap.AppendJSON(a.buf.AvailableBuffer()))
	} else if err := a.enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	a.begin()
	// The buffered writer keeps its first error and Close reports it.
	a.out = indentJSON(a.out[:0], bytes.TrimSuffix(a.buf.Bytes(), []byte("\n")), "  ", "  ")
	a.bw.Write(a.out)
	return nil
}

// begin writes what goes before an element: the array's start or a comma.
func (a *JSONArrayWriter) begin() {
	if a.n == 0 {
		a.bw.WriteString("[\n  ")
	} else {
		a.bw.WriteString(",\n  ")
	}
	a.n++
}

// indentJSON appends compact, valid JSON src to dst indented as
// json.Indent would with prefix and indent: a new line for each element
// and member, "{}" and "[]" kept whole, ": " after a key.
func indentJSON(dst, src []byte, prefix, indent string) []byte {
	depth, inString := 0, false
	// Each new line is a prefix of one string, newline, prefix and the
	// indent a few times over, grown when a deeper value needs it: one
	// append per line instead of one per indent step.
	nl := make([]byte, 0, 1+len(prefix)+8*len(indent))
	nl = append(append(nl, '\n'), prefix...)
	newline := func() {
		for n := 1 + len(prefix) + depth*len(indent); len(nl) < n; {
			nl = append(nl, indent...)
		}
		dst = append(dst, nl[:1+len(prefix)+depth*len(indent)]...)
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inString {
			// Copy the run up to the next quote or backslash at once:
			// most of the bytes are inside strings.
			if j := indexQuoteOrBackslash(src[i:]); j > 0 {
				dst = append(dst, src[i:i+j]...)
				i += j
				c = src[i]
			} else if j < 0 {
				return append(dst, src[i:]...) // not valid JSON; copied as is
			}
			dst = append(dst, c)
			switch c {
			case '\\':
				i++
				if i < len(src) {
					dst = append(dst, src[i])
				}
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			dst = append(dst, c)
		case '{', '[':
			dst = append(dst, c)
			if i+1 < len(src) && (src[i+1] == '}' || src[i+1] == ']') {
				dst = append(dst, src[i+1])
				i++
				continue
			}
			depth++
			newline()
		case '}', ']':
			depth--
			newline()
			dst = append(dst, c)
		case ',':
			dst = append(dst, c)
			newline()
		case ':':
			dst = append(dst, ':', ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// Close ends the array ("[]" when nothing was added) and flushes it.
func (a *JSONArrayWriter) Close() error {
	if a.n == 0 {
		a.bw.WriteString("[]\n")
	} else {
		a.bw.WriteString("\n]\n")
	}
	if err := a.bw.Flush(); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// indexQuoteOrBackslash is the index of the first '"' or '\\' in b, or -1.
// A plain loop: the runs are short (a name, a time), and bytes.IndexAny
// builds its byte set on every call, which cost more than the search.
func indexQuoteOrBackslash(b []byte) int {
	for i, c := range b {
		if c == '"' || c == '\\' {
			return i
		}
	}
	return -1
}
