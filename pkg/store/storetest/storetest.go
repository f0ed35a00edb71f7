// Package storetest is the conformance suite every store.Store engine must
// pass. Each engine's own test calls Run with a factory that hands every
// subtest a fresh, empty, migrated store, so the subtests run in parallel.
//
// A behaviour of the store is done when this suite proves it on both
// engines; add the test here, never to one engine alone.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

// Opener returns a fresh, empty store for one test; it registers its own
// cleanup with t.
type Opener func(t *testing.T) store.Store

// Run exercises every behaviour of the Store contract.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, s store.Store)
	}{
		{"AddServer", testAddServer},
		{"Settings", testSettings},
		{"AddServerRejectsDuplicateName", testAddServerDuplicate},
		{"AddServerRejectsInvalidSpec", testAddServerInvalid},
		{"LookupUnknownServer", testLookupUnknown},
		{"ServersOrderedByName", testServersOrdered},
		{"EnableDisable", testEnableDisable},
		{"ServerMode", testServerMode},
		{"UpdateServer", testUpdateServer},
		{"RemoveServerCascades", testRemoveCascades},
		{"ImportCountsAddedUpdatedUnchanged", testImportCounts},
		{"ImportIsAllOrNothing", testImportAtomic},
		{"Alerts", testAlerts},
		{"ResolveAlertErrors", testResolveErrors},
		{"RaiseAlertUnknownServer", testRaiseUnknownServer},
		{"RaiseAlertByKey", testRaiseAlertByKey},
		{"ResolveAlertByKey", testResolveAlertByKey},
		{"ApplyKeyedAlerts", testApplyKeyedAlerts},
		{"ConcurrentKeyedRaises", testConcurrentKeyedRaises},
		{"StatusEmptyFleetHasClock", testStatusEmpty},
		{"StatusJoinsHeartbeatAndAlerts", testStatusJoin},
		{"PushUsesStoreClock", testPushClock},
		{"ServerStatusMatchesStatus", testServerStatus},
		{"EachStatusMatchesStatus", testEachStatus},
		{"ConcurrentHeartbeats", testConcurrentHeartbeats},
		{"ImportRejectsDuplicateNames", testImportDuplicateNames},
		{"InvalidInputIsErrInvalid", testInvalidInput},
		{"EveryTimeIsUTC", testTimesUTC},
		{"ExplicitTimes", testExplicitTimes},
		{"ProbeResults", testProbeResults},
		{"HostKeyPinning", testHostKeyPinning},
		{"AcceptedHostKeyClearsSeen", testAcceptedKeyClearsSeen},
		{"HostCAPin", testHostCAPin},
		{"ProbeLock", testProbeLock},
		{"Runs", testRuns},
		{"StartRunClosesAbortedRuns", testAbortedRuns},
		{"PruneHistory", testPruneHistory},
		{"LargeBatch", testLargeBatch},
		{"ServerTokenRotation", testServerTokenRotation},
		{"RecordPushes", testRecordPushes},
		{"TokenlessPushes", testTokenlessPushes},
		{"RecordPushesRemovedServer", testRecordPushesRemovedServer},
		{"ConcurrentPushBatches", testConcurrentPushBatches},
		{"LargePushBatch", testLargePushBatch},
		{"EvaluateFlips", testEvaluateFlips},
		{"StaleAfterPerServer", testStaleAfterPerServer},
		{"EvaluateConcurrent", testEvaluateConcurrent},
		{"EvaluateHostCutOff", testEvaluateHostCutOff},
		{"PruneFlips", testPruneFlips},
		{"Channels", testChannels},
		{"EnqueueDeliveriesFilters", testEnqueueFilters},
		{"ClaimDeliveriesOnce", testClaimOnce},
		{"ClaimExpires", testClaimExpires},
		{"DeliveryRetries", testDeliveryRetries},
		{"DeliveryEvents", testDeliveryEvents},
		{"Reminders", testReminders},
		{"PruneDeliveries", testPruneDeliveries},
		{"Flapping", testFlapping},
		{"MaintenanceWindows", testMaintenanceWindows},
		{"MaintenanceEvaluate", testMaintenanceEvaluate},
		{"MaintenanceExpires", testMaintenanceExpires},
		{"MaintenanceSchedules", testMaintenanceSchedules},
		{"MaintenanceRemovedServer", testMaintenanceRemovedServer},
		{"PruneMaintenanceWindows", testPruneMaintenanceWindows},
		{"MaintenanceHostCutOff", testMaintenanceHostCutOff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			tt.fn(t, ctx, open(t))
		})
	}
}

