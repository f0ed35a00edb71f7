package cli_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stacksense/heartbeat/pkg/pgtest"
)

// A table lock held by someone else must not hang `status`: as a Nagios
// check it answers UNKNOWN (3) within its default 10 s, naming what it
// waited for.
func TestPostgresStatusGivesUpOnLockedTables(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"DATABASE_URL": url}}
	e.mustRun("migrate")
	e.mustRun("servers", "add", "web1", "--host", "10.0.0.5")

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE servers, heartbeats IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	r := e.runWithin(30*time.Second, "status")
	if r.code != 3 {
		t.Errorf("status with locked tables: exit %d, want 3 (stderr %q)", r.code, r.err)
	}
	// The command's deadline answers, or the pool's lock_timeout first
	// if it is set shorter; either way one line naming the read.
	want := "heartbeat: status: no answer within 10s (--timeout), waiting for: read status\n"
	if r.err != want && !(strings.Contains(r.err, "read status") && strings.Contains(r.err, "lock timeout")) ||
		strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
		t.Errorf("status with locked tables: stderr %q, want %q", r.err, want)
	}
	// As a plugin it says so on stdout, in one UNKNOWN line.
	r = e.runWithin(30*time.Second, "status", "--check", "--server", "web1", "--timeout", "1s")
	if r.code != 3 || !strings.HasPrefix(r.out, "HEARTBEAT UNKNOWN - status: no answer within 1s (--timeout)") && !strings.Contains(r.out, "lock timeout") ||
		strings.Count(r.out, "\n") != 1 {
		t.Errorf("status --check with locked tables: exit %d, stdout %q", r.code, r.out)
	}
	// Other commands honour their own --timeout with exit 1.
	r = e.runWithin(30*time.Second, "servers", "list", "--timeout", "1s")
	if r.code != 1 || !strings.HasPrefix(r.err, "heartbeat: servers list: no answer within 1s (--timeout), waiting for: ") {
		t.Errorf("servers list with locked tables: exit %d, stderr %q", r.code, r.err)
	}
}

func TestTimeoutFlagRejectsNegative(t *testing.T) {
	t.Parallel()
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"HEARTBEAT_DB": filepath.Join(t.TempDir(), "hb.db")}}
	// status is a monitoring plugin: its usage errors are UNKNOWN (3).
	if r := e.run("status", "--timeout", "-1s"); r.code != 3 {
		t.Errorf("status --timeout -1s: exit %d, want 3 (UNKNOWN)", r.code)
	}
	if r := e.run("servers", "list", "--timeout", "-1s"); r.code != 64 {
		t.Errorf("servers list --timeout -1s: exit %d, want a usage error", r.code)
	}
}
