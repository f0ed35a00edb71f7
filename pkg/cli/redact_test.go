package cli_test

import (
	"strings"
	"testing"
)

// TestStoreSettingsNeverPrintPasswords: every form of Postgres setting pgx
// accepts reaches an unreachable store (port 1), and neither the connect
// error nor doctor prints the password. The keyword/value form used to be
// rejected with the whole setting, password included, echoed on stderr.
func TestStoreSettingsNeverPrintPasswords(t *testing.T) {
	t.Parallel()
	for _, setting := range []string{
		"host=127.0.0.1 port=1 user=hb password=hunter2 dbname=hb",
		"host=127.0.0.1 port=1 user=hb password='hunter2 with spaces' dbname=hb",
		`host=127.0.0.1 port=1 user=hb password='it\'s hunter2' dbname=hb`,
		"postgres://hb:hunter2@127.0.0.1:1/hb",
		"postgres://hb@127.0.0.1:1/hb?password=hunter2",
		"postgres://hb:hun#ter2@127.0.0.1:1/hb",
	} {
		for _, via := range []string{"--db", "DATABASE_URL"} {
			e := &env{t: t, home: t.TempDir(), vars: map[string]string{}}
			args := func(cmd ...string) []string {
				if via == "--db" {
					return append([]string{"--db", setting}, cmd...)
				}
				e.vars["DATABASE_URL"] = setting
				return cmd
			}
			r := e.run(args("status")...)
			if r.code != 3 {
				t.Errorf("%s %q: status exited %d, want 3 (unknown: store unreachable); stderr %q", via, setting, r.code, r.err)
			}
			if !strings.Contains(r.err, "127.0.0.1") || !strings.Contains(r.err, via) {
				t.Errorf("%s %q: status stderr %q should name the store and %s", via, setting, r.err, via)
			}
			d := e.run(args("doctor")...)
			if d.code != 1 || !strings.Contains(d.out, "cannot reach postgres store") {
				t.Errorf("%s %q: doctor exit %d, want 1 with an unreachable store:\n%s", via, setting, d.code, d.out)
			}
			for _, out := range []string{r.out, r.err, d.out, d.err} {
				if strings.Contains(out, "hunter2") || strings.Contains(out, "hun#ter2") {
					t.Errorf("%s %q: printed the password:\n%s", via, setting, out)
				}
			}
		}
	}
}

// TestPGPASSWORDNeverPrinted: pgx takes the password from PGPASSWORD when
// the setting has none; it is not echoed either. Not parallel: it sets the
// process environment, which pgx reads directly.
func TestPGPASSWORDNeverPrinted(t *testing.T) {
	t.Setenv("PGPASSWORD", "hunter2")
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"PGPASSWORD": "hunter2"}}
	for _, args := range [][]string{
		{"--db", "host=127.0.0.1 port=1 user=hb dbname=hb", "status"},
		{"--db", "host=127.0.0.1 port=1 user=hb dbname=hb", "doctor", "--quick"},
		{"--db", "postgres://hb@127.0.0.1:1/hb", "doctor", "--json"},
	} {
		r := e.run(args...)
		if r.code == 0 {
			t.Errorf("%v: exit 0 against an unreachable store", args)
		}
		if strings.Contains(r.out+r.err, "hunter2") {
			t.Errorf("%v printed PGPASSWORD:\n%s%s", args, r.out, r.err)
		}
	}
}
