package cli_test

import (
	"strings"
	"testing"
)

// A server name stored before validation existed (or written by hand) may
// hold control characters; the sentences servers subcommands print about it,
// success or refusal, must show them escaped, never raw, so a name cannot
// repaint the operator's terminal.
func TestServersSentencesEscapeStoredName(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "plain", "--host", "plain.example.net")
		e.rawExec(`UPDATE servers SET name = $1 WHERE name = 'plain'`, "evil\x1b[31mname")
		for _, c := range []struct {
			args []string
			code int
		}{
			{[]string{"servers", "disable", "1"}, 0},
			{[]string{"servers", "enable", "1"}, 0},
			{[]string{"servers", "mode", "1", "push"}, 0},
			{[]string{"servers", "token", "1"}, 0},
			{[]string{"servers", "mode", "1", "ssh"}, 0},
			{[]string{"servers", "trust", "1"}, 0},
			{[]string{"servers", "remove", "1"}, 64},
			{[]string{"servers", "remove", "1", "--yes"}, 0},
		} {
			r := e.run(c.args...)
			if r.code != c.code {
				t.Errorf("%v: exit %d, want %d\nstdout: %q\nstderr: %q", c.args, r.code, c.code, r.out, r.err)
			}
			if strings.Contains(r.out+r.err, "\x1b") {
				t.Errorf("%v: raw ESC in output\nstdout: %q\nstderr: %q", c.args, r.out, r.err)
			}
			if !strings.Contains(r.out+r.err, `evil\x1b[31mname`) {
				t.Errorf("%v: escaped name missing\nstdout: %q\nstderr: %q", c.args, r.out, r.err)
			}
		}
	})
}
