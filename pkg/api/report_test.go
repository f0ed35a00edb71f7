package api_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/failure"
	"github.com/stacksense/heartbeat/pkg/pgtest"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/postgres"
	"github.com/stacksense/heartbeat/pkg/store/sqlite"
)

// rawStore is a store with a way around it: SQL run directly on its
// database, to plant what the store's own API would refuse or cannot do
// without waiting (an old probe run, a name written before validation).
type rawStore struct {
	store.Store
	exec func(t *testing.T, query string, args ...any)
	// ago is the engine's SQL for "the store's clock minus a duration in
	// minutes", with the minutes as the first argument. Both engines take
	// $1 for the first argument.
	ago string
}

func eachRawStore(t *testing.T, fn func(t *testing.T, s rawStore)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "hb.db")
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		fn(t, rawStore{Store: s, ago: `strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || $1 || ' minutes')`,
			exec: func(t *testing.T, q string, args ...any) {
				t.Helper()
				if _, err := db.Exec(q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		url := pgtest.URL(t)
		s, err := postgres.Open(context.Background(), url, postgres.Options{})
		if s == nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		fn(t, rawStore{Store: s, ago: `now() - make_interval(mins => $1::int)`,
			exec: func(t *testing.T, q string, args ...any) {
				t.Helper()
				if _, err := conn.Exec(context.Background(), q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}})
	})
}

// finishRunAgo records a finished probe run and moves it minutes into the
// past.
func finishRunAgo(t *testing.T, s rawStore, minutes int, probed, ok int, failed map[string]int) {
	t.Helper()
	ctx := context.Background()
	run, err := s.StartRun(ctx, "probe1", probed)
	if err != nil {
		t.Fatal(err)
	}
	run.Probed, run.Succeeded, run.FailedByClass = probed, ok, failed
	if _, err := s.FinishRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if minutes > 0 {
		s.exec(t, `UPDATE probe_runs SET started_at = `+s.ago+`, finished_at = `+s.ago+` WHERE id = `+strconv.FormatInt(run.ID, 10), minutes)
	}
}

// The page shows the warnings `status --verbose` prints: a probe run that
// is overdue, and a last run that reached almost no server.
func TestStatusPageShowsRunWarnings(t *testing.T) {
	t.Parallel()
	eachRawStore(t, func(t *testing.T, s rawStore) {
		srv := serve(t, s, api.Options{})
		addAgent(t, s, "web1")
		finishRunAgo(t, s, 10, 10, 0, map[string]int{string(failure.Timeout): 10})
		page := string(call(t, "GET", srv.URL+"/", "").body)
		for _, want := range []string{
			`data-warning="probe-overdue"`, "probe-ssh is not running",
			`data-warning="host-cut-off"`, "could not connect to 10 of 10 servers",
			"last probe run 10m",
		} {
			if !strings.Contains(page, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		m := string(call(t, "GET", srv.URL+"/metrics", "").body)
		for _, want := range []string{`heartbeat_probe_run_warning{kind="probe-overdue"} 1`, `heartbeat_probe_run_warning{kind="host-cut-off"} 1`} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})
}

func TestStatusPageQuietWhenProbeIsHealthy(t *testing.T) {
	t.Parallel()
	eachRawStore(t, func(t *testing.T, s rawStore) {
		srv := serve(t, s, api.Options{})
		finishRunAgo(t, s, 0, 10, 9, map[string]int{string(failure.Auth): 1})
		page := string(call(t, "GET", srv.URL+"/", "").body)
		if strings.Contains(page, "data-warning") || !strings.Contains(page, "last probe run 0s ago: 9/10 answered") {
			t.Errorf("healthy run: page header wrong:\n%s", page)
		}
		m := string(call(t, "GET", srv.URL+"/metrics", "").body)
		if !strings.Contains(m, `heartbeat_probe_run_warning{kind="probe-overdue"} 0`) {
			t.Error("metrics lack the probe-overdue warning at 0")
		}
	})
}

// Strings stored before names and hosts were validated (or errors a peer
// wrote) reach the page with their control characters escaped:
// html/template escapes markup, not terminal escapes or newlines.
func TestStatusPageEscapesControlCharacters(t *testing.T) {
	t.Parallel()
	eachRawStore(t, func(t *testing.T, s rawStore) {
		srv := serve(t, s, api.Options{})
		ag := addAgent(t, s, "plain")
		s.exec(t, `UPDATE servers SET name = $1 WHERE name = 'plain'`, "evil\x1b[31m\nname")
		if err := s.RecordProbeResults(context.Background(), []store.ProbeResult{{ServerID: ag.id,
			ErrorClass: string(failure.Banner), Error: "peer said \x1b]0;pwned\x07\r\nhello"}}); err != nil {
			t.Fatal(err)
		}
		page := string(call(t, "GET", srv.URL+"/", "").body)
		if strings.ContainsAny(page, "\x1b\x07\r") {
			t.Errorf("page carries raw control characters")
		}
		for _, want := range []string{`evil\x1b[31m\nname`, `peer said \x1b]0;pwned\x07\r\nhello`} {
			if !strings.Contains(page, want) {
				t.Errorf("page lacks escaped %q", want)
			}
		}
	})
}

// /metrics passes the Prometheus linter (names, units, help), including
// the per-phase probe durations.
func TestMetricsLintAndPhases(t *testing.T) {
	t.Parallel()
	eachRawStore(t, func(t *testing.T, s rawStore) {
		a := api.New(s, api.Options{})
		t.Cleanup(a.Close)
		sv, err := s.AddServer(context.Background(), store.ServerSpec{Name: "web1", Host: "web1.example.net"})
		if err != nil {
			t.Fatal(err)
		}
		finishRunAgo(t, s, 0, 1, 1, nil)
		if err := s.RecordProbeResults(context.Background(), []store.ProbeResult{{ServerID: sv.ID, OK: true, Latency: 3 * time.Millisecond,
			Phases: store.Phases{Dial: 1500 * time.Microsecond, Banner: 2 * time.Millisecond, Kex: 3 * time.Millisecond, Auth: time.Millisecond}}}); err != nil {
			t.Fatal(err)
		}
		problems, err := testutil.GatherAndLint(a.Registry())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("metric %s: %s", p.Metric, p.Text)
		}
		id := strconv.FormatInt(sv.ID, 10)
		want := `
# HELP heartbeat_server_probe_duration_seconds Duration of each phase (dial, banner, kex, auth, exec) of the server's last SSH probe; 0 for a phase not reached.
# TYPE heartbeat_server_probe_duration_seconds gauge
heartbeat_server_probe_duration_seconds{id="` + id + `",phase="auth",server="web1"} 0.001
heartbeat_server_probe_duration_seconds{id="` + id + `",phase="banner",server="web1"} 0.002
heartbeat_server_probe_duration_seconds{id="` + id + `",phase="dial",server="web1"} 0.0015
heartbeat_server_probe_duration_seconds{id="` + id + `",phase="exec",server="web1"} 0
heartbeat_server_probe_duration_seconds{id="` + id + `",phase="kex",server="web1"} 0.003
`
		if err := testutil.GatherAndCompare(a.Registry(), strings.NewReader(want), "heartbeat_server_probe_duration_seconds"); err != nil {
			t.Error(err)
		}

		// Latency, failures and the last failure's class, per server; the
		// status is one series per state, 0 or 1, so a change adds none.
		db, err := s.AddServer(context.Background(), store.ServerSpec{Name: "db1", Host: "db1.example.net"})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if err := s.RecordProbeResults(context.Background(), []store.ProbeResult{{ServerID: db.ID, ErrorClass: "refused", Error: "connection refused"}}); err != nil {
				t.Fatal(err)
			}
		}
		dbID := strconv.FormatInt(db.ID, 10)
		want = `
# HELP heartbeat_server_probe_latency_seconds SSH handshake latency of the server's last successful probe; absent if it never answered a probe.
# TYPE heartbeat_server_probe_latency_seconds gauge
heartbeat_server_probe_latency_seconds{id="` + id + `",server="web1"} 0.003
# HELP heartbeat_server_consecutive_failures Failed SSH probes of the server since its last success; absent if never probed.
# TYPE heartbeat_server_consecutive_failures gauge
heartbeat_server_consecutive_failures{id="` + dbID + `",server="db1"} 2
heartbeat_server_consecutive_failures{id="` + id + `",server="web1"} 0
# HELP heartbeat_server_last_failure 1 with the failure class of the server's last SSH probe while that probe failed; absent after a success.
# TYPE heartbeat_server_last_failure gauge
heartbeat_server_last_failure{class="refused",id="` + dbID + `",server="db1"} 1
# HELP heartbeat_server_status 1 for the server's current status, 0 for the other four (ONLINE, WARNING, OFFLINE, MAINTENANCE, DISABLED): every series always present, so a state change creates none.
# TYPE heartbeat_server_status gauge
heartbeat_server_status{id="` + dbID + `",server="db1",status="DISABLED"} 0
heartbeat_server_status{id="` + dbID + `",server="db1",status="MAINTENANCE"} 0
heartbeat_server_status{id="` + dbID + `",server="db1",status="OFFLINE"} 1
heartbeat_server_status{id="` + dbID + `",server="db1",status="ONLINE"} 0
heartbeat_server_status{id="` + dbID + `",server="db1",status="WARNING"} 0
heartbeat_server_status{id="` + id + `",server="web1",status="DISABLED"} 0
heartbeat_server_status{id="` + id + `",server="web1",status="MAINTENANCE"} 0
heartbeat_server_status{id="` + id + `",server="web1",status="OFFLINE"} 0
heartbeat_server_status{id="` + id + `",server="web1",status="ONLINE"} 1
heartbeat_server_status{id="` + id + `",server="web1",status="WARNING"} 0
`
		perServer := []string{"heartbeat_server_probe_latency_seconds", "heartbeat_server_consecutive_failures", "heartbeat_server_last_failure", "heartbeat_server_status"}
		if err := testutil.GatherAndCompare(a.Registry(), strings.NewReader(want), perServer...); err != nil {
			t.Error(err)
		}
		if problems, err := testutil.GatherAndLint(a.Registry()); err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %v", problems, err)
		}

		// --metrics-per-server=false: fleet totals only.
		small := api.New(s, api.Options{NoPerServerMetrics: true})
		t.Cleanup(small.Close)
		n, err := testutil.GatherAndCount(small.Registry(), append(perServer, "heartbeat_server_heartbeat_age_seconds", "heartbeat_server_probe_duration_seconds")...)
		if err != nil || n != 0 {
			t.Errorf("NoPerServerMetrics: %d per-server series (%v)", n, err)
		}
		if n, err := testutil.GatherAndCount(small.Registry(), "heartbeat_servers"); err != nil || n != 5 {
			t.Errorf("NoPerServerMetrics: heartbeat_servers has %d series (%v), want 5 (one per status)", n, err)
		}
	})
}
