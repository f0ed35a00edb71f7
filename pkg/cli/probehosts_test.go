package cli_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/sshtest"
)

// On Postgres, status --verbose and doctor list every probe host's last
// run with its share and failures, and name a host that stopped while
// the others run: nothing goes OFFLINE for it, so nothing else would.
func TestPostgresProbeHostsShownAndStoppedHostWarned(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"DATABASE_URL": dbURL}}
	e.mustRun("migrate")
	_, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 4}, sshtest.Group{Mode: sshtest.ModeAuthReject, Count: 1})
	e.vars["HEARTBEAT_PROBE_HOST"] = "mon-a"
	e.mustRun("probe-ssh", "--key", key)
	verbose := e.run("status", "--verbose").out
	if strings.Contains(verbose, "probe host") {
		t.Errorf("one host running: status --verbose lists hosts:\n%s", verbose)
	}

	// mon-b ran ten minutes ago and not since.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO probe_runs (host, started_at, finished_at, servers, probed, succeeded)
		VALUES ('mon-b', now() - interval '10 minutes 5 seconds', now() - interval '10 minutes', 3, 3, 3)`); err != nil {
		t.Fatal(err)
	}
	verbose = e.run("status", "--verbose").out
	for _, want := range []string{"probe host mon-a: last run ", "5 servers (100%), 1 failed", "probe host mon-b: last run 10m",
		"STOPPED", "WARNING: probe host mon-b (last run 10m"} {
		if !strings.Contains(verbose, want) {
			t.Errorf("status --verbose lacks %q:\n%s", want, verbose)
		}
	}
	checks, _ := e.doctor()
	expectCheck(t, checks, "probe-hosts", "warn", "2 probe host(s) share the fleet: mon-a: last run", "cron lines")
	expectCheck(t, checks, "probe-hosts", "warn", "mon-b: last run 10m", "")
}

// A probe host name keys the run lock and is printed in status and doctor:
// one printable word of at most 64 characters, else a usage error.
func TestProbeHostBadInput(t *testing.T) {
	t.Parallel()
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"HEARTBEAT_DB": t.TempDir() + "/hb.db"}}
	e.expectFail(64, "--probe-host: \"mon 1\" has a space or control character", "probe-ssh", "--probe-host", "mon 1")
	e.expectFail(64, "--probe-host: \"mon\\x1b1\" has a space or control character", "probe-ssh", "--probe-host", "mon\x1b1")
	e.expectFail(64, "--probe-host: at most 64 characters, got 65", "probe-ssh", "--probe-host", strings.Repeat("m", 65))
	e.vars["HEARTBEAT_PROBE_HOST"] = "a\tb"
	e.expectFail(64, "HEARTBEAT_PROBE_HOST: \"a\\tb\" has a space", "probe-ssh")
}

// With two locations, status --verbose names each host's location, adds
// the LOCATIONS column and the locations line, and doctor warns about a
// location that is cut off (its votes do not count, so nothing else
// shows it).
func TestPostgresLocationsShownAndCutOffLocationWarned(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"DATABASE_URL": dbURL}}
	e.mustRun("migrate")
	_, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 4})
	e.vars["HEARTBEAT_PROBE_HOST"] = "mon-a"
	e.mustRun("probe-ssh", "--key", key, "--location", "fra")

	// mon-b in nyc could connect to none of the 4 servers just now.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO probe_runs (host, location, started_at, finished_at, servers, probed, succeeded, failed_by_class)
		VALUES ('mon-b', 'nyc', now() - interval '3 seconds', now() - interval '1 second', 4, 4, 0, '{"refused": 4}')`); err != nil {
		t.Fatal(err)
	}
	verbose := e.run("status", "--verbose").out
	for _, want := range []string{"probe host mon-a (fra): last run", "probe host mon-b (nyc): last run", "(CUT OFF",
		"LOCATIONS", "seen from fra", "locations: fra, nyc (nyc cut off: not voting); quorum 1"} {
		if !strings.Contains(verbose, want) {
			t.Errorf("status --verbose lacks %q:\n%s", want, verbose)
		}
	}
	checks, _ := e.doctor()
	expectCheck(t, checks, "probe-hosts", "warn", "nyc cut off: not voting", "that site's network")
}

// With several hosts, a run that finds nothing due (the others probed
// everything this tick) is often the last to finish; the run header must
// not then say "0/0 answered" as if nothing had been probed.
func TestPostgresRunHeaderSkipsARunThatClaimedNothing(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"DATABASE_URL": dbURL}}
	e.mustRun("migrate")
	_, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 4}, sshtest.Group{Mode: sshtest.ModeAuthReject, Count: 1})
	e.vars["HEARTBEAT_PROBE_HOST"] = "mon-a"
	e.mustRun("probe-ssh", "--key", key)
	// mon-b's run of the same tick finds every server probed.
	e.vars["HEARTBEAT_PROBE_HOST"] = "mon-b"
	e.mustRun("probe-ssh", "--key", key)
	verbose := e.run("status", "--verbose").out
	if strings.Contains(verbose, "0/0 answered") || !strings.Contains(verbose, "4/5 answered") {
		t.Errorf("status --verbose header; want mon-a's 4/5 answered:\n%s", verbose)
	}
	if !strings.Contains(verbose, "probe host mon-b: last run ") {
		t.Errorf("status --verbose does not list mon-b's empty run:\n%s", verbose)
	}
}
