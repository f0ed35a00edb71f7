package proberun_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stacksense/heartbeat/pkg/evaluate"
	"github.com/stacksense/heartbeat/pkg/proberun"
	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
	"github.com/stacksense/heartbeat/pkg/store/postgres"
	"github.com/stacksense/heartbeat/pkg/store/sqlite"
)

// closedAddr is a loopback address nothing listens on: a dial to it is a
// real "connection refused".
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// refusing is a dialer for which the addresses cut says yes are refused,
// as from a location whose network cannot reach them.
func refusing(t *testing.T, cut func(addr string) bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	closed := closedAddr(t)
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if cut(addr) {
			addr = closed
		}
		return d.DialContext(ctx, network, addr)
	}
}

// Two locations probe the same fleet with quorum 2, end to end: probe
// runs (each with its own view of the network), evaluation rounds and
// the status report.
func TestPostgresLocationsAndQuorum(t *testing.T) {
	const n = 12
	ctx := context.Background()
	e := newSharedEnv(t, n)
	servers, err := e.store.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A short stale-after, so the test need not wait a minute.
	for _, sv := range servers {
		spec := store.ServerSpec{Name: sv.Name, Host: sv.Host, Port: sv.Port, User: sv.User, StaleAfter: time.Second}
		if _, err := e.store.UpdateServer(ctx, sv.ID, spec); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.SetSetting(ctx, store.SettingQuorum, "2"); err != nil {
		t.Fatal(err)
	}
	victim := servers[0]
	victimAddr := net.JoinHostPort(victim.Host, itoa(victim.Port))

	// run probes every server from one location and evaluates, as the
	// end of a probe-ssh run does.
	run := func(host, loc string, cut func(string) bool) proberun.Outcome {
		t.Helper()
		s, err := postgres.Open(ctx, e.url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		cfg := e.config(host, time.Hour)
		cfg.Location, cfg.All = loc, true
		if cut != nil {
			cfg.Dial = refusing(t, cut)
		}
		out, err := proberun.Execute(ctx, s, cfg)
		if err != nil {
			t.Fatalf("%s run: %v", loc, err)
		}
		if _, err := evaluate.Round(ctx, s, evaluate.Options{Run: &out.Run, NoDrain: true}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	states := func() map[string]report.ServerStatus {
		t.Helper()
		v, err := report.LoadVantage(ctx, e.store)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := e.store.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]report.ServerStatus{}
		for _, r := range report.BuildFrom(snap, 0, nil, v).Servers {
			out[r.Name] = r
		}
		return out
	}
	offlineFlips := func() int {
		t.Helper()
		flips, err := e.store.Flips(ctx, store.FlipQuery{})
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for _, f := range flips {
			if f.To == string(status.Offline) {
				k++
			}
		}
		return k
	}

	run("fra-1", "fra", nil)
	run("nyc-1", "nyc", nil)
	for name, r := range states() {
		if r.Status != status.Online || r.SeenFrom != "seen from fra, nyc" {
			t.Fatalf("%s after both locations saw it: %s, %q", name, r.Status, r.SeenFrom)
		}
	}

	// nyc is cut off: every probe from there fails to connect. fra still
	// sees the fleet, and no server turns OFFLINE, even after the
	// stale-after has passed since nyc's last success.
	time.Sleep(1100 * time.Millisecond)
	if out := run("nyc-1", "nyc", func(string) bool { return true }); out.Run.Succeeded != 0 {
		t.Fatalf("cut-off nyc run answered %d", out.Run.Succeeded)
	}
	run("fra-1", "fra", nil)
	for name, r := range states() {
		if r.Status != status.Online || !strings.Contains(r.SeenFrom, "seen from fra; nyc: refused (cut off)") {
			t.Errorf("%s with nyc cut off: %s, %q", name, r.Status, r.SeenFrom)
		}
	}
	if k := offlineFlips(); k != 0 {
		t.Fatalf("%d OFFLINE flips while one location was cut off; want none", k)
	}

	// Both locations reach the fleet again; then the victim stops
	// answering. fra's word alone (nyc has not probed it since it went
	// stale) is below the quorum: no flip, the server is held up.
	run("nyc-1", "nyc", nil)
	run("fra-1", "fra", nil)
	time.Sleep(1100 * time.Millisecond)
	isVictim := func(addr string) bool { return addr == victimAddr }
	run("fra-1", "fra", isVictim)
	if r := states()[victim.Name]; r.Status != status.Online || !r.QuorumHeld {
		t.Errorf("victim failed from fra only: %s held=%v %q; want ONLINE held by the quorum", r.Status, r.QuorumHeld, r.SeenFrom)
	}
	if k := offlineFlips(); k != 0 {
		t.Fatalf("%d OFFLINE flips on one location's word; want none", k)
	}
	// nyc agrees: the quorum is reached.
	run("nyc-1", "nyc", isVictim)
	r := states()[victim.Name]
	if r.Status != status.Offline || r.SeenFrom != "fra: refused; nyc: refused" {
		t.Errorf("victim failed from both: %s %q; want OFFLINE", r.Status, r.SeenFrom)
	}
	if k := offlineFlips(); k != 1 {
		t.Errorf("%d OFFLINE flips once both locations agree; want 1 (the victim)", k)
	}
}

// SQLite has one probe host, so one location: another is refused.
func TestSQLiteRefusesLocations(t *testing.T) {
	s, err := sqlite.Open(context.Background(), t.TempDir()+"/hb.db")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = proberun.Execute(context.Background(), s, proberun.Config{Host: "h", Location: "fra"})
	if err == nil || !strings.Contains(err.Error(), "Postgres") {
		t.Fatalf("Execute with a location on SQLite: %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// A lone location keeps no per-location results: they say nothing the
// heartbeat does not, and writing them cost as much again as the
// heartbeat itself. A named location keeps them from its first run, and
// the default location once another location has run.
func TestPostgresLoneLocationSkipsLocationResults(t *testing.T) {
	const n = 6
	ctx := context.Background()
	e := newSharedEnv(t, n)
	conn, err := pgx.Connect(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	count := func(loc string) int {
		t.Helper()
		var k int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM location_results WHERE location = $1`, loc).Scan(&k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	run := func(host, loc string) {
		t.Helper()
		cfg := e.config(host, time.Hour)
		cfg.Location, cfg.All = loc, true
		out, err := proberun.Execute(ctx, e.store, cfg)
		if err != nil || out.Run.Succeeded != n {
			t.Fatalf("%s run: %+v, %v", host, out.Run, err)
		}
	}
	run("a", "")
	run("b", store.DefaultLocation)
	if k := count(store.DefaultLocation); k != 0 {
		t.Errorf("the default location alone wrote %d location results; want none", k)
	}
	run("nyc-1", "nyc")
	if k := count("nyc"); k != n {
		t.Errorf("a named location wrote %d location results; want %d", k, n)
	}
	run("a", "")
	if k := count(store.DefaultLocation); k != n {
		t.Errorf("the default location beside nyc wrote %d location results; want %d", k, n)
	}
}
