package report_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/report"
	"github.com/stacksense/heartbeat/pkg/status"
	"github.com/stacksense/heartbeat/pkg/store"
)

// TestCollectorMatchesBuild: rows streamed in any order through a
// Collector (past one chunk) give the report BuildWithHistory builds
// from the snapshot, uptime included; Keep filters the rows but not the
// counts.
func TestCollectorMatchesBuild(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	var snap store.Snapshot
	snap.Now = now
	var flips []store.Flip
	for i := range 9000 {
		st := store.ServerStatus{}
		st.ID, st.Name, st.Enabled, st.StaleAfter = int64(i+1), fmt.Sprintf("s%05d", rng.IntN(1e5))+fmt.Sprint(i), i%97 != 0, time.Minute
		if i%3 != 0 {
			hb := now.Add(-time.Duration(rng.IntN(120)) * time.Second)
			st.LastHeartbeat = &hb
		}
		st.ActiveAlerts = rng.IntN(30) / 29
		st.State = store.StateOnline
		if i%10 == 0 {
			flips = append(flips, store.Flip{ServerID: st.ID, At: now.Add(-time.Hour), From: store.StateOffline, To: store.StateOnline})
		}
		if i%20 == 0 { // ordered by server, as Store.FlipStates reads them
			flips = append(flips, store.Flip{ServerID: st.ID, At: now.Add(-30 * time.Minute), From: store.StateOnline, To: store.StateOffline})
		}
		snap.Servers = append(snap.Servers, st)
	}
	want := report.BuildWithHistory(snap, 0, flips)

	c := &report.Collector{}
	for _, i := range rng.Perm(len(snap.Servers)) {
		if err := c.Add(now, snap.Servers[i]); err != nil {
			t.Fatal(err)
		}
	}
	got := c.Report(time.Time{}, flips)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Collector report differs from BuildWithHistory (counts %+v vs %+v)", got.Counts, want.Counts)
	}

	c = &report.Collector{Keep: func(r *report.ServerStatus) bool { return r.Status == status.Warning }}
	for _, st := range snap.Servers {
		c.Add(now, st)
	}
	got = c.Report(time.Time{}, nil)
	if got.Counts != want.Counts {
		t.Errorf("filtered counts %+v, want %+v", got.Counts, want.Counts)
	}
	var warnings []string
	for _, r := range want.Servers {
		if r.Status == status.Warning {
			warnings = append(warnings, r.Name)
		}
	}
	var names []string
	for _, r := range got.Servers {
		names = append(names, r.Name)
	}
	if len(names) == 0 || !reflect.DeepEqual(names, warnings) {
		t.Errorf("kept %d rows, want the %d WARNING ones in order", len(names), len(warnings))
	}

	// Half the rows, past one chunk: rows given back do not shift the
	// kept ones.
	c = &report.Collector{Keep: func(r *report.ServerStatus) bool { return r.ID%2 == 0 }}
	for _, i := range rng.Perm(len(snap.Servers)) {
		c.Add(now, snap.Servers[i])
	}
	got = c.Report(time.Time{}, flips)
	var even []report.ServerStatus
	for _, r := range want.Servers {
		if r.ID%2 == 0 {
			even = append(even, r)
		}
	}
	if !reflect.DeepEqual(got.Servers, even) {
		t.Errorf("kept %d rows, want the %d even ones as BuildWithHistory has them", len(got.Servers), len(even))
	}

	empty := (&report.Collector{}).Report(now, nil)
	if !empty.Now.Equal(now) || empty.Servers == nil || len(empty.Servers) != 0 {
		t.Errorf("empty collector report = %+v", empty)
	}
}