func mustAdd(t *testing.T, ctx context.Context, s store.Store, name string) store.Server {
	t.Helper()
	sv, err := s.AddServer(ctx, store.ServerSpec{Name: name, Host: name + ".example.net"})
	if err != nil {
		t.Fatalf("AddServer(%s): %v", name, err)
	}
	return sv
}

func mustStatus(t *testing.T, ctx context.Context, s store.Store) store.Snapshot {
	t.Helper()
	snap, err := s.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return snap
}

func mustServer(t *testing.T, ctx context.Context, s store.Store, id int64) store.Server {
	t.Helper()
	sv, err := s.Server(ctx, id)
	if err != nil {
		t.Fatalf("Server(%d): %v", id, err)
	}
	return sv
}

func mustServers(t *testing.T, ctx context.Context, s store.Store) []store.Server {
	t.Helper()
	list, err := s.Servers(ctx)
	if err != nil {
		t.Fatalf("Servers: %v", err)
	}
	return list
}

// mustPush records an API heartbeat for a server the way serve-api does:
// it issues the server a token and pushes with it. A zero at means the
// store's clock. It returns the time recorded.
func mustPush(t *testing.T, ctx context.Context, s store.Store, id int64, version string, at time.Time) time.Time {
	t.Helper()
	p := push(id, mustToken(t, ctx, s, id), version)
	p.At = at
	out, err := s.RecordPushes(ctx, []store.Push{p})
	if err != nil || len(out) != 1 || !out[0].OK {
		t.Fatalf("RecordPushes(server %d) = %+v, %v; want recorded", id, out, err)
	}
	return out[0].At
}

func mustNow(t *testing.T, ctx context.Context, s store.Store) time.Time {
	t.Helper()
	now, err := s.Now(ctx)
	if err != nil {
		t.Fatalf("Now: %v", err)
	}
	return now
}

// near reports whether got lies within a few seconds of want: both come
// from the store's clock, read a moment apart.
func near(got, want time.Time) bool {
	d := got.Sub(want)
	return d > -5*time.Second && d < 5*time.Second
}

func testAddServer(t *testing.T, ctx context.Context, s store.Store) {
	before := mustNow(t, ctx, s)
	sv, err := s.AddServer(ctx, store.ServerSpec{Name: "web1", Host: "10.0.0.1", User: "monitor", KeyPath: "/keys/web1"})
	if err != nil {
		t.Fatalf("AddServer: %v", err)
	}
	if sv.ID == 0 || sv.Name != "web1" || sv.Host != "10.0.0.1" || sv.Port != store.DefaultPort ||
		sv.User != "monitor" || sv.KeyPath != "/keys/web1" || !sv.Enabled || sv.HostKey != nil {
		t.Errorf("AddServer returned %+v", sv)
	}
	if sv.CreatedAt.Location() != time.UTC || !near(sv.CreatedAt, before) {
		t.Errorf("CreatedAt = %v, want UTC near store clock %v", sv.CreatedAt, before)
	}
	byID, err := s.Server(ctx, sv.ID)
	if err != nil {
		t.Fatalf("Server(%d): %v", sv.ID, err)
	}
	byName, err := s.ServerByName(ctx, "web1")
	if err != nil {
		t.Fatalf("ServerByName: %v", err)
	}
	if fmt.Sprint(byID) != fmt.Sprint(sv) || fmt.Sprint(byName) != fmt.Sprint(sv) {
		t.Errorf("read back %+v and %+v, want %+v", byID, byName, sv)
	}
	custom, err := s.AddServer(ctx, store.ServerSpec{Name: "db1", Host: "db1.internal", Port: 2222})
	if err != nil {
		t.Fatalf("AddServer with port: %v", err)
	}
	if custom.Port != 2222 {
		t.Errorf("Port = %d, want 2222", custom.Port)
	}
}

