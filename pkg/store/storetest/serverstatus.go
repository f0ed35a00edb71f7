package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/stacksense/heartbeat/pkg/store"
)

// testServerStatus: ServerStatus returns exactly the row Status returns for
// that server (heartbeat, phases, alert count), with the store's clock, and
// ErrNotFound for an unknown id.
func testServerStatus(t *testing.T, ctx context.Context, s store.Store) {
	probed := mustAdd(t, ctx, s, "probed")
	never := mustAdd(t, ctx, s, "never")
	other := mustAdd(t, ctx, s, "other")
	phases := store.Phases{Dial: 1500 * time.Microsecond, Banner: 7 * time.Millisecond, Kex: 4 * time.Millisecond, Auth: 2 * time.Millisecond, Exec: 250 * time.Microsecond}
	if err := s.RecordProbeResults(ctx, []store.ProbeResult{
		{ServerID: probed.ID, OK: true, Latency: 9 * time.Millisecond, Phases: phases},
		{ServerID: other.ID, ErrorClass: "refused", Error: "connection refused", Phases: store.Phases{Dial: time.Millisecond}},
	}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: probed.ID, Kind: store.KindAlert, Severity: store.SeverityWarning, Message: "disk"}); err != nil {
			t.Fatal(err)
		}
	}
	before := mustNow(t, ctx, s)
	snap, err := s.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	for _, want := range snap.Servers {
		got, now, err := s.ServerStatus(ctx, want.ID)
		if err != nil {
			t.Fatalf("ServerStatus(%s): %v", want.Name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ServerStatus(%s) =\n%+v\nStatus has\n%+v", want.Name, got, want)
		}
		if now.Location() != time.UTC || now.Before(before) {
			t.Errorf("ServerStatus(%s) clock %v: not UTC or before %v", want.Name, now, before)
		}
	}
	got, _, err := s.ServerStatus(ctx, probed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Phases != phases || got.ActiveAlerts != 2 || got.LastHeartbeat == nil || got.LastHeartbeat.Location() != time.UTC {
		t.Errorf("probed server: phases %+v (want %+v), alerts %d, heartbeat %v", got.Phases, phases, got.ActiveAlerts, got.LastHeartbeat)
	}
	if got, _, _ := s.ServerStatus(ctx, never.ID); got.Phases != (store.Phases{}) || got.LastProbe != nil {
		t.Errorf("never-probed server has %+v", got.Heartbeat)
	}
	if _, _, err := s.ServerStatus(ctx, other.ID+1000); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ServerStatus(unknown) = %v, want ErrNotFound", err)
	}
}
