package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

func mustStartMaintenance(t *testing.T, ctx context.Context, s store.Store, spec store.MaintenanceSpec) []store.MaintenanceWindow {
	t.Helper()
	ws, err := s.StartMaintenance(ctx, spec)
	if err != nil {
		t.Fatalf("StartMaintenance(%+v): %v", spec, err)
	}
	return ws
}

// flipOf returns the one flip of server id in res, failing if there is
// not exactly one.
func flipOf(t *testing.T, res store.EvalResult, id int64) store.Flip {
	t.Helper()
	var out []store.Flip
	for _, f := range res.Flips {
		if f.ServerID == id {
			out = append(out, f)
		}
	}
	if len(out) != 1 {
		t.Fatalf("flips of server %d = %+v, want one (round: %+v)", id, out, res.Flips)
	}
	return out[0]
}

func noFlipOf(t *testing.T, res store.EvalResult, id int64) {
	t.Helper()
	for _, f := range res.Flips {
		if f.ServerID == id {
			t.Fatalf("server %d flipped: %+v", id, f)
		}
	}
}

// testMaintenanceWindows: starting, listing, status and ending windows,
// and bad input that writes nothing.
func testMaintenanceWindows(t *testing.T, ctx context.Context, s store.Store) {
	a, b, c := mustAdd(t, ctx, s, "a"), mustAdd(t, ctx, s, "b"), mustAdd(t, ctx, s, "c")
	now := mustNow(t, ctx, s)

	bad := []struct {
		spec store.MaintenanceSpec
		want error
	}{
		{store.MaintenanceSpec{ServerIDs: []int64{a.ID}, For: time.Hour}, store.ErrInvalid},                            // no reason
		{store.MaintenanceSpec{Reason: "r", For: time.Hour}, store.ErrInvalid},                                         // no servers
		{store.MaintenanceSpec{All: true, ServerIDs: []int64{a.ID}, Reason: "r", For: time.Hour}, store.ErrInvalid},    // both
		{store.MaintenanceSpec{ServerIDs: []int64{a.ID}, Reason: "r", For: time.Second}, store.ErrInvalid},             // too short
		{store.MaintenanceSpec{ServerIDs: []int64{a.ID}, Reason: "r", Until: now.Add(-time.Minute)}, store.ErrInvalid}, // past
		{store.MaintenanceSpec{All: true, Reason: "r", Until: now.Add(-time.Second)}, store.ErrInvalid},                // past, all
		{store.MaintenanceSpec{ServerIDs: []int64{a.ID, 987654}, Reason: "r", For: time.Hour}, store.ErrNotFound},      // unknown
	}
	for _, tc := range bad {
		if _, err := s.StartMaintenance(ctx, tc.spec); !errors.Is(err, tc.want) {
			t.Errorf("StartMaintenance(%+v) = %v, want %v", tc.spec, err, tc.want)
		}
	}
	if ws, err := s.MaintenanceWindows(ctx, false); err != nil || len(ws) != 0 {
		t.Fatalf("after refused starts, windows = %+v, %v; want none written", ws, err)
	}

	ws := mustStartMaintenance(t, ctx, s, store.MaintenanceSpec{ServerIDs: []int64{b.ID, a.ID, a.ID}, For: 2 * time.Hour, Reason: "kernel", By: "alice"})
	if len(ws) != 2 || ws[0].ServerName != "a" || ws[1].ServerName != "b" {
		t.Fatalf("windows = %+v, want a and b once each", ws)
	}
	w := ws[0]
	if !near(w.StartsAt, now) || !w.EndsAt.Equal(w.StartsAt.Add(2*time.Hour)) || w.Reason != "kernel" || w.By != "alice" ||
		w.EndedAt != nil || w.ScheduleID != 0 || w.StartsAt.Location() != time.UTC {
		t.Errorf("window = %+v", w)
	}
	until := now.Add(3 * time.Hour).Truncate(time.Second)
	mustStartMaintenance(t, ctx, s, store.MaintenanceSpec{All: true, Until: until, Reason: "dc move", By: "bob"})

	snap := mustStatus(t, ctx, s)
	for _, st := range snap.Servers {
		if !st.InMaintenance || st.MaintenanceUntil == nil || st.MaintenanceUntil.Location() != time.UTC {
			t.Errorf("status of %s: in maintenance %v until %v", st.Name, st.InMaintenance, st.MaintenanceUntil)
			continue
		}
		// The latest-starting window is the one shown.
		if !st.MaintenanceUntil.Equal(until) || st.MaintenanceReason != "dc move" {
			t.Errorf("status of %s: until %v reason %q, want %v dc move", st.Name, st.MaintenanceUntil, st.MaintenanceReason, until)
		}
	}

	// Ending c's windows leaves a and b in maintenance.
	if n, err := s.EndMaintenance(ctx, []int64{c.ID}, false); err != nil || n != 1 {
		t.Fatalf("EndMaintenance(c) = %d, %v; want 1", n, err)
	}
	if st := serverStatus(t, ctx, s, c.ID); st.InMaintenance {
		t.Errorf("c still in maintenance after its end: %+v", st)
	}
	if st := serverStatus(t, ctx, s, a.ID); !st.InMaintenance {
		t.Errorf("a left maintenance when c's ended")
	}
	active, err := s.MaintenanceWindows(ctx, true)
	if err != nil || len(active) != 4 {
		t.Fatalf("active windows = %+v, %v; want 4 (a, b twice, c's ended)", active, err)
	}
	if n, err := s.EndMaintenance(ctx, nil, true); err != nil || n != 4 {
		t.Fatalf("EndMaintenance(all) = %d, %v; want 4", n, err)
	}
	if n, err := s.EndMaintenance(ctx, nil, true); err != nil || n != 0 {
		t.Errorf("ending again = %d, %v; want 0", n, err)
	}
	all, err := s.MaintenanceWindows(ctx, false)
	if err != nil || len(all) != 5 {
		t.Fatalf("all windows = %d, %v; want 5 kept as history", len(all), err)
	}
	for _, w := range all {
		if w.EndedAt == nil || w.End().After(mustNow(t, ctx, s)) {
			t.Errorf("window %+v not ended", w)
		}
	}
	if active, _ := s.MaintenanceWindows(ctx, true); len(active) != 0 {
		t.Errorf("active after ending all = %+v", active)
	}
	if st := serverStatus(t, ctx, s, a.ID); st.InMaintenance || st.MaintenanceUntil != nil {
		t.Errorf("a in maintenance after all ended: %+v", st)
	}
}