func testAddServerDuplicate(t *testing.T, ctx context.Context, s store.Store) {
	mustAdd(t, ctx, s, "web1")
	_, err := s.AddServer(ctx, store.ServerSpec{Name: "web1", Host: "elsewhere"})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate AddServer error = %v, want ErrConflict", err)
	}
	list, err := s.Servers(ctx)
	if err != nil || len(list) != 1 || list[0].Host != "web1.example.net" {
		t.Errorf("after duplicate: %v, %+v; want the original server untouched", err, list)
	}
}

func testAddServerInvalid(t *testing.T, ctx context.Context, s store.Store) {
	for _, spec := range []store.ServerSpec{
		{Name: "", Host: "h"},
		{Name: "x", Host: ""},
		{Name: "x", Host: "h", Port: 70000},
		{Name: "x", Host: "h", Port: -1},
		{Name: "42", Host: "h"},
	} {
		if _, err := s.AddServer(ctx, spec); err == nil {
			t.Errorf("AddServer(%+v) succeeded, want an error", spec)
		}
	}
	if list := mustServers(t, ctx, s); len(list) != 0 {
		t.Errorf("invalid specs stored %d servers", len(list))
	}
}

func testLookupUnknown(t *testing.T, ctx context.Context, s store.Store) {
	if _, err := s.Server(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Server(999) error = %v, want ErrNotFound", err)
	}
	if _, err := s.ServerByName(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ServerByName error = %v, want ErrNotFound", err)
	}
	if err := s.RemoveServer(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RemoveServer(999) error = %v, want ErrNotFound", err)
	}
	if err := s.SetServerEnabled(ctx, 999, false); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetServerEnabled(999) error = %v, want ErrNotFound", err)
	}
}

func testServersOrdered(t *testing.T, ctx context.Context, s store.Store) {
	for _, n := range []string{"web2", "app", "web10", "db"} {
		mustAdd(t, ctx, s, n)
	}
	list, err := s.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sv := range list {
		names = append(names, sv.Name)
	}
	if got, want := fmt.Sprint(names), "[app db web10 web2]"; got != want {
		t.Errorf("Servers order = %s, want %s", got, want)
	}
}

func testEnableDisable(t *testing.T, ctx context.Context, s store.Store) {
	sv := mustAdd(t, ctx, s, "web1")
	if err := s.SetServerEnabled(ctx, sv.ID, false); err != nil {
		t.Fatal(err)
	}
	got := mustServer(t, ctx, s, sv.ID)
	if got.Enabled {
		t.Error("server still enabled after disable")
	}
	if err := s.SetServerEnabled(ctx, sv.ID, true); err != nil {
		t.Fatal(err)
	}
	got = mustServer(t, ctx, s, sv.ID)
	if !got.Enabled {
		t.Error("server still disabled after enable")
	}
}

func testServerMode(t *testing.T, ctx context.Context, s store.Store) {
	ssh := mustAdd(t, ctx, s, "probed")
	if ssh.Mode != store.ModeSSH {
		t.Errorf("default mode = %q, want %q", ssh.Mode, store.ModeSSH)
	}
	push, err := s.AddServer(ctx, store.ServerSpec{Name: "pusher", Host: "h", Mode: store.ModePush})
	if err != nil || push.Mode != store.ModePush {
		t.Fatalf("AddServer push = %+v, %v", push, err)
	}
	if _, err := s.AddServer(ctx, store.ServerSpec{Name: "odd", Host: "h", Mode: "carrier-pigeon"}); err == nil {
		t.Error("AddServer accepted an unknown mode")
	}
	if err := s.SetServerMode(ctx, ssh.ID, store.ModePush); err != nil {
		t.Fatal(err)
	}
	if err := s.SetServerMode(ctx, ssh.ID, "bogus"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("SetServerMode(bogus) error = %v, want ErrInvalid", err)
	}
	if err := s.SetServerMode(ctx, 999, store.ModeSSH); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetServerMode(unknown) error = %v, want ErrNotFound", err)
	}
	// An import updates addresses but keeps the mode.
	if _, err := s.ImportServers(ctx, []store.ServerSpec{{Name: "probed", Host: "moved"}, {Name: "fresh", Host: "h"}}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]string{}
	for _, st := range snap.Servers {
		modes[st.Name] = st.Mode
	}
	if modes["probed"] != store.ModePush || modes["pusher"] != store.ModePush || modes["fresh"] != store.ModeSSH {
		t.Errorf("modes after import = %v", modes)
	}
}

