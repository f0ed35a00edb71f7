package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/stacksense/heartbeat/pkg/store"
)

// testUpdateServer: correcting a server's address keeps everything that
// removing and re-adding it would lose (id, mode, pinned key, heartbeat,
// alerts), and a bad spec or unknown id changes nothing.
func testUpdateServer(t *testing.T, ctx context.Context, s store.Store) {
	sv := mustAdd(t, ctx, s, "web1")
	if err := s.SetServerMode(ctx, sv.ID, store.ModeSSH); err != nil {
		t.Fatal(err)
	}
	pin := []byte("pinned-key")
	if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, OK: true, PinHostKey: pin}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: sv.ID, Kind: store.KindAlert, Severity: store.SeverityWarning, Message: "disk"}); err != nil {
		t.Fatal(err)
	}

	got, err := s.UpdateServer(ctx, sv.ID, store.ServerSpec{Name: sv.Name, Host: "10.0.0.9", Port: 2222, User: "monitor", KeyPath: "/etc/hb/key"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != sv.ID || got.Name != "web1" || got.Host != "10.0.0.9" || got.Port != 2222 || got.User != "monitor" ||
		got.KeyPath != "/etc/hb/key" || got.Mode != store.ModeSSH || string(got.HostKey) != string(pin) || !got.CreatedAt.Equal(sv.CreatedAt) {
		t.Errorf("UpdateServer returned %+v", got)
	}
	if again := mustServer(t, ctx, s, sv.ID); again.Host != "10.0.0.9" || again.Port != 2222 {
		t.Errorf("stored server after update: %+v", again)
	}
	st := mustStatus(t, ctx, s).Servers[0]
	if st.LastHeartbeat == nil || st.ActiveAlerts != 1 {
		t.Errorf("update lost the heartbeat or the alert: %+v", st)
	}

	// Port 0 means the default, as for AddServer.
	if got, err := s.UpdateServer(ctx, sv.ID, store.ServerSpec{Name: sv.Name, Host: "10.0.0.9"}); err != nil || got.Port != store.DefaultPort || got.User != "" {
		t.Errorf("update to the default port = %+v, %v", got, err)
	}
	if _, err := s.UpdateServer(ctx, sv.ID, store.ServerSpec{Name: sv.Name, Host: "bad host"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("update with a bad host: %v, want ErrInvalid", err)
	}
	if _, err := s.UpdateServer(ctx, sv.ID+1000, store.ServerSpec{Name: "x", Host: "h"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of an unknown server: %v, want ErrNotFound", err)
	}
	if after := mustServer(t, ctx, s, sv.ID); after.Host != "10.0.0.9" {
		t.Errorf("a refused update changed the server: %+v", after)
	}
}