// testMaintenanceEvaluate: entering a window is a notified flip; changes
// inside are recorded without notification; leaving notifies only the
// servers whose state differs from the one before the window.
func testMaintenanceEvaluate(t *testing.T, ctx context.Context, s store.Store) {
	up := mustAdd(t, ctx, s, "up")     // ONLINE before, OFFLINE after: notified
	down := mustAdd(t, ctx, s, "down") // OFFLINE before and after: not notified
	fine := mustAdd(t, ctx, s, "fine") // ONLINE throughout: not notified
	now := mustNow(t, ctx, s)
	probeOK(t, ctx, s, up.ID, now)
	probeOK(t, ctx, s, fine.ID, now)
	probeOK(t, ctx, s, down.ID, now)
	mustEvaluate(t, ctx, s, store.EvalParams{}) // all ONLINE
	probeOK(t, ctx, s, down.ID, now.Add(-time.Hour))
	mustEvaluate(t, ctx, s, store.EvalParams{}) // down goes OFFLINE before the window
	if st := serverStatus(t, ctx, s, down.ID); st.State != store.StateOffline {
		t.Fatalf("down is %q before the window", st.State)
	}

	ws := mustStartMaintenance(t, ctx, s, store.MaintenanceSpec{All: true, Reason: "kernel 6.8", By: "alice", For: time.Hour})
	res := mustEvaluate(t, ctx, s, store.EvalParams{})
	for _, sv := range []store.Server{up, down, fine} {
		f := flipOf(t, res, sv.ID)
		if f.To != store.StateMaintenance || !f.Notify || f.Reason != "maintenance started by alice: kernel 6.8" {
			t.Errorf("%s entering maintenance = %+v", sv.Name, f)
		}
		if !f.At.Equal(ws[0].StartsAt) && !f.At.After(ws[0].StartsAt) {
			t.Errorf("%s entered at %v, before its window %v", sv.Name, f.At, ws[0].StartsAt)
		}
	}
	if f := flipOf(t, res, down.ID); f.From != store.StateOffline {
		t.Errorf("down entered from %q", f.From)
	}
	if st := serverStatus(t, ctx, s, up.ID); st.State != store.StateMaintenance {
		t.Errorf("recorded state = %q", st.State)
	}
	if res = mustEvaluate(t, ctx, s, store.EvalParams{}); len(res.Flips) != 0 {
		t.Fatalf("a quiet round in maintenance recorded %+v", res.Flips)
	}

	// up goes down inside the window: recorded, not notified, and the
	// server stays MAINTENANCE.
	probeOK(t, ctx, s, up.ID, now.Add(-time.Hour))
	f := flipOf(t, mustEvaluate(t, ctx, s, store.EvalParams{}), up.ID)
	if f.From != store.StateOnline || f.To != store.StateOffline || f.Notify {
		t.Errorf("change inside the window = %+v, want ONLINE→OFFLINE without notification", f)
	}
	if st := serverStatus(t, ctx, s, up.ID); st.State != store.StateMaintenance {
		t.Errorf("state after a change inside the window = %q, want MAINTENANCE", st.State)
	}
	if res = mustEvaluate(t, ctx, s, store.EvalParams{}); len(res.Flips) != 0 {
		t.Fatalf("the change inside was recorded twice: %+v", res.Flips)
	}
	probeOK(t, ctx, s, fine.ID, time.Time{})

	// Early end: the servers leave maintenance.
	if n, err := s.EndMaintenance(ctx, nil, true); err != nil || n != 3 {
		t.Fatalf("EndMaintenance = %d, %v", n, err)
	}
	end := mustNow(t, ctx, s)
	res = mustEvaluate(t, ctx, s, store.EvalParams{})
	fu, fd, ff := flipOf(t, res, up.ID), flipOf(t, res, down.ID), flipOf(t, res, fine.ID)
	if fu.From != store.StateMaintenance || fu.To != store.StateOffline || !fu.Notify {
		t.Errorf("up before, down after: %+v, want MAINTENANCE→OFFLINE notified", fu)
	}
	if fu.At.After(end) || fu.At.Before(ws[0].StartsAt) {
		t.Errorf("leaving stamped %v, want the window's end (<= %v)", fu.At, end)
	}
	if fd.To != store.StateOffline || fd.Notify {
		t.Errorf("down before and after: %+v, want MAINTENANCE→OFFLINE not notified", fd)
	}
	if ff.To != store.StateOnline || ff.Notify {
		t.Errorf("online before and after: %+v, want MAINTENANCE→ONLINE not notified", ff)
	}
	if fd.Reason != "maintenance ended; no heartbeat for 60s" {
		t.Errorf("leaving reason = %q", fd.Reason)
	}
	if res = mustEvaluate(t, ctx, s, store.EvalParams{}); len(res.Flips) != 0 {
		t.Fatalf("a quiet round after maintenance recorded %+v", res.Flips)
	}
	// Out of maintenance, changes are news again.
	probeOK(t, ctx, s, down.ID, time.Time{})
	if f := flipOf(t, mustEvaluate(t, ctx, s, store.EvalParams{}), down.ID); f.To != store.StateOnline || !f.Notify {
		t.Errorf("after maintenance, coming up = %+v, want notified", f)
	}
}

