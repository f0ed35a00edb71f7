package cli_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stacksense/heartbeat/pkg/sshtest"
	"github.com/stacksense/heartbeat/pkg/store"
)

// rawExec runs SQL on the env's database directly, bypassing the store's
// validation, as a row written by an older version would have.
func (e *env) rawExec(query string, args ...any) {
	e.t.Helper()
	if path := e.vars["HEARTBEAT_DB"]; path != "" {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			e.t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(query, args...); err != nil {
			e.t.Fatalf("%s: %v", query, err)
		}
		return
	}
	conn, err := pgx.Connect(context.Background(), e.vars["DATABASE_URL"])
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), query, args...); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
}

// Stored names, hosts and errors are printed with control characters
// escaped, in every table, on a terminal or not: a name with an escape
// sequence cannot recolour the terminal, a newline cannot forge a row.
func TestTablesEscapeStoredControlCharacters(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "plain", "--host", "plain.example.net")
		e.rawExec(`UPDATE servers SET name = $1, host = $2 WHERE name = 'plain'`, "evil\x1b[31m\nname", "h\x1b[2Jost\nx")
		s := e.open()
		sv, err := s.ServerByName(context.Background(), "evil\x1b[31m\nname")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RecordProbeResults(context.Background(), []store.ProbeResult{{ServerID: sv.ID,
			ErrorClass: "banner", Error: "peer sent \x1b]0;pwned\x07\r\nfake ONLINE row"}}); err != nil {
			t.Fatal(err)
		}
		for _, terminal := range []bool{false, true} {
			e.terminal = terminal
			for _, args := range [][]string{{"status", "--verbose"}, {"servers", "list"}, {"status", "--server", "1"}, {"servers", "show", "1"}} {
				r := e.run(args...)
				lines := strings.Split(strings.TrimRight(r.out, "\n"), "\n")
				for _, l := range lines {
					// A terminal's colour for the status word is the only
					// escape sequence allowed.
					l = strings.NewReplacer("\x1b[1;31m", "", "\x1b[0m", "").Replace(l)
					if strings.ContainsAny(l, "\x1b\r\x07") {
						t.Errorf("terminal=%v %v: raw control character in %q", terminal, args, l)
					}
				}
				if !strings.Contains(r.out, `evil\x1b[31m\nname`) {
					t.Errorf("terminal=%v %v: escaped name missing:\n%s", terminal, args, r.out)
				}
				if args[0] == "servers" && args[1] == "list" && len(lines) != 2 {
					t.Errorf("terminal=%v servers list: %d lines, want header and one row:\n%s", terminal, len(lines), r.out)
				}
			}
		}
	})
}

// Off a terminal a table is plain tab-separated text (for cut and awk);
// on a terminal, aligned columns.
func TestTablesArePlainTextOffTerminal(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "web1", "--host", "10.0.0.5")
		out := e.mustRun("servers", "list")
		if want := "ID\tNAME\tHOST\tPORT\tUSER\tKEY\tMODE\tENABLED\n1\tweb1\t10.0.0.5\t22\t\t\tssh\tyes\n"; out != want {
			t.Errorf("servers list off a terminal = %q, want %q", out, want)
		}
		e.terminal = true
		if out := e.mustRun("servers", "list"); strings.Contains(out, "\t") || !strings.Contains(out, "web1") {
			t.Errorf("servers list on a terminal = %q, want aligned columns", out)
		}
	})
}

// status --server reads that server alone, and status --json carries the
// last probe's phase timings.
func TestStatusServerAndPhases(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "web1", "--host", "10.0.0.5")
		e.mustRun("servers", "add", "web2", "--host", "10.0.0.6")
		s := e.open()
		if err := s.RecordProbeResults(context.Background(), []store.ProbeResult{{ServerID: 1, OK: true, Latency: 3 * time.Millisecond,
			Phases: store.Phases{Dial: 1500 * time.Microsecond, Banner: 2 * time.Millisecond, Kex: 3 * time.Millisecond, Auth: time.Millisecond}}}); err != nil {
			t.Fatal(err)
		}
		var got []map[string]any
		if err := json.Unmarshal([]byte(e.mustRun("status", "--json", "--server", "web1")), &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0]["name"] != "web1" || got[0]["status"] != "ONLINE" {
			t.Fatalf("status --server web1 = %v", got)
		}
		want := map[string]any{"dial": 1.5, "banner": 2.0, "kex": 3.0, "auth": 1.0, "exec": 0.0}
		if ph, _ := got[0]["phases_ms"].(map[string]any); len(ph) != len(want) {
			t.Errorf("phases_ms = %v, want %v", got[0]["phases_ms"], want)
		} else {
			for k, v := range want {
				if ph[k] != v {
					t.Errorf("phases_ms[%s] = %v, want %v", k, ph[k], v)
				}
			}
		}
		if err := json.Unmarshal([]byte(e.run("status", "--json", "--server", "web2").out), &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0]["name"] != "web2" || got[0]["phases_ms"] != nil {
			t.Errorf("never-probed web2 = %v, want phases_ms null", got)
		}
		e.expectFail(3, "nosuch", "status", "--server", "nosuch")
	})
}

// probe-ssh --json reports where each probe spent its time, and the store
// keeps the same figures for status --json (and /metrics).
func TestProbePhasesReachJSONAndStore(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		_, key := fleetEnv(t, e, sshtest.Group{Mode: sshtest.ModeOK, Count: 1})
		out := e.mustRun("probe-ssh", "--json", "--key", key, "--timeout", "5s")
		var run struct {
			Results []struct {
				Name     string             `json:"name"`
				PhasesMS map[string]float64 `json:"phases_ms"`
			} `json:"results"`
		}
		if err := json.Unmarshal([]byte(out), &run); err != nil || len(run.Results) != 1 {
			t.Fatalf("probe-ssh --json: %v\n%s", err, out)
		}
		probed := run.Results[0].PhasesMS
		for _, ph := range []string{"dial", "banner", "kex", "auth"} {
			if probed[ph] <= 0 {
				t.Errorf("probe-ssh --json phases_ms.%s = %v, want > 0 (all: %v)", ph, probed[ph], probed)
			}
		}
		var st []struct {
			PhasesMS map[string]float64 `json:"phases_ms"`
		}
		if err := json.Unmarshal([]byte(e.mustRun("status", "--json")), &st); err != nil || len(st) != 1 {
			t.Fatalf("status --json: %v", err)
		}
		if !maps.Equal(st[0].PhasesMS, probed) {
			t.Errorf("status --json phases_ms %v, probe-ssh said %v", st[0].PhasesMS, probed)
		}
	})
}
