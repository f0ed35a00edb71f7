package api_test

import (
	"bytes"
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store/postgres"
)

// TestHealthzReportsFailingWrites: a store that answers reads but refuses
// writes (here a Postgres database switched to read-only, as a demoted
// primary is; a read-only SQLite file or a full disk look the same to the
// API) loses every push. /healthz used to say 200 regardless; it says 503
// with the reason while writes fail, and 200 again once one succeeds.
//
// The fault is real and works whatever user runs the test (root ignores
// file modes, not a read-only database): new sessions start read-only via
// ALTER DATABASE ... SET default_transaction_read_only.
func TestHealthzReportsFailingWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.URL(t)
	ag := addAgent(t, openPostgresURL(t, dbURL, true), "pusher")

	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	db := pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
	admin, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	mustExec := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	mustExec("ALTER DATABASE " + db + " SET default_transaction_read_only = on")

	// The API's store opens now, so its sessions are read-only; reads work.
	s := openPostgresURL(t, dbURL, false)
	srv := serve(t, s, api.Options{})
	push := func() answer {
		return call(t, "POST", srv.URL+"/api/heartbeat/"+strconv.FormatInt(ag.id, 10)+"/", "", "Authorization: Bearer "+ag.token)
	}
	if a := call(t, "GET", srv.URL+"/healthz", ""); a.code != 200 {
		t.Fatalf("healthz before any write = %d %s, want 200 (nothing has failed yet)", a.code, a.body)
	}
	if a := push(); a.code != 503 {
		t.Fatalf("push to a read-only database = %d %s, want 503", a.code, a.body)
	}
	a := call(t, "GET", srv.URL+"/healthz", "")
	if a.code != 503 || !bytes.Contains(a.body, []byte("recent writes failing")) || !bytes.Contains(a.body, []byte("read-only transaction")) {
		t.Errorf("healthz while pushes fail = %d %s, want 503 naming the failing writes and why", a.code, a.body)
	}

	// Writable again: new sessions are read-write, and the old read-only
	// ones are ended, so the pool replaces them (each dead connection
	// fails one write on the way).
	mustExec("ALTER DATABASE " + db + " RESET default_transaction_read_only")
	mustExec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
	stored := false
	for range 20 {
		if push().code == 200 {
			stored = true
			break
		}
	}
	if !stored {
		t.Fatal("no push was stored after the database became writable again")
	}
	if a := call(t, "GET", srv.URL+"/healthz", ""); a.code != 200 {
		t.Errorf("healthz after a write succeeded = %d %s, want 200", a.code, a.body)
	}
}

func openPostgresURL(t *testing.T, u string, migrate bool) *postgres.Store {
	t.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, u, postgres.Options{})
	if s == nil {
		t.Fatal(err)
	}
	if migrate {
		if _, err = s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