// testMaintenanceExpires: a window ends on its own at its end time; no
// command runs. A server that came up during the window (down before, up
// after) is notified.
func testMaintenanceExpires(t *testing.T, ctx context.Context, s store.Store) {
	a := mustAdd(t, ctx, s, "a")
	mustEvaluate(t, ctx, s, store.EvalParams{}) // OFFLINE, no heartbeat yet
	probeOK(t, ctx, s, a.ID, time.Time{})
	mustEvaluate(t, ctx, s, store.EvalParams{}) // ONLINE
	probeOK(t, ctx, s, a.ID, mustNow(t, ctx, s).Add(-time.Hour))
	mustEvaluate(t, ctx, s, store.EvalParams{}) // OFFLINE (seen)
	until := mustNow(t, ctx, s).Add(1500 * time.Millisecond)
	mustStartMaintenance(t, ctx, s, store.MaintenanceSpec{ServerIDs: []int64{a.ID}, Until: until, Reason: "swap disk", By: "carol"})
	if f := flipOf(t, mustEvaluate(t, ctx, s, store.EvalParams{}), a.ID); f.To != store.StateMaintenance || f.From != store.StateOffline {
		t.Fatalf("entering = %+v", f)
	}
	probeOK(t, ctx, s, a.ID, time.Time{}) // fixed during the window
	if f := flipOf(t, mustEvaluate(t, ctx, s, store.EvalParams{}), a.ID); f.To != store.StateOnline || f.Notify {
		t.Errorf("coming up inside the window = %+v, want recorded, not notified", f)
	}
	for mustNow(t, ctx, s).Before(until) {
		time.Sleep(100 * time.Millisecond)
	}
	probeOK(t, ctx, s, a.ID, time.Time{})
	if st := serverStatus(t, ctx, s, a.ID); st.InMaintenance {
		t.Errorf("status after the window's end still in maintenance")
	}
	f := flipOf(t, mustEvaluate(t, ctx, s, store.EvalParams{}), a.ID)
	if f.From != store.StateMaintenance || f.To != store.StateOnline || !f.Notify {
		t.Errorf("leaving an expired window = %+v, want MAINTENANCE→ONLINE notified (OFFLINE before)", f)
	}
	if d := f.At.Sub(until); d < -time.Millisecond || d > time.Millisecond { // SQLite keeps milliseconds
		t.Errorf("leaving stamped %v, want the window's end %v", f.At, until)
	}
}