func testRemoveCascades(t *testing.T, ctx context.Context, s store.Store) {
	gone := mustAdd(t, ctx, s, "gone")
	kept := mustAdd(t, ctx, s, "kept")
	for _, sv := range []store.Server{gone, kept} {
		mustPush(t, ctx, s, sv.ID, "1.0", time.Time{})
		if _, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: sv.ID, Kind: store.KindAlert, Severity: store.SeverityWarning, Message: "disk"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RemoveServer(ctx, gone.ID); err != nil {
		t.Fatalf("RemoveServer: %v", err)
	}
	alerts, err := s.Alerts(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].ServerID != kept.ID {
		t.Errorf("alerts after remove = %+v, want only the kept server's", alerts)
	}
	snap, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Servers) != 1 || snap.Servers[0].ID != kept.ID || snap.Servers[0].LastHeartbeat == nil {
		t.Errorf("status after remove = %+v, want only the kept server with its heartbeat", snap.Servers)
	}
	// The name is free again, and the new server starts with no history.
	again := mustAdd(t, ctx, s, "gone")
	snap = mustStatus(t, ctx, s)
	for _, st := range snap.Servers {
		if st.ID == again.ID && (st.LastHeartbeat != nil || st.ActiveAlerts != 0) {
			t.Errorf("re-added server inherited history: %+v", st)
		}
	}
}

func testImportCounts(t *testing.T, ctx context.Context, s store.Store) {
	mustAdd(t, ctx, s, "same")
	mustAdd(t, ctx, s, "moved")
	res, err := s.ImportServers(ctx, []store.ServerSpec{
		{Name: "same", Host: "same.example.net", Port: 22},
		{Name: "moved", Host: "new.example.net", Port: 2200, User: "ops"},
		{Name: "fresh", Host: "fresh.example.net"},
	})
	if err != nil {
		t.Fatalf("ImportServers: %v", err)
	}
	if want := (store.ImportResult{Added: 1, Updated: 1, Unchanged: 1}); res != want {
		t.Errorf("ImportServers = %+v, want %+v", res, want)
	}
	moved, err := s.ServerByName(ctx, "moved")
	if err != nil {
		t.Fatal(err)
	}
	if moved.Host != "new.example.net" || moved.Port != 2200 || moved.User != "ops" {
		t.Errorf("updated server = %+v", moved)
	}
	fresh, err := s.ServerByName(ctx, "fresh")
	if err != nil || fresh.Port != store.DefaultPort {
		t.Errorf("added server = %+v, %v", fresh, err)
	}
	// Importing the same file again changes nothing.
	res, err = s.ImportServers(ctx, []store.ServerSpec{
		{Name: "moved", Host: "new.example.net", Port: 2200, User: "ops"},
		{Name: "fresh", Host: "fresh.example.net"},
	})
	if err != nil || res != (store.ImportResult{Unchanged: 2}) {
		t.Errorf("re-import = %+v, %v; want 2 unchanged", res, err)
	}
}

