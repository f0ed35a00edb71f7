package output

import (
	"bytes"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
)

type testRow struct {
	ID   int
	Name string
}

func (r testRow) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, int64(r.ID), 10)
	b = append(b, `,"name":`...)
	b = AppendJSONString(b, r.Name)
	b = append(b, `,"tags":["a",{"b":[]}]}`...)
	return b
}

func rows(n int) []testRow {
	out := make([]testRow, n)
	for i := range out {
		out[i] = testRow{i, "server-" + strconv.Itoa(i) + `"<x>`}
	}
	return out
}

// TestAddAllMatchesAdd: the parallel encoder writes byte for byte what
// adding the elements one by one writes, at and around block edges, after
// elements already added, and for none.
func TestAddAllMatchesAdd(t *testing.T) {
	for _, tc := range []struct{ before, n int }{
		{0, 0}, {0, 1}, {0, encodeBlock - 1}, {0, encodeBlock}, {0, encodeBlock + 1}, {0, 5*encodeBlock + 17}, {3, 2*encodeBlock + 5}, {2, 0},
	} {
		all := rows(tc.before + tc.n)
		var want, got bytes.Buffer
		w := NewJSONArrayWriter(&want)
		for _, r := range all {
			if err := w.Add(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		g := NewJSONArrayWriter(&got)
		for _, r := range all[:tc.before] {
			g.Add(r)
		}
		rest := all[tc.before:]
		if err := g.AddAll(len(rest), func(i int) JSONAppender { return rest[i] }); err != nil {
			t.Fatal(err)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("%d then AddAll(%d): output differs from Add (%d vs %d bytes)", tc.before, tc.n, got.Len(), want.Len())
		}
	}
}

type failAfter struct{ left int }

var errFull = errors.New("no space left on device")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.left -= len(p); f.left < 0 {
		return 0, errFull
	}
	return len(p), nil
}

// TestAddAllWriteError: a writer that fails part-way stops the encoding,
// AddAll returns, and Close reports the failure.
func TestAddAllWriteError(t *testing.T) {
	all := rows(50 * encodeBlock)
	var encoded atomic.Int64
	g := NewJSONArrayWriter(&failAfter{left: 200 << 10})
	g.AddAll(len(all), func(i int) JSONAppender { encoded.Add(1); return all[i] })
	if err := g.Close(); !errors.Is(err, errFull) {
		t.Errorf("Close after a failed write = %v, want %v", err, errFull)
	}
	if n := encoded.Load(); n > int64(len(all)/2) {
		t.Errorf("encoded %d of %d elements after the writer failed; want the encoding stopped", n, len(all))
	}
}
