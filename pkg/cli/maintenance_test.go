package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

// maintenanceWritten counts windows and schedules in the store, to prove
// a refused command wrote nothing.
func maintenanceWritten(t *testing.T, s store.Store) (windows, schedules int) {
	t.Helper()
	ws, err := s.MaintenanceWindows(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := s.Schedules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(ws), len(ss)
}

func TestMaintenanceCommands(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.plantFourStates() // alive, alerting, silent (OFFLINE), parked (DISABLED)

		out := e.mustRun("maintenance", "start", "silent", "alive", "--for", "2h", "--reason", "kernel 6.8")
		if !strings.Contains(out, "silent in maintenance until ") || !strings.Contains(out, "alive in maintenance until ") ||
			!strings.Contains(out, ": kernel 6.8") {
			t.Errorf("start printed %q", out)
		}

		// In maintenance, the OFFLINE server no longer fails the check:
		// MAINTENANCE exits 0 and is counted apart.
		r := e.run("status", "--verbose")
		if r.code != 1 { // alerting is still WARNING
			t.Errorf("status exit %d with the offline server in maintenance, want 1 (WARNING only)\n%s", r.code, r.out)
		}
		if !strings.Contains(r.out, "0 online, 1 warning, 0 offline, 1 disabled, 2 maintenance") {
			t.Errorf("status summary lacks the maintenance count:\n%s", r.out)
		}
		var rows []struct {
			Name              string     `json:"name"`
			Status            string     `json:"status"`
			MaintenanceUntil  *time.Time `json:"maintenance_until"`
			MaintenanceReason string     `json:"maintenance_reason"`
		}
		if err := json.Unmarshal([]byte(e.run("status", "--json").out), &rows); err != nil {
			t.Fatal(err)
		}
		for _, row := range rows {
			inWindow := row.Name == "silent" || row.Name == "alive"
			if inWindow != (row.Status == "MAINTENANCE") || inWindow != (row.MaintenanceUntil != nil) ||
				(inWindow && row.MaintenanceReason != "kernel 6.8") {
				t.Errorf("status --json row %+v", row)
			}
		}

		out = e.mustRun("maintenance", "schedule", "sunday", "--cron", "0 3 * * SUN", "--for", "90m", "--servers", "alive,silent", "--reason", "patching")
		if !strings.Contains(out, "scheduled sunday: 0 3 * * SUN (UTC) for 1h30m0s, next ") {
			t.Errorf("schedule printed %q", out)
		}
		var list struct {
			Windows []struct {
				Server string `json:"server"`
				Active bool   `json:"active"`
				By     string `json:"by"`
			} `json:"windows"`
			Schedules []struct {
				Name            string     `json:"name"`
				Servers         []string   `json:"servers"`
				DurationSeconds int64      `json:"duration_seconds"`
				NextStart       *time.Time `json:"next_start"`
			} `json:"schedules"`
		}
		if err := json.Unmarshal([]byte(e.mustRun("maintenance", "list", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Windows) != 2 || !list.Windows[0].Active || list.Windows[0].By == "" {
			t.Errorf("list windows = %+v", list.Windows)
		}
		if len(list.Schedules) != 1 || list.Schedules[0].Name != "sunday" || strings.Join(list.Schedules[0].Servers, ",") != "alive,silent" ||
			list.Schedules[0].DurationSeconds != 5400 || list.Schedules[0].NextStart == nil || list.Schedules[0].NextStart.Weekday() != time.Sunday {
			t.Errorf("list schedules = %+v", list.Schedules)
		}
		if text := e.mustRun("maintenance", "list"); !strings.Contains(text, "kernel 6.8") || !strings.Contains(text, "sunday") {
			t.Errorf("list printed %q", text)
		}

		if out := e.mustRun("maintenance", "end", "silent"); out != "ended 1 maintenance window(s)\n" {
			t.Errorf("end printed %q", out)
		}
		if out := e.mustRun("maintenance", "end", "--all"); out != "ended 1 maintenance window(s)\n" {
			t.Errorf("end --all printed %q", out)
		}
		if r := e.run("status"); r.code != 2 {
			t.Errorf("status after the windows ended exit %d, want 2 (silent OFFLINE again)", r.code)
		}

		e.expectFail(64, "--yes", "maintenance", "unschedule", "sunday")
		if out := e.mustRun("maintenance", "unschedule", "sunday", "--yes"); out != "removed maintenance schedule sunday\n" {
			t.Errorf("unschedule printed %q", out)
		}
		e.expectFail(1, `no maintenance schedule named "sunday"`, "maintenance", "unschedule", "sunday", "--yes")
	})
}

func TestMaintenanceBadInput(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		e.mustRun("servers", "add", "web1", "--host", "web1.example.net")
		s := e.open()
		e.mustRun("maintenance", "schedule", "taken", "--cron", "@daily", "--all", "--reason", "r")
		w0, s0 := maintenanceWritten(t, s)
		for _, tc := range []struct {
			want string
			args []string
		}{
			{"--reason is required", []string{"maintenance", "start", "web1"}},
			{"not both", []string{"maintenance", "start", "web1", "--all", "--reason", "r"}},
			{"name at least one server", []string{"maintenance", "start", "--reason", "r"}},
			{"is not in the future", []string{"maintenance", "start", "web1", "--until", "2020-01-01T00:00:00Z", "--reason", "r"}},
			{"not an RFC 3339 time", []string{"maintenance", "start", "web1", "--until", "tomorrow", "--reason", "r"}},
			{"give --for or --until", []string{"maintenance", "start", "web1", "--for", "1h", "--until", "2099-01-01T00:00:00Z", "--reason", "r"}},
			{"--for must be between", []string{"maintenance", "start", "web1", "--for", "10s", "--reason", "r"}},
			{"--for must be between", []string{"maintenance", "start", "web1", "--for", "1000h", "--reason", "r"}},
			{"invalid argument", []string{"maintenance", "start", "web1", "--for", "soon", "--reason", "r"}},
			{"name at least one server", []string{"maintenance", "end"}},
			{`cron expression "61 * * * *"`, []string{"maintenance", "schedule", "x", "--cron", "61 * * * *", "--all", "--reason", "r"}},
			{"never fires", []string{"maintenance", "schedule", "x", "--cron", "0 0 31 2 *", "--all", "--reason", "r"}},
			{"want 5 fields", []string{"maintenance", "schedule", "x", "--cron", "0 0 3 * * SUN", "--all", "--reason", "r"}},
			{"want 5 fields", []string{"maintenance", "schedule", "x", "--cron", "0 3 * *", "--all", "--reason", "r"}},
			{"unknown macro", []string{"maintenance", "schedule", "x", "--cron", "@fortnightly", "--all", "--reason", "r"}},
			{"--cron is required", []string{"maintenance", "schedule", "x", "--all", "--reason", "r"}},
			{"--servers A,B or --all", []string{"maintenance", "schedule", "x", "--cron", "@daily", "--reason", "r"}},
			{"--reason is required", []string{"maintenance", "schedule", "x", "--cron", "@daily", "--all"}},
			{"--for must be between", []string{"maintenance", "schedule", "x", "--cron", "@daily", "--for", "30s", "--all", "--reason", "r"}},
		} {
			e.expectFail(64, tc.want, tc.args...)
		}
		// Unknown servers and a taken name are failures (exit 1), and the
		// known server named beside an unknown one gets no window.
		e.expectFail(1, `no server named "nope"`, "maintenance", "start", "web1", "nope", "--reason", "r")
		e.expectFail(1, `no server named "nope"`, "maintenance", "schedule", "y", "--cron", "@daily", "--servers", "web1,nope", "--reason", "r")
		e.expectFail(1, `already exists`, "maintenance", "schedule", "taken", "--cron", "@daily", "--all", "--reason", "r")
		if w, sc := maintenanceWritten(t, s); w != w0 || sc != s0 {
			t.Errorf("refused commands wrote %d windows and %d schedules", w-w0, sc-s0)
		}
		// --until in the future is accepted; no duration given means an hour.
		until := time.Now().UTC().Add(3 * time.Hour).Truncate(time.Second)
		if out := e.mustRun("maintenance", "start", "web1", "--until", until.Format(time.RFC3339), "--reason", "r"); !strings.Contains(out, until.Format(time.RFC3339)) {
			t.Errorf("start --until printed %q", out)
		}
		ws, err := s.MaintenanceWindows(context.Background(), true)
		if err != nil || len(ws) < 1 {
			t.Fatalf("windows = %+v, %v", ws, err)
		}
		e.mustRun("maintenance", "start", "1", "--reason", "default length")
		ws, _ = s.MaintenanceWindows(context.Background(), true)
		for _, w := range ws {
			if w.Reason == "default length" && w.EndsAt.Sub(w.StartsAt) != time.Hour {
				t.Errorf("default window lasts %v, want 1h", w.EndsAt.Sub(w.StartsAt))
			}
		}
	})
}