// testMaintenanceSchedules: schedules are stored and validated, and an
// occurrence in progress is materialised once even with two callers.
func testMaintenanceSchedules(t *testing.T, ctx context.Context, s store.Store) {
	a, b := mustAdd(t, ctx, s, "a"), mustAdd(t, ctx, s, "b")
	mustAdd(t, ctx, s, "c")
	mustEvaluate(t, ctx, s, store.EvalParams{})

	bad := []struct {
		spec store.ScheduleSpec
		want error
	}{
		{store.ScheduleSpec{Name: "x", Cron: "61 * * * *", Duration: time.Hour, All: true, Reason: "r"}, store.ErrInvalid},
		{store.ScheduleSpec{Name: "x", Cron: "0 0 30 2 *", Duration: time.Hour, All: true, Reason: "r"}, store.ErrInvalid},
		{store.ScheduleSpec{Name: "x", Cron: "0 3 * * SUN", Duration: time.Second, All: true, Reason: "r"}, store.ErrInvalid},
		{store.ScheduleSpec{Name: "x", Cron: "0 3 * * SUN", Duration: time.Hour, Reason: "r"}, store.ErrInvalid},
		{store.ScheduleSpec{Name: "x", Cron: "0 3 * * SUN", Duration: time.Hour, All: true}, store.ErrInvalid},
		{store.ScheduleSpec{Name: "x", Cron: "0 3 * * SUN", Duration: time.Hour, ServerIDs: []int64{a.ID, 987654}, Reason: "r"}, store.ErrNotFound},
	}
	for _, tc := range bad {
		if _, err := s.AddSchedule(ctx, tc.spec); !errors.Is(err, tc.want) {
			t.Errorf("AddSchedule(%+v) = %v, want %v", tc.spec, err, tc.want)
		}
	}
	if list, err := s.Schedules(ctx); err != nil || len(list) != 0 {
		t.Fatalf("after refused schedules: %+v, %v; want none written", list, err)
	}

	// Every minute for an hour: an occurrence is always in progress.
	sc, err := s.AddSchedule(ctx, store.ScheduleSpec{Name: "always", Cron: "* * * * *", Duration: time.Hour,
		ServerIDs: []int64{b.ID, a.ID}, Reason: "patching", By: "dave"})
	if err != nil {
		t.Fatal(err)
	}
	if sc.Name != "always" || sc.AllServers || len(sc.ServerNames) != 2 || sc.ServerNames[0] != "a" || sc.Duration != time.Hour ||
		sc.LastStart != nil || sc.By != "dave" {
		t.Errorf("schedule = %+v", sc)
	}
	if _, err := s.AddSchedule(ctx, store.ScheduleSpec{Name: "always", Cron: "@daily", Duration: time.Hour, All: true, Reason: "r"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a taken schedule name = %v, want ErrConflict", err)
	}
	weekly, err := s.AddSchedule(ctx, store.ScheduleSpec{Name: "weekly", Cron: "0 3 * * SUN", Duration: time.Hour, All: true, Reason: "r"})
	if err != nil || !weekly.AllServers || len(weekly.ServerIDs) != 0 {
		t.Fatalf("weekly = %+v, %v", weekly, err)
	}

	// Two evaluators and two bare materialisers at once: the occurrence's
	// windows are written once and each server enters MAINTENANCE once.
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		flips []store.Flip
	)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				if _, err := s.MaterializeSchedules(ctx); err != nil {
					t.Errorf("MaterializeSchedules: %v", err)
				}
				return
			}
			res, err := s.Evaluate(ctx, store.EvalParams{})
			if err != nil {
				t.Errorf("Evaluate: %v", err)
				return
			}
			mu.Lock()
			flips = append(flips, res.Flips...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	ws, err := s.MaintenanceWindows(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	scheduled := 0
	for _, w := range ws {
		if w.ScheduleID == sc.ID {
			scheduled++
			if w.ScheduleName != "always" || w.By != "schedule always" || w.Reason != "patching" || w.EndsAt.Sub(w.StartsAt) != time.Hour {
				t.Errorf("scheduled window = %+v", w)
			}
		}
	}
	// The minute may turn between two callers: then that minute's
	// occurrence is a second pair of windows, still each written once.
	if scheduled != 2 && scheduled != 4 {
		t.Fatalf("materialised %d windows, want 2 for a and b (4 if the minute turned): %+v", scheduled, ws)
	}
	if n, err := s.MaterializeSchedules(ctx); err != nil || (n != 0 && scheduled == 4) {
		t.Errorf("materialising again = %d, %v", n, err)
	}
	res := store.EvalResult{Flips: flips}
	if len(res.Flips) != 2 {
		// An evaluator may have judged before any window existed.
		res.Flips = append(res.Flips, mustEvaluate(t, ctx, s, store.EvalParams{}).Flips...)
	}
	for _, id := range []int64{a.ID, b.ID} {
		if f := flipOf(t, res, id); f.To != store.StateMaintenance || f.Reason != "maintenance started by schedule always: patching" {
			t.Errorf("scheduled maintenance flip = %+v", f)
		}
	}
	if st := serverStatus(t, ctx, s, b.ID); !st.InMaintenance || st.MaintenanceReason != "patching" {
		t.Errorf("status of b = %+v", st)
	}
	list, err := s.Schedules(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "always" || list[0].LastStart == nil {
		t.Fatalf("Schedules = %+v, %v", list, err)
	}

	if err := s.RemoveSchedule(ctx, "always"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveSchedule(ctx, "always"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removing twice = %v, want ErrNotFound", err)
	}
	// Its windows stay, as history and running.
	if st := serverStatus(t, ctx, s, a.ID); !st.InMaintenance {
		t.Errorf("removing a schedule ended its running window")
	}
	if list, _ := s.Schedules(ctx); len(list) != 1 || list[0].Name != "weekly" {
		t.Errorf("schedules left = %+v", list)
	}
}

// testMaintenanceRemovedServer: a server's windows go with it.
func testMaintenanceRemovedServer(t *testing.T, ctx context.Context, s store.Store) {
	a := mustAdd(t, ctx, s, "a")
	mustStartMaintenance(t, ctx, s, store.MaintenanceSpec{ServerIDs: []int64{a.ID}, For: time.Hour, Reason: "r"})
	// Started with no By (an API caller that names nobody): the reason
	// does not say "by" nobody.
	if f := flipOf(t, mustEvaluate(t, ctx, s, store.EvalParams{}), a.ID); f.Reason != "maintenance started: r" {
		t.Errorf("reason without a starter = %q", f.Reason)
	}
	if err := s.RemoveServer(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if ws, err := s.MaintenanceWindows(ctx, false); err != nil || len(ws) != 0 {
		t.Errorf("windows of a removed server = %+v, %v", ws, err)
	}
}

// testPruneMaintenanceWindows: windows that ended before the flips'
// cutoff go with them; running ones stay.
func testPruneMaintenanceWindows(t *testing.T, ctx context.Context, s store.Store) {
	a, b := mustAdd(t, ctx, s, "a"), mustAdd(t, ctx, s, "b")
	mustStartMaintenance(t, ctx, s, store.MaintenanceSpec{ServerIDs: []int64{a.ID}, For: time.Hour, Reason: "old"})
	if _, err := s.EndMaintenance(ctx, nil, true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // the store's clock moves past the end
	mustStartMaintenance(t, ctx, s, store.MaintenanceSpec{ServerIDs: []int64{b.ID}, For: time.Hour, Reason: "running"})
	pruned, err := s.PruneHistory(ctx, store.PruneParams{FlipsBefore: mustNow(t, ctx, s)})
	if err != nil || pruned.Windows != 1 {
		t.Fatalf("PruneHistory = %+v, %v; want 1 window", pruned, err)
	}
	ws, err := s.MaintenanceWindows(ctx, false)
	if err != nil || len(ws) != 1 || ws[0].Reason != "running" {
		t.Errorf("windows left = %+v, %v; want the running one", ws, err)
	}
}

// testMaintenanceHostCutOff: a cut-off host's silence is not recorded as
// a change underneath MAINTENANCE either; once it reconnects the change
// is recorded, still without notification.
func testMaintenanceHostCutOff(t *testing.T, ctx context.Context, s store.Store) {
	a := mustAdd(t, ctx, s, "a")
	now := mustNow(t, ctx, s)
	probeOK(t, ctx, s, a.ID, now)
	mustEvaluate(t, ctx, s, store.EvalParams{})
	mustStartMaintenance(t, ctx, s, store.MaintenanceSpec{ServerIDs: []int64{a.ID}, For: time.Hour, Reason: "r", By: "x"})
	mustEvaluate(t, ctx, s, store.EvalParams{})
	probeOK(t, ctx, s, a.ID, now.Add(-time.Hour))
	cut := store.EvalParams{HostCutOff: true, CutOffReason: "cut off"}
	noFlipOf(t, mustEvaluate(t, ctx, s, cut), a.ID)
	f := flipOf(t, mustEvaluate(t, ctx, s, store.EvalParams{}), a.ID)
	if f.From != store.StateOnline || f.To != store.StateOffline || f.Notify {
		t.Errorf("after reconnecting = %+v, want ONLINE→OFFLINE underneath, not notified", f)
	}
}
