package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/deliver"
	"github.com/stacksense/heartbeat/pkg/store"
)

// heartbeat_state_changes_total counts the flips any evaluator records
// (here: the store directly, as a probe run on another host would) after
// serve-api's first scrape, by transition; what was recorded before is not
// counted.
func TestStateChangesCounter(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		a := api.New(s, api.Options{})
		t.Cleanup(a.Close)
		sv, err := s.AddServer(ctx, store.ServerSpec{Name: "web1", Host: "web1.example.net"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil { // new → OFFLINE, before the first scrape
			t.Fatal(err)
		}
		if _, err := testutil.GatherAndCount(a.Registry(), "heartbeat_state_changes_total"); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, OK: true}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil { // OFFLINE → ONLINE
			t.Fatal(err)
		}
		if err := s.SetServerEnabled(ctx, sv.ID, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil { // ONLINE → DISABLED
			t.Fatal(err)
		}
		want := `
# HELP heartbeat_state_changes_total State changes (flips) recorded in the store since this serve-api started, by transition (from, to); from is "new" for a server's first state; to CUT-OFF and RECONNECTED are fleet events.
# TYPE heartbeat_state_changes_total counter
heartbeat_state_changes_total{from="OFFLINE",to="ONLINE"} 1
heartbeat_state_changes_total{from="ONLINE",to="DISABLED"} 1
`
		if err := testutil.GatherAndCompare(a.Registry(), strings.NewReader(want), "heartbeat_state_changes_total"); err != nil {
			t.Error(err)
		}
		// A scrape with nothing new adds nothing.
		if err := testutil.GatherAndCompare(a.Registry(), strings.NewReader(want), "heartbeat_state_changes_total"); err != nil {
			t.Error(err)
		}
	})
}

// The notification queue on /metrics: a channel whose receiver refuses
// shows as failing, with its backlog and the age of what waits.
func TestNotificationQueueMetrics(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		a := api.New(s, api.Options{})
		t.Cleanup(a.Close)
		sv, err := s.AddServer(ctx, store.ServerSpec{Name: "web1", Host: "web1.example.net"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddChannel(ctx, store.ChannelSpec{Name: "ops", URL: "webhook+http://127.0.0.1:1/hook", AllServers: true}); err != nil {
			t.Fatal(err)
		}
		now, err := s.Now(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Up 50 s ago, then judged with a 10 s window: a down-flip that is news.
		if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, OK: true, At: now.Add(-50 * time.Second)}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateServer(ctx, sv.ID, store.ServerSpec{Name: "web1", Host: "web1.example.net", StaleAfter: 10 * time.Second}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil {
			t.Fatal(err)
		}
		res, err := deliver.Drain(ctx, s, deliver.Options{})
		if err != nil || res.Failed != 1 {
			t.Fatalf("drain to a refusing receiver = %+v, %v; want one failed send", res, err)
		}
		want := `
# HELP heartbeat_notification_backlog Notifications queued and neither delivered nor given up (retries included).
# TYPE heartbeat_notification_backlog gauge
heartbeat_notification_backlog 1
# HELP heartbeat_notification_channel_failing 1 for each channel whose latest delivery attempt failed, with the messages it is retrying and gave up on in the last 24 h.
# TYPE heartbeat_notification_channel_failing gauge
heartbeat_notification_channel_failing{channel="ops"} 1
# HELP heartbeat_notification_channel_retrying Messages a failing channel is retrying.
# TYPE heartbeat_notification_channel_retrying gauge
heartbeat_notification_channel_retrying{channel="ops"} 1
`
		if err := testutil.GatherAndCompare(a.Registry(), strings.NewReader(want),
			"heartbeat_notification_backlog", "heartbeat_notification_channel_failing", "heartbeat_notification_channel_retrying"); err != nil {
			t.Error(err)
		}
		if n, err := testutil.GatherAndCount(a.Registry(), "heartbeat_notification_oldest_pending_age_seconds"); err != nil || n != 1 {
			t.Errorf("oldest pending age: %d series, %v", n, err)
		}
	})
}

// A server in a maintenance window is MAINTENANCE on /metrics too: its
// per-state series say so and the fleet count has a MAINTENANCE series.
func TestMaintenanceMetrics(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		a := api.New(s, api.Options{})
		t.Cleanup(a.Close)
		sv, err := s.AddServer(ctx, store.ServerSpec{Name: "web1", Host: "web1.example.net"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.StartMaintenance(ctx, store.MaintenanceSpec{ServerIDs: []int64{sv.ID}, For: time.Hour, Reason: "kernel upgrade", By: "root"}); err != nil {
			t.Fatal(err)
		}
		want := `
# HELP heartbeat_servers Servers by status.
# TYPE heartbeat_servers gauge
heartbeat_servers{status="DISABLED"} 0
heartbeat_servers{status="MAINTENANCE"} 1
heartbeat_servers{status="OFFLINE"} 0
heartbeat_servers{status="ONLINE"} 0
heartbeat_servers{status="WARNING"} 0
`
		if err := testutil.GatherAndCompare(a.Registry(), strings.NewReader(want), "heartbeat_servers"); err != nil {
			t.Error(err)
		}
	})
}