func testImportAtomic(t *testing.T, ctx context.Context, s store.Store) {
	mustAdd(t, ctx, s, "existing")
	for _, specs := range [][]store.ServerSpec{
		{{Name: "a", Host: "a"}, {Name: "a", Host: "b"}},             // duplicate in the input
		{{Name: "a", Host: "a"}, {Name: "b", Host: ""}},              // invalid row after a good one
		{{Name: "existing", Host: "changed"}, {Name: "c", Port: 80}}, // update then invalid
	} {
		if _, err := s.ImportServers(ctx, specs); err == nil {
			t.Errorf("ImportServers(%+v) succeeded, want an error", specs)
		}
	}
	list := mustServers(t, ctx, s)
	if len(list) != 1 || list[0].Host != "existing.example.net" {
		t.Errorf("after failed imports: %+v; want only the untouched original", list)
	}
}

func testAlerts(t *testing.T, ctx context.Context, s store.Store) {
	sv := mustAdd(t, ctx, s, "web1")
	before := mustNow(t, ctx, s)
	a1, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: sv.ID, Kind: store.KindAlert, Severity: store.SeverityCritical, Message: "disk full"})
	if err != nil {
		t.Fatalf("RaiseAlert: %v", err)
	}
	if a1.ID == 0 || a1.ServerName != "web1" || a1.Kind != store.KindAlert || a1.Severity != store.SeverityCritical ||
		a1.Message != "disk full" || a1.ResolvedAt != nil || !near(a1.CreatedAt, before) || a1.CreatedAt.Location() != time.UTC {
		t.Errorf("RaiseAlert returned %+v", a1)
	}
	a2, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: sv.ID, Kind: store.KindAnomaly, Severity: store.SeverityInfo, Message: "cpu odd"})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []store.AlertSpec{
		{ServerID: sv.ID, Kind: "bogus", Severity: store.SeverityInfo, Message: "m"},
		{ServerID: sv.ID, Kind: store.KindAlert, Severity: "meh", Message: "m"},
		{ServerID: sv.ID, Kind: store.KindAlert, Severity: store.SeverityInfo, Message: " "},
	} {
		if _, err := s.RaiseAlert(ctx, bad); err == nil {
			t.Errorf("RaiseAlert(%+v) succeeded, want an error", bad)
		}
	}
	resolved, err := s.ResolveAlert(ctx, a1.ID)
	if err != nil {
		t.Fatalf("ResolveAlert: %v", err)
	}
	if resolved.ResolvedAt == nil || resolved.ResolvedAt.Before(resolved.CreatedAt) {
		t.Errorf("resolved alert = %+v, want ResolvedAt set after CreatedAt", resolved)
	}
	active, err := s.Alerts(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 1 || active[0].ID != a2.ID {
		t.Errorf("active alerts = %+v, want only %d", active, a2.ID)
	}
	all, err := s.Alerts(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != a2.ID || all[1].ID != a1.ID {
		t.Errorf("all alerts = %+v, want newest first [%d %d]", all, a2.ID, a1.ID)
	}
}

func testResolveErrors(t *testing.T, ctx context.Context, s store.Store) {
	if _, err := s.ResolveAlert(ctx, 12345); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ResolveAlert(unknown) error = %v, want ErrNotFound", err)
	}
	sv := mustAdd(t, ctx, s, "web1")
	a, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: sv.ID, Kind: store.KindAlert, Severity: store.SeverityWarning, Message: "m"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.ResolveAlert(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.ResolveAlert(ctx, a.ID)
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("second ResolveAlert error = %v, want ErrConflict", err)
	}
	if again.ResolvedAt == nil || !again.ResolvedAt.Equal(*first.ResolvedAt) {
		t.Errorf("second resolve moved ResolvedAt: %v then %v", first.ResolvedAt, again.ResolvedAt)
	}
}

func testRaiseUnknownServer(t *testing.T, ctx context.Context, s store.Store) {
	_, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: 777, Kind: store.KindAlert, Severity: store.SeverityInfo, Message: "m"})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RaiseAlert(unknown server) error = %v, want ErrNotFound", err)
	}
}

func testStatusEmpty(t *testing.T, ctx context.Context, s store.Store) {
	snap, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Servers) != 0 || snap.Now.IsZero() || snap.Now.Location() != time.UTC {
		t.Errorf("empty status = %+v, want no servers and the store's clock in UTC", snap)
	}
}

