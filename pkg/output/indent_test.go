package output

import (
	"bytes"
	"encoding/json"
	"testing"
)

// indentJSON must indent exactly as encoding/json does, since
// `status --json` output is compared byte for byte.
func TestIndentJSONMatchesEncodingJSON(t *testing.T) {
	for _, src := range []string{
		`{}`, `[]`, `1`, `"a"`, `null`,
		`{"a":1,"b":[1,2,{}],"c":{"d":[],"e":"x,y:{z}[\"q\\\\"},"f":null,"g":-1.5e3}`,
		`[{"name":"a\u003cb","tags":["x","y"],"uptime_24h":99.5,"nested":{"k":{"l":[[],[1]]}}}]`,
		`[[[[[[[[[[[{"deep":[1,{"deeper":2}]}]]]]]]]]]],{"back":"up"}]`,
	} {
		var want bytes.Buffer
		if err := json.Indent(&want, []byte(src), "  ", "  "); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got := indentJSON(nil, []byte(src), "  ", "  "); string(got) != want.String() {
			t.Errorf("indentJSON(%s) =\n%s\nwant\n%s", src, got, want.String())
		}
	}
}
