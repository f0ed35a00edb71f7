// Package pgtest gives each test its own fresh, empty Postgres database, so
// test packages (and parallel tests inside them) never share tables.
//
// It finds a server once per test binary, in this order:
//
//  1. TEST_DATABASE_URL, an admin URL (postgres://...) for a server on
//     which the tests may create and drop databases;
//  2. a server on 127.0.0.1:5432 that answers within a second, reached as
//     user postgres with trust auth (the CI and dev-box setup);
//  3. a throwaway cluster made with the local initdb and pg_ctl in a temp
//     dir, listening only on a unix socket there, with fsync off.
//
// If none is available the test is skipped, except under CI=true, where it
// fails: a missing prerequisite must never turn into a green CI run.
//
// This package reads the environment directly (TEST_DATABASE_URL, CI)
// rather than through pkg/config because those are settings of the test
// harness, not of heartbeat, and the package is only ever linked into tests.
// For the same reason it keeps the discovered server in package state: the
// cost of finding (or starting) a server is paid once per test binary.
//
// A package that calls URL must call Main from its TestMain, so that a
// throwaway cluster is stopped when its tests finish:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// localAddr is where CI and dev machines run Postgres.
	localAddr = "127.0.0.1:5432"
	// probeTimeout bounds the TCP check of localAddr; a local server that
	// does not accept within it is treated as absent.
	probeTimeout = time.Second
	// connectTimeout bounds every admin connection.
	connectTimeout = 5 * time.Second
	// clusterStartTimeout bounds initdb plus pg_ctl start (about 1-2 s here).
	clusterStartTimeout = 60 * time.Second
)

// server is a Postgres server on which tests may create databases.
type server struct {
	// adminURL connects as a user allowed to CREATE/DROP DATABASE.
	adminURL *url.URL
	// source says which discovery path found the server, for messages.
	source string
	// cluster is non-nil when this process started the server itself.
	cluster *cluster
}

// discovery is the outcome of finding a server, computed once per process.
type discovery struct {
	srv *server
	// unavailable is set when no server could be found at all; the test is
	// skipped outside CI. It is distinct from err, a real failure.
	unavailable string
	err         error
}

var (
	discoverOnce sync.Once
	discovered   discovery
	// mainActive records that Main is running the tests, so it will stop a
	// cluster we start; without it a throwaway postmaster would outlive the
	// test binary.
	mainActive atomic.Bool
)