func testStatusJoin(t *testing.T, ctx context.Context, s store.Store) {
	quiet := mustAdd(t, ctx, s, "b-quiet")
	alive := mustAdd(t, ctx, s, "a-alive")
	mustPush(t, ctx, s, alive.ID, "2.1.0", time.Time{})
	for i := 0; i < 3; i++ {
		if _, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: alive.ID, Kind: store.KindAnomaly, Severity: store.SeverityInfo, Message: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	resolved, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: quiet.ID, Kind: store.KindAlert, Severity: store.SeverityInfo, Message: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ResolveAlert(ctx, resolved.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.SetServerEnabled(ctx, quiet.ID, false); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Servers) != 2 {
		t.Fatalf("status has %d servers, want 2", len(snap.Servers))
	}
	a, q := snap.Servers[0], snap.Servers[1]
	if a.ID != alive.ID || q.ID != quiet.ID {
		t.Fatalf("status order = %s, %s; want by name", a.Name, q.Name)
	}
	if a.LastHeartbeat == nil || a.Source != store.SourceAPI || a.AgentVersion != "2.1.0" || a.ActiveAlerts != 3 || !a.Enabled {
		t.Errorf("alive server status = %+v", a)
	}
	if q.LastHeartbeat != nil || q.ActiveAlerts != 0 || q.Enabled || q.Source != "" {
		t.Errorf("quiet server status = %+v (resolved alerts must not count)", q)
	}
}

func testPushClock(t *testing.T, ctx context.Context, s store.Store) {
	sv := mustAdd(t, ctx, s, "web1")
	before := mustNow(t, ctx, s)
	at := mustPush(t, ctx, s, sv.ID, "", time.Time{})
	after := mustNow(t, ctx, s)
	if at.Location() != time.UTC || at.Before(before.Add(-time.Millisecond)) || at.After(after.Add(time.Millisecond)) {
		t.Errorf("heartbeat time %v not between store clock readings %v and %v", at, before, after)
	}
	snap := mustStatus(t, ctx, s)
	if got := snap.Servers[0].LastHeartbeat; got == nil || !got.Equal(at) {
		t.Errorf("status heartbeat = %v, want %v", got, at)
	}
	if snap.Now.Before(at) {
		t.Errorf("status clock %v is before the heartbeat %v it read", snap.Now, at)
	}
}

func testConcurrentHeartbeats(t *testing.T, ctx context.Context, s store.Store) {
	var pushes []store.Push
	for i := 0; i < 8; i++ {
		sv := mustAdd(t, ctx, s, fmt.Sprintf("srv%d", i))
		pushes = append(pushes, push(sv.ID, mustToken(t, ctx, s, sv.ID), ""))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*20)
	for _, p := range pushes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				p.AgentVersion = fmt.Sprint(i)
				if out, err := s.RecordPushes(ctx, []store.Push{p}); err != nil || !out[0].OK {
					errs <- fmt.Errorf("server %d: %+v, %v", p.ServerID, out, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent RecordPushes: %v", err)
	}
	snap := mustStatus(t, ctx, s)
	for _, st := range snap.Servers {
		if st.LastHeartbeat == nil || st.AgentVersion != "19" {
			t.Errorf("server %s after concurrent writes: %+v", st.Name, st.Heartbeat)
		}
	}
}

// Two rows for one name are refused by both engines, naming both lines,
// even when the name already exists (SQLite once reported "2 updated" and
// let the last row win).
func testImportDuplicateNames(t *testing.T, ctx context.Context, s store.Store) {
	mustAdd(t, ctx, s, "web1")
	for _, specs := range [][]store.ServerSpec{
		{{Name: "web1", Host: "a.example.net", Line: 2}, {Name: "other", Host: "o", Line: 3}, {Name: "web1", Host: "b.example.net", Line: 5}},
		{{Name: "new", Host: "a.example.net", Line: 2}, {Name: "other", Host: "o", Line: 3}, {Name: "new", Host: "b.example.net", Line: 5}},
	} {
		res, err := s.ImportServers(ctx, specs)
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("import with %q twice = %+v, %v; want ErrConflict", specs[0].Name, res, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "line 2") || !strings.Contains(msg, "line 5") || !strings.Contains(msg, specs[0].Name) {
			t.Errorf("error %q does not name the server and both lines", msg)
		}
	}
	// Without line numbers the positions in the batch are named.
	_, err := s.ImportServers(ctx, []store.ServerSpec{{Name: "x", Host: "h"}, {Name: "x", Host: "h"}})
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "row 1") || !strings.Contains(err.Error(), "row 2") {
		t.Errorf("duplicate without lines: %v", err)
	}
	list := mustServers(t, ctx, s)
	if len(list) != 1 || list[0].Host != "web1.example.net" {
		t.Errorf("after refused imports: %+v; want only the untouched original", list)
	}
}

func testInvalidInput(t *testing.T, ctx context.Context, s store.Store) {
	sv := mustAdd(t, ctx, s, "web1")
	if _, err := s.AddServer(ctx, store.ServerSpec{Name: "evil\x1b[2J", Host: "h"}); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "name") {
		t.Errorf("AddServer with an escape sequence: %v, want ErrInvalid naming the name", err)
	}
	if _, err := s.ImportServers(ctx, []store.ServerSpec{{Name: "ok", Host: "h", Line: 2}, {Name: "bad", Host: "a b", Line: 3}}); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "host") {
		t.Errorf("import of a bad host: %v, want ErrInvalid naming line 3 and the host", err)
	}
	if _, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: sv.ID, Kind: store.KindAlert, Severity: store.SeverityInfo, Message: "two\nlines"}); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "message") {
		t.Errorf("RaiseAlert with a newline: %v, want ErrInvalid naming the message", err)
	}
	if err := s.SetServerMode(ctx, sv.ID, ""); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("SetServerMode(\"\") = %v, want ErrInvalid", err)
	}
	if list := mustServers(t, ctx, s); len(list) != 1 || list[0].Mode != store.ModeSSH {
		t.Errorf("after invalid input: %+v", list)
	}
}

