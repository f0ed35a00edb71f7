package report

import (
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

// A server in a maintenance window is MAINTENANCE whatever its heartbeat,
// unless an admin disabled it; it is counted apart and sorts after ONLINE.
func TestMaintenanceOutranksHeartbeat(t *testing.T) {
	now := time.Date(2026, 11, 23, 3, 30, 0, 0, time.UTC)
	until := now.Add(time.Hour)
	fresh := now.Add(-time.Second)
	in := func(name string, enabled bool, hb *time.Time) store.ServerStatus {
		return store.ServerStatus{Server: store.Server{ID: int64(len(name)), Name: name, Enabled: enabled},
			Heartbeat: store.Heartbeat{LastHeartbeat: hb}, InMaintenance: true, MaintenanceUntil: &until, MaintenanceReason: "kernel"}
	}
	snap := store.Snapshot{Now: now, Servers: []store.ServerStatus{
		in("down-in-window", true, nil),
		in("parked", false, nil),
		{Server: store.Server{Name: "up", Enabled: true}, Heartbeat: store.Heartbeat{LastHeartbeat: &fresh}},
	}}
	r := Build(snap, time.Minute)
	got := map[string]ServerStatus{}
	for _, s := range r.Servers {
		got[s.Name] = s
	}
	if s := got["down-in-window"]; s.Status != status.Maintenance || s.MaintenanceUntil == nil || !s.MaintenanceUntil.Equal(until) || s.MaintenanceReason != "kernel" {
		t.Errorf("down server in a window = %+v", s)
	}
	if got["parked"].Status != status.Disabled || got["up"].Status != status.Online || got["up"].MaintenanceUntil != nil {
		t.Errorf("parked = %s, up = %+v", got["parked"].Status, got["up"])
	}
	if r.Counts.Maintenance != 1 || r.Counts.Offline != 0 || status.ExitCode(r.States()) != status.ExitOK {
		t.Errorf("counts = %+v, exit %d", r.Counts, status.ExitCode(r.States()))
	}
	if names := []string{r.Servers[0].Name, r.Servers[1].Name, r.Servers[2].Name}; names[0] != "up" || names[1] != "down-in-window" {
		t.Errorf("order = %v, want up, down-in-window, parked", names)
	}
}

// The store spells the states again (it imports nothing of ours); the
// words must stay those of pkg/status.
func TestStoreStatesAreStatusWords(t *testing.T) {
	for st, want := range map[string]status.State{
		store.StateOnline: status.Online, store.StateWarning: status.Warning, store.StateOffline: status.Offline,
		store.StateDisabled: status.Disabled, store.StateMaintenance: status.Maintenance,
	} {
		if st != string(want) {
			t.Errorf("store state %q, status word %q", st, want)
		}
	}
}
