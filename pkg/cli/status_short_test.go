package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stacksense/heartbeat/pkg/store"
)

// addAnswering imports servers named prefix-00.. and records a successful
// probe for each, so they are ONLINE.
func addAnswering(t *testing.T, s store.Store, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	specs := make([]store.ServerSpec, n)
	for i := range specs {
		specs[i] = store.ServerSpec{Name: fmt.Sprintf("%s-%02d", prefix, i), Host: "10.0.0.1"}
	}
	if _, err := s.ImportServers(ctx, specs); err != nil {
		t.Fatal(err)
	}
	var results []store.ProbeResult
	for _, sp := range specs {
		sv, err := s.ServerByName(ctx, sp.Name)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, store.ProbeResult{ServerID: sv.ID, OK: true})
	}
	if err := s.RecordProbeResults(ctx, results); err != nil {
		t.Fatal(err)
	}
}

// TestStatusListsOnlyTroubleBeyondFifty: up to 50 servers the table lists
// all; past 50 it lists the servers that are not ONLINE, the counts and
// how many ONLINE ones it left out, and --all lists every one. The exit
// code covers the whole fleet either way, and --json lists every server.
func TestStatusListsOnlyTroubleBeyondFifty(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		s := e.open()
		e.mustRun("servers", "add", "down", "--host", "down.example.net")
		addAnswering(t, s, "up", 49)
		// 50 servers: every one listed.
		r := e.run("status")
		if r.code != 2 {
			t.Errorf("status with an OFFLINE server exited %d, want 2", r.code)
		}
		if strings.Contains(r.out, "not shown") || !strings.Contains(r.out, "up-48") || !strings.Contains(r.out, "down") {
			t.Errorf("50 servers: want every one listed, got\n%s", r.out)
		}

		addAnswering(t, s, "more", 10)
		e.mustRun("alert", "raise", "more-03", "load high")
		r = e.run("status")
		if r.code != 2 {
			t.Errorf("status past 50 with an OFFLINE server exited %d, want 2", r.code)
		}
		lines := strings.Split(strings.TrimSpace(r.out), "\n")
		if len(lines) != 5 {
			t.Fatalf("want header, 2 rows, counts and the hidden line; got %d lines:\n%s", len(lines), r.out)
		}
		if !strings.Contains(lines[1], "down") || !strings.Contains(lines[1], "OFFLINE") ||
			!strings.Contains(lines[2], "more-03") || !strings.Contains(lines[2], "WARNING") {
			t.Errorf("want the OFFLINE then the WARNING row, got\n%s", r.out)
		}
		if lines[3] != "58 online, 1 warning, 1 offline, 0 disabled" {
			t.Errorf("counts line = %q", lines[3])
		}
		if lines[4] != "58 online servers not shown; --all to list them" {
			t.Errorf("hidden line = %q", lines[4])
		}
		if strings.Contains(r.out, "up-00") {
			t.Errorf("an ONLINE server is listed:\n%s", r.out)
		}

		r = e.run("status", "--all")
		if r.code != 2 || strings.Contains(r.out, "not shown") {
			t.Errorf("--all: exit %d\n%s", r.code, r.out)
		}
		if n := strings.Count(strings.TrimSpace(r.out), "\n"); n != 60 {
			t.Errorf("--all printed %d rows, want 60:\n%s", n, r.out)
		}

		r = e.run("status", "--verbose")
		if r.code != 2 || !strings.HasSuffix(r.out, "58 online, 1 warning, 1 offline, 0 disabled\n58 online servers not shown; --all to list them\n") {
			t.Errorf("--verbose: exit %d\n%s", r.code, r.out)
		}

		r = e.run("status", "--json")
		var rows []statusJSON
		if err := json.Unmarshal([]byte(r.out), &rows); err != nil || len(rows) != 60 || r.code != 2 {
			t.Errorf("--json: exit %d, %d rows (%v), want 60", r.code, len(rows), err)
		}

		// Only ONLINE servers beyond 50: nothing to list but the counts.
		e.mustRun("servers", "remove", "down", "--yes")
		e.mustRun("servers", "remove", "more-03", "--yes")
		r = e.run("status")
		if r.code != 0 || strings.TrimSpace(r.out) != "58 online, 0 warning, 0 offline, 0 disabled\n58 online servers not shown; --all to list them" {
			t.Errorf("all ONLINE: exit %d\n%s", r.code, r.out)
		}
	})
}
