package output

import (
	"bytes"
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"web1":                "web1",
		"":                    "",
		"café ünïcode":        "café ünïcode",
		"a\x1b[31mred":        `a\x1b[31mred`,
		"two\nlines\r\n":      `two\nlines\r\n`,
		"tab\there":           `tab\there`,
		"nul\x00del\x7f":      `nul\x00del\x7f`,
		"c1 \u009b31m":        `c1 \u009b31m`,
		"bidi \u202eevil":     `bidi \u202eevil`,
		"bad utf8 \xff\xfe":   `bad utf8 \xff\xfe`,
		`quotes " and \ kept`: `quotes " and \ kept`,
		"\x1b]0;title\x07":    `\x1b]0;title\x07`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTableEscapesCellsAndGoesPlainOffTerminal(t *testing.T) {
	rows := [][]string{{"1", "evil\x1b[31m\nname", ""}}
	for _, plain := range []bool{false, true} {
		var buf bytes.Buffer
		if err := TableWith(&buf, []string{"ID", "NAME", "HOST"}, rows, TableOptions{Plain: plain}); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if strings.ContainsAny(out, "\x1b") || strings.Count(out, "\n") != 2 {
			t.Errorf("plain=%v: raw control characters reached the table:\n%q", plain, out)
		}
		if !strings.Contains(out, `evil\x1b[31m\nname`) {
			t.Errorf("plain=%v: escaped name missing:\n%q", plain, out)
		}
		if plain && out != "ID\tNAME\tHOST\n1\tevil\\x1b[31m\\nname\t\n" {
			t.Errorf("plain table = %q", out)
		}
	}
}
