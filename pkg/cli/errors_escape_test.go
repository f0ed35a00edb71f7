package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An error that quotes text from outside (here a path holding an escape
// sequence, as a stored name or a peer's banner could) reaches stderr, and
// so cron mail, with its control characters escaped.
func TestErrorLineEscapesControlCharacters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	blocker := filepath.Join(dir, "f\x1b[31mX")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{}}
	r := e.run("--db", filepath.Join(blocker, "sub", "hb.db"), "status")
	if r.code != 3 {
		t.Fatalf("status with an unusable store: exit %d, want 3 (stderr %q)", r.code, r.err)
	}
	if strings.ContainsRune(r.err, 0x1b) || !strings.Contains(r.err, `f\x1b[31mX`) {
		t.Errorf("stderr %q: want the escape sequence shown as \\x1b, never raw", r.err)
	}
}