// Every time any method returns is UTC, whatever the session time zone of
// the database or the local zone of the process (the engines' tests run
// the suite with both set to somewhere else).
func testTimesUTC(t *testing.T, ctx context.Context, s store.Store) {
	var checked int
	utc := func(what string, tm *time.Time) {
		t.Helper()
		if tm == nil {
			return
		}
		checked++
		if tm.Location() != time.UTC {
			t.Errorf("%s = %v in %v, want UTC", what, *tm, tm.Location())
		}
	}
	now := mustNow(t, ctx, s)
	utc("Now", &now)
	sv, err := s.AddServer(ctx, store.ServerSpec{Name: "web1", Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	utc("AddServer.CreatedAt", &sv.CreatedAt)
	byID := mustServer(t, ctx, s, sv.ID)
	utc("Server.CreatedAt", &byID.CreatedAt)
	byName, err := s.ServerByName(ctx, "web1")
	if err != nil {
		t.Fatal(err)
	}
	utc("ServerByName.CreatedAt", &byName.CreatedAt)
	for _, l := range mustServers(t, ctx, s) {
		utc("Servers.CreatedAt", &l.CreatedAt)
	}
	a, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: sv.ID, Kind: store.KindAlert, Severity: store.SeverityInfo, Message: "m"})
	if err != nil {
		t.Fatal(err)
	}
	utc("RaiseAlert.CreatedAt", &a.CreatedAt)
	r, err := s.ResolveAlert(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	utc("ResolveAlert.CreatedAt", &r.CreatedAt)
	utc("ResolveAlert.ResolvedAt", r.ResolvedAt)
	again, err := s.ResolveAlert(ctx, a.ID)
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second ResolveAlert: %v", err)
	}
	utc("ResolveAlert(already resolved).CreatedAt", &again.CreatedAt)
	utc("ResolveAlert(already resolved).ResolvedAt", again.ResolvedAt)
	alerts, err := s.Alerts(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, al := range alerts {
		utc("Alerts.CreatedAt", &al.CreatedAt)
		utc("Alerts.ResolvedAt", al.ResolvedAt)
	}
	at := mustPush(t, ctx, s, sv.ID, "1", time.Time{})
	utc("PushOutcome.At", &at)
	old := mustPush(t, ctx, s, sv.ID, "1", time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 5*3600)))
	utc("PushOutcome.At (explicit)", &old)
	if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, OK: true}}); err != nil {
		t.Fatal(err)
	}
	snap := mustStatus(t, ctx, s)
	utc("Status.Now", &snap.Now)
	for _, st := range snap.Servers {
		utc("Status.CreatedAt", &st.CreatedAt)
		utc("Status.LastHeartbeat", st.LastHeartbeat)
		utc("Status.LastProbe", st.LastProbe)
	}
	run, err := s.StartRun(ctx, "probe-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	utc("StartRun.StartedAt", &run.StartedAt)
	done, err := s.FinishRun(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	utc("FinishRun.FinishedAt", done.FinishedAt)
	last, err := s.LastFinishedRun(ctx)
	if err != nil || last == nil {
		t.Fatalf("LastFinishedRun = %v, %v", last, err)
	}
	utc("LastFinishedRun.StartedAt", &last.StartedAt)
	utc("LastFinishedRun.FinishedAt", last.FinishedAt)
	if checked != 22 {
		t.Errorf("checked %d times, want 22: a method returned fewer rows or times than expected", checked)
	}
}

// Writes take an explicit time when a test (or a backfill) needs one, so
// no test sleeps to separate timestamps.
func testExplicitTimes(t *testing.T, ctx context.Context, s store.Store) {
	probed := mustAdd(t, ctx, s, "probed")
	pushed := mustAdd(t, ctx, s, "pushed")
	now := mustNow(t, ctx, s)
	hourAgo := now.Add(-time.Hour).Truncate(time.Millisecond)
	dayAgo := now.Add(-24 * time.Hour).Truncate(time.Millisecond)
	if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: probed.ID, OK: true, At: dayAgo}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: probed.ID, ErrorClass: "timeout", At: hourAgo}}); err != nil {
		t.Fatal(err)
	}
	if at := mustPush(t, ctx, s, pushed.ID, "1", hourAgo); !at.Equal(hourAgo) {
		t.Errorf("push outcome At = %v, want the explicit %v", at, hourAgo)
	}
	got := byName(mustStatus(t, ctx, s))
	p := got["probed"]
	if p.LastHeartbeat == nil || !p.LastHeartbeat.Equal(dayAgo) || p.LastProbe == nil || !p.LastProbe.Equal(hourAgo) || p.ConsecutiveFailures != 1 {
		t.Errorf("probed = %+v, want heartbeat %v, last probe %v", p.Heartbeat, dayAgo, hourAgo)
	}
	if h := got["pushed"].LastHeartbeat; h == nil || !h.Equal(hourAgo) {
		t.Errorf("pushed heartbeat = %v, want %v", h, hourAgo)
	}
	// A zero At is the store's clock again.
	at := mustPush(t, ctx, s, pushed.ID, "2", time.Time{})
	if !near(at, now) {
		t.Errorf("push without At recorded %v, want near the store clock %v", at, now)
	}
}

// EmptySchemaWorks checks that s, an empty store whose schema was just
// built (by a first open, or by migrating down to 0 and up again), takes a
// server and a probe result and reports them: the engines' migration tests
// call it after their up/down/up round trip.
func EmptySchemaWorks(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	sv, err := s.AddServer(ctx, store.ServerSpec{Name: "after", Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, OK: true}}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Status(ctx)
	if err != nil || len(snap.Servers) != 1 || snap.Servers[0].Name != "after" || snap.Servers[0].LastHeartbeat == nil {
		t.Fatalf("status of a freshly built schema = %+v, %v; want only the new server, probed", snap.Servers, err)
	}
}
