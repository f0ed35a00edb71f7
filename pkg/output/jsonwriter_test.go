package output

import (
	"encoding/json"
	"strconv"
	"testing"
)

type inner struct {
	X int `json:"x"`
}

type nested struct {
	A     int      `json:"a"`
	List  []int    `json:"list"`
	Empty []int    `json:"empty"`
	None  struct{} `json:"none"`
	Objs  []inner  `json:"objs"`
	Deep  [][]int  `json:"deep"`
	Last  string   `json:"last"`
}

func (n *nested) write(w *JSONWriter) {
	ints := func(v []int) {
		w.Open('[')
		for _, x := range v {
			w.Elem()
			w.B = strconv.AppendInt(w.B, int64(x), 10)
		}
		w.Close(']')
	}
	w.Open('{')
	w.Key("a")
	w.B = strconv.AppendInt(w.B, int64(n.A), 10)
	w.Key("list")
	ints(n.List)
	w.Key("empty")
	ints(n.Empty)
	w.Key("none")
	w.Open('{')
	w.Close('}')
	w.Key("objs")
	w.Open('[')
	for _, o := range n.Objs {
		w.Elem()
		w.Open('{')
		w.Key("x")
		w.B = strconv.AppendInt(w.B, int64(o.X), 10)
		w.Close('}')
	}
	w.Close(']')
	w.Key("deep")
	w.Open('[')
	for _, d := range n.Deep {
		w.Elem()
		ints(d)
	}
	w.Close(']')
	w.Key("last")
	w.B = AppendJSONString(w.B, n.Last)
	w.Close('}')
}

// TestJSONWriterMatchesEncodingJSON: one encoder through JSONWriter writes
// what json.Marshal and json.MarshalIndent write, nested and empty values
// included.
func TestJSONWriterMatchesEncodingJSON(t *testing.T) {
	v := nested{A: 1, List: []int{1, 2}, Empty: []int{}, Objs: []inner{{1}, {2}}, Deep: [][]int{{}, {3}, {4, 5}}, Last: "end"}
	compact := JSONWriter{}
	v.write(&compact)
	if want, _ := json.Marshal(v); string(compact.B) != string(want) {
		t.Errorf("compact:\n%s\nwant\n%s", compact.B, want)
	}
	for _, pi := range [][2]string{{"", "  "}, {"  ", "  "}, {">", "\t"}} {
		ind := JSONWriter{Indented: true, Prefix: pi[0], Indent: pi[1]}
		v.write(&ind)
		if want, _ := json.MarshalIndent(v, pi[0], pi[1]); string(ind.B) != string(want) {
			t.Errorf("indented %q %q:\n%s\nwant\n%s", pi[0], pi[1], ind.B, want)
		}
	}
}
