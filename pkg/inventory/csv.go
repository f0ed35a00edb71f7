// Package inventory reads server inventories: the CSV that `heartbeat
// servers import` takes and `sshfleet` writes.
package inventory

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/stacksense/heartbeat/pkg/store"
)

// Header is the required first line of an inventory.
var Header = []string{"name", "host", "port", "user", "key"}

// LineError is a problem with one line of an inventory.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// syntaxError turns the CSV reader's error into one line naming where the
// file is malformed. The reader's own message ("record on line 2; parse
// error on line 3, column 5: ...") names two lines; the one that matters to
// whoever fixes the file is where the parser gave up.
func syntaxError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &LineError{Line: pe.Line, Err: fmt.Errorf("column %d: %w", pe.Column, pe.Err)}
	}
	return fmt.Errorf("read inventory: %w", err)
}

// ParseCSV reads an inventory with header name,host,port,user,key (port,
// user and key may be empty). It checks every row and returns all problems
// at once, one line each starting with its line number, so an admin fixes a
// file in one pass; on any problem it returns no specs, so nothing
// half-valid is written. A CSV syntax error (a stray quote) ends the
// reading: after it the reader's idea of where rows begin is a guess, and
// problems reported past it would be noise.
func ParseCSV(r io.Reader) ([]store.ServerSpec, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked below, with a clearer message
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("empty file: want a header line name,host,port,user,key")
	}
	if err != nil {
		return nil, syntaxError(err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff") // spreadsheet BOM
	}
	if strings.Join(normalize(header), ",") != strings.Join(Header, ",") {
		return nil, fmt.Errorf("line 1: header is %q, want %q", strings.Join(header, ","), strings.Join(Header, ","))
	}
	var (
		specs []store.ServerSpec
		errs  []error
		seen  = map[string]int{}
	)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// FieldPos must not be called here: after a failed Read the
			// record has no fields and FieldPos panics.
			errs = append(errs, syntaxError(err))
			break
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(Header) {
			errs = append(errs, &LineError{Line: line, Err: fmt.Errorf("%d fields, want %d (name,host,port,user,key)", len(rec), len(Header))})
			continue
		}
		spec := store.ServerSpec{Name: strings.TrimSpace(rec[0]), Host: strings.TrimSpace(rec[1]), User: strings.TrimSpace(rec[3]), KeyPath: strings.TrimSpace(rec[4]), Line: line}
		if p := strings.TrimSpace(rec[2]); p != "" {
			port, err := strconv.Atoi(p)
			if err != nil || port < 1 || port > 65535 {
				errs = append(errs, &LineError{Line: line, Err: fmt.Errorf("port %q is not a number in 1-65535", p)})
				continue
			}
			spec.Port = port
		}
		if err := spec.Validate(); err != nil {
			errs = append(errs, &LineError{Line: line, Err: err})
			continue
		}
		if first, dup := seen[spec.Name]; dup {
			errs = append(errs, &LineError{Line: line, Err: fmt.Errorf("server name %q already appears on line %d", spec.Name, first)})
			continue
		}
		seen[spec.Name] = line
		specs = append(specs, spec)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return specs, nil
}

func normalize(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(strings.TrimSpace(s))
	}
	return out
}
