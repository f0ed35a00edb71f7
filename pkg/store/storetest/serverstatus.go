package storetest

import (
	"context"
	"errors"
	"net/netip"
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

// testEachStatus: EachStatus hands over exactly the rows Status returns
// (in any order), all with one UTC clock no earlier than before the
// call; an error from the callback stops the read and comes back as is;
// an empty fleet calls nothing.
func testEachStatus(t *testing.T, ctx context.Context, s store.Store) {
	calls := 0
	if err := s.EachStatus(ctx, func(time.Time, store.ServerStatus) error { calls++; return nil }); err != nil || calls != 0 {
		t.Fatalf("EachStatus on an empty fleet: %d calls, %v", calls, err)
	}
	a := mustAdd(t, ctx, s, "bravo")
	mustAdd(t, ctx, s, "alpha")
	mustAdd(t, ctx, s, "charlie")
	if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: a.ID, OK: true, Latency: 3 * time.Millisecond, PinHostKey: []byte("host-key")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetServerTokenless(ctx, a.ID, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: a.ID, Kind: store.KindAlert, Severity: store.SeverityWarning, Message: "disk"}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := mustNow(t, ctx, s)
	got := map[int64]store.ServerStatus{}
	var clock time.Time
	err = s.EachStatus(ctx, func(now time.Time, st store.ServerStatus) error {
		if clock.IsZero() {
			clock = now
		}
		if !now.Equal(clock) || now.Location() != time.UTC {
			t.Errorf("row %s clock %v, first row's %v (want one UTC clock)", st.Name, now, clock)
		}
		got[st.ID] = st
		return nil
	})
	if err != nil {
		t.Fatalf("EachStatus: %v", err)
	}
	if clock.Before(before) {
		t.Errorf("EachStatus clock %v is before %v", clock, before)
	}
	if len(got) != len(snap.Servers) {
		t.Errorf("EachStatus gave %d rows, Status %d", len(got), len(snap.Servers))
	}
	for _, want := range snap.Servers {
		if !reflect.DeepEqual(got[want.ID], want) {
			t.Errorf("EachStatus row %s =\n%+v\nStatus has\n%+v", want.Name, got[want.ID], want)
		}
		// Status rows leave the credentials and keys out (store.ServerStatus).
		if c := want.Server; c.User != "" || c.KeyPath != "" || c.HostKey != nil || c.SeenHostKey != nil || c.TokenlessFrom != nil || !c.CreatedAt.IsZero() {
			t.Errorf("status row %s carries credentials or keys: %+v", want.Name, c)
		}
	}
	if sv := mustServer(t, ctx, s, a.ID); string(sv.HostKey) != "host-key" || sv.TokenlessFrom == nil {
		t.Errorf("Server(%d) = %+v, want its pinned key and token-less networks", a.ID, sv)
	}
	stop := errors.New("enough")
	calls = 0
	if err := s.EachStatus(ctx, func(time.Time, store.ServerStatus) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("EachStatus with a failing callback: %d calls, %v; want 1 and the callback's error", calls, err)
	}
}
