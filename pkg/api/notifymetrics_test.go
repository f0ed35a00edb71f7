package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stacksense/heartbeat/pkg/api"
	"github.com/stacksense/heartbeat/pkg/deliver"
	"github.com/stacksense/heartbeat/pkg/store"
)

// heartbeat_notifications_total counts, by channel kind and outcome, the
// notifications any drain ended after serve-api's first scrape: one sent
// to a loopback webhook, one given up on an exec channel whose script is
// missing. A second scrape adds nothing.
func TestNotificationsCounter(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		t.Cleanup(receiver.Close)
		a := api.New(s, api.Options{})
		t.Cleanup(a.Close)
		if _, err := testutil.GatherAndCount(a.Registry(), "heartbeat_notifications_total"); err != nil {
			t.Fatal(err)
		}
		sv, err := s.AddServer(ctx, store.ServerSpec{Name: "web1", Host: "web1.example.net", StaleAfter: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []store.ChannelSpec{
			{Name: "hook", URL: "webhook+" + receiver.URL + "/hook", AllServers: true},
			{Name: "script", URL: "exec:" + t.TempDir() + "/missing.sh", AllServers: true},
		} {
			if _, err := s.AddChannel(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: sv.ID, OK: true}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil { // first heartbeat: not notified
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond)
		if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil { // ONLINE → OFFLINE: notified
			t.Fatal(err)
		}
		res, err := deliver.Drain(ctx, s, deliver.Options{Claimer: "test"})
		if err != nil || res.Delivered != 1 || res.Failed != 1 {
			t.Fatalf("drain = %+v, %v; want one sent, one failed", res, err)
		}
		// The exec channel's retry, a day later, gives up.
		late := time.Now().Add(store.DeliveryGiveUpAfter + time.Hour)
		ds, err := s.ClaimDeliveries(ctx, store.ClaimParams{Claimer: "test", Now: late})
		if err != nil || len(ds) != 1 {
			t.Fatalf("claim the retry: %+v, %v", ds, err)
		}
		if _, err := s.RecordDeliveryOutcomes(ctx, store.OutcomeParams{Claimer: "test", At: late,
			Outcomes: []store.DeliveryOutcome{{ID: ds[0].ID, Error: "no such file"}}}); err != nil {
			t.Fatal(err)
		}
		want := `
# HELP heartbeat_notifications_total Notifications that ended since this serve-api started, by channel kind (the URL's scheme: webhook, exec, slack, smtp, …) and outcome: sent, or failed (given up after 24 h of retries; retries themselves are heartbeat_notification_channel_retrying).
# TYPE heartbeat_notifications_total counter
heartbeat_notifications_total{kind="exec",outcome="failed"} 1
heartbeat_notifications_total{kind="webhook",outcome="sent"} 1
`
		for range 2 {
			if err := testutil.GatherAndCompare(a.Registry(), strings.NewReader(want), "heartbeat_notifications_total"); err != nil {
				t.Error(err)
			}
		}
	})
}

// heartbeat_servers_flapping counts the servers the drain holds back as
// flapping: five changes within minutes.
func TestFlappingGauge(t *testing.T) {
	eachStore(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		a := api.New(s, api.Options{})
		t.Cleanup(a.Close)
		flapper, err := s.AddServer(ctx, store.ServerSpec{Name: "flapper", Host: "10.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		steady, err := s.AddServer(ctx, store.ServerSpec{Name: "steady", Host: "10.0.0.2"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RecordProbeResults(ctx, []store.ProbeResult{{ServerID: flapper.ID, OK: true}, {ServerID: steady.ID, OK: true}}); err != nil {
			t.Fatal(err)
		}
		eval := func() {
			t.Helper()
			if _, err := s.Evaluate(ctx, store.EvalParams{}); err != nil {
				t.Fatal(err)
			}
		}
		eval()
		gauge := func(want string) {
			t.Helper()
			exp := "\n# HELP heartbeat_servers_flapping Servers flapping now: at least 5 state changes in 15 minutes and not 10 minutes in one state; their notifications are paused until they settle.\n" +
				"# TYPE heartbeat_servers_flapping gauge\nheartbeat_servers_flapping " + want + "\n"
			if err := testutil.GatherAndCompare(a.Registry(), strings.NewReader(exp), "heartbeat_servers_flapping"); err != nil {
				t.Error(err)
			}
		}
		gauge("0")
		// An alert raised and resolved over and over: ONLINE ⇄ WARNING.
		for range 3 {
			al, err := s.RaiseAlert(ctx, store.AlertSpec{ServerID: flapper.ID, Kind: store.KindAlert, Severity: store.SeverityWarning, Message: "disk"})
			if err != nil {
				t.Fatal(err)
			}
			eval()
			if _, err := s.ResolveAlert(ctx, al.ID); err != nil {
				t.Fatal(err)
			}
			eval()
		}
		gauge("1")
	})
}
