package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store"
)

// Bad locations and quorums are usage errors (exit 64) that change
// nothing; a quorum needs that many locations to have run.
func TestLocationAndQuorumBadInput(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.expectFail(64, "no spaces", "probe-ssh", "--location", "new york")
		e.expectFail(64, "at most 64", "probe-ssh", "--location", strings.Repeat("a", 65))
		e.vars["HEARTBEAT_LOCATION"] = "bad\tname"
		e.expectFail(64, "HEARTBEAT_LOCATION", "probe-ssh")
		delete(e.vars, "HEARTBEAT_LOCATION")
		e.expectFail(64, "from 1", "config", "set", "quorum", "0")
		e.expectFail(64, "from 1", "config", "set", "quorum", "two")
		e.expectFail(64, "unknown setting", "config", "set", "colour", "blue")
		if _, shared := e.open().(store.ProbeLeaser); shared {
			e.expectFail(64, "could never be reached", "config", "set", "quorum", "2")
		} else {
			e.expectFail(64, "one probe host and so one location", "config", "set", "quorum", "2")
		}
		if got := strings.TrimSpace(e.mustRun("config", "get", "quorum")); got != "1" {
			t.Errorf("quorum after refused sets = %q, want the default 1", got)
		}
		e.mustRun("config", "set", "quorum", "1")
		if out := e.mustRun("config", "list"); !strings.Contains(out, "quorum\t1\t(default 1") {
			t.Errorf("config list = %q", out)
		}
	})
}

// On SQLite (one probe host) another location is refused before anything
// is probed.
func TestSQLiteProbeLocationIsUsageError(t *testing.T) {
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"HEARTBEAT_DB": t.TempDir() + "/hb.db"}}
	e.mustRun("servers", "add", "web-1", "--host", "127.0.0.1")
	e.expectFail(64, "Postgres", "probe-ssh", "--location", "fra")
}

// With two locations that ran, a quorum of 2 is accepted and a quorum of
// 3 is not.
func TestPostgresQuorumNeedsLocations(t *testing.T) {
	e := &env{t: t, home: t.TempDir(), vars: map[string]string{"DATABASE_URL": pgtest.URL(t)}}
	e.mustRun("migrate")
	s := e.open()
	ctx := context.Background()
	for _, loc := range []string{"fra", "nyc"} {
		run, err := s.(store.ProbeLeaser).StartSharedRun(ctx, "host-"+loc, loc, 0, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.FinishRun(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	e.expectFail(64, "only 2 location(s) ran in the last hour (fra, nyc)", "config", "set", "quorum", "3")
	if out := e.mustRun("config", "set", "quorum", "2"); !strings.Contains(out, "quorum set to 2") {
		t.Errorf("config set = %q", out)
	}
	if got := strings.TrimSpace(e.mustRun("config", "get", "quorum")); got != "2" {
		t.Errorf("quorum = %q, want 2", got)
	}
}
