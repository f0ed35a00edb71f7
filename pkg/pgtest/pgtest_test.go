package pgtest

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// connect opens a connection to url and closes it when t ends.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func currentDatabase(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var name string
	if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
		t.Fatalf("current_database: %v", err)
	}
	return name
}

// databaseExists asks the admin connection, not the test's own, so the
// answer does not depend on the database under test.
func databaseExists(t *testing.T, srv *server, name string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := srv.connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatalf("query pg_database: %v", err)
	}
	return exists
}

func TestPostgresURLIsUsableAndEmpty(t *testing.T) {
	t.Parallel()
	conn := connect(t, URL(t))
	ctx := context.Background()

	var tables int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("new database has %d tables in public, want 0", tables)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)"); err != nil {
		t.Fatalf("create and fill a table: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("count = %d, want 2", n)
	}
}

func TestPostgresURLGivesDistinctDatabases(t *testing.T) {
	t.Parallel()
	a := currentDatabase(t, connect(t, URL(t)))
	b := currentDatabase(t, connect(t, URL(t)))
	if a == b {
		t.Errorf("two URL calls gave the same database %q", a)
	}
}

func TestPostgresURLDropsDatabaseOnCleanup(t *testing.T) {
	t.Parallel()
	var name string
	ok := t.Run("use", func(t *testing.T) {
		// The connection stays open into cleanup on purpose: the drop must
		// force it off rather than fail with "being accessed by other users".
		conn := connect(t, URL(t))
		name = currentDatabase(t, conn)
		if !databaseExists(t, discovered.srv, name) {
			t.Fatalf("database %s missing from pg_database while in use", name)
		}
	})
	switch {
	case !ok:
		return
	case name == "":
		// URL skipped the subtest: there is no Postgres outside CI.
		t.Skip("no database to check")
	}
	// t.Run has returned, so the subtest's cleanups, and the drop, have run.
	if databaseExists(t, discovered.srv, name) {
		t.Errorf("database %s still in pg_database after the test's cleanup", name)
	}
}

// TestPostgresThrowawayCluster exercises discovery path (c) even on a
// machine where 127.0.0.1:5432 answers and URL never takes it.
func TestPostgresThrowawayCluster(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), clusterStartTimeout)
	defer cancel()

	start := time.Now()
	c, err := startCluster(ctx)
	var missing *missingToolsError
	switch {
	case errors.As(err, &missing) && !inCI():
		t.Skipf("no initdb: %v", err)
	case err != nil:
		t.Fatal(err)
	}
	t.Logf("initdb + pg_ctl start took %v", time.Since(start).Round(time.Millisecond))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			c.stop()
		}
	})

	srv := &server{adminURL: c.adminURL(), source: "test cluster", cluster: c}
	if err := srv.createDatabase(ctx, "hbtest_cluster"); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, srv.databaseURL("hbtest_cluster"))
	if got := currentDatabase(t, conn); got != "hbtest_cluster" {
		t.Errorf("connected to %q, want hbtest_cluster", got)
	}
	var listen string
	if err := conn.QueryRow(ctx, "SHOW listen_addresses").Scan(&listen); err != nil {
		t.Fatal(err)
	}
	if listen != "" {
		t.Errorf("listen_addresses = %q, want '' (unix socket only)", listen)
	}
	conn.Close(ctx)
	if err := srv.dropDatabase(ctx, "hbtest_cluster"); err != nil {
		t.Error(err)
	}

	start = time.Now()
	stopped = true
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("pg_ctl stop + cleanup took %v", time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat(c.dir); !os.IsNotExist(err) {
		t.Errorf("cluster dir %s still there after stop (stat: %v)", c.dir, err)
	}
}

func TestDatabaseURLKeepsHostAndParameters(t *testing.T) {
	for _, tc := range []struct{ admin, want string }{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/hbtest_x?sslmode=disable"},
		{"postgres://u:p@db.example:6543/admin", "postgres://u:p@db.example:6543/hbtest_x"},
		{"postgres://postgres@/postgres?host=%2Ftmp%2Fpgtest-1&sslmode=disable", "postgres://postgres@/hbtest_x?host=%2Ftmp%2Fpgtest-1&sslmode=disable"},
	} {
		srv, err := parseAdminURL(tc.admin)
		if err != nil {
			t.Fatal(err)
		}
		if got := srv.databaseURL("hbtest_x"); got != tc.want {
			t.Errorf("databaseURL from %s = %s, want %s", tc.admin, got, tc.want)
		}
	}
}