// Main runs the tests of a package and then stops any throwaway cluster
// that URL started and removes its temp dir, before exiting with the
// tests' exit code. Call it from TestMain.
func Main(m *testing.M) {
	mainActive.Store(true)
	code := m.Run()
	if c := discovered.clusterIfStarted(); c != nil {
		if err := c.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// clusterIfStarted returns the cluster this process started, if any. It
// is only read after m.Run has returned, when discovery can no longer run.
func (d *discovery) clusterIfStarted() *cluster {
	if d.srv == nil {
		return nil
	}
	return d.srv.cluster
}

// URL returns a postgres:// URL of a freshly created, empty database that
// is dropped (forcibly, disconnecting any leftover sessions) when t and its
// subtests finish. Each call returns a different database, so parallel
// tests may each call it.
func URL(t testing.TB) string {
	t.Helper()
	srv := serverFor(t)

	name, err := randomName()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*connectTimeout)
	defer cancel()
	if err := srv.createDatabase(ctx, name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*connectTimeout)
		defer cancel()
		if err := srv.dropDatabase(ctx, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	// Which discovery path was taken is the first question when CI fails.
	t.Logf("pgtest: database %s on %s", name, srv.source)
	return srv.databaseURL(name)
}

// serverFor returns the process's server or ends the test: skip when none
// exists (fail under CI), fail when discovery went wrong.
func serverFor(t testing.TB) *server {
	t.Helper()
	discoverOnce.Do(func() { discovered = discover(context.Background()) })
	d := discovered
	switch {
	case d.err != nil:
		t.Fatalf("pgtest: %v", d.err)
	case d.unavailable != "":
		if inCI() {
			t.Fatalf("pgtest: Postgres is required under CI=true but none is available: %s", d.unavailable)
		}
		t.Skipf("pgtest: skipping, no Postgres available (set TEST_DATABASE_URL, run one on %s, or install initdb): %s", localAddr, d.unavailable)
	}
	return d.srv
}

// inCI reports whether the tests run under CI, where skipping for a missing
// prerequisite would hide a broken pipeline.
func inCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// discover finds a server: TEST_DATABASE_URL, then 127.0.0.1:5432, then a
// throwaway cluster.
func discover(ctx context.Context) discovery {
	if raw := os.Getenv("TEST_DATABASE_URL"); raw != "" {
		// An explicit URL that does not work is a broken setup, never a skip.
		srv, err := serverFromURL(ctx, raw)
		if err != nil {
			return discovery{err: fmt.Errorf("TEST_DATABASE_URL: %w", err)}
		}
		return discovery{srv: srv}
	}

	localSrv, localErr := localServer(ctx)
	if localErr == nil {
		return discovery{srv: localSrv}
	}

	if _, _, err := findTools(); err != nil {
		return discovery{unavailable: fmt.Sprintf("TEST_DATABASE_URL unset; %s: %v; throwaway cluster: %v", localAddr, localErr, err)}
	}
	if !mainActive.Load() {
		// A programming error, not a missing prerequisite, so it fails
		// everywhere; refusing before the start means nothing leaks.
		return discovery{err: fmt.Errorf("%s unusable (%v) and a throwaway cluster is needed, but this package's TestMain does not call pgtest.Main, which would stop it", localAddr, localErr)}
	}
	startCtx, cancel := context.WithTimeout(ctx, clusterStartTimeout)
	defer cancel()
	c, err := startCluster(startCtx)
	if err != nil {
		return discovery{err: fmt.Errorf("%s unusable (%v), and the throwaway cluster failed: %w", localAddr, localErr, err)}
	}
	return discovery{srv: &server{adminURL: c.adminURL(), source: "throwaway cluster in " + c.dir, cluster: c}}
}

// serverFromURL checks that raw is a usable admin URL.
func serverFromURL(ctx context.Context, raw string) (*server, error) {
	srv, err := parseAdminURL(raw)
	if err != nil {
		return nil, err
	}
	if err := srv.ping(ctx); err != nil {
		return nil, err
	}
	return srv, nil
}

// parseAdminURL accepts only URL syntax, not libpq's key=value form,
// because databaseURL swaps the database by editing the URL's path.
func parseAdminURL(raw string) (*server, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the input, which may hold a password.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("parse: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("want a postgres:// URL, got scheme %q", u.Scheme)
	}
	return &server{adminURL: u, source: "TEST_DATABASE_URL"}, nil
}

// localServer returns the server on 127.0.0.1:5432 if it answers. A quick
// TCP dial comes first so an absent server costs a refused connection or at
// most probeTimeout, not the full connect timeout.
func localServer(ctx context.Context) (*server, error) {
	d := net.Dialer{Timeout: probeTimeout}
	nc, err := d.DialContext(ctx, "tcp", localAddr)
	if err != nil {
		return nil, fmt.Errorf("not answering: %w", err)
	}
	nc.Close()

	// Debian clusters have a "postgres" database; the CI image also has
	// "test". Either will do as the database admin connections sit in.
	var errs []error
	for _, db := range []string{"postgres", "test"} {
		u := &url.URL{
			Scheme:   "postgres",
			User:     url.User("postgres"),
			Host:     localAddr,
			Path:     "/" + db,
			RawQuery: "sslmode=disable",
		}
		srv := &server{adminURL: u, source: localAddr}
		if err := srv.ping(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		return srv, nil
	}
	return nil, errors.Join(errs...)
}

// connect opens an admin connection.
func (s *server) connect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.adminURL.String())
	if err != nil {
		return nil, fmt.Errorf("connect to %s (%s): %w", s.source, s.adminURL.Redacted(), err)
	}
	return conn, nil
}

// ping checks that an admin connection can be made.
func (s *server) ping(ctx context.Context) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// createDatabase creates the empty database name.
func (s *server) createDatabase(ctx context.Context, name string) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s on %s: %w", name, s.source, err)
	}
	return nil
}

// dropDatabase drops name even if a test left sessions open in it.
func (s *server) dropDatabase(ctx context.Context, name string) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ident := pgx.Identifier{name}.Sanitize()

	// WITH (FORCE) arrived in PG 13; before it, end the sessions by hand.
	// That leaves a window for a new session, but nothing reconnects to a
	// test's database once its cleanups have run.
	version, err := serverVersionNum(ctx, conn)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	if version >= 130000 {
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
	} else {
		_, err = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
		if err == nil {
			_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident)
		}
	}
	if err != nil {
		return fmt.Errorf("drop database %s on %s: %w", name, s.source, err)
	}
	return nil
}

// serverVersionNum returns the server version as an integer, e.g. 150020.
func serverVersionNum(ctx context.Context, conn *pgx.Conn) (int, error) {
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version_num").Scan(&v); err != nil {
		return 0, fmt.Errorf("read server_version_num: %w", err)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("parse server_version_num %q: %w", v, err)
	}
	return n, nil
}

// databaseURL is the admin URL pointed at database name; host, user and
// query parameters (sslmode, a unix-socket host) carry over.
func (s *server) databaseURL(name string) string {
	u := *s.adminURL
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// randomName returns a database name unique across parallel test binaries
// sharing one server.
func randomName() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random database name: %w", err)
	}
	return "hbtest_" + hex.EncodeToString(b), nil
}
