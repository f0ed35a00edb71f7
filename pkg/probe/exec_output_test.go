package probe

import (
	"strings"
	"testing"
)

// What a failed --exec printed reaches stored messages and terminals: one
// line, escaped, bounded.
func TestFirstLine(t *testing.T) {
	long := strings.Repeat("x", 500)
	tests := []struct{ in, want string }{
		{"", ""},
		{"\n  \r\n", ""},
		{"This account is currently not available.\n", `"This account is currently not available."`},
		{"\n\nfirst\nsecond\n", `"first"`},
		{"bell\a and \x1b[31mred\x1b[0m\r\n", `"bell\a and \x1b[31mred\x1b[0m"`},
		{"\xff\xfe bad utf-8", `"\xff\xfe bad utf-8"`},
		{long, `"` + strings.Repeat("x", 117) + `..."`},
	}
	for _, tt := range tests {
		if got := firstLine([]byte(tt.in)); got != tt.want {
			t.Errorf("firstLine(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	var h headBuffer
	for i := 0; i < 100; i++ {
		h.Write([]byte(long))
	}
	if len(h.b) != headLimit {
		t.Errorf("headBuffer kept %d bytes, want %d", len(h.b), headLimit)
	}
}
